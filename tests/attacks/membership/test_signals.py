"""collect_signals maps labels to the target's probability columns, and keeps what a budget answered.

The reported fault: for a target with classes [0, 2, 5], label 2 read class 5's column, so every
membership score was computed on the wrong probability.
"""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlpentest import datasets
from mlpentest.attacks.membership import ReferenceModels, ThresholdAttack, collect_signals
from mlpentest.errors import InvalidInputError, QueryBudgetExceeded
from mlpentest.models import wrap


@pytest.fixture(scope="module")
def three_classes():
    """Digits 0, 2 and 5 only: the target's classes_ are [0, 2, 5], not 0..2."""
    data = datasets.load("digits")
    keep = np.isin(data.y, [0, 2, 5])
    X, y = data.X[keep], data.y[keep]
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y))
    X, y = X[order], y[order]
    members, non, pool = slice(0, 120), slice(120, 240), slice(240, None)
    target = LogisticRegression(C=1e3, max_iter=3000).fit(X[members], y[members])
    Xc, yc = np.vstack([X[members], X[non]]), np.r_[y[members], y[non]]
    is_member = np.r_[np.ones(120, bool), np.zeros(120, bool)]
    refs = ReferenceModels(LogisticRegression(C=1e3, max_iter=3000), n_models=4, random_state=0)
    refs.fit(np.vstack([X[non], X[pool]]), np.r_[y[non], y[pool]])
    return target, Xc, yc, is_member, refs


def test_labels_are_mapped_through_the_targets_classes(three_classes):
    target, X, y, is_member, refs = three_classes
    signals = collect_signals(target, X, y, is_member=is_member, references=refs)
    np.testing.assert_array_equal(signals.classes, [0, 2, 5])
    np.testing.assert_array_equal(signals.classes[signals.y], y)
    true_proba = target.predict_proba(X)[np.arange(len(y)), np.searchsorted(target.classes_, y)]
    confidence = ThresholdAttack(metric="confidence", class_dependent=False).run(signals)
    # scores are the true class's probability minus one threshold
    shifted = confidence.scores - confidence.scores[0]
    np.testing.assert_allclose(shifted, true_proba - true_proba[0], atol=1e-6)  # float32 data vs float64
    assert confidence.auc > 0.55  # measured 0.61: an overfit target leaks through the right column


def test_string_labels_work_like_integers(three_classes):
    target, X, y, is_member, _ = three_classes
    names = np.array(["zero", "one", "two", "three", "four", "five"])
    named = LogisticRegression(C=1e3, max_iter=3000).fit(X[:120], names[y[:120]])
    as_names = collect_signals(named, X, names[y], is_member=is_member)
    as_ints = collect_signals(target, X, y, is_member=is_member)
    # classes sort differently ("five" < "two" < "zero"), so columns differ, but each row's own
    # probability must be the same
    picked = lambda s: s.target_proba[np.arange(len(s.y)), s.y]  # noqa: E731
    np.testing.assert_allclose(picked(as_names), picked(as_ints), atol=1e-6)


def test_labels_that_are_not_classes_are_refused(three_classes):
    target, X, y, is_member, refs = three_classes
    for bad in (np.where(y == 2, 1, y), y + 0.7, np.full(len(y), "two")):
        with pytest.raises(InvalidInputError, match=r"^y: labels must be entries of classes_ \[0, 2, 5\]"):
            collect_signals(target, X, bad, is_member=is_member)
    with pytest.raises(InvalidInputError, match="^is_member: expected booleans"):
        collect_signals(target, X, y, is_member=np.full(len(y), 0.5))


def test_a_reference_pool_missing_a_class_is_refused(three_classes):
    target, X, y, is_member, _ = three_classes
    two = np.isin(y, [0, 2])
    refs = ReferenceModels(LogisticRegression(max_iter=3000), n_models=2, random_state=0).fit(X[two], y[two])
    with pytest.raises(InvalidInputError, match=r"^references: reference model 0 knows the classes \[0, 2\]"):
        collect_signals(target, X, y, is_member=is_member, references=refs)


def test_a_budget_that_runs_out_keeps_the_answered_candidates(three_classes):
    target, X, y, is_member, refs = three_classes
    order = np.random.RandomState(1).permutation(len(y))  # members and non-members mixed
    X, y, is_member = X[order], y[order], is_member[order]
    limited = wrap(target, query_budget=100)
    signals = collect_signals(limited, X, y, is_member=is_member, references=refs)
    assert signals.budget_exhausted and signals.n_candidates == 100 and limited.queries == 100
    np.testing.assert_array_equal(signals.is_member, is_member[:100])
    assert signals.reference_proba.shape[:2] == (100, 4) and signals.population_target_proba is None
    partial_result = ThresholdAttack(metric="loss", class_dependent=False).run(signals)
    assert partial_result.scores.shape == (100,) and partial_result.budget_exhausted  # carried over
    # enough for the candidates and part of the population records
    roomy = wrap(target, query_budget=len(y) + 50)
    partial = collect_signals(roomy, X, y, is_member=is_member, references=refs)
    assert partial.budget_exhausted and partial.n_candidates == len(y)
    assert len(partial.population_y) == 50 == len(partial.population_reference_proba)
    with pytest.raises(QueryBudgetExceeded, match="0 of 0 queries used"):
        collect_signals(wrap(target, query_budget=0), X, y, is_member=is_member)
