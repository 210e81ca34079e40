"""Biggio et al. (2013) gradient-descent evasion on digits "3" vs "7" (X in [0, 1], 64 features).

The attacker moves "7"s (label 1, g > 0) towards "3"s (label 0), mimicking training "3"s.
"""

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from mlpentest.attacks.evasion import EvasionResult, norm
from mlpentest.attacks.evasion.svm import EvasionSVM, kde_density, minimum_distance_linear
from mlpentest.datasets import load
from mlpentest.errors import CapabilityError, InvalidInputError, InvalidParameterError

SVMS = {"linear": {"C": 1.0}, "rbf": {"C": 10.0}, "poly": {"C": 1.0, "degree": 2}}


@pytest.fixture(scope="module")
def data():
    ds = load("digits").pair(3, 7)
    idx = np.random.RandomState(0).permutation(ds.n_samples)
    X, y = ds.X.astype(np.float64)[idx], ds.y[idx]
    return X[:200], y[:200], X[200:], y[200:]


@pytest.fixture(scope="module")
def svms(data):
    Xtr, ytr, _, _ = data
    return {k: SVC(kernel=k, **kw).fit(Xtr, ytr) for k, kw in SVMS.items()}


def _sevens(data, clf, n=None):
    _, _, Xte, yte = data
    pts = Xte[(yte == 1) & (clf.predict(Xte) == 1)]
    return pts if n is None else pts[:n]


def test_linear_svm_distance_matches_the_closed_form_minimum(data, svms):
    clf = svms["linear"]
    pts = _sevens(data, clf)
    # no box, no mimicry, tiny steps: the descent walks straight along -w; the first iterate with
    # g < 0 lies within one step t of the boundary
    res = EvasionSVM(clf, dmax=100.0, max_iter=800, t=0.002, bounds=None, tol=0.0).attack(pts)
    g, dist = res.log["g"], res.log["distance"]
    assert (g[-1] < 0).all()
    crossed = dist[np.argmax(g < 0, axis=0), np.arange(len(pts))]
    reference = minimum_distance_linear(clf, pts)
    rel = np.abs(crossed - reference) / reference
    assert rel.max() < 0.05, rel.max()
    assert np.median(rel) < 0.01


@pytest.mark.parametrize("kernel", ["rbf", "poly"])
def test_nonlinear_svms_are_evaded_within_dmax_2(data, svms, kernel):
    clf = svms[kernel]
    _, _, Xte, yte = data
    assert clf.score(Xte, yte) > 0.95
    res = EvasionSVM(clf, dmax=2.0, max_iter=100, t=0.1).attack(_sevens(data, clf))
    assert isinstance(res, EvasionResult)
    assert res.success_rate >= 0.95, res.success_rate
    assert (res.distance <= 2.0 + 1e-9).all()
    assert (res.y_adv[res.success] == 0).all()


def test_mimicry_raises_the_target_density(data, svms):
    Xtr, ytr, _, _ = data
    clf, threes = svms["rbf"], Xtr[ytr == 0]
    pts = _sevens(data, clf, 20)
    dens = {}
    for lam in (0.0, 100.0):
        res = EvasionSVM(clf, threes, dmax=2.0, max_iter=100, t=0.1, lam=lam, h=3.0).attack(pts)
        dens[lam] = kde_density(res.x_adv, threes, h=3.0).mean()
    assert dens[100.0] > 1.4 * dens[0.0], dens


@pytest.mark.parametrize(("p", "dmax", "t"), [("l2", 0.8, 0.2), ("l1", 3.0, 0.5)])
def test_every_iterate_is_inside_the_ball_and_the_box(data, svms, p, dmax, t):
    Xtr, ytr, _, _ = data
    clf, pts = svms["rbf"], _sevens(data, svms["rbf"], 15)
    kw = {"dmax": dmax, "t": t, "norm": p, "lam": 10.0, "h": 3.0}
    res = EvasionSVM(clf, Xtr[ytr == 0], max_iter=40, **kw).attack(pts)
    assert (res.log["distance"] <= dmax + 1e-9).all()
    assert res.log["distance"].shape == res.log["g"].shape == (res.params["n_steps"] + 1, len(pts))
    assert res.log["distance"][-1].max() > 0.9 * dmax  # the budget binds, so the projection was exercised
    np.testing.assert_allclose(norm(res.x_adv - pts, p), res.log["distance"][-1])
    for k in (1, 5, 40):  # the run is deterministic: the k-th iterate is the result of max_iter=k
        x = EvasionSVM(clf, Xtr[ytr == 0], max_iter=k, **kw).attack(pts).x_adv
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert (norm(x - pts, p) <= dmax + 1e-9).all()


@pytest.mark.parametrize("kernel", ["linear", "rbf", "poly"])
@pytest.mark.parametrize("kde_kernel", ["rbf", "laplacian"])
def test_objective_gradient_matches_finite_differences(data, svms, kernel, kde_kernel):
    Xtr, ytr, _, _ = data
    attack = EvasionSVM(svms[kernel], Xtr[ytr == 0], dmax=1.0, lam=10.0, h=3.0, kde_kernel=kde_kernel)
    rng = np.random.default_rng(0)
    X = np.clip(_sevens(data, svms[kernel], 3) + rng.normal(scale=0.05, size=(3, 64)), 0.01, 0.99)
    y = np.ones(3, dtype=int)
    _, grad = attack.objective(X, y)
    eps, fd = 1e-6, np.empty_like(X)
    for j in range(X.shape[1]):
        e = np.zeros_like(X)
        e[:, j] = eps
        fd[:, j] = (attack.objective(X + e, y)[0] - attack.objective(X - e, y)[0]) / (2 * eps)
    rel = np.linalg.norm(grad - fd, axis=1) / np.linalg.norm(fd, axis=1)
    assert rel.max() < 1e-4, rel


@pytest.mark.parametrize(
    "model",
    [LogisticRegression(C=1.0, max_iter=1000),
     MLPClassifier(hidden_layer_sizes=(16,), max_iter=500, random_state=0)],
    ids=["logreg", "mlp"],
)
def test_other_differentiable_models_via_class_gradients(data, model):
    Xtr, ytr, Xte, yte = data
    clf = model.fit(Xtr, ytr)
    assert clf.score(Xte, yte) > 0.95
    both = np.vstack([_sevens(data, clf, 5), Xte[(yte == 0) & (clf.predict(Xte) == 0)][:5]])
    res = EvasionSVM(clf, dmax=3.0, max_iter=100, t=0.1).attack(both)  # both directions at once
    assert res.success_rate >= 0.9
    assert (res.log["g"][0] > 0).all() and (res.log["g"][-1][res.success] < 0).all()


def test_the_seeds_call_pattern(data, svms):
    Xtr, ytr, _, _ = data
    clf = svms["rbf"]
    x0 = _sevens(data, clf)[0]
    xm, log = EvasionSVM(clf, Xtr[ytr == 0], dmax=2.5, max_iter=300, lam=10, t=0.5, h=10).attack(x0)
    assert xm.shape == (64,)  # one point in, one point out
    assert clf.predict(xm[None])[0] == 0
    assert set(log) == {"objective", "g", "distance"} and log["g"].ndim == 1
    assert (log["distance"] <= 2.5 + 1e-9).all()
    batch = EvasionSVM(clf, dmax=2.5, t=0.5).attack(_sevens(data, clf, 3), y=1)  # one label for all
    assert (batch.y_true == 1).all() and batch.success.all()


def test_parameters_are_stored_unchanged_and_validated_in_attack(data, svms):
    clf = svms["rbf"]
    attack = EvasionSVM(clf, dmax=-1.0, t=0.0, norm="l7")  # no error before attack()
    stored = (attack.model, attack.X_minus_1, attack.dmax, attack.t, attack.norm)
    assert stored == (clf, None, -1.0, 0.0, "l7")
    x0 = _sevens(data, clf, 2)
    for kw, name in [({"dmax": 0.0}, "dmax"), ({"dmax": 1.0, "t": -0.1}, "t"),
                     ({"dmax": 1.0, "norm": "l7"}, "norm"), ({"dmax": 1.0, "lam": 1.0}, "X_minus_1"),
                     ({"dmax": 1.0, "kde_kernel": "tophat"}, "kde_kernel")]:
        with pytest.raises(InvalidParameterError, match=name):
            EvasionSVM(clf, **kw).attack(x0)


def test_bad_models_and_inputs(data, svms):
    Xtr, ytr, _, _ = data
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(Xtr, ytr)
    with pytest.raises(CapabilityError, match="gradients"):
        EvasionSVM(forest, dmax=1.0).attack(Xtr[:2])
    attack = EvasionSVM(svms["rbf"], dmax=1.0)
    with pytest.raises(InvalidInputError, match="^X: expected 64 features"):
        attack.attack(Xtr[:2, :10])
    with pytest.raises(InvalidInputError, match=r"^X: values must lie in \[0.0, 1.0\]"):
        attack.attack(Xtr[:2] + 2.0)  # outside the box
    with pytest.raises(InvalidParameterError, match="gamma"):
        EvasionSVM(LogisticRegression().fit(Xtr, ytr), dmax=1.0, gamma=0.1).attack(Xtr[:2])


def test_gamma_override_descends_a_mismatched_surrogate(data, svms):
    clf = svms["rbf"]
    pts = _sevens(data, clf, 10)
    res = EvasionSVM(clf, dmax=2.0, max_iter=100, t=0.1, gamma=clf._gamma * 20).attack(pts)
    own = EvasionSVM(clf, dmax=2.0, max_iter=100, t=0.1).attack(pts)
    # the log's g is the real model's margin, the objective the surrogate's
    assert not np.allclose(res.log["objective"][0], res.log["g"][0])
    np.testing.assert_allclose(res.log["g"][0], clf.decision_function(pts))
    assert own.success_rate >= res.success_rate
