"""Checks every membership attack must pass (the scikit-learn ``test_common`` idea).

Parameters are stored unchanged by ``__init__``; a run is reproducible; the result serialises to strict
JSON, plots, and has the headline metrics; a signals object without what the attack needs is refused.
"""

import inspect
import json

import matplotlib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlpentest import datasets
from mlpentest.attacks.membership import (
    RMIA,
    LiRA,
    MembershipResult,
    ReferenceModels,
    ShadowModelAttack,
    ThresholdAttack,
    collect_signals,
)
from mlpentest.errors import InvalidInputError, InvalidParameterError

matplotlib.use("Agg")

ATTACKS = [
    ThresholdAttack("loss", class_dependent=False),
    ThresholdAttack("confidence"),
    ThresholdAttack("entropy"),
    ThresholdAttack("modified_entropy", min_per_class=5),
    LiRA(),
    LiRA(online=False, fix_variance=False),
    RMIA(),
    RMIA(online=False, n_population=200, random_state=0),
    ShadowModelAttack(max_train_per_class=200, random_state=0),
    ShadowModelAttack(per_class=False, attack_model=LogisticRegression(), random_state=0),
]


@pytest.fixture(scope="module")
def signals():
    pools = datasets.load("digits").split({"members": 150, "nonmembers": 150, "pool": 700}, random_state=0)
    mem, non, pool = pools["members"], pools["nonmembers"], pools["pool"]
    target = LogisticRegression(C=1e3, max_iter=2000).fit(mem.X, mem.y)
    X, y = np.vstack([mem.X, non.X]), np.r_[mem.y, non.y]
    is_member = np.r_[np.ones(150, bool), np.zeros(150, bool)]
    # non-members may sit in the reference pool; members must not (Shokri's disjointness)
    refs = ReferenceModels(LogisticRegression(C=1e3, max_iter=2000), n_models=4, random_state=0).fit(
        np.vstack([non.X, pool.X]), np.r_[non.y, pool.y]
    )
    return collect_signals(target, X, y, is_member=is_member, references=refs)


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: type(a).__name__)
def test_init_stores_parameters_unchanged(attack):
    for name in inspect.signature(type(attack).__init__).parameters:
        if name != "self":
            assert hasattr(attack, name), f"{type(attack).__name__} does not store {name}"
    fresh = type(attack)(**{k: getattr(attack, k) for k in inspect.signature(type(attack)).parameters})
    assert vars(fresh) == vars(attack)


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: type(a).__name__)
def test_run_is_reproducible_and_serialises(attack, signals):
    first, second = attack.run(signals), attack.run(signals)
    assert isinstance(first, MembershipResult)
    np.testing.assert_array_equal(first.scores, second.scores)
    doc = json.loads(json.dumps(first.to_dict(), allow_nan=False))
    assert doc["type"] == "MembershipResult" and len(doc["scores"]) == signals.n_candidates
    summary = first.summary()
    for key in ("AUC", "TPR@1%FPR", "TPR@0.1%FPR", "balanced accuracy"):
        assert 0.0 <= summary[key] <= 1.0
    assert first.auc > 0.5  # every attack finds some signal in an overfit model
    ax = first.plot()
    assert ax.get_xscale() == "log"
    matplotlib.pyplot.close(ax.figure)


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: type(a).__name__)
def test_signals_missing_what_the_attack_needs(attack, signals):
    stripped = type(signals)(y=signals.y, target_proba=signals.target_proba, is_member=signals.is_member)
    if isinstance(attack, ThresholdAttack) and not attack.class_dependent:
        assert attack.run(stripped).auc > 0.5  # needs nothing beyond the target's outputs
    else:
        with pytest.raises((InvalidInputError, InvalidParameterError)):
            attack.run(stripped)
