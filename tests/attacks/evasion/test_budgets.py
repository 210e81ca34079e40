"""A query budget that runs out mid-attack keeps what the attack found, marked budget_exhausted.

The white-box attacks spend queries on the clean predictions, on the labels of their iterates, and,
against an SVC (attacked through its logit margin), on the logits of every step. Only a budget too small
for the clean predictions lets QueryBudgetExceeded through: nothing is known yet.
"""

import numpy as np
import pytest
from sklearn.svm import SVC

from mlpentest import datasets
from mlpentest.attacks.evasion import FGSM, PGD, DeepFool, EvasionSVM
from mlpentest.errors import QueryBudgetExceeded
from mlpentest.models import wrap


@pytest.fixture(scope="module")
def task():
    pools = datasets.load("digits").pair(3, 7).split({"train": 180, "test": 20}, random_state=0)
    svm = SVC(kernel="rbf", C=10.0).fit(pools["train"].X, pools["train"].y)
    return svm, pools["test"].X, pools["test"].y


def _spent(attack_factory, svm, X, y):
    model = wrap(svm)
    attack_factory(model).run(X, y)
    return model.queries


def _labels_are_true(result, svm):
    np.testing.assert_array_equal(svm.predict(result.x_adv), result.y_adv)  # no label is made up


def test_pgd_keeps_the_restarts_that_finished(task):
    svm, X, y = task
    one = PGD(svm, eps=1.5, norm="l2", max_iter=10, restarts=1, random_state=0).run(X, y)
    per_restart = _spent(lambda m: PGD(m, eps=1.5, norm="l2", max_iter=10, restarts=1, random_state=0),
                         svm, X, y) - len(X)
    budget = len(X) + per_restart + per_restart // 2  # the second of three restarts runs out
    model = wrap(svm, query_budget=budget)
    three = PGD(model, eps=1.5, norm="l2", max_iter=10, restarts=3, random_state=0).run(X, y)
    assert three.budget_exhausted and model.queries <= budget
    np.testing.assert_array_equal(three.x_adv, one.x_adv)  # exactly the finished first restart
    assert three.success_rate == one.success_rate > 0.5
    _labels_are_true(three, svm)
    assert len(three.log["objective"]) == 1


def test_fgsm_and_deepfool_keep_known_points(task):
    svm, X, y = task
    fgsm = FGSM(wrap(svm, query_budget=len(X)), eps=0.3).run(X, y)  # only the clean predictions
    assert fgsm.budget_exhausted and not fgsm.success.any()
    np.testing.assert_array_equal(fgsm.x_adv, X)

    full = DeepFool(svm, overshoot=0.0).run(X, y)
    assert full.log["iterations"].max() >= 2
    # clean labels, then one linearisation (logits) and one labelling of every point: the second runs out
    fool = DeepFool(wrap(svm, query_budget=3 * len(X)), overshoot=0.0).run(X, y)
    assert fool.budget_exhausted and 0 < fool.success.sum() < full.success.sum()
    assert fool.log["iterations"].max() == 1
    _labels_are_true(fool, svm)


def test_evasion_svm_keeps_the_last_known_iterates(task):
    svm, X, y = task
    attack = EvasionSVM(svm, dmax=2.0, t=0.2, max_iter=30)
    full = attack.run(X, y)
    # clean labels, the margins at x0, then three steps' margins: 3 steps of 0.2 cannot cross for all
    part = attack.with_settings(model=wrap(svm, query_budget=5 * len(X))).run(X, y)
    assert len(part.log["g"]) == 4
    assert part.budget_exhausted and not full.budget_exhausted
    assert part.success.sum() < full.success.sum()
    _labels_are_true(part, svm)
    assert (np.linalg.norm(part.x_adv - X, axis=1) <= 2.0 + 1e-9).all()


@pytest.mark.parametrize("make", [lambda m: FGSM(m, eps=0.1), lambda m: PGD(m, eps=0.1, max_iter=2),
                                  lambda m: DeepFool(m), lambda m: EvasionSVM(m, dmax=1.0)],
                         ids=["FGSM", "PGD", "DeepFool", "EvasionSVM"])
def test_a_budget_below_the_clean_predictions_raises(task, make):
    svm, X, y = task
    with pytest.raises(QueryBudgetExceeded, match=f"0 of 5 queries used, {len(X)} more requested"):
        make(wrap(svm, query_budget=5)).run(X, y)
