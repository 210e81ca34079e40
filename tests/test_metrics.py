import json

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpentest import metrics
from mlpentest.errors import InvalidInputError, InvalidParameterError
from mlpentest.metrics import (
    ClassificationReport,
    RocCurve,
    auc,
    balanced_accuracy,
    classification_report,
    confusion_matrix,
    fidelity,
    max_membership_advantage,
    membership_advantage,
    roc_curve,
    success_rate,
    tpr_at_fpr,
)

# A 6-point example worked by hand. Sorted by score: 0.9(+) 0.8(-) 0.8(+) 0.6(+) 0.3(-) 0.3(-).
# Thresholds inf, 0.9, 0.8, 0.6, 0.3 give (FP, TP) = (0,0) (0,1) (1,2) (1,3) (3,3) out of 3 and 3.
# AUC by trapezoids: 1/3 * (1/3 + 2/3) / 2 + 2/3 * 1 = 1/6 + 2/3 = 5/6. Mann-Whitney over the 9
# (member, non-member) pairs: 0.9 wins 3; 0.8 ties 0.8 (1/2) and beats both 0.3s; 0.6 beats the two 0.3s
# -> 7.5 / 9 = 5/6.
Y6 = [1, 0, 1, 1, 0, 0]
S6 = [0.9, 0.8, 0.8, 0.6, 0.3, 0.3]


def test_roc_curve_by_hand_with_ties():
    roc = roc_curve(Y6, S6)
    assert isinstance(roc, RocCurve)
    np.testing.assert_allclose(roc.fpr, [0, 0, 1 / 3, 1 / 3, 1])
    np.testing.assert_allclose(roc.tpr, [0, 1 / 3, 2 / 3, 1, 1])
    np.testing.assert_array_equal(roc.thresholds, [np.inf, 0.9, 0.8, 0.6, 0.3])
    assert roc.auc == pytest.approx(5 / 6)
    assert roc.summary() == {"auc": pytest.approx(5 / 6), "n_thresholds": 4}
    with pytest.raises(ValueError, match="read-only"):
        roc.fpr[0] = 0.5  # results are data: read-only arrays


def test_roc_curve_all_tied_is_the_diagonal():
    roc = roc_curve([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
    np.testing.assert_array_equal(roc.fpr, [0, 1])
    np.testing.assert_array_equal(roc.tpr, [0, 1])
    assert auc([0, 1, 0, 1], [0.5] * 4) == 0.5


def test_auc_by_hand():
    assert auc(Y6, S6) == pytest.approx(5 / 6)
    assert auc([0, 0, 1, 1], [1, 2, 3, 4]) == 1.0
    assert auc([0, 0, 1, 1], [4, 3, 2, 1]) == 0.0
    assert auc(np.array(Y6, dtype=bool), S6) == pytest.approx(5 / 6)  # bool labels
    assert auc(np.array(Y6, dtype=float), S6) == pytest.approx(5 / 6)  # 0.0 / 1.0 labels


def test_tpr_at_fpr_by_hand():
    # FPR 0.2 of 3 negatives allows 0 false positives: only the 0.9 threshold -> TPR 1/3.
    assert tpr_at_fpr(Y6, S6, fpr=0.2) == pytest.approx(1 / 3)
    # FPR 0.34 allows 1 false positive: thresholds down to 0.6 -> TPR 1.
    assert tpr_at_fpr(Y6, S6, fpr=0.34) == 1.0
    # Exactly 1/3 also allows 1 false positive (no rounding slip).
    assert tpr_at_fpr(Y6, S6, fpr=1 / 3) == 1.0


def test_tpr_at_fpr_known_case_at_low_fpr():
    # 1000 negatives scored 0, 1, ..., 999 and 100 positives: 10 above every negative, 10 at 990.5, 991.5,
    # ..., 999.5 (interleaved with the top negatives) and 80 below every negative.
    neg = np.arange(1000.0)
    pos = np.r_[np.arange(2000.0, 2010.0), np.arange(990.5, 1000.0), np.full(80, -1.0)]
    y = np.r_[np.zeros(1000), np.ones(100)]
    s = np.r_[neg, pos]
    # 0 false positives: threshold 999.5 -> the 10 top positives and 999.5.
    assert tpr_at_fpr(y, s, fpr=0.0005) == pytest.approx(0.11)
    # FPR <= 0.1 % allows 1 false positive (999): threshold 998.5 -> 12 positives.
    assert tpr_at_fpr(y, s, fpr=0.001) == pytest.approx(0.12)
    # FPR <= 1 % allows 10 (990 ... 999): threshold 990 -> all 20 high positives.
    assert tpr_at_fpr(y, s, fpr=0.01) == pytest.approx(0.20)
    assert tpr_at_fpr(y, s) == tpr_at_fpr(y, s, fpr=0.01)  # the default is 1 %


def test_tpr_at_fpr_never_splits_a_tie():
    # The best negative ties the best positive: no threshold reaches a positive without a false positive.
    assert tpr_at_fpr([1, 0, 0, 0], [0.9, 0.9, 0.1, 0.1], fpr=0.2) == 0.0


def test_advantage_by_hand():
    # Predictions: TP 2 of 3 members, FP 1 of 3 non-members -> 2/3 - 1/3.
    assert membership_advantage(Y6, [1, 1, 0, 1, 0, 0]) == pytest.approx(1 / 3)
    assert membership_advantage([True, False], [True, False]) == 1.0
    assert membership_advantage([True, False], [False, True]) == -1.0
    # Scores: max over thresholds of TPR - FPR = 1 - 1/3 at threshold 0.6.
    assert max_membership_advantage(Y6, S6) == pytest.approx(2 / 3)
    assert max_membership_advantage([0, 1], [1.0, 0.0]) == 0.0  # the empty threshold: never negative


def test_balanced_accuracy_by_hand():
    # Class 0: 1 of 2 right; class 1: 3 of 4 right -> (0.5 + 0.75) / 2.
    assert balanced_accuracy([0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 0]) == pytest.approx(0.625)
    # A predicted label absent from y_true only counts as an error.
    assert balanced_accuracy(["a", "a", "b"], ["a", "z", "b"]) == pytest.approx(0.75)
    # Binary membership: (1 + advantage) / 2.
    pred = [1, 1, 0, 1, 0, 0]
    assert balanced_accuracy(Y6, pred) == pytest.approx((1 + membership_advantage(Y6, pred)) / 2)


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(
        ["cat", "cat", "dog", "dog", "dog", "bird"], ["cat", "dog", "dog", "dog", "cat", "cat"]
    )
    np.testing.assert_array_equal(cm, [[0, 1, 0], [0, 1, 1], [0, 1, 2]])  # bird, cat, dog
    cm = confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1], labels=[2, 0])  # order and subset; others dropped
    np.testing.assert_array_equal(cm, [[1, 0], [0, 1]])
    assert cm.dtype == np.int64


# Worked by hand. Labels sorted: bird, cat, dog.
#   bird: support 1, never predicted          -> P 0 (0/0), R 0/1, F1 0
#   cat:  support 2, predicted 3 times, TP 1  -> P 1/3, R 1/2, F1 2/(2+2+1) = 0.4
#   dog:  support 3, predicted 3 times, TP 2  -> P 2/3, R 2/3, F1 2/3
#   accuracy 3/6; macro P 1/3, R 7/18, F1 (0.4 + 2/3)/3; weighted P (2/3 + 2)/6 = 4/9, R 1/2, F1 2.8/6
Y_TRUE = ["cat", "cat", "dog", "dog", "dog", "bird"]
Y_PRED = ["cat", "dog", "dog", "dog", "cat", "cat"]


def test_classification_report_by_hand():
    r = classification_report(Y_TRUE, Y_PRED)
    assert isinstance(r, ClassificationReport)
    assert r.target_names == ("bird", "cat", "dog")
    np.testing.assert_allclose(r.precision, [0, 1 / 3, 2 / 3])
    np.testing.assert_allclose(r.recall, [0, 1 / 2, 2 / 3])
    np.testing.assert_allclose(r.f1, [0, 0.4, 2 / 3])
    np.testing.assert_array_equal(r.support, [1, 2, 3])
    assert r.accuracy == 0.5
    assert (r.macro_precision, r.macro_recall, r.macro_f1) == pytest.approx(
        (1 / 3, 7 / 18, (0.4 + 2 / 3) / 3)
    )
    assert (r.weighted_precision, r.weighted_recall, r.weighted_f1) == pytest.approx((4 / 9, 0.5, 2.8 / 6))
    np.testing.assert_array_equal(r.confusion, [[0, 1, 0], [0, 1, 1], [0, 1, 2]])
    assert r.summary() == {"accuracy": 0.5, "macro_f1": pytest.approx(0.35556, abs=1e-5), "n_samples": 6}
    json.dumps(r.to_dict(), allow_nan=False)


def test_classification_report_text_layout():
    r = classification_report(Y_TRUE, Y_PRED)
    lines = r.to_text().splitlines()
    assert str(r) == r.to_text()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[1] == "" and lines[5] == ""
    assert lines[2].split() == ["bird", "0.00", "0.00", "0.00", "1"]
    assert lines[3].split() == ["cat", "0.33", "0.50", "0.40", "2"]
    assert lines[4].split() == ["dog", "0.67", "0.67", "0.67", "3"]
    assert lines[6].split() == ["accuracy", "0.50", "6"]
    assert lines[7].split() == ["macro", "avg", "0.33", "0.39", "0.36", "6"]
    assert lines[8].split() == ["weighted", "avg", "0.44", "0.50", "0.47", "6"]
    # Fixed width: names right-aligned to one column, every value right-aligned under its header.
    assert len({len(line) for line in lines if line}) == 1
    for header in ("precision", "recall", "f1-score"):
        end = lines[0].index(header) + len(header)
        assert lines[3][end - 4 : end] in {"0.33", "0.50", "0.40"}
    accuracy_end = lines[6].index("0.50") + 4
    assert accuracy_end == lines[0].index("f1-score") + len("f1-score")  # accuracy sits under f1-score
    assert lines[6].rstrip().endswith("6") and lines[6].index("accuracy") == len("weighted avg") - len(
        "accuracy"
    )


def test_classification_report_digits_names_labels():
    r = classification_report([0, 1, 1, 1], [0, 1, 0, 1], target_names=["out", "in"], digits=4)
    text = r.to_text()
    assert "0.6667" in text and " out " in text and "    in " in text
    r = classification_report([0, 1, 2, 2], [0, 2, 2, 1], labels=[2, 0])
    np.testing.assert_array_equal(r.support, [2, 1])
    np.testing.assert_allclose(r.precision, [0.5, 1.0])
    assert r.accuracy == 0.5  # always over every sample


def test_classification_report_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = classification_report(Y_TRUE, Y_PRED)
    ax = r.plot()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["bird", "cat", "dog"]
    assert sorted(t.get_text() for t in ax.texts) == sorted(str(c) for c in r.confusion.ravel())
    plt.close(ax.figure)
    ax = roc_curve(Y6, S6).plot(log=True)
    assert ax.get_xscale() == "log"
    plt.close(ax.figure)


def test_zero_division_is_silent(recwarn):
    r = classification_report([0, 0, 0], [1, 1, 1])
    np.testing.assert_array_equal(r.precision, [0, 0])
    np.testing.assert_array_equal(r.f1, [0, 0])
    assert r.accuracy == 0.0
    assert len(recwarn) == 0


def test_attack_success_rate():
    y = np.array([0, 1, 2, 3])
    adv = np.array([1, 1, 0, 3])
    assert success_rate(y, adv) == 0.5  # points 0 and 2 changed class
    assert success_rate(y, adv, target=1) == 0.5  # points 0 and 1 predicted 1
    assert success_rate(y, adv, target=[1, 2, 0, 0]) == 0.5  # points 0 and 2 hit their targets
    # Point 1 was misclassified before the attack and still is: a success unless masked out.
    clean, adv = np.array([0, 0, 2, 3]), np.array([1, 0, 2, 3])
    assert success_rate(y, adv) == 0.5
    assert success_rate(y, adv, mask=clean == y) == pytest.approx(1 / 3)
    with pytest.raises(InvalidInputError, match="mask"):
        success_rate(y, adv, mask=np.zeros(4, bool))
    with pytest.raises(InvalidInputError, match="mask"):
        success_rate(y, adv, mask=[1, 0, 1, 1])
    with pytest.raises(InvalidInputError, match="target"):
        success_rate(y, adv, target=[1, 2])


def test_fidelity():
    assert fidelity([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    assert fidelity(["a"], ["a"]) == 1.0
    with pytest.raises(InvalidInputError, match="y_b"):
        fidelity([0, 1], [0, 1, 2])


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", range(5))
def test_cross_check_with_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.integers(0, 2, n)
    # Rounded scores make many ties.
    s = np.round(y * 0.7 + rng.normal(size=n), 1)
    assert auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    roc = roc_curve(y, s)
    np.testing.assert_allclose(roc.fpr, fpr)
    np.testing.assert_allclose(roc.tpr, tpr)
    np.testing.assert_allclose(roc.thresholds[1:], thr[1:])
    for level in (0.001, 0.01, 0.1, 0.5):
        assert tpr_at_fpr(y, s, fpr=level) == pytest.approx(tpr[fpr <= level + 1e-12].max())
    assert max_membership_advantage(y, s) == pytest.approx(np.max(tpr - fpr))

    t = rng.integers(0, 5, n)
    p = np.where(rng.random(n) < 0.6, t, rng.integers(0, 6, n))  # class 5 is only ever predicted
    assert balanced_accuracy(t, p) == pytest.approx(skm.balanced_accuracy_score(t, p))
    np.testing.assert_array_equal(confusion_matrix(t, p), skm.confusion_matrix(t, p))
    ours = classification_report(t, p)
    theirs = skm.classification_report(t, p, output_dict=True, zero_division=0.0)
    for i, label in enumerate(ours.labels):
        row = theirs[str(label)]
        assert (ours.precision[i], ours.recall[i], ours.f1[i]) == pytest.approx(
            (row["precision"], row["recall"], row["f1-score"])
        )
        assert ours.support[i] == row["support"]
    assert ours.accuracy == pytest.approx(theirs["accuracy"])
    for avg, key in (("macro", "macro avg"), ("weighted", "weighted avg")):
        got = [getattr(ours, f"{avg}_{m}") for m in ("precision", "recall", "f1")]
        want = [theirs[key][m] for m in ("precision", "recall", "f1-score")]
        assert got == pytest.approx(want)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 4)), min_size=2, max_size=30))
def test_auc_is_the_mann_whitney_probability(pairs):
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs], dtype=float)
    if y.all() or not y.any():
        return
    diff = s[y][:, None] - s[~y][None, :]
    expected = np.mean((diff > 0) + 0.5 * (diff == 0))
    assert auc(y, s) == pytest.approx(expected, abs=1e-12)
    roc = roc_curve(y, s)
    assert (roc.fpr[0], roc.tpr[0], roc.fpr[-1], roc.tpr[-1]) == (0, 0, 1, 1)
    assert len(roc.thresholds) == len(np.unique(s)) + 1
    assert np.all(np.diff(roc.fpr) >= 0) and np.all(np.diff(roc.tpr) >= 0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: auc([0, 1, 1], [0.1, 0.2]), "scores"),  # length mismatch
        (lambda: roc_curve([0, 1, 2], [0.1, 0.2, 0.3]), "y_true.*binary"),
        (lambda: roc_curve(["a", "b"], [0.1, 0.2]), "y_true.*binary"),
        (lambda: auc([1, 1, 1], [0.1, 0.2, 0.3]), "y_true.*only one class"),
        (lambda: tpr_at_fpr([0, 0], [0.1, 0.2]), "y_true.*only one class"),
        (lambda: auc([0, 1], [0.1, np.nan]), "scores.*NaN"),
        (lambda: auc([0, 1], [[0.1, 0.2]]), "scores"),
        (lambda: auc([], []), "y_true"),
        (lambda: max_membership_advantage([0, 1], [0.1, np.inf]), "scores"),
        (lambda: membership_advantage([0, 1], [0, 1, 1]), "y_pred"),
        (lambda: membership_advantage([0, 1], [0, 2]), "y_pred.*binary"),
        (lambda: balanced_accuracy([0, 1], [0]), "y_pred"),
        (lambda: confusion_matrix([0, np.nan], [0, 1]), "y_true.*NaN"),
        (lambda: classification_report([0, 1], [0, 1], target_names=["a"]), "target_names"),
        (lambda: classification_report([0, 1], [0, 1], labels=[0, 0]), "labels"),
        (lambda: classification_report([0, 1], [0, 1], digits=-1), "digits"),
        (lambda: success_rate([0, 1], [[0, 1]]), "y_pred_adv"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(call, match):
    with pytest.raises((InvalidInputError, InvalidParameterError), match=match):
        call()


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, "0.01", True])
def test_tpr_at_fpr_rejects_fpr_outside_the_open_unit_interval(bad):
    with pytest.raises(InvalidParameterError, match="fpr"):
        tpr_at_fpr(Y6, S6, fpr=bad)


def test_public_api_is_listed():
    assert set(metrics.__all__) >= {
        "roc_curve",
        "auc",
        "tpr_at_fpr",
        "balanced_accuracy",
        "membership_advantage",
        "max_membership_advantage",
        "confusion_matrix",
        "classification_report",
        "success_rate",
        "fidelity",
    }
