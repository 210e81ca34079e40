"""The shadow attack's default attack model chooses what GridSearchCV over StandardScaler + SVC chooses."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mlpentest.attacks.membership._svm_search import C_GRID, GAMMA_GRID, RBFSVMSearch
from mlpentest.attacks.membership.shokri import default_attack_model
from mlpentest.errors import InvalidInputError


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_choice_and_decisions_as_grid_search(seed):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], 120)
    X = rng.normal(size=(240, 10)) * rng.uniform(0.1, 20, size=10) + np.outer(y, rng.normal(size=10))
    grid = {"svc__C": list(C_GRID), "svc__gamma": list(GAMMA_GRID)}
    reference = GridSearchCV(make_pipeline(StandardScaler(), SVC()), grid, cv=5).fit(X, y)
    ours = default_attack_model().fit(X, y)
    best = reference.best_params_
    assert ours.best_params_ == {"C": best["svc__C"], "gamma": best["svc__gamma"]}
    scores = reference.cv_results_["mean_test_score"]
    np.testing.assert_allclose(ours.cv_accuracy_.ravel(), scores, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), reference.predict(X))
    np.testing.assert_allclose(ours.decision_function(X), reference.decision_function(X), rtol=1e-6,
                               atol=1e-8)


def test_labels_and_errors():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.where(X[:, 0] > 0, "in", "out")
    model = RBFSVMSearch().fit(X, y)
    assert set(model.predict(X)) <= {"in", "out"} and np.mean(model.predict(X) == y) > 0.8
    with pytest.raises(InvalidInputError, match="y: expected two classes"):
        RBFSVMSearch().fit(X, np.zeros(40))
    with pytest.raises(InvalidInputError, match="X"):
        RBFSVMSearch().fit(np.full((40, 3), np.inf), y)
