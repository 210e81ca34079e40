"""The privacy / utility sweep: L2 regularisation against three membership attacks on Fashion-MNIST."""

import json
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

from mlpentest.attacks.membership import ThresholdAttack  # noqa: E402
from mlpentest.defenses import (  # noqa: E402
    Mitigation,
    PrivacyUtilityResult,
    l2_sweep,
    privacy_utility_sweep,
)
from mlpentest.errors import (  # noqa: E402
    DataOverlapError,
    InvalidInputError,
    InvalidParameterError,
)

N = 200  # members = non-members = population
C_VALUES = [10.0, 1.0, 0.1, 0.01]  # weakest to strongest L2 regularisation


def pooled(X: np.ndarray) -> np.ndarray:
    """28x28 images averaged over 2x2 blocks: 196 features, so the models train in a second."""
    return X.reshape(len(X), 14, 2, 14, 2).mean(axis=(2, 4), dtype=np.float64).reshape(len(X), -1)


@pytest.fixture(scope="module")
def data(fashion):
    parts = fashion.split({"members": N, "nonmembers": N, "population": N}, random_state=0)
    out = {}
    for name, d in parts.items():
        out[f"X_{name}"], out[f"y_{name}"] = pooled(d.X), d.y.astype(np.int64)
    return out


@pytest.fixture(scope="module")
def result(data) -> PrivacyUtilityResult:
    mitigations = l2_sweep(LogisticRegression(max_iter=1000), "C", C_VALUES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return privacy_utility_sweep(mitigations, **data, n_references=4, random_state=0, n_jobs=2)


def cheap(**kw):
    """A tiny sweep for the plumbing tests: strong regularisation trains in milliseconds."""
    return dict(attacks={"loss": ThresholdAttack(metric="loss", class_dependent=False)}, n_references=0) | kw


# ---------------------------------------------------------------------------- L2 regularisation helps
def test_stronger_l2_monotonically_lowers_every_attack(result):
    # Measured (seed 0), C = 10, 1, 0.1, 0.01:
    #   loss threshold AUC 0.663 0.632 0.586 0.552; LiRA 0.809 0.770 0.645 0.515; RMIA 0.840 0.812 0.738 0.619
    assert [r.mitigation for r in result.rows] == ["C=10", "C=1", "C=0.1", "C=0.01"]
    for attack in ("loss threshold", "LiRA", "RMIA"):
        aucs = [r.auc[attack] for r in result.rows]
        assert all(a - b > 0.02 for a, b in zip(aucs, aucs[1:], strict=False)), (attack, aucs)
    assert result.rows[0].auc["LiRA"] > 0.75 and result.rows[-1].auc["LiRA"] < 0.6


def test_utility_is_reported_and_pays_for_it(result):
    # Measured: train accuracy 1.00 0.955 0.825 0.75; test accuracy 0.745 0.73 0.71 0.645.
    train = [r.train_accuracy for r in result.rows]
    test = [r.test_accuracy for r in result.rows]
    assert train == sorted(train, reverse=True) and train[0] == 1.0
    assert all(0.55 < t < 0.8 for t in test)
    assert test[-1] < test[0] - 0.05
    gaps = [r.generalization_gap for r in result.rows]
    assert gaps == sorted(gaps, reverse=True)


# ---------------------------------------------------------------------------- the result
def test_result_is_strict_json(result):
    d = result.to_dict()
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert back["type"] == "PrivacyUtilityResult" and back["title"] == "privacy / utility"
    assert [r["mitigation"] for r in back["rows"]] == ["C=10", "C=1", "C=0.1", "C=0.01"]
    assert set(back["rows"][0]["auc"]) == {"loss threshold", "LiRA", "RMIA"}
    assert back["n_members"] == N and back["n_references"] == 4


def test_to_text_has_one_row_per_mitigation(result):
    lines = result.to_text().splitlines()
    assert len(lines) == 1 + len(C_VALUES)
    assert lines[0].split()[:5] == ["mitigation", "train", "acc", "test", "acc"]
    assert "LiRA AUC" in lines[0] and "RMIA TPR@0.1%" in lines[0]
    for line, r in zip(lines[1:], result.rows, strict=True):
        assert line.startswith(r.mitigation) and f"{r.auc['LiRA']:.3f}" in line


def test_summary_and_rows_as_data(result):
    s = result.summary()
    assert s["mitigations"] == 4 and s["most private"] == "C=0.01" and s["most accurate"] == "C=10"
    assert all(isinstance(v, int | float | str) for v in s.values())
    assert result.row("C=1").auc == result.rows[1].auc
    with pytest.raises(KeyError, match="C=3"):
        result.row("C=3")


def test_plot_headless(result):
    ax = result.plot()
    assert ax.get_xlabel() == "test accuracy (non-members)" and ax.get_ylabel() == "attack AUC"
    assert len(ax.lines) == 3 + 1  # one marker series per attack, and chance
    assert sorted(t.get_text() for t in ax.texts) == sorted(r.mitigation for r in result.rows)
    ax.figure.savefig(__import__("io").BytesIO(), format="png")
    plt.close(ax.figure)
    _, given = plt.subplots()
    assert result.plot(ax=given) is given
    plt.close(given.figure)


# ---------------------------------------------------------------------------- plumbing
def test_trainer_function_progress_and_shared_trainers(data, capsys):
    def trainer(X, y, seed):
        return LogisticRegression(C=0.01, max_iter=200).fit(X, y)

    shared = LogisticRegression(C=0.01, max_iter=200)
    mitigations = [Mitigation("function", trainer), Mitigation("a", shared), Mitigation("b", shared)]
    res = privacy_utility_sweep(mitigations, **data, **cheap(progress=True))
    assert [r.mitigation for r in res.rows] == ["function", "a", "b"]
    assert res.rows[1].auc == res.rows[2].auc == res.rows[0].auc  # same recipe, same model
    assert res.attacks == ("loss",) and res.n_references == 0


def test_l2_sweep_names_and_clones():
    base = MLPClassifier(hidden_layer_sizes=(8,), alpha=1e-4)
    mitigations = l2_sweep(base, "alpha", [1e-6, 0.01, 1])
    assert [m.name for m in mitigations] == ["alpha=1e-06", "alpha=0.01", "alpha=1"]
    assert [m.trainer.alpha for m in mitigations] == [1e-6, 0.01, 1]
    assert base.alpha == 1e-4 and all(m.trainer is not base for m in mitigations)
    with pytest.raises(InvalidParameterError, match="no parameter 'C'"):
        l2_sweep(base, "C", [1.0])
    with pytest.raises(InvalidParameterError, match="values"):
        l2_sweep(base, "alpha", [])
    with pytest.raises(InvalidParameterError, match="base_estimator"):
        l2_sweep(lambda X, y, seed: None, "alpha", [1.0])


def test_mitigation_validation():
    with pytest.raises(InvalidParameterError, match="name"):
        Mitigation("", LogisticRegression())
    with pytest.raises(InvalidParameterError, match="trainer"):
        Mitigation("x", "LogisticRegression")
    with pytest.raises(InvalidParameterError, match="output_filter"):
        Mitigation("x", LogisticRegression(), output_filter=3)
    with pytest.raises(TypeError, match="positional argument"):
        Mitigation("x", LogisticRegression(), None)  # output_filter is keyword-only


def test_input_validation(data):
    lr = Mitigation("lr", LogisticRegression(C=0.01, max_iter=200))
    with pytest.raises(InvalidParameterError, match="at least one"):
        privacy_utility_sweep([], **data, **cheap())
    with pytest.raises(InvalidParameterError, match="unique"):
        privacy_utility_sweep([lr, lr], **data, **cheap())
    with pytest.raises(InvalidParameterError, match="Mitigation"):
        privacy_utility_sweep([LogisticRegression()], **data, **cheap())
    with pytest.raises(InvalidParameterError, match="n_references"):
        privacy_utility_sweep([lr], **data, **cheap(n_references=3))
    with pytest.raises(InvalidParameterError, match="attacks"):
        privacy_utility_sweep([lr], **data, **cheap(attacks={}))
    with pytest.raises(InvalidParameterError, match="attacks"):
        privacy_utility_sweep([lr], **data, **cheap(attacks={"x": "loss"}))
    with pytest.raises(InvalidInputError, match="y_members"):
        privacy_utility_sweep([lr], **(data | {"y_members": data["y_members"][:-1]}), **cheap())
    with pytest.raises(InvalidInputError, match="X_population"):
        privacy_utility_sweep([lr], **(data | {"X_population": data["X_population"][:, :-1]}), **cheap())


@pytest.mark.parametrize(
    "into, source",
    [("X_population", "X_members"), ("X_population", "X_nonmembers"), ("X_nonmembers", "X_members")],
)
def test_overlapping_pools_are_refused(data, into, source):
    leaky = dict(data)
    leaky[into] = data[into].copy()
    leaky[into][:3] = data[source][:3]
    with pytest.raises(DataOverlapError, match="3 record"):
        privacy_utility_sweep([Mitigation("lr", LogisticRegression())], **leaky, **cheap())
