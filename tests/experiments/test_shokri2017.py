"""The Shokri et al. 2017 reproduction, end to end on a small slice of real Fashion-MNIST."""

import json
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from mlpentest import datasets
from mlpentest.cli import main
from mlpentest.errors import InvalidParameterError
from mlpentest.experiments import shokri2017
from mlpentest.report import render


@pytest.mark.slow
def test_small_reproduction_runs_end_to_end(fashion, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        outcome = shokri2017.run(
            dataset="fashion-mnist", model="mlp", sizes=(150, 300), n_shadow=2, svm_size=150,
            quick=True, random_state=0,
        )
    sweep = outcome.results["size sweep"]
    np.testing.assert_array_equal(sweep.sizes, [150, 300])
    # overfit targets leak: the per-class shadow attack beats a coin flip at both sizes
    assert (sweep.auc > 0.6).all()
    assert (sweep.target_train_accuracy > sweep.target_test_accuracy + 0.1).all()
    assert sweep.per_class_precision.shape == (2, 10)
    assert "precision" in sweep.to_text()

    svm = outcome.results["SVM target/shadows/attack on fashion-mnist"]
    text = svm.to_text()
    assert "class 0 (T-shirt/top)" in text and "non-member" in text

    table = outcome.results["mitigations"]
    names = [row.mitigation for row in table.rows]
    assert names[0] == "no defence" and "early stopping" in names and "top-1 label only" in names
    lira = {row.mitigation: row.auc["LiRA"] for row in table.rows}
    assert lira["top-1 label only"] < lira["no defence"]

    files = render(outcome.results, tmp_path, metadata=outcome.metadata)
    doc = json.loads(files.json.read_text())
    assert [r["section"] for r in doc["results"]][0] == "size sweep"
    assert files.html.read_text().count("data:image/png;base64,") >= 3


def test_mitigation_settings_follow_the_recipe():
    mlp = MLPClassifier(alpha=1e-6)
    names = [m.name for m in shokri2017.mitigation_settings(mlp, 784)]
    assert names[:3] == ["no defence", "alpha=0.1", "alpha=1"]
    assert "DP logistic regression (eps=100)" in names


def test_sizes_too_large_for_the_dataset_are_rejected():
    digits = datasets.load("digits")
    with pytest.raises(InvalidParameterError, match="sizes: 1000 needs at least 4000"):
        shokri2017.membership_at_size(digits, 1000, MLPClassifier())
    with pytest.raises(InvalidParameterError, match="model"):
        shokri2017.default_trainer(digits, "transformer")


def test_reproduce_is_documented(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "shokri2017" in out and "--quick" in out and "--sizes" in out


@pytest.mark.slow
def test_a_failing_late_stage_keeps_the_finished_stages_report(fashion, tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("mitigation stage crashed")

    monkeypatch.setattr(shokri2017, "mitigation_table", broken)
    out = tmp_path / "report"
    with warnings.catch_warnings(), pytest.raises(RuntimeError, match="crashed"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        main(["reproduce", "shokri2017", "--quick", "--model", "mlp", "--dataset", "fashion-mnist",
              "--sizes", "150", "--shadows", "2", "--out", str(out), "--quiet"])
    doc = json.loads((out / "results.json").read_text())
    sections = [r["section"] for r in doc["results"]]
    assert sections == ["size sweep", "SVM target/shadows/attack on fashion-mnist"]
    assert (out / "report.html").exists()
