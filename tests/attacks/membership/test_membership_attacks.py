"""Strength of every membership attack on an overfit MLP trained on 500 real Fashion-MNIST images."""

import json
import re

import numpy as np
import pytest

from mlpentest.attacks.membership import (
    RMIA,
    LiRA,
    MembershipComparison,
    ShadowModelAttack,
    ThresholdAttack,
)
from mlpentest.report import render


@pytest.fixture(scope="module")
def results(membership_setup):
    s = membership_setup
    return {
        "shokri": ShadowModelAttack(max_train_per_class=400, random_state=0).run(s.shadow_signals),
        "shokri_single": ShadowModelAttack(per_class=False, max_train_per_class=2000, random_state=0).run(
            s.shadow_signals
        ),
        "loss": ThresholdAttack(metric="loss", class_dependent=False).run(s.signals),
        "loss_per_class": ThresholdAttack(metric="loss").run(s.signals),
        "mentr": ThresholdAttack(metric="modified_entropy").run(s.signals),
        "lira": LiRA().run(s.signals),
        "lira_offline": LiRA(online=False).run(s.signals),
        "rmia": RMIA().run(s.signals),
        "rmia_offline": RMIA(online=False).run(s.signals),
    }


def test_target_is_overfit(membership_setup):
    s = membership_setup
    train_acc = s.target.score(s.X[s.is_member], s.y[s.is_member])
    test_acc = s.target.score(s.X_test, s.y_test)
    assert train_acc == 1.0 and test_acc < 0.85


def test_shadow_model_attack_beats_chance(results):
    assert results["shokri"].auc > 0.6
    assert results["shokri"].balanced_accuracy > 0.6
    assert results["shokri_single"].auc > 0.6


def test_lira_is_much_stronger_at_low_fpr_than_the_loss_threshold(results):
    lira, loss = results["lira"], results["loss"]
    assert lira.tpr_at_1pct_fpr >= 3 * max(loss.tpr_at_1pct_fpr, 0.01)
    assert lira.auc > loss.auc
    assert results["lira_offline"].tpr_at_1pct_fpr >= 3 * max(loss.tpr_at_1pct_fpr, 0.01)


def test_rmia_at_least_as_good_as_the_loss_threshold(results):
    assert results["rmia"].auc >= results["loss"].auc
    assert results["rmia_offline"].auc >= results["loss"].auc
    assert results["rmia"].tpr_at_1pct_fpr > results["loss"].tpr_at_1pct_fpr


def test_class_dependent_thresholds_help(results):
    # Song & Mittal's per-class thresholds beat one global threshold on the same metric
    assert results["loss_per_class"].auc > results["loss"].auc
    assert results["mentr"].auc > 0.65


def test_every_attack_reports_the_headline_metrics(results):
    for r in results.values():
        assert 0.0 <= r.tpr_at_01pct_fpr <= r.tpr_at_1pct_fpr <= 1.0
        assert r.scores.shape == r.is_member.shape == (1000,)
        assert np.isfinite(r.scores).all()
        text = r.to_text()
        # a row per decision in the seeds' table, each with its numbers (not just the word)
        for row in ("non-member", "member"):
            assert re.search(rf"^\s+{row}(\s+\d\.\d\d){{3}}\s+\d+$", text, re.MULTILINE), text


def test_results_render_into_one_report(results, tmp_path):
    comparison = MembershipComparison(tuple(results.values()))
    assert "LiRA online" in comparison.to_text()
    files = render({"compared": comparison, "LiRA": results["lira"]}, tmp_path)
    doc = json.loads(files.json.read_text())
    assert doc["results"][1]["auc"] == pytest.approx(results["lira"].auc)
    assert "data:image/png;base64," in files.html.read_text()


def test_attacks_are_deterministic(membership_setup, results):
    again = ShadowModelAttack(max_train_per_class=400, random_state=0).run(membership_setup.shadow_signals)
    np.testing.assert_array_equal(again.scores, results["shokri"].scores)
    np.testing.assert_array_equal(LiRA().run(membership_setup.signals).scores, results["lira"].scores)
