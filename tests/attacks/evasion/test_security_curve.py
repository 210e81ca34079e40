"""Security-evaluation curves (Biggio and Roli 2018, Sec. 4) on digits 3 vs 7.

``accuracy`` is the worst case over budgets up to each one (recomputed by hand below); the
accuracy of the attack run at each single budget (``accuracy_per_budget``) is checked to be
non-increasing within 0.02 (one point in 60 may do better under a larger budget, as a local
optimiser can); measured it is exactly non-increasing for both EvasionSVM on an RBF SVM and PGD-L2.
"""

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from mlpentest import datasets
from mlpentest.attacks.evasion import PGD, EvasionSVM
from mlpentest.attacks.evasion.security_curve import SecurityCurveResult, security_evaluation
from mlpentest.errors import InvalidParameterError

BUDGETS = [0.0, 0.5, 1.0, 2.0]


@pytest.fixture(scope="module")
def pair():
    data = datasets.load("digits").pair(3, 7)
    pools = data.split({"train": 240, "test": 60}, random_state=0)
    return pools["train"], pools["test"]


@pytest.fixture(scope="module")
def curve(pair):
    train, test = pair
    models = {
        "SVM rbf (EvasionSVM)": SVC(kernel="rbf", gamma="scale").fit(train.X, train.y),
        "logistic (PGD-L2)": LogisticRegression(max_iter=1000).fit(train.X, train.y),
    }
    factories = {
        "SVM rbf (EvasionSVM)": lambda m, b: EvasionSVM(m, dmax=b, t=b / 10, max_iter=40),
        "logistic (PGD-L2)": lambda m, b: PGD(m, eps=b, norm="l2", max_iter=20, random_state=0),
    }
    return models, security_evaluation(
        models, test.X, test.y, attack_factory=factories, budgets=BUDGETS, budget_name="dmax", norm="l2"
    )


def test_curve_starts_at_clean_accuracy_and_decreases(pair, curve):
    (_, test), (models, result) = pair, curve
    assert isinstance(result, SecurityCurveResult)
    assert result.accuracy.shape == (2, len(BUDGETS)) and result.n_points == len(test.X)
    for i, model in enumerate(models.values()):
        clean = np.mean(model.predict(test.X) == test.y)
        assert result.accuracy[i, 0] == clean == result.accuracy_per_budget[i, 0]
        assert clean > 0.95
    assert np.all(np.diff(result.accuracy_per_budget, axis=1) <= 0.02)
    assert np.all(result.accuracy[:, 2] < result.accuracy[:, 1])  # the curve falls inside the sweep
    assert np.all(result.accuracy[:, -1] < result.accuracy[:, 0] - 0.5)  # dmax=2 breaks both models
    assert np.all(result.mean_distance[:, 1:] <= np.array(BUDGETS[1:]) + 1e-9)
    assert np.all(result.accuracy <= result.accuracy_per_budget)


def test_accuracy_is_the_worst_case_over_smaller_budgets(pair, curve):
    """Recompute the logistic curve by hand: a point counts only if every budget up to b left it right."""
    (_, test), (models, result) = pair, curve
    model = models["logistic (PGD-L2)"]
    correct = model.predict(test.X) == test.y
    expected = [correct.mean()]
    for budget in BUDGETS[1:]:
        run = PGD(model, eps=budget, norm="l2", max_iter=20, random_state=0).run(test.X, test.y)
        correct &= run.y_adv == test.y
        expected.append(correct.mean())
    np.testing.assert_allclose(result.accuracy[1], expected)


def test_result_serialises_and_plots(curve, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    _, result = curve
    payload = json.dumps(result.to_dict(), allow_nan=False)
    assert json.loads(payload)["type"] == "SecurityCurveResult"
    assert "dmax" in result.to_text() and result.summary()["points"] == 60
    ax = result.plot()
    assert len(ax.get_legend().get_texts()) == 2
    ax.figure.savefig(tmp_path / "curve.png")


def test_single_model_and_bad_arguments(pair):
    train, test = pair
    model = LogisticRegression(max_iter=1000).fit(train.X, train.y)
    fgsm = security_evaluation(
        model, test.X[:10], test.y[:10], budgets=[0, 0.1],
        attack_factory=lambda m, b: PGD(m, eps=b, max_iter=5, random_state=0),
    )
    assert fgsm.models == ("model",)
    with pytest.raises(InvalidParameterError, match="^budgets: expected strictly increasing"):
        security_evaluation(model, test.X, test.y, budgets=[0.5, 0.1], attack_factory=lambda m, b: None)
    with pytest.raises(InvalidParameterError, match="^attack_factory: returned object"):
        security_evaluation(model, test.X, test.y, budgets=[0, 1], attack_factory=lambda m, b: object())
    with pytest.raises(InvalidParameterError, match=r"^attack_factory: no factory for models \['a'\]"):
        security_evaluation(
            {"a": model}, test.X, test.y, budgets=[0], attack_factory={"b": lambda m, b: None}
        )
