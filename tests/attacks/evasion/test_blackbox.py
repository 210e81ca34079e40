"""HopSkipJump and NES on digits: strength with a margin, feasibility, query accounting, budget, errors.

Measured on the fixture below (RBF SVC, clean accuracy 0.98; MLP(64), 0.96). HopSkipJump-L2 on 15 test
points (max_evals=200, init_evals=50): success 100%, median L2 distance 0.88 after 3 iterations
(~254 queries per point) and 0.67 after 20 (~3,240 per point). NESAttack-Linf (max_iter=30, samples=20) on
20 points: MLP accuracy 0.30 at eps=0.1 and 0.05 at eps=0.2 (~420 queries per point at eps=0.2).
"""

import json
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from mlpentest import datasets
from mlpentest.attacks.evasion import HopSkipJump, NESAttack, norm
from mlpentest.errors import CapabilityError, InvalidInputError, InvalidParameterError, QueryBudgetExceeded
from mlpentest.models import wrap

HSJ_SMALL = {"max_evals": 200, "init_evals": 50}


@pytest.fixture(scope="module")
def data():
    pools = datasets.load("digits").split({"train": 1000, "test": 200}, random_state=0)
    return pools["train"], pools["test"]


@pytest.fixture(scope="module")
def svc(data):
    train, _ = data
    return SVC().fit(train.X, train.y)  # no probability=True: labels and a hinge only


@pytest.fixture(scope="module")
def mlp(data):
    train, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0).fit(train.X, train.y)


@pytest.fixture(scope="module")
def hsj_runs(data, svc):
    """HopSkipJump-L2 with 3 and with 20 iterations on the same 15 points (label-only callable model)."""
    _, test = data
    X, y = test.X[:15], test.y[:15]
    runs = {}
    for max_iter in (3, 20):
        model = wrap(svc.predict, input_shape=(64,), n_classes=10, output="labels")
        runs[max_iter] = (model, HopSkipJump(model, max_iter=max_iter, random_state=0, **HSJ_SMALL).run(X, y))
    return runs


def _in_box(x: np.ndarray) -> bool:
    return bool(x.min() >= 0.0 and x.max() <= 1.0)


# ---------------------------------------------------------------------------- HopSkipJump
def test_hsj_fools_a_label_only_svc_and_shrinks_with_iterations(hsj_runs):
    short, long = hsj_runs[3][1], hsj_runs[20][1]
    assert long.success_rate >= 0.9
    clean = long.y_clean == long.y_true
    assert clean.sum() >= 13
    d_short = np.median(short.distance[short.success & clean])
    d_long = np.median(long.distance[long.success & clean])
    assert d_long < 0.9 * d_short  # measured 0.67 vs 0.88
    assert d_long < 1.0
    for _, result in hsj_runs.values():
        assert _in_box(result.x_adv)
        assert np.allclose(result.distance, norm(result.x_adv - result.x0, "l2"))


def test_hsj_query_accounting_matches_the_model(hsj_runs):
    for model, result in hsj_runs.values():
        assert not model.has_gradients and not model.has_proba
        assert result.queries == model.queries
        assert result.log["queries"].shape == (1, 15)
        assert result.log["queries"].sum() == model.queries
        assert result.budget_exhausted is False
    assert hsj_runs[20][1].queries > hsj_runs[3][1].queries
    json.dumps(hsj_runs[3][1].to_dict())


def test_hsj_on_sklearn_svc_uses_no_gradients_and_is_seeded(data, svc):
    _, test = data
    X = test.X[:3]
    model = wrap(svc)
    first = HopSkipJump(model, max_iter=2, random_state=1, **HSJ_SMALL).run(X)
    again = HopSkipJump(svc, max_iter=2, random_state=1, **HSJ_SMALL).run(X)
    assert model.gradient_queries == 0
    np.testing.assert_array_equal(first.x_adv, again.x_adv)
    assert first.queries == again.queries == model.queries


def test_hsj_linf_and_targeted_with_x_init(data, svc):
    _, test = data
    X, y = test.X[:4], test.y[:4]
    result = HopSkipJump(svc, norm="linf", max_iter=3, random_state=0, **HSJ_SMALL).run(X, y)
    assert result.success.all() and _in_box(result.x_adv)
    assert np.allclose(result.distance, np.abs(result.x_adv - X).max(axis=1))
    goal = 3
    seeds = test.X[svc.predict(test.X) == goal][:1].repeat(len(X), axis=0)
    keep = y != goal
    targeted = HopSkipJump(svc, max_iter=3, random_state=0, **HSJ_SMALL).run(
        X[keep], y[keep], target=goal, X_init=seeds[keep]
    )
    assert (targeted.y_adv == goal).all() and targeted.success.all()
    assert (targeted.distance < norm(seeds[keep] - X[keep], "l2")).all()


def test_hsj_stops_when_the_budget_runs_out(data, svc):
    _, test = data
    model = wrap(svc, query_budget=400)
    result = HopSkipJump(model, max_iter=20, random_state=0, **HSJ_SMALL).run(test.X[:5], test.y[:5])
    assert result.budget_exhausted is True
    assert result.queries == model.queries <= 400
    assert result.success[0]  # the first point got an adversarial example before the budget ran out
    assert (result.x_adv[-1] == result.x0[-1]).all()  # the last was never reached
    with pytest.raises(QueryBudgetExceeded, match="0 of 2 queries used, 5 more requested"):
        HopSkipJump(wrap(svc, query_budget=2)).run(test.X[:5])


# ---------------------------------------------------------------------------- NES
@pytest.fixture(scope="module")
def nes_run(data, mlp):
    _, test = data
    model = wrap(mlp)
    attack = NESAttack(model, eps=0.2, max_iter=30, samples=20, random_state=0)
    return model, attack.run(test.X[:20], test.y[:20])


def test_nes_breaks_the_mlp_inside_the_ball(nes_run):
    model, result = nes_run
    assert np.mean(result.y_clean == result.y_true) >= 0.9
    assert np.mean(result.y_adv == result.y_true) < 0.3  # measured 0.05
    assert (np.abs(result.x_adv - result.x0).max(axis=1) <= 0.2 + 1e-12).all()
    assert _in_box(result.x_adv)
    assert result.queries == model.queries == result.log["queries"].sum()
    assert model.gradient_queries == 0
    np.testing.assert_array_equal(result.y_adv, model.predict(result.x_adv))


def test_nes_is_deterministic_and_l2_stays_in_the_ball(data, mlp):
    _, test = data
    X, y = test.X[:5], test.y[:5]
    first = NESAttack(mlp, eps=0.2, max_iter=5, samples=10, random_state=3).run(X, y)
    again = NESAttack(mlp, eps=0.2, max_iter=5, samples=10, random_state=3).run(X, y)
    np.testing.assert_array_equal(first.x_adv, again.x_adv)
    l2 = NESAttack(mlp, eps=1.0, norm="l2", max_iter=5, samples=10, random_state=0).run(X, y)
    assert (np.linalg.norm(l2.x_adv - X, axis=1) <= 1.0 + 1e-9).all() and _in_box(l2.x_adv)


def test_nes_stops_when_the_budget_runs_out(data, mlp):
    _, test = data
    # clean probabilities (20 queries), first estimate (20 x 40), first update with the second estimate
    # (20 x 41 for the points still correct), then too little left for the third call
    model = wrap(mlp, query_budget=20 + 800 + 820 + 500)
    result = NESAttack(model, eps=0.2, max_iter=30, samples=20, random_state=0).run(test.X[:20], test.y[:20])
    assert result.budget_exhausted is True
    started = result.y_clean == result.y_true
    assert (result.log["steps"][0, started] == 1).all()  # the one update whose label came back
    assert (result.x_adv[started] != result.x0[started]).any(axis=1).all()
    assert result.queries == model.queries <= model.query_budget
    assert (np.abs(result.x_adv - result.x0).max(axis=1) <= 0.2 + 1e-12).all()


# ---------------------------------------------------------------------------- errors
def test_errors(data, svc, mlp):
    _, test = data
    X = test.X[:2]
    with pytest.raises(CapabilityError, match="NESAttack"):
        NESAttack(svc, eps=0.1).run(X)
    with pytest.raises(CapabilityError, match="NESAttack needs a model with probabilities"):
        NESAttack(wrap(mlp.predict, input_shape=(64,), n_classes=10, output="labels"), eps=0.1).run(X)
    bad = [
        (HopSkipJump(svc, norm="l1"), "norm"),
        (HopSkipJump(svc, max_iter=0), "max_iter"),
        (HopSkipJump(svc, gamma=0.0), "gamma"),
        (HopSkipJump(svc, bounds=(1, 0)), "bounds"),
        (NESAttack(mlp, eps=-0.1), "eps"),
        (NESAttack(mlp, eps=0.1, samples=0), "samples"),
        (NESAttack(mlp, eps=0.1, sigma=0.0), "sigma"),
        (NESAttack(mlp, eps=0.1, step=-1.0), "step"),
    ]
    for attack, name in bad:
        with pytest.raises(InvalidParameterError, match=f"^{name}:"):
            attack.run(X)
    with pytest.raises(InvalidInputError, match="X"):
        HopSkipJump(svc).run(X * 2.0)
    with pytest.raises(InvalidInputError, match="X_init"):
        HopSkipJump(svc).run(X, X_init=X[:1])
    with pytest.raises(InvalidInputError, match="y"):
        NESAttack(mlp, eps=0.1).run(X, [0])
    with pytest.raises(InvalidInputError, match="target"):
        NESAttack(mlp, eps=0.1).run(X, target=42)


def test_parameters_are_stored_unchanged(svc):
    attack = HopSkipJump(svc, norm="linf", max_iter=7, gamma=2.0, random_state=5)
    assert (attack.norm, attack.max_iter, attack.gamma, attack.random_state) == ("linf", 7, 2.0, 5)
    nes = NESAttack(svc, eps=0.3, step=None, samples=9)
    assert (nes.eps, nes.step, nes.samples) == (0.3, None, 9)
