"""Defences against model extraction: PRADA (Juuti et al. 2019), labels only, a query budget.

Rounding confidences (Tramèr et al. 2016, Sec. 7) is shown breaking equation solving's exactness in
tests/attacks/extraction/test_equation.py::test_rounded_confidences_break_exactness_and_the_attack_says_so.

PRADA, measured (seed 0). Fashion-MNIST victim (MLP (64,), 3000 training images, accuracy 0.84);
``delta`` calibrated on 20 benign streams of 500 held-out test images, margin 0.02: 0.915. Benign
streams from another held-out pool (5 x 1500, random order) reach min W 0.941-0.967 and min reference
p-value 5e-3: none flagged. Attack streams (queries before the flag):

====================================  =====================  ===========================
stream (length)                       paper's test (W)       + reference test (beyond)
====================================  =====================  ===========================
line search, 90 uniform + 10 natural  109 (min W 0.45)       10
Papernot JbDA, 10 seeds/class (1600)  151 (min W 0.71)       151 (by W)
uniform random in [0, 1]^784 (1500)   not flagged (W 0.976)  10
Knockoff-like: digits upscaled (1500) not flagged (W 0.956)  16
====================================  =====================  ===========================

Real Knockoff Nets (1000 queries, delta 0.915): from upscaled digits, random / adaptive, min W 0.956 /
0.947: not flagged by the paper's test, by the reference test after 16 / 18 queries; from Fashion images
(the victim's own domain) min W 0.969 / 0.969, min p 0.11 / 5e-3: neither test flags them — such a
stream is a benign client's.

Skewed benign clients are PRADA's weak spot: T-shirts only (250 queries) reaches W 0.9147, flagged after
202 queries at delta 0.9150 (a false alarm by a hair); shoes only (750) W 0.931, not flagged. The
reference test leaves both alone (min p 8e-5, 6e-3 against alpha 1e-8).

Digits victims (64 features), real attacks, ``delta`` 0.9: EquationSolving's 65 queries are too short
for the paper's test (it needs 100 distances); its 565 (softmax, verify=500) and 331 (MLP) uniform
queries reach W 0.98: not flagged; the reference test flags all three after 10 queries. EquationSolving's
MLP fed the attacker's natural digits (597) is indistinguishable from a benign client (neither test flags
it). Retraining (600 queries, 4 rounds): line search flagged by W after 195 queries; uniform and adaptive
(synthesised queries, W 0.978) not by W, by the reference test after 10. With ``on_alarm="refuse"`` the
line search stops at 180 answered queries with a partial copy.
"""

import warnings

import numpy as np
import pytest
from scipy.ndimage import zoom
from scipy.special import kolmogorov
from scipy.stats import ks_2samp, shapiro
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from mlpentest import datasets
from mlpentest.attacks.extraction import EquationSolving, KnockoffNets, Retraining
from mlpentest.defenses import (
    PRADA,
    LabelsOnly,
    StreamOutcome,
    calibrate_delta,
    detection_table,
    format_table,
)
from mlpentest.defenses.prada import PRADAStream
from mlpentest.defenses.prada_reference import NaturalReference
from mlpentest.errors import (
    CapabilityError,
    ExtractionDetected,
    InvalidInputError,
    InvalidParameterError,
    QueryBudgetExceeded,
)
from mlpentest.models import wrap


# ---------------------------------------------------------------------------- attack streams, as the papers
def line_search(victim, n, X0, rng, steps=8):
    """Tramèr et al. 2016, Sec. 5.1: label the points X0, then bisect between differently-labelled pairs."""
    y0, out = victim.predict(X0), [X0]
    assert len(np.unique(y0)) > 1
    while sum(map(len, out)) < n:
        i, j = rng.choice(len(X0), 2, replace=False)
        if y0[i] == y0[j]:
            continue
        a, b = X0[i], X0[j]
        for _ in range(steps):
            mid = (a + b) / 2
            out.append(mid[None])
            a, b = (mid, b) if victim.predict(mid[None])[0] == y0[i] else (a, mid)
    return np.vstack(out)[:n]


def jacobian_augmentation(victim, seeds, rounds, lam=0.1):
    """Papernot et al. 2017: each round, x + lam * sign(gradient of the substitute's class) for all x."""
    S, out = seeds, [seeds]
    y = victim.predict(S)
    for r in range(rounds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            substitute = MLPClassifier((32,), max_iter=100, random_state=r).fit(S, y)
        new = np.clip(S + lam * np.sign(wrap(substitute).class_gradient(S, y)), 0, 1)
        out.append(new)
        S, y = np.vstack([S, new]), np.concatenate([y, victim.predict(new)])
    return np.vstack(out)


def upscaled_digits(X8):
    """8x8 digits as 28x28 images: natural images of another domain (Knockoff Nets' surrogate data)."""
    images = np.stack([zoom(im, 3.5, order=1) for im in X8.reshape(-1, 8, 8)])
    return np.clip(images.reshape(len(X8), -1), 0, 1)


@pytest.fixture(scope="module")
def fashion_case(fashion):
    parts = fashion.split({"train": 3000, "reference": 2000, "calibration": 2500, "benign": 2500,
                           "attacker": 1000}, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        victim = MLPClassifier((64,), max_iter=60, random_state=0).fit(parts["train"].X, parts["train"].y)
    return victim, parts


@pytest.fixture(scope="module")
def digits():
    return datasets.load("digits").split({"train": 900, "reference": 300, "benign": 597}, random_state=0)


@pytest.fixture(scope="module")
def softmax(digits):
    return LogisticRegression(max_iter=2000).fit(digits["train"].X, digits["train"].y)


def api(model):
    return wrap(lambda X: model.predict_proba(X), input_shape=(64,), n_classes=len(model.classes_))


# ---------------------------------------------------------------------------- the algorithm
def test_growing_set_rules_of_algorithm_1():
    stream = PRADAStream(1, min_queries=3)
    stream.update(np.array([[0.0], [1.0], [3.0], [3.1], [3.2]]), np.zeros(5, dtype=int))
    # 3.1 is within T_c = mean - std of DG_c = {0, 1, 2} (0.18) of G_c: it enters D but not G_c, so the
    # next query's distance is to 3.0 (0.2), not to 3.1
    np.testing.assert_allclose(stream.distances, [1.0, 2.0, 0.1, 0.2])
    assert stream._classes[0].size == 4
    assert stream.history["queries"].tolist() == [4, 5]
    assert stream.history["W"][-1] == pytest.approx(shapiro([1.0, 2.0, 0.1, 0.2]).statistic)


def test_blocks_give_the_distances_of_one_query_at_a_time():
    rng = np.random.RandomState(0)
    X, cols = rng.rand(1200, 5), rng.randint(0, 3, 1200)
    X[700], cols[700] = X[0], cols[0]  # a duplicate of a growing-set member: 0, not cancellation noise
    whole, single = PRADAStream(5, check_every=50), PRADAStream(5, check_every=50)
    whole.update(X, cols)
    for i in range(0, 1200, 37):
        single.update(X[i : i + 37], cols[i : i + 37])
    np.testing.assert_allclose(whole.distances, single.distances, rtol=0, atol=1e-12)
    np.testing.assert_allclose(whole.history["W"], single.history["W"])
    assert np.min(whole.distances) == 0.0 and len(whole.distances) == 1200 - 3
    D = whole.distances  # the last W is Shapiro-Wilk of the values within 3 std of the mean
    assert whole.history["W"][-1] == pytest.approx(shapiro(D[np.abs(D - D.mean()) <= 3 * D.std()]).statistic)


def test_reference_test_is_kolmogorov_smirnov_against_leave_one_out_distances():
    rng = np.random.RandomState(0)
    R, X = rng.rand(300, 4), rng.rand(50, 4) * 1.2
    reference = NaturalReference(R)
    full = np.sqrt(((R[:, None] - R[None]) ** 2).sum(-1)) + np.diag(np.full(300, np.inf))
    np.testing.assert_allclose(reference.null, np.sort(full.min(1)))
    r = np.sqrt(((X[:, None] - R[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(reference.nearest(X), r)
    stream = PRADAStream(4, reference=reference)
    stream.update(X, np.zeros(50, dtype=int))
    assert stream.reference_history["queries"].tolist() == list(range(10, 51))
    statistic = ks_2samp(r, full.min(1)).statistic
    assert stream.reference_history["p"][-1] == pytest.approx(kolmogorov(statistic * np.sqrt(50 * 300 / 350)))


# ---------------------------------------------------------------------------- PRADA on Fashion-MNIST
def test_prada_flags_synthetic_streams_and_no_benign_stream(fashion_case):
    victim, parts = fashion_case
    rng = np.random.RandomState(0)
    cal, ben = parts["calibration"].X, parts["benign"]
    delta = calibrate_delta(victim, {s: cal[np.random.RandomState(s).permutation(len(cal))[:500]]
                                     for s in range(20)}, margin=0.02)
    assert 0.85 < delta < 0.95  # measured 0.915
    benign = {f"benign {s}": ben.X[np.random.RandomState(s).permutation(len(ben.X))[:1500]] for s in range(5)}
    skewed = {"T-shirts only": ben.X[ben.y == 0], "shoes only": ben.X[np.isin(ben.y, [5, 7, 9])]}
    attacker = parts["attacker"]
    seeds = np.vstack([attacker.X[attacker.y == c][:10] for c in range(10)])
    # the victim labels nearly all uniform noise alike: a few known images give the lines their other ends
    endpoints = np.vstack([rng.uniform(0, 1, (90, 784)), seeds[::10]])
    attacks = {"line search": line_search(wrap(victim), 1500, endpoints, rng),
               "JbDA": jacobian_augmentation(wrap(victim), seeds.astype(np.float64), 4),
               "uniform": rng.uniform(0, 1, (1500, 784)),
               "knockoff digits": upscaled_digits(datasets.load("digits").X[rng.permutation(1797)[:1500]])}
    paper = {r.stream: r for r in detection_table(victim, {**benign, **attacks}, delta=delta)}
    assert not any(paper[name].flagged_at for name in benign)  # measured min W 0.941-0.967
    assert paper["line search"].flagged_at <= 150  # measured 109
    assert paper["JbDA"].flagged_at <= 300  # measured 151
    # as specified, PRADA tests the shape of D only: these pass (measured W 0.968 and 0.954)
    assert paper["uniform"].flagged_at is None and paper["knockoff digits"].flagged_at is None
    reference = parts["reference"].X
    extended = {r.stream: r for r in detection_table(victim, {**benign, **skewed, **attacks}, delta=delta,
                                                     reference=reference)}
    assert not any(extended[name].flagged_at for name in benign)  # measured min p 5e-3
    assert all(extended[name].min_p > 1e-6 for name in skewed)  # measured 8e-5, 6e-3
    for name in attacks:
        assert extended[name].flagged_at <= 300, format_table(list(extended.values()))
    assert extended["uniform"].flagged_at <= 20 and extended["knockoff digits"].flagged_at <= 30
    assert "reference test" in extended["uniform"].outcome and "not flagged" in extended["benign 0"].outcome


def test_knockoff_streams(fashion_case):
    victim, parts = fashion_case
    pools = {"fashion": parts["attacker"].X, "digits": upscaled_digits(datasets.load("digits").X)}
    outcome = {}
    for pool, X_pool in pools.items():
        for strategy in ("random", "adaptive"):
            defended = PRADA(victim, delta=0.915, reference=parts["reference"].X)
            KnockoffNets(defended, budget=1000, checkpoints=(1000,), strategy=strategy, epochs=1,
                         random_state=0).run(X_pool)
            outcome[pool, strategy] = StreamOutcome.from_prada(pool, defended)
    # natural images pass the paper's test (measured min W 0.947-0.969 > 0.915)
    assert all(row.min_w > 0.93 for row in outcome.values())
    # beyond the paper: another domain's images are flagged within tens of queries (measured 16 / 18);
    # the victim's own domain is a benign client's stream, and passes (min p 0.11 / 5e-3)
    assert outcome["digits", "random"].flagged_at <= 30 and outcome["digits", "adaptive"].flagged_at <= 30
    assert all(outcome["fashion", strategy].flagged_at is None for strategy in ("random", "adaptive"))


# ---------------------------------------------------------------------------- real attacks, digits
def test_equation_solving_streams(digits, softmax):
    binary = LogisticRegression(max_iter=2000).fit(digits["train"].X, digits["train"].y >= 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier((5,), activation="tanh", max_iter=500, random_state=0)
        mlp.fit(digits["train"].X, digits["train"].y >= 5)
    pool, reference = digits["benign"].X, digits["reference"].X
    runs = {"LR": (binary, {}, None), "softmax": (softmax, {"verify": 500}, None),
            "MLP": (mlp, {"hidden": 5, "activation": "tanh"}, None),
            "MLP natural": (mlp, {"hidden": 5, "activation": "tanh", "max_queries": 597}, pool)}
    rows = {}
    for name, (model, settings, X_pool) in runs.items():
        for ref in (None, reference):
            defended = PRADA(api(model), delta=0.9, reference=ref)
            result = EquationSolving(defended, random_state=0, **settings).run(X_pool)
            rows[name, ref is not None] = StreamOutcome.from_prada(name, defended)
            assert defended.queries == result.queries
    assert [rows[n, False].queries for n in runs] == [65, 565, 331, 597]
    assert np.isnan(rows["LR", False].min_w)  # 65 queries: too short for the paper's test
    assert not any(rows[n, False].flagged_at for n in runs)  # uniform queries: W 0.98
    assert all(rows[n, True].flagged_at <= 20 for n in ("LR", "softmax", "MLP"))  # measured 10
    assert rows["MLP natural", True].flagged_at is None  # natural digits: a benign client's stream


def test_retraining_streams_and_refusal(digits, softmax):
    reference = digits["reference"].X
    outcome = {}
    for strategy in ("uniform", "line-search", "adaptive"):
        for ref in (None, reference):
            defended = PRADA(softmax, delta=0.9, reference=ref)
            Retraining(defended, strategy=strategy, budget=600, rounds=4, random_state=0).run()
            outcome[strategy, ref is not None] = defended.flagged_at
    assert outcome["line-search", False] <= 300  # measured 195
    assert outcome["uniform", False] is None and outcome["adaptive", False] is None  # W 0.978
    assert all(outcome[s, True] <= 20 for s in ("uniform", "line-search", "adaptive"))  # measured 10

    refusing = PRADA(softmax, delta=0.9, on_alarm="refuse")
    held_out = digits["benign"].X
    result = Retraining(refusing, strategy="line-search", budget=600, rounds=4, random_state=0).run(
        X_test=held_out)
    assert result.budget_exhausted and 0 < result.queries < 600 and refusing.flagged
    assert result.curve["queries"][-1] == result.queries  # the evaluator scores the partial copy
    assert 0.0 < result.fidelity < 1.0  # (measured 0.26: synthesised queries, far from digits)
    assert result.queries == refusing.queries  # measured 180: the batch holding query 195 was refused
    with pytest.raises(ExtractionDetected, match="extraction detected") as caught:
        refusing.predict(held_out[:3])
    assert isinstance(caught.value, QueryBudgetExceeded) and caught.value.flagged_at == refusing.flagged_at


# ---------------------------------------------------------------------------- labels only, budget
def test_labels_only_stops_equation_solving(digits, softmax):
    labels = LabelsOnly(softmax)
    X = digits["benign"].X
    np.testing.assert_array_equal(labels.predict(X), softmax.predict(X))
    with pytest.raises(CapabilityError, match="probabilities"):
        EquationSolving(labels).run()
    with pytest.raises(CapabilityError, match="labels only"):
        labels.predict_proba(X[:2])
    assert labels.queries == len(X) and not labels.has_gradients


def test_a_query_budget_stops_retraining_with_a_partial_copy(digits, softmax):
    victim = wrap(softmax, query_budget=150)
    result = Retraining(victim, strategy="uniform", budget=600, rounds=4, random_state=0).run()
    assert result.budget_exhausted and result.queries == 150 and victim.queries_left == 0


# ---------------------------------------------------------------------------- API
def test_copies_watch_their_own_stream_and_reset_forgets(digits, softmax):
    defended = PRADA(softmax, min_queries=20)
    budgeted = wrap(defended, query_budget=500)
    budgeted.predict(digits["benign"].X[:200])
    assert budgeted.stream.queries == 200 and defended.stream.queries == 0
    budgeted.reset()
    assert budgeted.stream.queries == 0 and not budgeted.flagged and len(budgeted.history["W"]) == 0
    assert PRADA(LabelsOnly(softmax)).has_proba is False


def test_tables_and_calibration_errors(digits, softmax):
    rows = detection_table(softmax, {"benign": digits["benign"].X, "short": digits["benign"].X[:50]})
    assert rows[0].outcome == "not flagged (597 queries)" and np.isnan(rows[1].min_w)
    assert rows[1].to_dict()["outcome"] == "not flagged (50 queries)"
    assert format_table(rows).splitlines()[0].startswith("stream")
    with pytest.raises(InvalidInputError, match="too short"):
        calibrate_delta(softmax, {"short": digits["benign"].X[:50]})
    with pytest.raises(InvalidInputError, match="^streams"):
        calibrate_delta(softmax, {})
    for bad, name in (({"delta": 0.0}, "delta"), ({"alpha": 1.0}, "alpha"), ({"on_alarm": "log"}, "on_alarm"),
                      ({"min_queries": 2}, "min_queries"), ({"check_every": 0}, "check_every")):
        with pytest.raises(InvalidParameterError, match=f"^{name}"):
            PRADA(softmax, **bad)
    with pytest.raises(InvalidInputError, match="reference"):
        PRADA(softmax, reference=np.zeros((5, 3)))
