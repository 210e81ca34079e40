"""Biggio, Nelson and Laskov (2012) SVM poisoning on digits "3" vs "7" (X in [0, 1], 64 features).

100 training points, 200 validation points. The poison starts, as in the paper, from a training point of
one class ("3", label 0) with the flipped label (1), which makes it an error vector of the SVM.
"""

import dataclasses
import json

import matplotlib
import numpy as np
import pytest
from sklearn.svm import SVC

from mlpentest.attacks.poisoning import PoisoningResult, PoisoningSVM
from mlpentest.datasets import load
from mlpentest.errors import InvalidInputError, InvalidParameterError, UnsupportedModelError

matplotlib.use("Agg")

SVMS = {
    "linear": {"C": 10.0},
    "rbf": {"C": 100.0},
    "poly": {"C": 100.0, "degree": 2},
}


@pytest.fixture(scope="module")
def data():
    ds = load("digits").pair(3, 7)
    idx = np.random.RandomState(0).permutation(ds.n_samples)
    X, y = ds.X.astype(np.float64)[idx], ds.y[idx]
    return X[:100], y[:100], X[100:300], y[100:300]


def _first_three(data):
    Xtr, ytr, _, _ = data
    return Xtr[np.flatnonzero(ytr == 0)[0]]


def test_seed_call_pattern_and_one_point_raises_linear_error_by_10_points(data):
    Xtr, ytr, Xv, yv = data
    clf = SVC(kernel="linear", **SVMS["linear"]).fit(Xtr, ytr)
    xc = _first_three(data)
    res = PoisoningSVM(clf, Xtr, ytr, t=0.5).attack(xc, 1, Xv, yv, num_iterations=200)
    xc_attacked, log = res
    assert xc_attacked.shape == (64,)
    assert xc_attacked.min() >= 0.0 and xc_attacked.max() <= 1.0
    assert set(log) >= {"validation_loss", "validation_error", "point_index", "alpha", "warm_start"}
    # measured: 0.5 % -> 15 % validation error with one poison point among 101 training points
    assert res.clean_error <= 0.02
    assert res.poisoned_error - res.clean_error >= 0.10, (res.clean_error, res.poisoned_error)
    retrained = SVC(kernel="linear", **SVMS["linear"]).fit(np.vstack([Xtr, xc_attacked]), np.append(ytr, 1))
    assert np.mean(retrained.predict(Xv) != yv) >= res.clean_error + 0.10
    assert res.loss_name == "hinge" and res.log["validation_loss"].max() > 5 * res.log["validation_loss"][0]
    assert res.clean_loss < res.poisoned_loss


@pytest.mark.parametrize(("kernel", "min_gain"), [("rbf", 0.05), ("poly", 0.08)])
def test_one_point_raises_rbf_and_poly_error(data, kernel, min_gain):
    Xtr, ytr, Xv, yv = data
    clf = SVC(kernel=kernel, **SVMS[kernel])  # unfitted: the attack fits it on X_train
    res = PoisoningSVM(clf, Xtr, ytr, t=0.5).attack(_first_three(data), 1, Xv, yv, num_iterations=100)
    # measured: rbf 0.5 % -> 10 %, poly (degree 2) 0.5 % -> 14 %
    assert res.poisoned_error - res.clean_error >= min_gain, (res.clean_error, res.poisoned_error)


def _partition(svm, X, y, Xv, yv):
    """Margin SVs, error SVs and violated validation points of a retrained SVM (what must not change)."""
    fit = SVC(C=svm.C, kernel=svm.kernel, gamma=svm._gamma, degree=svm.degree, coef0=svm.coef0,
              tol=1e-9, shrinking=False).fit(X, y)
    alpha = np.abs(fit.dual_coef_[0])
    at_c = alpha >= fit.C * (1 - 1e-8)
    viol = (2 * yv - 1) * fit.decision_function(Xv) < 1
    return (tuple(fit.support_[~at_c]), tuple(fit.support_[at_c]), tuple(np.flatnonzero(viol)))


@pytest.mark.parametrize("kernel", ["linear", "rbf", "poly"])
@pytest.mark.parametrize("warm", [0, 15], ids=["error-vector", "after-15-steps"])
def test_gradient_matches_finite_differences_of_retrained_svm(data, kernel, warm):
    Xtr, ytr, Xv, yv = data
    clf = SVC(kernel=kernel, **SVMS[kernel]).fit(Xtr, ytr)
    att = PoisoningSVM(clf, Xtr, ytr, t=0.5)
    xc = _first_three(data)
    if warm:
        xc = att.attack(xc, 1, Xv, yv, num_iterations=warm).x_poison
    xc = np.clip(xc, 0.01, 0.99)  # the box is not part of the loss; stay off its faces
    _, grad = att.validation_loss_gradient(xc, 1, Xv, yv)
    assert np.linalg.norm(grad) > 0

    rng = np.random.RandomState(0)
    h = 1e-5  # small enough that no support vector or validation point changes side
    base = _partition(clf, np.vstack([Xtr, xc]), np.append(ytr, 1), Xv, yv)
    analytic, numeric = [], []
    for _ in range(12):
        e = rng.randn(64)
        e /= np.linalg.norm(e)
        plus, minus = xc + h * e, xc - h * e
        moved = [_partition(clf, np.vstack([Xtr, p]), np.append(ytr, 1), Xv, yv) for p in (plus, minus)]
        if any(part != base for part in moved):
            continue  # the support-vector sets changed: the loss has a kink inside the step
        loss_p, _ = att.validation_loss_gradient(plus, 1, Xv, yv)
        loss_m, _ = att.validation_loss_gradient(minus, 1, Xv, yv)
        numeric.append((loss_p - loss_m) / (2 * h))
        analytic.append(grad @ e)
        if len(numeric) == 4:
            break
    assert len(numeric) >= 3
    analytic, numeric = np.array(analytic), np.array(numeric)
    rel = np.linalg.norm(numeric - analytic) / np.linalg.norm(analytic)
    assert rel < 1e-3, (analytic, numeric)  # measured: < 1e-4 for every kernel


def test_several_points_are_optimised_one_after_the_other(data):
    Xtr, ytr, Xv, yv = data
    clf = SVC(kernel="linear", **SVMS["linear"]).fit(Xtr, ytr)
    threes = Xtr[ytr == 0][:2]
    res = PoisoningSVM(clf, Xtr, ytr, t=0.5, max_iter=30).run(Xv, yv, x_init=threes, labels=1)
    assert res.x_poison.shape == (2, 64) and list(res.labels) == [1, 1]
    np.testing.assert_array_equal(res.poison_indices, [100, 101])
    np.testing.assert_array_equal(res.X_poisoned[:100], Xtr)
    np.testing.assert_array_equal(res.poison_mask, np.arange(102) >= 100)
    index, losses = res.log["point_index"], res.log["validation_loss"]
    assert set(index) == {0, 1}
    assert len(losses) == len(res.log["validation_error"]) == len(index)
    # the second point starts against the model already poisoned by the first
    first_best = losses[index == 0].max()
    assert losses[index == 1][0] > 0.5 * first_best
    assert res.poisoned_error > res.clean_error
    xc, log = res
    assert xc.shape == (2, 64)

    json.dumps(res.to_dict(), allow_nan=False)
    assert res.summary()["poison points"] == 2
    with_images = dataclasses.replace(res, image_shape=(8, 8))
    figure = with_images.plot()
    assert len(figure.axes) == 3 and len(figure.axes[1].images) == 1  # the curve, then both points
    ax = res.plot(ax=matplotlib.pyplot.subplots()[1])
    assert len(ax.lines[0].get_ydata()) == len(index)
    assert isinstance(res, PoisoningResult)
    matplotlib.pyplot.close("all")


def test_point_that_is_not_a_support_vector_has_zero_gradient_and_stops(data):
    Xtr, ytr, Xv, yv = data
    clf = SVC(kernel="linear", C=1.0).fit(Xtr, ytr)
    xc = _first_three(data)  # its true label: far inside its class, alpha_c = 0
    att = PoisoningSVM(clf, Xtr, ytr)
    _, grad = att.validation_loss_gradient(xc, 0, Xv, yv)
    assert not grad.any()
    res = att.attack(xc, 0, Xv, yv, num_iterations=10)
    assert len(res.log["validation_loss"]) == 1 and res.log["alpha"][0] == 0.0
    np.testing.assert_array_equal(res.x_poison, xc)


def test_bad_input_is_rejected_naming_the_argument(data):
    Xtr, ytr, Xv, yv = data
    clf = SVC(kernel="linear")
    xc = _first_three(data)
    with pytest.raises(InvalidInputError, match="y_train"):
        PoisoningSVM(clf, Xtr, np.arange(len(ytr)) % 3).attack(xc, 1, Xv, yv)
    for kernel in ("sigmoid", "precomputed"):
        with pytest.raises(InvalidParameterError, match="kernel"):
            PoisoningSVM(SVC(kernel=kernel), Xtr, ytr).attack(xc, 1, Xv, yv)
    with pytest.raises(InvalidInputError, match="label"):
        PoisoningSVM(clf, Xtr, ytr).attack(xc, 5, Xv, yv)
    for t in (0.0, -1.0):
        with pytest.raises(InvalidParameterError, match="t:"):
            PoisoningSVM(clf, Xtr, ytr, t=t).attack(xc, 1, Xv, yv)
    with pytest.raises(InvalidInputError, match="y_valid"):
        PoisoningSVM(clf, Xtr, ytr).attack(xc, 1, Xv, yv + 2)
    with pytest.raises(InvalidInputError, match="x_init"):
        PoisoningSVM(clf, Xtr, ytr).attack(xc * 3.0, 1, Xv, yv)
    with pytest.raises(UnsupportedModelError, match="model"):
        PoisoningSVM(object(), Xtr, ytr).attack(xc, 1, Xv, yv)
    fitted_elsewhere = SVC(kernel="linear").fit(Xtr[:, :10], ytr)
    with pytest.raises(InvalidInputError, match="X_train: expected 10 features"):
        PoisoningSVM(fitted_elsewhere, Xtr, ytr).attack(xc, 1, Xv, yv)


def test_validation_loss_gradient_checks_its_point(data):
    Xtr, ytr, Xv, yv = data
    attack = PoisoningSVM(SVC(kernel="linear").fit(Xtr, ytr), Xtr, ytr)
    with pytest.raises(InvalidInputError, match="^xc: expected 64 features per sample"):
        attack.validation_loss_gradient(Xtr[0, :10], 1, Xv, yv)
    with pytest.raises(InvalidInputError, match=r"^xc: values must lie in \[0.0, 1.0\]"):
        attack.validation_loss_gradient(Xtr[0] + 3.0, 1, Xv, yv)
    with pytest.raises(InvalidInputError, match="^X_valid: expected 64 features"):
        attack.validation_loss_gradient(Xtr[0], 1, Xv[:, :10], yv)


def test_none_instead_of_data_is_named(data):
    Xtr, ytr, Xv, yv = data
    with pytest.raises(InvalidInputError, match="^X_train: expected an array, got None"):
        PoisoningSVM(SVC(kernel="linear"), None, ytr).run(Xv, yv)
    with pytest.raises(InvalidInputError, match="^X_valid: expected an array, got None"):
        PoisoningSVM(SVC(kernel="linear"), Xtr, ytr).run(None, yv)


def _both_solvers(clf, Xtr, ytr, Xv, yv, x_init, **kwargs):
    return [PoisoningSVM(clf, Xtr, ytr, t=0.5, tol=0.0, solver=solver, **kwargs).run(Xv, yv, x_init=x_init,
                                                                                      labels=1)
            for solver in ("incremental", "full")]


@pytest.mark.parametrize("kernel", ["linear", "rbf", "poly"])
def test_incremental_solver_finds_the_poison_points_of_full_retraining(data, kernel):
    """Issue 16: warm-started exact retraining, the same points as libsvm from scratch at every step."""
    Xtr, ytr, Xv, yv = data
    clf = SVC(kernel=kernel, **SVMS[kernel]).fit(Xtr, ytr)
    starts = Xtr[ytr == 0][:2]
    fast, full = _both_solvers(clf, Xtr, ytr, Xv, yv, starts, max_iter=20)
    assert fast.log["warm_start"].all() and not full.log["warm_start"].any()
    assert len(fast.log["validation_loss"]) == 42  # 2 points x (start + 20 steps): nothing stopped early
    assert np.abs(fast.x_poison - full.x_poison).max() < 1e-6  # measured: < 1e-12
    np.testing.assert_allclose(fast.log["validation_loss"], full.log["validation_loss"], rtol=1e-9)
    np.testing.assert_allclose(fast.log["alpha"], full.log["alpha"], rtol=1e-9)
    assert fast.poisoned_error == full.poisoned_error > fast.clean_error
    if kernel == "linear":
        again = PoisoningSVM(clf, Xtr, ytr, t=0.5, tol=0.0, solver="full", max_iter=20).run(
            Xv, yv, x_init=starts, labels=1)
        np.testing.assert_array_equal(again.x_poison, full.x_poison)  # the reference is deterministic


def test_incremental_solver_on_fashion_mnist_same_point_and_test_error(fashion):
    """Sandals vs sneakers, 400 training points (784 features): ~170 margin vectors, dozens of pivots."""
    pair = fashion.pair(5, 7)
    pools = pair.split({"train": 400, "valid": 200, "test": 500}, random_state=0)
    (Xtr, ytr), (Xv, yv), (Xte, yte) = ((pools[k].X.astype(np.float64), pools[k].y)
                                        for k in ("train", "valid", "test"))
    clf = SVC(kernel="linear", C=10.0).fit(Xtr, ytr)
    fast, full = _both_solvers(clf, Xtr, ytr, Xv, yv, Xtr[ytr == 0][0], max_iter=20)
    assert fast.log["warm_start"].all()
    assert np.abs(fast.x_poison - full.x_poison).max() < 1e-6
    test_errors = [np.mean(SVC(kernel="linear", C=10.0).fit(r.X_poisoned, r.y_poisoned).predict(Xte) != yte)
                   for r in (fast, full)]
    assert test_errors[0] == test_errors[1]
    assert fast.poisoned_error > fast.clean_error


def test_steps_the_warm_start_cannot_solve_are_retrained_from_scratch(data, monkeypatch):
    from mlpentest.attacks.poisoning import _svm_math

    Xtr, ytr, Xv, yv = data
    clf = SVC(kernel="rbf", **SVMS["rbf"]).fit(Xtr, ytr)
    monkeypatch.setattr(_svm_math.WarmRetrain, "_max_pivots", lambda self: 2)
    fast, full = _both_solvers(clf, Xtr, ytr, Xv, yv, _first_three(data), max_iter=10)
    warm = fast.log["warm_start"]
    assert not warm.all() and len(warm) == 11  # some steps needed more than 2 pivots
    assert np.abs(fast.x_poison - full.x_poison).max() < 1e-6
    assert fast.poisoned_error == full.poisoned_error


@pytest.mark.parametrize("solver", ["fast", "", None, 1])
def test_unknown_solver_is_refused(data, solver):
    Xtr, ytr, Xv, yv = data
    with pytest.raises(InvalidParameterError, match="^solver: expected one of"):
        PoisoningSVM(SVC(kernel="linear"), Xtr, ytr, solver=solver).attack(_first_three(data), 1, Xv, yv)
