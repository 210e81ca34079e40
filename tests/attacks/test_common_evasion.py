"""Checks every evasion attack must pass, over one shared list (the scikit-learn ``test_common`` idea).

Parameters are stored unchanged by ``__init__``; a run is reproducible; the result is an
``EvasionResult`` that serialises to strict JSON and stays in the feature box; the attack fools the
model on some points; input of the wrong width is refused with a typed error naming ``X``/``x0``.
"""

import inspect
import json

import matplotlib
import numpy as np
import pytest
from sklearn.svm import SVC

from mlpentest import datasets
from mlpentest.attacks.evasion import FGSM, PGD, DeepFool, EvasionResult, EvasionSVM, HopSkipJump, NESAttack
from mlpentest.errors import InvalidInputError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(scope="module")
def task():
    pair = datasets.load("digits").pair(3, 7)
    pools = pair.split({"train": 180, "test": 30}, random_state=0)
    svm = SVC(kernel="rbf", C=10.0).fit(pools["train"].X, pools["train"].y)
    return svm, pools["train"], pools["test"]


def _attacks(svm, train):
    threes = train.X[train.y == 0]
    return [
        EvasionSVM(svm, threes, dmax=2.0, lam=1.0, t=0.2, h=5.0, max_iter=50),
        FGSM(svm, eps=0.3),
        PGD(svm, eps=1.5, norm="l2", steps=20, random_state=0),
        DeepFool(svm),
        HopSkipJump(svm, max_iter=3, max_evals=50, init_evals=20, random_state=0),
    ]


def _run(attack, X, y):
    return attack.attack(X, y) if isinstance(attack, EvasionSVM) else attack.run(X, y)


IDS = ["EvasionSVM", "FGSM", "PGD", "DeepFool", "HopSkipJump"]


@pytest.mark.parametrize("index", range(len(IDS)), ids=IDS)
def test_init_stores_parameters_unchanged(task, index):
    attack = _attacks(task[0], task[1])[index]
    params = inspect.signature(type(attack)).parameters
    for name in params:
        assert hasattr(attack, name), f"{type(attack).__name__} does not store {name}"
    fresh = type(attack)(**{k: getattr(attack, k) for k in params if params[k].kind != params[k].VAR_KEYWORD})
    assert {k: repr(v) for k, v in vars(fresh).items()} == {k: repr(v) for k, v in vars(attack).items()}


@pytest.mark.parametrize("index", range(len(IDS)), ids=IDS)
def test_run_is_reproducible_in_the_box_and_serialises(task, index):
    svm, train, test = task
    attack = _attacks(svm, train)[index]
    first, second = _run(attack, test.X, test.y), _run(attack, test.X, test.y)
    assert isinstance(first, EvasionResult)
    np.testing.assert_array_equal(first.x_adv, second.x_adv)
    assert first.x_adv.min() >= 0.0 and first.x_adv.max() <= 1.0
    assert first.success_rate > 0.3  # every attack fools the SVM on a good share of points
    doc = json.loads(json.dumps(first.to_dict(), allow_nan=False))
    assert doc["type"] == "EvasionResult" and len(doc["x_adv"]) == len(test.X)
    first.plot()
    plt.close("all")


@pytest.mark.parametrize("index", range(len(IDS)), ids=IDS)
def test_input_of_the_wrong_width_is_refused(task, index):
    svm, train, test = task
    with pytest.raises(InvalidInputError, match="X|x0"):
        _run(_attacks(svm, train)[index], test.X[:, :10], test.y)


def test_nes_follows_the_same_rules():
    # NES needs probabilities, so it gets its own (calibrated) target
    from sklearn.linear_model import LogisticRegression

    pair = datasets.load("digits").pair(3, 7)
    pools = pair.split({"train": 180, "test": 20}, random_state=0)
    lr = LogisticRegression(max_iter=1000).fit(pools["train"].X, pools["train"].y)
    attack = NESAttack(lr, eps=0.3, steps=20, samples=10, random_state=0)
    a, b = attack.run(pools["test"].X, pools["test"].y), attack.run(pools["test"].X, pools["test"].y)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    assert a.success_rate > 0.3
    with pytest.raises(InvalidInputError, match="X"):
        attack.run(pools["test"].X[:, :10], pools["test"].y)
