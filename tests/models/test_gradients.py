"""Analytic (and autograd) gradients of every white-box adapter against central finite differences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from mlpentest.models import wrap

EPS = 1e-6
TOL = 1e-4


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


def _data(digits, k, n_test=8):
    """Training slice with k classes, and test points nudged off the training data (seeded)."""
    X, y = digits
    keep = y < k
    X, y = X[keep], y[keep]
    rng = np.random.default_rng(k)
    X_test = X[-n_test:] + 0.05 * rng.standard_normal((n_test, X.shape[1]))
    return X[:-n_test], y[:-n_test], X_test, y[-n_test:]


def _fd(f, X):
    """Central differences of a row-wise function f: (n, d) -> (n, ...) ; returns (n, ..., d)."""
    cols = []
    for j in range(X.shape[1]):
        step = np.zeros_like(X)
        step[:, j] = EPS
        cols.append((f(X + step) - f(X - step)) / (2 * EPS))
    return np.stack(cols, axis=-1)


def _rel(g, fd):
    return np.linalg.norm(g - fd) / np.linalg.norm(fd)


def _check_class_and_loss_gradients(model, X, y):
    fd = _fd(model.logits, X)  # (n, k, d)
    assert _rel(model.class_gradient(X), fd) < TOL
    rows = np.arange(len(X))
    assert _rel(model.class_gradient(X, model.classes_[y]), fd[rows, y]) < TOL
    assert _rel(model.class_gradient(X, model.classes_[1]), fd[:, 1]) < TOL
    labels = model.classes_[y]
    fd_loss = _fd(lambda Z: model.loss(Z, labels), X)
    assert _rel(model.loss_gradient(X, labels), fd_loss) < TOL


@pytest.mark.parametrize("k", [2, 4])
def test_logistic_regression(digits, k):
    X, y, X_test, y_test = _data(digits, k)
    model = wrap(LogisticRegression(C=0.5, max_iter=500).fit(X, y))
    _check_class_and_loss_gradients(model, X_test, y_test)


def test_logistic_regression_one_vs_rest_loss(digits):
    """Older scikit-learn's OvR probabilities sigmoid(z_k) / sum_j sigmoid(z_j): loss and its gradient."""
    X, y, X_test, y_test = _data(digits, 3)
    est = LogisticRegression(max_iter=500).fit(X, y)
    est.multi_class = "ovr"  # what a scikit-learn < 1.7 OvR model carries
    model = wrap(est)
    s = expit(est.decision_function(X_test))
    expected = -np.log(s[np.arange(len(y_test)), y_test] / s.sum(axis=1))
    np.testing.assert_allclose(model.loss(X_test, y_test), expected, rtol=1e-10)
    assert _rel(model.loss_gradient(X_test, y_test), _fd(lambda Z: model.loss(Z, y_test), X_test)) < TOL


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_mlp(digits, activation, k):
    X, y, X_test, y_test = _data(digits, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = MLPClassifier((10, 7), activation=activation, max_iter=40, random_state=0).fit(X, y)
    model = wrap(est)
    _check_class_and_loss_gradients(model, X_test, y_test)


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("kernel", ["linear", "rbf", "poly", "sigmoid"])
def test_svc_decision_and_hinge(digits, kernel, k):
    X, y, X_test, _ = _data(digits, k, n_test=30)
    model = wrap(SVC(kernel=kernel, C=0.3, gamma=0.05, coef0=0.5).fit(X, y))
    # keep points away from the kinks: every pairwise decision (vote) clear of 0, and for the
    # multi-class hinge a unique runner-up class
    pairs = model._pair_decisions(X_test)
    X_test = X_test[np.abs(pairs).min(axis=1) > 1e-3]
    fd = _fd(model.logits, X_test)
    assert _rel(model.class_gradient(X_test), fd) < TOL

    scores = model.logits(X_test)
    target = np.argsort(scores, axis=1)[:, -1 if k == 2 else -2]  # an active hinge for most points
    loss = model.loss(X_test, target)
    if k > 2:
        others = np.sort(np.where(np.arange(k) == target[:, None], -np.inf, scores), axis=1)
        clear = (others[:, -1] - others[:, -2]) > 1e-3
    else:
        clear = np.ones(len(X_test), bool)
    active = clear & (loss > 1e-3)
    assert active.sum() >= 3
    Xa, ya = X_test[active], target[active]
    fd_loss = _fd(lambda Z: model.loss(Z, ya), Xa)
    assert _rel(model.loss_gradient(Xa, ya), fd_loss) < TOL
    inactive = loss == 0
    if inactive.any():
        assert not model.loss_gradient(X_test[inactive], target[inactive]).any()


def test_svc_gradient_uses_fitted_gamma_scale(digits):
    X, y, X_test, _ = _data(digits, 3)
    model = wrap(SVC(kernel="rbf", gamma="scale").fit(X, y))
    X_test = X_test[np.abs(model._pair_decisions(X_test)).min(axis=1) > 1e-3]
    assert _rel(model.class_gradient(X_test), _fd(model.logits, X_test)) < TOL


def test_torch_float64_gradients(digits):
    torch = pytest.importorskip("torch")
    X, y, X_test, y_test = _data(digits, 3)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(3 * 6 * 6, 3)
    ).double()
    model = wrap(net, input_shape=(1, 8, 8), batch_size=5)  # two batches
    _check_class_and_loss_gradients(model, X_test, y_test)
