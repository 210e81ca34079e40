"""Path finding (Tramèr et al. 2016, Sec. 4.2, Algorithm 1): decision trees rebuilt leaf by leaf.

Measured (seed 0): an unpruned scikit-learn tree on 1,200 digits (117 leaves, depth 14): all 117 leaves
in 31,845 queries (about 270 a leaf: two ends per feature, ~17 bisections per threshold at eps = 1e-5),
about 1 s; the copy agrees on every held-out digit and on 20,000 uniform points of [0, 1]^64. With a
budget of 5,000 queries: 22 leaves, fidelity 0.41. Breast cancer (30 continuous features scaled to
[0, 1], 20 leaves): 2,962 queries, fidelity 1.0; eps = 1e-3 costs 2,212 queries and agrees on 0.999 of
uniform points. Six pixels searched as categorical (17 values
each) on a 40-leaf tree: 12,855 queries (9,742 all continuous), fidelity 1.0. BigML-style confidences as
leaf identities: exact while every leaf's class distribution differs (20 leaves), 0.82 when 60 leaves
share 39 distributions (leaves merge, the search misses some).
"""

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from mlpentest import datasets
from mlpentest.attacks.extraction import ExtractionResult, PathFinding
from mlpentest.errors import CapabilityError, InvalidParameterError, UnsupportedModelError
from mlpentest.models import wrap


@pytest.fixture(scope="module")
def digits():
    return datasets.load("digits").split({"train": 1200, "test": 597}, random_state=0)


@pytest.fixture(scope="module")
def tree(digits):
    return DecisionTreeClassifier(random_state=0).fit(digits["train"].X, digits["train"].y)


def labels_api(model, **kw):
    return wrap(lambda X: model.predict(X).astype(int), input_shape=(model.n_features_in_,),
                n_classes=len(model.classes_), output="labels", **kw)


def test_every_leaf_of_a_digits_tree_and_fidelity_one(digits, tree):
    test = digits["test"]
    victim = wrap(tree)
    result = PathFinding(victim, random_state=0).run(X_test=test.X, y_test=test.y)
    assert isinstance(result, ExtractionResult)
    leaves = np.flatnonzero(tree.tree_.children_left == -1)
    assert sorted(result.stolen.estimator.leaf_ids_) == leaves.tolist()  # all 117 leaves, no others
    assert result.params["leaves"] == 117 and result.queries == victim.queries <= 35_000  # measured 31,845
    assert result.fidelity == 1.0  # bar: exact on held-out digits
    assert result.stolen_accuracy == result.victim_accuracy
    uniform = np.random.RandomState(1).uniform(size=(20_000, 64))
    assert np.array_equal(result.stolen.predict(uniform), tree.predict(uniform))  # and on the whole box
    assert result.curve["fidelity"][-1] == 1.0 and np.all(np.diff(result.curve["queries"]) > 0)


def test_continuous_features_of_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))
    order = np.random.RandomState(0).permutation(len(X))
    train, test = order[:340], order[340:]
    victim = DecisionTreeClassifier(random_state=0).fit(X[train], y[train])
    result = PathFinding(victim, random_state=0).run(X_test=X[test], y_test=y[test])
    assert result.params["leaves"] == victim.get_n_leaves()
    assert result.fidelity == 1.0 and result.queries <= 3500  # measured 2,962
    # a threshold is known to within eps: a coarse eps misplaces a sliver of the box
    coarse = PathFinding(victim, eps=1e-3, random_state=0).run()
    uniform = np.random.RandomState(1).uniform(size=(20_000, 30))
    agree = np.mean(coarse.stolen.predict(uniform) == victim.predict(uniform))
    assert coarse.queries < result.queries and 0.99 < agree < 1.0


def test_labels_only_api_with_leaf_ids_and_categorical_features(digits):
    train, test = digits["train"], digits["test"]
    victim = DecisionTreeClassifier(max_leaf_nodes=40, random_state=0).fit(train.X, train.y)
    used = np.unique(victim.tree_.feature[victim.tree_.feature >= 0])[:6]
    categorical = {int(i): np.arange(17) / 16 for i in used}  # pixels take 17 values
    api = labels_api(victim)
    attack = PathFinding(api, leaf_id=victim.apply, categorical=categorical, random_state=0)
    result = attack.run(X_test=test.X)
    assert result.params["leaves"] == 40 and result.fidelity == 1.0
    assert result.queries == api.queries  # one query: a label and a leaf id; measured 12,855
    leaf = result.stolen.estimator
    assert set(leaf.allowed_) == set(categorical) and leaf.allowed_[int(used[0])].any(axis=1).all()


def test_confidences_identify_leaves_only_when_they_differ(digits):
    train, test = digits["train"], digits["test"]
    fidelity = {}
    for n_leaves in (20, 60):
        victim = DecisionTreeClassifier(max_leaf_nodes=n_leaves, random_state=0).fit(train.X, train.y)
        api = wrap(victim.predict_proba, input_shape=(64,), n_classes=10)
        result = PathFinding(api, leaf_id=victim.predict_proba, random_state=0).run(X_test=test.X)
        fidelity[n_leaves] = result.fidelity
    assert fidelity[20] == 1.0  # 20 distinct class distributions: exact
    assert fidelity[60] < 0.95  # 60 leaves, 39 distributions: measured 0.82


def test_the_victims_budget_gives_a_partial_copy(digits, tree):
    victim = wrap(tree, query_budget=5000)
    result = PathFinding(victim, random_state=0).run(X_test=digits["test"].X)
    assert result.budget_exhausted and result.queries == victim.queries <= 5000
    assert 0 < result.params["leaves"] < 117 and any("budget" in note for note in result.notes)
    assert 0.2 < result.fidelity < 1.0  # the leaves found so far, nearest leaf elsewhere; measured 0.41


def test_a_victim_without_leaf_ids_is_refused(digits, tree):
    X, y = digits["train"].X[:200], digits["train"].y[:200]
    with pytest.raises(CapabilityError, match="names the leaf"):
        PathFinding(SVC().fit(X, y)).run()
    with pytest.raises(CapabilityError, match="names the leaf"):
        PathFinding(labels_api(tree)).run()  # an API in front of the tree hides its leaves
    with pytest.raises(UnsupportedModelError, match="leaf_id"):
        PathFinding(tree, leaf_id=lambda X: np.zeros((len(X), 2, 2))).run()


def test_bad_settings_name_themselves(tree):
    cases = [({"eps": 0.0}, "eps"), ({"eps": 2.0}, "eps"), ({"leaf_id": "apply"}, "leaf_id"),
             ({"categorical": [3]}, "categorical"), ({"categorical": {64: [0, 1]}}, "categorical"),
             ({"categorical": {3: []}}, "categorical"), ({"bounds": None}, "bounds")]
    for settings, name in cases:
        with pytest.raises(InvalidParameterError, match=f"^{name}"):
            PathFinding(tree, **settings).run()
