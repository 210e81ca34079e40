"""wrap(): every supported kind of model, capabilities, errors, and query counting with a budget."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC, NuSVC

from mlpentest.errors import (
    CapabilityError,
    InvalidInputError,
    InvalidParameterError,
    QueryBudgetExceeded,
    UnsupportedModelError,
)
from mlpentest.models import Model, WrappedModel, wrap


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


def _data(digits, k):
    X, y = digits
    keep = y < k
    return X[keep], y[keep]


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", "The `probability` parameter", FutureWarning)
        return est.fit(X, y)


def _estimators():
    yield "lr", lambda: LogisticRegression(max_iter=300)
    for kernel in ("linear", "rbf", "poly", "sigmoid"):
        yield f"svc-{kernel}", lambda kernel=kernel: SVC(kernel=kernel)
        yield (
            f"svc-{kernel}-proba",
            lambda kernel=kernel: SVC(kernel=kernel, probability=True, random_state=0),
        )
    for act in ("relu", "tanh", "logistic", "identity"):
        yield f"mlp-{act}", lambda act=act: MLPClassifier((12,), activation=act, max_iter=60, random_state=0)
    yield "forest", lambda: RandomForestClassifier(n_estimators=10, random_state=0)
    yield "ridge", lambda: RidgeClassifier()


ESTIMATORS = dict(_estimators())


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_sklearn_predictions_agree_with_the_estimator(digits, name, k):
    X, y = _data(digits, k)
    labels = np.array(["zero", "one", "two", "three"])[y]  # original, non-integer labels
    est = _fit(ESTIMATORS[name](), X, labels)
    model = wrap(est)
    assert isinstance(model, WrappedModel) and isinstance(model, Model)
    assert model.n_classes == k and model.input_shape == (64,)
    np.testing.assert_array_equal(model.classes_, est.classes_)
    np.testing.assert_array_equal(model.predict(X), est.predict(X))
    white_box = name.split("-")[0] in ("lr", "svc", "mlp")
    assert model.has_logits == model.has_gradients == white_box
    assert model.has_proba == hasattr(est, "predict_proba")
    if model.has_proba:
        P = model.predict_proba(X)
        assert P.dtype == np.float64 and P.shape == (len(X), k)
        np.testing.assert_array_equal(P, est.predict_proba(X))
    else:
        with pytest.raises(CapabilityError, match=r"no probabilities \(e\.g\. SVC\(probability=False\)\)"):
            model.predict_proba(X)
    if white_box:
        L = model.logits(X)
        assert L.shape == (len(X), k)
        if name.startswith("svc"):
            dec = est.decision_function(X)
            np.testing.assert_allclose(L if k > 2 else L[:, 1], dec, atol=1e-10)
        else:
            np.testing.assert_allclose(np.argmax(L, axis=1), np.argmax(est.predict_proba(X), axis=1))
        assert model.class_gradient(X[:3], est.classes_[0]).shape == (3, 64)
        assert model.class_gradient(X[:3]).shape == (3, k, 64)
    else:
        with pytest.raises(CapabilityError, match="gradients"):
            model.class_gradient(X[:3], est.classes_[0])
        with pytest.raises(CapabilityError, match="logits"):
            model.logits(X[:3])


def test_nusvc_and_sparse_svc(digits):
    X, y = _data(digits, 3)
    for est in (NuSVC(kernel="rbf", nu=0.3).fit(X, y), SVC(kernel="poly").fit(sparse.csr_matrix(X), y)):
        model = wrap(est)
        assert model.has_gradients
        np.testing.assert_allclose(model.logits(X), est.decision_function(X), atol=1e-10)


@pytest.mark.parametrize("k", [2, 3])
def test_cross_entropy_loss_matches_sklearn_probabilities(digits, k):
    X, y = _data(digits, k)
    for est in (
        LogisticRegression(max_iter=300),
        MLPClassifier((8,), max_iter=50, random_state=0),
        RandomForestClassifier(n_estimators=5, random_state=0),
    ):
        est = _fit(est, X, y)
        model = wrap(est)
        expected = -np.log(np.maximum(est.predict_proba(X)[np.arange(len(X)), y], np.finfo(float).tiny))
        np.testing.assert_allclose(model.loss(X, y), expected, rtol=1e-9, atol=1e-12)
        assert model.loss_name == "cross-entropy"


def test_predict_only_estimator(digits):
    class MajorityVote(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.classes_ = np.unique(y)
            self.n_features_in_ = X.shape[1]
            return self

        def predict(self, X):
            return np.full(len(X), self.classes_[0])

    X, y = _data(digits, 3)
    model = wrap(MajorityVote().fit(X, y))
    assert not (model.has_proba or model.has_logits or model.has_gradients)
    np.testing.assert_array_equal(model.predict(X[:4]), [0, 0, 0, 0])
    with pytest.raises(CapabilityError, match="MajorityVote has no probabilities"):
        model.predict_proba(X[:4])
    with pytest.raises(CapabilityError, match="labels only"):
        model.loss(X[:4], y[:4])


def test_svc_hinge_loss_values(digits):
    X, y = _data(digits, 2)
    est = SVC(kernel="rbf").fit(X, y)
    g = est.decision_function(X)
    np.testing.assert_allclose(wrap(est).loss(X, y), np.maximum(0, 1 - np.where(y == 1, 1, -1) * g))
    X3, y3 = _data(digits, 3)
    est3 = SVC(kernel="linear").fit(X3, y3)
    f = est3.decision_function(X3)
    rows = np.arange(len(y3))
    rival = np.where(np.arange(3)[None] == y3[:, None], -np.inf, f).max(axis=1)
    np.testing.assert_allclose(wrap(est3).loss(X3, y3), np.maximum(0, 1 + rival - f[rows, y3]))


def test_callable_proba_and_labels(digits):
    X, y = _data(digits, 3)
    est = LogisticRegression(max_iter=300).fit(X, y)
    proba = wrap(est.predict_proba, input_shape=(8, 8), query_budget=100)
    assert proba.n_classes == 3 and proba.input_shape == (8, 8) and proba.queries == 0
    np.testing.assert_allclose(proba.predict_proba(X[:10]), est.predict_proba(X[:10]))
    np.testing.assert_array_equal(proba.predict(X[:10]), est.predict(X[:10]))
    assert proba.queries == 20 and not proba.has_gradients
    labels = wrap(est.predict, input_shape=(64,), n_classes=3, output="labels")
    np.testing.assert_array_equal(labels.predict(X), est.predict(X))
    with pytest.raises(CapabilityError, match="no probabilities"):
        labels.predict_proba(X[:2])
    with pytest.raises(InvalidParameterError, match="n_classes: required"):
        wrap(est.predict, input_shape=(64,), output="labels")
    with pytest.raises(InvalidParameterError, match="input_shape: required"):
        wrap(est.predict_proba)
    with pytest.raises(InvalidParameterError, match="output"):
        wrap(est.predict_proba, input_shape=(64,), output="scores")


def test_callable_output_is_validated(digits):
    X, _ = _data(digits, 3)
    bad_sums = wrap(lambda Z: np.full((len(Z), 3), 0.5), input_shape=(64,))
    with pytest.raises(UnsupportedModelError, match="do not sum to 1"):
        bad_sums.predict_proba(X[:2])
    wrong_rows = wrap(lambda Z: np.full((1, 2), 0.5), input_shape=(64,))
    with pytest.raises(UnsupportedModelError, match=r"expected \(4, 2\)"):
        wrong_rows.predict(X[:4])
    out_of_range = wrap(lambda Z: np.full(len(Z), 7), input_shape=(64,), n_classes=3, output="labels")
    with pytest.raises(UnsupportedModelError, match=r"integer labels in \[0, 3\)"):
        out_of_range.predict(X[:2])


def test_unsupported_objects_get_a_helpful_error(digits):
    with pytest.raises(
        UnsupportedModelError, match="cannot adapt builtins.str.*scikit-learn.*torch.*callable"
    ):
        wrap("model.pkl")
    with pytest.raises(UnsupportedModelError, match="class LogisticRegression, not an instance"):
        wrap(LogisticRegression)
    X, y = _data(digits, 2)
    with pytest.raises(UnsupportedModelError, match="LinearRegression is not a classifier"):
        wrap(LinearRegression().fit(X, y))
    with pytest.raises(UnsupportedModelError, match="SVC is not fitted; call fit"):
        wrap(SVC())
    with pytest.raises(UnsupportedModelError, match="MLPClassifier is not fitted"):
        wrap(MLPClassifier())
    with pytest.raises(InvalidParameterError, match="unexpected keyword.*batch_size"):
        wrap(LogisticRegression().fit(X, y), batch_size=3)
    with pytest.raises(InvalidParameterError, match="n_classes: LogisticRegression has 2 classes"):
        wrap(LogisticRegression().fit(X, y), n_classes=3)


def test_input_checks(digits):
    X, y = _data(digits, 2)
    model = wrap(LogisticRegression().fit(X, y), input_shape=(8, 8))
    with pytest.raises(InvalidInputError, match="X: expected 64 features .*got 63"):
        model.predict(X[:, :63])
    with pytest.raises(InvalidInputError, match="X: expected a 2-D array.*reshape"):
        model.predict_proba(X[0])
    with pytest.raises(InvalidInputError, match="NaN"):
        model.predict(np.full((1, 64), np.nan))
    with pytest.raises(InvalidInputError, match="label: labels must be entries of classes_"):
        model.class_gradient(X[:2], 5)
    with pytest.raises(InvalidInputError, match="y: expected a scalar label or 2 labels"):
        model.loss_gradient(X[:2], y[:3])
    with pytest.raises(InvalidParameterError, match="input_shape"):
        wrap(LogisticRegression().fit(X, y), input_shape=(8, 7))
    assert model.queries == 0


def test_query_counting_and_budget(digits):
    X, y = _data(digits, 3)
    model = wrap(SVC(kernel="rbf").fit(X, y), query_budget=25)
    assert model.queries == 0 and model.queries_left == 25
    model.predict(X[:10])
    model.logits(X[:5])
    model.loss(X[:5], y[:5])
    assert model.queries == 20 and model.queries_left == 5
    model.class_gradient(X[:30], y[:30])
    model.loss_gradient(X[:30], y[:30])
    assert model.queries == 20 and model.gradient_queries == 60  # gradients don't use the budget

    calls = []
    spy = wrap(
        lambda Z: calls.append(len(Z)) or np.full((len(Z), 2), 0.5),
        input_shape=(64,),
        n_classes=2,
        query_budget=3,
    )
    spy.predict_proba(X[:3])
    with pytest.raises(QueryBudgetExceeded) as info:
        spy.predict(X[:1])
    assert (info.value.budget, info.value.used, info.value.requested) == (3, 3, 1)
    assert calls == [3] and spy.queries == 3  # nothing was computed, nothing counted
    spy.reset_queries()
    assert spy.queries == 0 and spy.gradient_queries == 0
    spy.predict(X[:2])
    assert calls == [3, 2]


def test_rewrapping_sets_a_new_budget(digits):
    X, y = _data(digits, 2)
    model = wrap(LogisticRegression().fit(X, y))
    assert wrap(model) is model
    model.predict(X[:4])
    limited = wrap(model, query_budget=2)
    assert limited is not model and limited.query_budget == 2 and limited.queries == 0
    assert limited.has_gradients and model.query_budget is None and model.queries == 4
    with pytest.raises(QueryBudgetExceeded, match="0 of 2 queries used, 3 more requested"):
        limited.predict(X[:3])
    with pytest.raises(InvalidParameterError, match="n_classes"):
        wrap(model, n_classes=5)


def test_torch_module(digits):
    torch = pytest.importorskip("torch")
    X, y = _data(digits, 3)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(4 * 6 * 6, 3),
    )
    net.train()
    model = wrap(net, input_shape=(1, 8, 8), batch_size=16, query_budget=len(X) * 2)
    assert model.n_classes == 3 and model.has_gradients and net.training  # mode restored
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    with torch.no_grad():
        net.eval()
        expected = net(torch.as_tensor(X, dtype=torch.float32).reshape(-1, 1, 8, 8)).double().numpy()
        net.train()
    np.testing.assert_allclose(model.logits(X), expected, rtol=1e-5, atol=1e-6)
    P = model.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert model.queries == 2 * len(X) and net.training
    with pytest.raises(QueryBudgetExceeded, match="1 more requested"):
        model.predict(X[:1])
    assert model.class_gradient(X[:20], 1).shape == (20, 64)
    assert model.class_gradient(X[:20]).shape == (20, 3, 64)
    with pytest.raises(InvalidParameterError, match="input_shape: required"):
        wrap(net)
    with pytest.raises(InvalidParameterError, match="n_classes: the module returns 3"):
        wrap(net, input_shape=(1, 8, 8), n_classes=10)
    with pytest.raises(InvalidParameterError, match="unexpected keyword"):
        wrap(net, input_shape=(1, 8, 8), output="proba")


def test_torch_single_output_is_binary(digits):
    torch = pytest.importorskip("torch")
    X, _ = _data(digits, 2)
    torch.manual_seed(0)
    net = torch.nn.Linear(64, 1)
    model = wrap(net, input_shape=(64,))
    z = net(torch.as_tensor(X, dtype=torch.float32)).detach().double().numpy()[:, 0]
    assert model.n_classes == 2
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-6)
    grad = model.class_gradient(X[:3])
    assert not grad[:, 0].any()
    np.testing.assert_allclose(grad[:, 1], np.broadcast_to(net.weight.detach().double().numpy(), (3, 64)))


def test_a_rejected_answer_is_not_charged_to_the_budget():
    calls = []

    def flaky(X):
        calls.append(len(X))
        if len(calls) == 1:
            return np.full((len(X), 3), 0.5)  # rows sum to 1.5: rejected
        return np.full((len(X), 3), 1 / 3)

    model = wrap(flaky, input_shape=(4,), n_classes=3, query_budget=5)
    with pytest.raises(UnsupportedModelError, match="do not sum to 1"):
        model.predict_proba(np.zeros((5, 4)))
    assert model.queries == 0 and model.queries_left == 5
    assert model.predict_proba(np.zeros((5, 4))).shape == (5, 3) and model.queries == 5
    with pytest.raises(QueryBudgetExceeded, match="5 of 5 queries used, 1 more requested"):
        model.predict(np.zeros((1, 4)))
    assert calls == [5, 5]  # the refused call never reached the function


def test_a_wrapped_mlp_copies_its_weights_only_for_logits_and_gradients():
    # reference models only answer predict_proba: their wrappers must not hold a float64 copy of the
    # weights (a third of a float32 MLP's memory); the first logit or gradient makes it
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier((16,), max_iter=20, random_state=0).fit(X[:300], y[:300])
    model = wrap(mlp)
    model.predict_proba(X[:5])
    model.predict(X[:5])
    assert "_W" not in vars(model) and "_bias" not in vars(model)
    logits = model.logits(X[:5])
    assert "_W" in vars(model) and model._W[0].dtype == np.float64
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(softmax, mlp.predict_proba(X[:5]), rtol=1e-5)
