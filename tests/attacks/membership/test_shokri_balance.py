"""Shokri's per-class attack models train on as many "in" as "out" records, and so predict "member".

Issue 17: with shadow models trained on a quarter of their pool, the attack took every "in" record of a
class against three times as many "out" ones; the SVMs learned to answer "out" and most classes never
predicted "member".
"""

import dataclasses

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from mlpentest import metrics
from mlpentest.attacks.membership import ShadowModelAttack

FITS: list[np.ndarray] = []


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """Records the in/out counts of every attack training set it is fitted on; answers by the mean."""

    def fit(self, X, y):
        FITS.append(np.bincount(y, minlength=2))
        self.classes_ = np.array([0, 1])
        self.mean_ = X.mean(axis=0)
        return self

    def decision_function(self, X):
        return X.sum(axis=1) - self.mean_.sum()

    def predict(self, X):
        return (self.decision_function(X) > 0).astype(int)


def few_shadows(signals, m):
    """The same signals with only the first ``m`` shadow models."""
    return dataclasses.replace(
        signals,
        reference_proba=signals.reference_proba[:, :m],
        reference_membership=signals.reference_membership[:, :m],
        population_reference_proba=signals.population_reference_proba[:, :m],
        population_membership=signals.population_membership[:, :m],
    )


def test_attack_training_sets_are_balanced(membership_setup):
    signals = membership_setup.shadow_signals  # shadows trained on 500 of a 2000-record pool: 1 in, 3 out
    FITS.clear()
    recording = RecordingClassifier()
    ShadowModelAttack(attack_model=recording, max_train_per_class=4000, random_state=0).run(signals)
    counts = np.array(FITS)
    assert counts.shape == (10, 2)
    np.testing.assert_array_equal(counts[:, 0], counts[:, 1])
    # all the scarcer "in" records are used: about 10 shadows x 50 records of the class
    assert counts[:, 1].min() > 350
    FITS.clear()
    ShadowModelAttack(attack_model=recording, max_train_per_class=200, random_state=0).run(signals)
    assert (np.array(FITS) == 100).all()


def test_every_class_predicts_members_with_few_shadow_models(membership_setup):
    signals = few_shadows(membership_setup.shadow_signals, 3)  # ~150 "in" against ~450 "out" per class
    result = ShadowModelAttack(random_state=0).run(signals)
    report = result.classification_report()
    assert report.recall[1] >= 0.4
    for c in range(10):
        sel = result.y == c
        auc = metrics.auc(result.is_member[sel], result.scores[sel])
        if auc > 0.55:
            assert result.predicted_member[sel].any(), f"class {c}: AUC {auc:.2f} but no member predicted"
