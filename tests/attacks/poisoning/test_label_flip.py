"""Label flipping on digits 3 vs 8 (150 training, 100 validation, 100 test points, fixed seeds).

Measured (LogisticRegression(), seed 0): clean validation error 0.03; 30 random flips (20%) raise it
to 0.17; 30 greedy flips (20 candidates per step) to 0.33. On the held-out test set: clean 0.01,
random 0.09, greedy 0.20.
"""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlpentest.attacks.poisoning import GreedyLabelFlip, PoisoningResult, RandomLabelFlip
from mlpentest.datasets import load
from mlpentest.errors import InvalidParameterError


@pytest.fixture(scope="module")
def data():
    s = load("digits").pair(3, 8).split({"train": 150, "valid": 100, "test": 100}, random_state=0)
    return s["train"].X, s["train"].y, s["valid"].X, s["valid"].y, s["test"].X, s["test"].y


def _test_error(X, y, Xt, yt):
    return float(np.mean(LogisticRegression().fit(X, y).predict(Xt) != yt))


def test_random_flips_of_20_percent_raise_error(data):
    X, y, Xv, yv, _, _ = data
    res = RandomLabelFlip(LogisticRegression(), X, y, fraction=0.2, random_state=0).run(Xv, yv)
    assert isinstance(res, PoisoningResult) and res.X_poisoned is not None and res.x_init is None
    assert res.n_poison == 30 and len(np.unique(res.poison_indices)) == 30
    assert np.array_equal(np.flatnonzero(res.y_poisoned != y), np.sort(res.poison_indices))
    assert np.array_equal(res.poison_mask, res.y_poisoned != y)
    # bar: at least 4 percentage points more validation error than the clean model
    assert res.poisoned_error >= res.clean_error + 0.04


def test_greedy_flips_beat_random_for_the_same_count(data):
    X, y, Xv, yv, Xt, yt = data
    rand = RandomLabelFlip(LogisticRegression(), X, y, n_flips=30, random_state=0).run(Xv, yv)
    greedy = GreedyLabelFlip(LogisticRegression(), X, y, n_flips=30, candidates=20, random_state=0)
    greedy = greedy.run(Xv, yv)
    assert greedy.n_poison == 30
    # bars: +8 pp over random on the validation set it optimised, and still worse on held-out data
    assert greedy.poisoned_error >= rand.poisoned_error + 0.08
    assert _test_error(X, greedy.y_poisoned, Xt, yt) > _test_error(X, rand.y_poisoned, Xt, yt)
    curve = greedy.log["validation_error"]
    assert len(curve) == 31 and curve[0] == greedy.clean_error and curve[-1] == greedy.poisoned_error
    np.testing.assert_array_equal(greedy.log["n_flips"], np.arange(31))
    ax = greedy.plot()
    assert ax.get_xlabel() == "flipped training labels"
    d = greedy.to_dict()
    assert d["type"] == "PoisoningResult" and len(d["poison_indices"]) == 30


def test_seeded_and_validated(data):
    X, y, Xv, yv, _, _ = data
    a = RandomLabelFlip(None, X, y, n_flips=5, random_state=3).run(Xv, yv)
    b = RandomLabelFlip(None, X, y, n_flips=5, random_state=3).run(Xv, yv)
    assert np.array_equal(a.poison_indices, b.poison_indices)
    with pytest.raises(InvalidParameterError, match="n_flips, fraction"):
        RandomLabelFlip(None, X, y, n_flips=5, fraction=0.1).run(Xv, yv)
    with pytest.raises(InvalidParameterError, match="n_flips"):
        GreedyLabelFlip(LogisticRegression(), X, y, n_flips=-1).run(Xv, yv)
    with pytest.raises(InvalidParameterError, match="n_flips"):
        RandomLabelFlip(None, X, y, n_flips=len(y) + 1).run(Xv, yv)
    with pytest.raises(InvalidParameterError, match="^model"):
        GreedyLabelFlip(None, X, y, n_flips=1).run(Xv, yv)
