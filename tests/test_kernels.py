"""kernels.py: Gram matrices match scikit-learn; input gradients match central finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.metrics.pairwise import pairwise_kernels
from sklearn.svm import SVC

from mlpentest.errors import InvalidInputError, InvalidParameterError
from mlpentest.kernels import KERNELS, kernel_gradient, kernel_matrix, svc_kernel_params

PARAMS = {"gamma": 0.3, "degree": 3, "coef0": 0.7}


@pytest.fixture(scope="module")
def points():
    X = load_digits().data / 16.0
    rng = np.random.default_rng(0)
    return X[:7] + 0.01 * rng.standard_normal((7, 64)), X[100:125]


@pytest.mark.parametrize("kernel", KERNELS)
def test_kernel_matrix_matches_sklearn(points, kernel):
    X, Y = points
    ours = kernel_matrix(X, Y, kernel=kernel, **PARAMS)
    extra = {} if kernel == "linear" else {"gamma": PARAMS["gamma"]}
    if kernel in ("poly", "sigmoid"):
        extra["coef0"] = PARAMS["coef0"]
    if kernel == "poly":
        extra["degree"] = PARAMS["degree"]
    assert ours.shape == (7, 25)
    np.testing.assert_allclose(ours, pairwise_kernels(X, Y, metric=kernel, **extra), rtol=1e-12, atol=1e-12)


def test_gamma_none_defaults_to_one_over_features(points):
    X, Y = points
    np.testing.assert_allclose(
        kernel_matrix(X, Y, kernel="rbf"), kernel_matrix(X, Y, kernel="rbf", gamma=1 / 64), rtol=1e-14
    )


def _fd(f, X, eps=1e-6):
    """Central differences of a per-row function f: (n, d) -> (n, o); returns (n, o, d)."""
    cols = []
    for j in range(X.shape[1]):
        step = np.zeros_like(X)
        step[:, j] = eps
        cols.append((f(X + step) - f(X - step)) / (2 * eps))
    return np.stack(cols, axis=-1)


def _rel(g, fd):
    return np.linalg.norm(g - fd) / np.linalg.norm(fd)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("degree", [1, 3])
def test_kernel_gradient_matches_finite_differences(points, kernel, degree):
    X, Y = points
    rng = np.random.default_rng(1)
    coef = rng.standard_normal((len(Y), 3))
    params = {**PARAMS, "degree": degree}
    grad = kernel_gradient(X, Y, coef, kernel=kernel, **params)
    assert grad.shape == (7, 3, 64)
    fd = _fd(lambda Z: kernel_matrix(Z, Y, kernel=kernel, **params) @ coef, X)
    assert _rel(grad, fd) < 1e-4
    one = kernel_gradient(X, Y, coef[:, 1], kernel=kernel, **params)
    np.testing.assert_allclose(one, grad[:, 1], rtol=1e-12, atol=1e-14)


def test_poly_degree_zero_gradient_is_zero(points):
    X, Y = points
    grad = kernel_gradient(X, Y, np.ones(len(Y)), kernel="poly", gamma=0.5, degree=0, coef0=1.0)
    assert grad.shape == (7, 64) and not grad.any()


def test_invalid_kernel_lists_choices(points):
    X, Y = points
    with pytest.raises(InvalidParameterError, match="kernel: expected one of .*'rbf'.*'cosine'"):
        kernel_matrix(X, Y, kernel="cosine")
    with pytest.raises(InvalidParameterError, match="kernel"):
        kernel_gradient(X, Y, np.ones(len(Y)), kernel=None)


def test_shape_errors(points):
    X, Y = points
    with pytest.raises(InvalidInputError, match="Y: expected 64 features"):
        kernel_matrix(X, Y[:, :10], kernel="linear")
    with pytest.raises(InvalidInputError, match="coef: expected 25 rows"):
        kernel_gradient(X, Y, np.ones(3), kernel="rbf")
    with pytest.raises(InvalidInputError, match="X: expected a 2-D"):
        kernel_matrix(X[0], Y, kernel="linear")
    with pytest.raises(InvalidParameterError, match="gamma"):
        kernel_matrix(X, Y, kernel="rbf", gamma=-1.0)


def test_svc_kernel_params_uses_fitted_gamma():
    X, y = load_digits(return_X_y=True)
    X, y = X[:150] / 16.0, y[:150] % 2
    svc = SVC(kernel="rbf", gamma="scale").fit(X, y)
    params = svc_kernel_params(svc)
    assert params["kernel"] == "rbf" and params["gamma"] == pytest.approx(1 / (64 * X.var()))
    K = kernel_matrix(X[:5], svc.support_vectors_, **params)
    np.testing.assert_allclose(K @ svc.dual_coef_[0] + svc.intercept_[0], svc.decision_function(X[:5]))
    with pytest.raises(InvalidParameterError, match="not fitted"):
        svc_kernel_params(SVC())
    with pytest.raises(InvalidParameterError, match="precomputed"):
        svc_kernel_params(SVC(kernel="precomputed"))
