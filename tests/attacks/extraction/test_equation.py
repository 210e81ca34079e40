"""Equation solving (Tramèr et al. 2016, Sec. 4.1) on real data: exact copies from the fewest queries.

Victims are trained on digits (64 features, 8x8 images scaled to [0, 1]) and reached only through
``wrap(callable)`` returning probabilities — the attack never sees the estimator. Measured (seed 0):
binary LR 65 queries, largest parameter error 1.7e-12, fidelity 1.0; softmax over 10 classes 65 queries,
error 2.0e-12; rounded to 2 decimals the error grows to 5e4 (fidelity 0.49 / 0.08: rounded-to-zero
confidences make the log-ratios meaningless) and the attack says so. A 5-unit tanh MLP fitted to 331
uniform queries agrees on 0.92 of test digits, to 597 natural digits on 0.97.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from mlpentest import datasets
from mlpentest.attacks.extraction import EquationSolving, ExtractionResult
from mlpentest.defenses import ConfidenceMasking
from mlpentest.errors import CapabilityError, InvalidInputError, InvalidParameterError
from mlpentest.models import wrap


@pytest.fixture(scope="module")
def digits():
    data = datasets.load("digits")
    return data.split({"train": 900, "test": 600}, random_state=0)


def api(model):
    """The victim as a prediction API: a bare callable returning probabilities (no estimator object)."""
    return wrap(lambda X: model.predict_proba(X), input_shape=(model.n_features_in_,),
                n_classes=len(model.classes_))


@pytest.fixture(scope="module")
def binary(digits):
    train = digits["train"]
    return LogisticRegression(C=1.0, max_iter=2000).fit(train.X, train.y >= 5)


@pytest.fixture(scope="module")
def softmax(digits):
    train = digits["train"]
    return LogisticRegression(C=1.0, max_iter=2000).fit(train.X, train.y)


def _error(stolen, victim):
    coef, intercept = victim.coef_, victim.intercept_
    if len(coef) > 1:
        coef, intercept = coef - coef.mean(axis=0), intercept - intercept.mean()
    model = stolen.estimator
    return max(np.abs(model.coef_ - coef).max(), np.abs(model.intercept_ - intercept).max())


def test_binary_logistic_regression_from_exactly_d_plus_1_queries(digits, binary):
    test = digits["test"]
    victim = api(binary)
    result = EquationSolving(victim, random_state=0).run(X_test=test.X, y_test=test.y >= 5)
    assert isinstance(result, ExtractionResult)
    assert result.queries == 65 and victim.queries == 65  # d + 1, and scoring is not charged
    assert _error(result.stolen, binary) < 1e-6  # bar: max parameter error < 1e-6
    assert result.fidelity == 1.0  # bar: 100% agreement on held-out data
    assert result.stolen_accuracy == result.victim_accuracy
    assert result.notes == ()


def test_softmax_regression_within_d_plus_1_times_k_queries(digits, softmax):
    test = digits["test"]
    result = EquationSolving(api(softmax), random_state=0).run(X_test=test.X, y_test=test.y)
    assert result.queries <= 65 * 10  # bar: at most (d + 1) k queries (it needs d + 1)
    assert _error(result.stolen, softmax) < 1e-6
    assert result.fidelity == 1.0
    assert np.allclose(result.stolen.predict_proba(test.X), softmax.predict_proba(test.X), atol=1e-9)


def test_parameter_error_is_reported_when_the_weights_are_readable(digits, softmax):
    result = EquationSolving(softmax, verify=5, random_state=0).run()
    assert result.parameter_error < 1e-6 and result.params["residual"] < 1e-9
    assert result.queries == 70  # d + 1 plus the verification queries


def test_rounded_confidences_break_exactness_and_the_attack_says_so(digits, binary, softmax):
    test = digits["test"]
    for model in (binary, softmax):
        rounded = ConfidenceMasking(api(model), decimals=2)
        result = EquationSolving(rounded, verify=20, random_state=0).run(X_test=test.X)
        assert any("rounded to 2 decimal" in note for note in result.notes)
        assert any("not exact" in note for note in result.notes)
        assert _error(result.stolen, model) > 1e-3  # the error is there and reported
        assert np.isnan(result.parameter_error)  # the API hides the weights from the scorer too
        assert result.fidelity < 1.0 or result.params["residual"] > 1e-3
    seen = EquationSolving(ConfidenceMasking(softmax, decimals=2), random_state=0).run()
    assert seen.parameter_error > 1e-3  # the scorer looks through the masking wrapper when it can


def test_a_one_hidden_layer_mlp_by_optimisation(digits):
    data = datasets.load("digits").split({"train": 900, "test": 300, "pool": 597}, random_state=0)
    train, test, pool = data["train"], data["test"], data["pool"].X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        victim = MLPClassifier((5,), activation="tanh", max_iter=500, random_state=0)
        victim.fit(train.X, train.y >= 5)
    n_params = 64 * 5 + 5 + 5 + 1
    uniform = EquationSolving(api(victim), hidden=5, activation="tanh", random_state=0).run(X_test=test.X)
    assert uniform.queries == n_params and uniform.fidelity >= 0.85  # measured 0.92 (test), far from 0.5
    pooled = EquationSolving(api(victim), hidden=5, activation="tanh", max_queries=597,
                             random_state=0).run(pool, X_test=test.X, y_test=test.y >= 5)
    assert pooled.queries == 597 and pooled.fidelity >= 0.95  # measured 0.97 with natural queries
    assert np.isnan(pooled.parameter_error)  # hidden units have no fixed order
    assert pooled.stolen_accuracy >= pooled.victim_accuracy - 0.05


def test_a_spent_budget_leaves_a_partial_copy(digits, softmax):
    test = digits["test"]
    result = EquationSolving(wrap(softmax, query_budget=40), random_state=0).run(X_test=test.X)
    assert result.budget_exhausted and result.queries == 40
    assert any("stopped answering after 40" in note for note in result.notes)
    assert 0.5 < result.fidelity < 1.0  # measured 0.88: the minimum-norm solution of 40 equations
    mlp = EquationSolving(wrap(softmax, query_budget=100), hidden=3, random_state=0).run(X_test=test.X)
    assert mlp.budget_exhausted and mlp.queries == 100


def test_labels_only_victims_are_refused(binary):
    labels = wrap(lambda X: binary.predict(X).astype(int), input_shape=(64,), n_classes=2, output="labels")
    with pytest.raises(CapabilityError, match="probabilities"):
        EquationSolving(labels).run()


def test_bad_settings_name_themselves(binary):
    with pytest.raises(InvalidParameterError, match="hidden"):
        EquationSolving(binary, hidden=0).run()
    with pytest.raises(InvalidParameterError, match="verify"):
        EquationSolving(binary, verify=-1).run()


def test_bad_held_out_data_is_refused_before_any_query(digits, binary):
    victim = api(binary)
    with pytest.raises(InvalidInputError, match="X_test"):
        EquationSolving(victim, random_state=0).run(X_test=digits["test"].X[:, :10])
    with pytest.raises(InvalidInputError, match="y_test"):
        EquationSolving(victim, random_state=0).run(X_test=digits["test"].X, y_test=digits["test"].y[:5])
    assert victim.queries == 0  # (the checks ran after the queries before)
