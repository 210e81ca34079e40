"""Bad input to the membership attacks gets a clear, typed error."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from mlpentest import datasets
from mlpentest.attacks.membership import (
    RMIA,
    LiRA,
    ReferenceModels,
    ShadowModelAttack,
    ThresholdAttack,
    collect_signals,
)
from mlpentest.errors import CapabilityError, DataOverlapError, InvalidInputError, InvalidParameterError


@pytest.fixture(scope="module")
def setup():
    pools = datasets.load("digits").split({"members": 150, "nonmembers": 150, "pool": 600}, random_state=0)
    mem, non, pool = pools["members"], pools["nonmembers"], pools["pool"]
    target = LogisticRegression(C=100.0, max_iter=300).fit(mem.X, mem.y)
    X = np.vstack([mem.X, non.X])
    y = np.r_[mem.y, non.y]
    is_member = np.r_[np.ones(150, bool), np.zeros(150, bool)]
    return target, X, y, is_member, pool


def test_target_without_probabilities(setup):
    _, X, y, is_member, pool = setup
    svm = SVC().fit(pool.X, pool.y)
    with pytest.raises(CapabilityError, match="probabilities.*CalibratedClassifierCV"):
        collect_signals(svm, X, y, is_member=is_member)


def test_shadow_data_overlapping_the_targets_training_data(setup):
    target, X, y, is_member, pool = setup
    # the attacker's shadow pool wrongly contains the target's training records
    shadows = ReferenceModels(LogisticRegression(max_iter=300), n_models=2, random_state=0).fit(
        np.vstack([X[is_member], pool.X]), np.r_[y[is_member], pool.y]
    )
    signals = collect_signals(target, X, y, is_member=is_member, references=shadows)
    with pytest.raises(DataOverlapError, match="disjoint"):
        ShadowModelAttack().run(signals)


def test_population_overlapping_the_candidates(setup):
    target, X, y, is_member, _ = setup
    with pytest.raises(DataOverlapError, match="2 record"):
        collect_signals(target, X, y, is_member=is_member, population=(X[:2], y[:2]))


def test_too_few_shadow_records_of_a_class(setup):
    target, X, y, is_member, pool = setup
    keep = (pool.y != 3) | (np.cumsum(pool.y == 3) <= 4)  # only 4 records of class 3
    shadows = ReferenceModels(LogisticRegression(max_iter=300), n_models=2, random_state=0).fit(
        pool.X[keep], pool.y[keep]
    )
    signals = collect_signals(target, X, y, is_member=is_member, references=shadows)
    with pytest.raises(InvalidInputError, match="class 3.*at least 10"):
        ShadowModelAttack().run(signals)


def test_attacks_that_need_reference_models(setup):
    target, X, y, is_member, _ = setup
    signals = collect_signals(target, X, y, is_member=is_member)
    for attack in (LiRA(), RMIA(), ShadowModelAttack()):
        with pytest.raises(InvalidInputError, match="signals"):
            attack.run(signals)
    with pytest.raises(InvalidParameterError, match="class_dependent"):
        ThresholdAttack(metric="loss").run(signals)
    assert ThresholdAttack(metric="loss", class_dependent=False).run(signals).auc > 0.5


def test_online_lira_needs_candidates_in_the_reference_pool(setup):
    target, X, y, is_member, pool = setup
    refs = ReferenceModels(LogisticRegression(max_iter=300), n_models=2, random_state=0).fit(pool.X, pool.y)
    signals = collect_signals(target, X, y, is_member=is_member, references=refs)
    with pytest.raises(InvalidInputError, match="online=False"):
        LiRA().run(signals)
    assert LiRA(online=False).run(signals).auc > 0.5


@pytest.mark.parametrize(
    "attack, match",
    [
        (ThresholdAttack(metric="perplexity", class_dependent=False), "metric"),
        (LiRA(fix_variance="sometimes"), "fix_variance"),
        (RMIA(gamma=0.0), "gamma"),
        (RMIA(a=2.0), "a"),
        (ShadowModelAttack(features="pixels"), "features"),
        (ShadowModelAttack(attack_model=LogisticRegression), "attack_model"),
    ],
)
def test_bad_attack_parameters(setup, attack, match):
    target, X, y, is_member, pool = setup
    refs = ReferenceModels(LogisticRegression(max_iter=300), n_models=2, random_state=0).fit(
        np.vstack([X[~is_member], pool.X]), np.r_[y[~is_member], pool.y]
    )
    signals = collect_signals(target, X, y, is_member=is_member, references=refs)
    with pytest.raises(InvalidParameterError, match=match):
        attack.run(signals)


def test_bad_candidate_input(setup):
    target, X, y, is_member, _ = setup
    with pytest.raises(InvalidInputError, match="is_member"):
        collect_signals(target, X, y, is_member=is_member[:-1])
    with pytest.raises(InvalidInputError, match=r"^y: labels must be entries of classes_ \[0, 1,.*\[10, 11"):
        collect_signals(target, X, y + 10, is_member=is_member)
    with pytest.raises(InvalidInputError, match="X"):
        collect_signals(target, X[:, :5], y, is_member=is_member)
