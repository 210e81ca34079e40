"""Sanitisation defences against label flipping and logistic-regression poisoning (digits 3 vs 8).

Measured (LogisticRegression(), seed 0, 150 training points, accuracy on 100 held-out points):
20% random flips take accuracy from 0.99 to 0.91; kNN relabelling brings it to 0.96 (62% recovered,
29 of 30 flips caught, 8 clean labels changed, clean cost 1 pp), TRIM (n_clean = 80%) to 0.97, RONI
to 0.95, the sphere filter to 0.93. Ten optimised poisoning points take it from 0.99 to 0.89; TRIM
with the true clean count removes all ten (0.99). RONI and the sphere filter are reported, not
asserted beyond sanity.
"""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlpentest.attacks.poisoning.label_flip import RandomLabelFlip
from mlpentest.attacks.poisoning.logistic import PoisoningLogisticRegression
from mlpentest.datasets import load
from mlpentest.defenses import DefenceComparison, compare_defences
from mlpentest.defenses.sanitization import (
    default_defences,
    knn_sanitize,
    outlier_filter,
    roni,
    trim,
)
from mlpentest.errors import InvalidParameterError


@pytest.fixture(scope="module")
def data():
    s = load("digits").pair(3, 8).split({"train": 150, "valid": 100, "test": 100}, random_state=0)
    return s["train"].X, s["train"].y, s["valid"].X, s["valid"].y, s["test"].X, s["test"].y


def test_knn_sanitisation_recovers_from_random_flips(data):
    X, y, Xv, yv, Xt, yt = data
    est = LogisticRegression()
    flips = RandomLabelFlip(est, X, y, fraction=0.2, random_state=0).run(Xv, yv)
    defences = default_defences(est, n_clean=0.8, X_quiz=Xv, y_quiz=yv)
    res = compare_defences(est, X, y, flips.X_poisoned, flips.y_poisoned, Xt, yt, defences,
                           poison_mask=flips.poison_mask)
    assert isinstance(res, DefenceComparison)
    assert res.clean_accuracy - res.poisoned_accuracy >= 0.03  # the attack did damage
    knn = res.row("kNN relabel")
    assert knn["recovered"] >= 0.5  # bar: at least half of the lost accuracy comes back
    assert knn["poison_removed"] >= 0.7 * flips.n_poison and knn["clean_removed"] <= 10
    assert knn["clean_cost"] < 0.05
    for name in ("outlier (sphere)", "RONI", "TRIM"):  # reported: sane ranges only
        row = res.row(name)
        assert 0.0 <= row["accuracy"] <= 1.0 and 0 <= row["poison_removed"] <= flips.n_poison
    assert "kNN relabel" in res.to_text()
    res.plot()
    assert res.to_dict()["type"] == "DefenceComparison"


def test_trim_recovers_from_logistic_poisoning_points(data):
    X, y, Xv, yv, Xt, yt = data
    est = LogisticRegression()
    poison = PoisoningLogisticRegression(est, X, y, step=0.5, max_iter=10).run(
        Xv, yv, x_init=X[:10], labels=1 - y[:10]
    )
    Xp, yp, mask = poison.X_poisoned, poison.y_poisoned, poison.poison_mask
    assert mask.sum() == 10 and mask[len(y):].all()
    defences = {
        "TRIM": lambda A, b, poison_mask=None: trim(
            est, A, b, n_clean=150, random_state=0, poison_mask=poison_mask
        ),
        "kNN relabel": lambda A, b, poison_mask=None: knn_sanitize(A, b, poison_mask=poison_mask),
    }
    res = compare_defences(est, X, y, Xp, yp, Xt, yt, defences, poison_mask=mask)
    assert res.clean_accuracy - res.poisoned_accuracy >= 0.05
    t = res.row("TRIM")
    assert t["recovered"] >= 0.7 and t["poison_removed"] >= 8  # bar: 70% back, 8 of 10 points out
    assert abs(t["clean_cost"]) < 0.02  # n_clean = everything on clean data: nothing to lose


def test_small_cases_and_validation():
    X = np.array([[0.0], [0.1], [0.2], [0.3], [5.0], [5.1], [5.2], [5.3]])
    y = np.array([0, 0, 1, 0, 1, 1, 1, 1])
    rep = knn_sanitize(X, y, k=3, poison_mask=y != np.array([0, 0, 0, 0, 1, 1, 1, 1]))
    assert rep.relabelled.tolist() == [2] and rep.n_poison_removed == 1 and rep.n_clean_removed == 0
    assert knn_sanitize(X, y, k=3, drop=True).kept.tolist() == [0, 1, 3, 4, 5, 6, 7]
    Xo = np.vstack([X, [[2.5]]])
    yo = np.append(y, 0)
    assert 8 not in outlier_filter(Xo, yo, quantile=0.8).kept
    assert (
        len(trim(LogisticRegression(), X, np.array([0] * 4 + [1] * 4), n_clean=6, random_state=0).kept) == 6
    )
    kept = roni(
        LogisticRegression(),
        X,
        np.array([0] * 4 + [1] * 4),
        X,
        np.array([0] * 4 + [1] * 4),
        base_size=4,
        n_bases=2,
        random_state=0,
    ).kept
    assert len(kept) >= 6
    with pytest.raises(InvalidParameterError, match="k"):
        knn_sanitize(X, y, k=0)
    with pytest.raises(InvalidParameterError, match="n_clean"):
        trim(LogisticRegression(), X, y, n_clean=100)
