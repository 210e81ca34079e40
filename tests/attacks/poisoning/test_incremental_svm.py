"""The warm-started exact SVM solver behind PoisoningSVM(solver="incremental") (issue 16).

Digits "3" vs "7" (64 features in [0, 1]), 100 training points plus one moving point, the attack's SVMs.
Every solution is checked against the KKT conditions computed here from scratch (kernels.kernel_matrix,
float64) and against scikit-learn's SVC retrained from scratch.
"""

import numpy as np
import pytest
from sklearn.svm import SVC

from mlpentest.attacks.poisoning import _incremental_svm as inc
from mlpentest.attacks.poisoning._svm_math import SVMProblem
from mlpentest.datasets import load
from mlpentest.kernels import kernel_matrix

SVMS = {"linear": {"C": 10.0}, "rbf": {"C": 100.0}, "poly": {"C": 100.0, "degree": 2}}


@pytest.fixture(scope="module")
def data():
    ds = load("digits").pair(3, 7)
    idx = np.random.RandomState(0).permutation(ds.n_samples)
    X, y = ds.X.astype(np.float64)[idx], ds.y[idx]
    return X[:100], y[:100], X[100:300], y[100:300]


def _start(data, kernel):
    Xtr, ytr, Xv, _ = data
    problem = SVMProblem.from_training_set(SVC(kernel=kernel, **SVMS[kernel]), Xtr, ytr, (0.0, 1.0))
    clean = problem.fit(problem.X, problem.y)
    a = np.zeros(len(Xtr))
    a[clean.support] = np.abs(clean.coef)
    return problem, clean, inc.IncrementalSVM(problem.X, problem.y, a, problem.C, problem.kp, Xv)


def _kkt_violation(X, y, a, b, C, kp):
    """Largest violation of 0 <= a <= C, y^T a = 0 and the sign conditions on g, from scratch."""
    g = y * (kernel_matrix(X, X, **kp) @ (a * y) + b) - 1.0
    free, low, high = (a > 0) & (a < C), a == 0, a == C
    assert (free | low | high).all() and a.min() >= 0.0 and a.max() <= C
    return max(abs(y @ a), np.abs(g[free]).max(initial=0), (-g[low]).max(initial=0), g[high].max(initial=0))


def _violation(svm, problem):
    return _kkt_violation(svm.P[svm.nv:], svm.y, svm.a, svm.b, problem.C, problem.kp)


@pytest.mark.parametrize("kernel", ["linear", "rbf", "poly"])
def test_random_moves_keep_the_exact_optimum(data, kernel):
    Xtr, ytr, Xv, _ = data
    problem, _, svm = _start(data, kernel)
    rng = np.random.RandomState(1)
    x = Xtr[np.flatnonzero(ytr == 0)[3]].copy()
    svm.append(x, 1.0)  # a "3" labelled "7", as the attack starts
    pivots = []
    for _ in range(12):
        assert svm.solve(1000), svm.failure
        pivots.append(svm.pivots)
        assert _violation(svm, problem) < 1e-8
        X, y = svm.P[svm.nv:], svm.y
        polished = problem.fit(X, y).decision_function(Xv)
        np.testing.assert_allclose(svm.f[: svm.nv], polished, atol=1e-8)
        libsvm = SVC(C=problem.C, tol=1e-9, shrinking=False, **problem.kp).fit(X, y)
        np.testing.assert_allclose(svm.f[: svm.nv], libsvm.decision_function(Xv), atol=1e-4)
        step = rng.randn(64)
        x = np.clip(x + 0.5 * step / np.linalg.norm(step), 0.0, 1.0)
        svm.move(x)
    assert max(pivots) > 0  # the partition did change along the way


def test_a_copy_of_a_margin_vector_with_the_other_label_is_solved(data, monkeypatch):
    """Its kernel column duplicates a margin vector's: adding it to the margin set is singular."""
    problem, clean, svm = _start(data, "rbf")
    margin = clean.support[np.abs(clean.coef) < problem.C * (1 - 1e-8)]
    j = int(margin[0])
    null_steps = []
    original = inc.IncrementalSVM._null_step
    monkeypatch.setattr(inc.IncrementalSVM, "_null_step",
                        lambda self, *a: null_steps.append(a) or original(self, *a))
    svm.append(problem.X[j].copy(), -problem.y[j])
    assert svm.solve(1000), svm.failure
    assert null_steps
    assert _violation(svm, problem) < 1e-8
    assert not (svm.status[[j, svm.c]] == inc.MARGIN).all()  # twins cannot both sit on the margin


def test_a_second_moving_point_after_fixing_the_first(data):
    Xtr, ytr, Xv, _ = data
    problem, _, svm = _start(data, "poly")
    first, second = Xtr[np.flatnonzero(ytr == 0)[:2]]
    svm.append(first, 1.0)
    assert svm.solve(1000)
    svm.move(np.clip(first + 0.2, 0, 1))
    svm.append(second, 1.0)  # the first stays where it was moved
    assert svm.solve(1000), svm.failure
    assert _violation(svm, problem) < 1e-8
    X = np.vstack([Xtr, np.clip(first + 0.2, 0, 1), second])
    y = np.append(problem.y, [1.0, 1.0])
    np.testing.assert_array_equal(svm.P[svm.nv:], X)
    np.testing.assert_allclose(svm.f[: svm.nv], problem.fit(X, y).decision_function(Xv), atol=1e-8)


def test_failures_are_reported_for_the_caller_to_retrain(data):
    Xtr, ytr, _, _ = data
    problem, _, svm = _start(data, "linear")
    svm.append(Xtr[np.flatnonzero(ytr == 0)[3]].copy(), 1.0)
    assert not svm.solve(0)
    assert "pivots" in svm.failure
    assert svm.solve(1000) and svm.failure == ""  # a feasible state to resume from

    everyone_at_c = np.where(problem.y > 0, problem.C, 0.0)  # no margin vector: b is not fixed
    everyone_at_c[np.flatnonzero(problem.y < 0)[: int((problem.y > 0).sum())]] = problem.C
    svm.reset(np.append(everyone_at_c, 0.0))
    assert not svm.solve(1000)
    assert svm.failure == "no margin vector"


@pytest.mark.parametrize("kernel", ["linear", "rbf", "poly"])
def test_full_retraining_is_certified_to_the_same_tolerance(data, kernel):
    """The reference path (libsvm from scratch, tol 1e-9) leaves ~1e-7 in the KKT conditions (its float32
    kernel cache); SVMProblem.fit polishes that to the exact optimum the warm start reaches."""
    problem, _, _ = _start(data, kernel)
    rng = np.random.RandomState(2)
    for _ in range(3):
        X, y = np.vstack([problem.X, rng.rand(64)]), np.append(problem.y, 1.0)
        fit = problem.fit(X, y)
        a = np.zeros(len(y))
        a[fit.support] = np.abs(fit.coef)
        assert _kkt_violation(X, y, a, fit.b, problem.C, problem.kp) < 1e-10  # measured: ~1e-15
        raw = SVC(C=problem.C, tol=1e-9, shrinking=False, **problem.kp).fit(X, y)
        np.testing.assert_allclose(fit.decision_function(X), raw.decision_function(X), atol=1e-4)
        loose = problem.fit(X, y, libsvm_tol=1e-3)  # a rougher start, polished to the same optimum
        np.testing.assert_array_equal(loose.support, fit.support)
        np.testing.assert_allclose(loose.coef, fit.coef, rtol=0, atol=1e-10)
