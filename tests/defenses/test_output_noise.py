"""OutputNoise: fresh noise on every answer, rows still probabilities, labels never changed."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlpentest import datasets
from mlpentest.defenses import OutputNoise
from mlpentest.errors import CapabilityError, InvalidParameterError
from mlpentest.models import wrap


@pytest.fixture(scope="module")
def model():
    data = datasets.load("digits")
    return LogisticRegression(max_iter=500).fit(data.X[:500], data.y[:500]), data.X[500:600]


def test_noisy_rows_are_probabilities_and_labels_are_kept(model):
    clf, X = model
    api = OutputNoise(clf, scale=0.05, random_state=0)
    P, Q = api.predict_proba(X), api.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert P.min() >= 0.0 and not np.allclose(P, Q)  # fresh noise on every query
    assert np.abs(P - clf.predict_proba(X)).mean() > 0.01
    np.testing.assert_array_equal(api.predict(X), clf.predict(X))
    again = OutputNoise(clf, scale=0.05, random_state=0).predict_proba(X)
    np.testing.assert_array_equal(again, P)  # seeded
    np.testing.assert_allclose(OutputNoise(clf, scale=0.0).predict_proba(X), clf.predict_proba(X), atol=1e-6)
    laplace = OutputNoise(clf, scale=0.05, noise="laplace", random_state=0).predict_proba(X)
    np.testing.assert_allclose(laplace.sum(axis=1), 1.0)
    assert api.queries == 300 and not api.has_gradients  # two predict_proba, one predict


def test_bad_settings_and_models(model):
    clf, X = model
    with pytest.raises(InvalidParameterError, match="^scale"):
        OutputNoise(clf, scale=float("nan"))
    with pytest.raises(InvalidParameterError, match="^noise"):
        OutputNoise(clf, scale=0.1, noise="uniform")
    labels_only = wrap(clf.predict, input_shape=(64,), n_classes=10, output="labels")
    with pytest.raises(CapabilityError, match="returns labels only"):
        OutputNoise(labels_only, scale=0.1)
    with pytest.raises(CapabilityError, match="no gradients"):
        OutputNoise(clf, scale=0.1).loss_gradient(X[:2], clf.predict(X[:2]))
