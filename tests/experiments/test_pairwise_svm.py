"""PairwiseCoupledSVC: libsvm-style SVM probabilities (Platt sigmoids per pair, Wu-Lin-Weng coupling)."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import SVC

from mlpentest import datasets, metrics
from mlpentest.errors import InvalidInputError, InvalidParameterError
from mlpentest.experiments._pairwise_svm import PairwiseCoupledSVC, _platt_sigmoid, couple


def test_coupling_recovers_consistent_pairwise_probabilities():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6), size=20)
    R = p[:, :, None] / (p[:, :, None] + p[:, None, :])  # r_ij = p_i / (p_i + p_j): consistent
    np.testing.assert_allclose(couple(R), p, atol=1e-10)


def test_platt_sigmoid_recovers_a_known_sigmoid():
    rng = np.random.default_rng(1)
    f = rng.normal(size=20000)
    positive = rng.random(20000) < 1.0 / (1.0 + np.exp(-2.0 * f + 0.5))  # A = -2, B = 0.5
    a, b = _platt_sigmoid(f, positive)
    assert a == pytest.approx(-2.0, abs=0.1) and b == pytest.approx(0.5, abs=0.1)
    # separable decision values stay finite thanks to Platt's smoothed targets
    a, b = _platt_sigmoid(np.r_[-np.ones(50), np.ones(50)], np.r_[np.zeros(50, bool), np.ones(50, bool)])
    assert np.isfinite([a, b]).all() and a < 0


def test_probabilities_are_distributions_and_labels_map_through_classes():
    digits = datasets.load("digits")
    pools = digits.split({"train": 400, "test": 300}, random_state=0)
    names = np.array(list("abcdefghij"))
    model = PairwiseCoupledSVC(C=10.0, random_state=0).fit(pools["train"].X, names[pools["train"].y])
    proba = model.predict_proba(pools["test"].X)
    assert proba.shape == (300, 10) and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(model.classes_) == list(names)
    assert np.mean(model.predict(pools["test"].X) == names[pools["test"].y]) > 0.93
    again = clone(model).fit(pools["train"].X, names[pools["train"].y])
    np.testing.assert_array_equal(again.predict_proba(pools["test"].X[:5]), proba[:5])


def test_two_classes():
    digits = datasets.load("digits")
    keep = np.isin(digits.y, [3, 8])
    X, y = digits.X[keep], digits.y[keep]
    model = PairwiseCoupledSVC(random_state=0).fit(X[:200], y[:200])
    proba = model.predict_proba(X[200:])
    # column 1 is class 8: high where the SVM says 8
    assert np.mean((proba[:, 1] > 0.5) == (y[200:] == 8)) > 0.9


def test_members_stand_out_where_calibrated_votes_hide_them(fashion):
    # the reason the Shokri reproduction uses this model: a membership signal in the probabilities
    pools = fashion.split({"members": 300, "nonmembers": 300}, random_state=0)
    m, n = pools["members"], pools["nonmembers"]
    is_member = np.r_[np.ones(300, bool), np.zeros(300, bool)]

    def true_class_auc(model):
        model.fit(m.X, m.y)
        p_in = model.predict_proba(m.X)[np.arange(300), m.y]
        return metrics.auc(is_member, np.r_[p_in, model.predict_proba(n.X)[np.arange(300), n.y]])

    ours = true_class_auc(PairwiseCoupledSVC(C=10.0, random_state=0))
    votes = true_class_auc(CalibratedClassifierCV(SVC(C=10.0), ensemble=False, cv=3))
    assert ours > 0.68  # measured 0.735
    assert ours > votes + 0.08  # measured 0.610


def test_bad_settings_and_data_are_named():
    X = np.random.default_rng(0).random((20, 3))
    with pytest.raises(InvalidParameterError, match="C"):
        PairwiseCoupledSVC(C=float("nan")).fit(X, np.arange(20) % 2)
    with pytest.raises(InvalidParameterError, match="cv"):
        PairwiseCoupledSVC(cv=1).fit(X, np.arange(20) % 2)
    with pytest.raises(InvalidInputError, match="y:"):
        PairwiseCoupledSVC().fit(X, np.zeros(20))
    with pytest.raises(InvalidInputError, match="X"):
        PairwiseCoupledSVC().fit(np.full((20, 3), np.nan), np.arange(20) % 2)
