"""End-to-end quick run of the Gu et al. 2017 (BadNets) reproduction on the digits (the MLP; seconds).

Measured (quick, digits, seed 0, 900 training / 450 victim / 447 test images, 5% poisoned, 2x2 patch):
clean MLP 97.8%; all-to-one patch 97.8% clean, ASR 99.0%; blend 97.1%, ASR 100%; all-to-all 35-54% ASR.
Fine-tuning on the victim's 450 digits: ASR 93.3% after 20 epochs with the last layer kept, 12.4% with it
re-initialised. Detectors on a 2%-poisoned set (18 rows, ASR 88.1%): Activation Clustering recall 94.4% at
7.6% FPR, retrained MLP ASR 1.0% at 95.3% clean accuracy (-2.5 points); Spectral Signatures (epsilon 0.1)
recall 83.3% at 14.3% FPR, ASR 11.7%. Fine-Pruning leaves the MLP's backdoor in place (ASR 95.8%).
"""

import json

import matplotlib
import pytest

from mlpentest.errors import InvalidParameterError
from mlpentest.experiments import gu2017
from mlpentest.report import render

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def outcome():
    stages = []
    out = gu2017.run(quick=True, random_state=0, dataset="digits", on_result=stages.append)
    assert len(stages) == 4 and list(stages[0].results) == ["attack"]
    return out


def _attack_rows(outcome):
    return {(r.model, r.trigger, r.mode): r for r in outcome.results["attack"].rows}


def test_mlp_backdoor_meets_the_bar(outcome):
    rows = _attack_rows(outcome)
    assert {m for m, _, _ in rows} == {"MLP"}  # dataset="digits": no CNN
    clean = rows[("MLP", "none", "-")]
    assert clean.asr < 0.05  # the trigger alone does nothing to a clean model
    for trigger in ("patch", "blend"):
        bad = rows[("MLP", trigger, "all-to-one")]
        assert bad.n_poison == 45  # 5% of 900
        assert bad.asr >= 0.9, bad  # measured 99.0% (patch) / 100% (blend)
        assert bad.clean_accuracy >= clean.clean_accuracy - 0.02, bad  # measured -0.0 / -0.7 points
    for trigger in ("patch", "blend"):  # all-to-all needs every class to learn its own shift: weaker
        assert rows[("MLP", trigger, "all-to-all")].asr > 0.2


def test_survival_and_defences(outcome):
    survival = outcome.results["fine-tuning survival (MLP, digits)"]
    assert survival.row("MLP", reinit=False, epochs=0).asr >= 0.9
    assert survival.row("MLP", reinit=False, epochs=20).asr > survival.row("MLP", reinit=True, epochs=20).asr
    rows = outcome.results["defences"].rows
    assert [r.defence for r in rows] == ["none", "Spectral Signatures", "Activation Clustering", "none",
                                         "Fine-Pruning"]
    detected, ss, ac, pruned_from, fp = rows
    assert "2% poisoned (18 rows)" in detected.note and "5% poisoned (45 rows)" in pruned_from.note
    assert detected.asr >= 0.8 and pruned_from.asr >= 0.9
    # the bar: >= 80% of the poisoned points at <= 10% false positives, ASR below 10% after retraining
    assert ac.recall >= 0.8 and ac.false_positive_rate <= 0.1 and ac.asr < 0.1, ac
    assert ac.clean_accuracy >= detected.clean_accuracy - 0.05  # measured -2.5 points
    for r in (ss, ac):
        assert 0.0 <= r.precision <= 1.0 and r.flagged > 0
    assert fp.flagged > 0 and fp.clean_accuracy >= pruned_from.clean_accuracy - 0.05


def test_renders(outcome, tmp_path):
    grid = outcome.results["examples"]
    assert len(grid.images) == 16 and grid.images.shape[1:] == (8, 8)
    assert sum(grid.flagged[8:]) >= 6  # triggered copies sent to class 0
    for result in outcome.results.values():
        result.to_dict()
    text = outcome.results["attack"].to_text()
    assert "all-to-all" in text and "blend" in text
    files = render(outcome.results, tmp_path / "report.html", metadata=outcome.metadata)
    html = files.html.read_text(encoding="utf-8")
    assert "BadNets" in html and html.count("data:image/png;base64") == 4  # one figure per result
    assert 'class="error"' not in html
    data = json.loads(files.json.read_text(encoding="utf-8"))
    assert len(data["results"]) == len(outcome.results) == 4


def test_bad_dataset():
    with pytest.raises(InvalidParameterError, match="dataset"):
        gu2017.run(quick=True, dataset="cifar10")
