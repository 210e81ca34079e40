"""Shared membership-inference fixtures: an overfit MLP on real Fashion-MNIST and its signals.

Built once per test session (about 25 s on 2 cores) and reused by every membership test.
"""

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from mlpentest.attacks.membership import MembershipSignals, ReferenceModels, collect_signals

N_MEMBERS = 500


def mlp_trainer(alpha: float = 1e-6) -> MLPClassifier:
    """The target's training recipe (the attacker trains shadow/reference models the same way)."""
    return MLPClassifier(hidden_layer_sizes=(64,), alpha=alpha, max_iter=200, random_state=0)


@dataclass
class MembershipSetup:
    target: MLPClassifier
    X: np.ndarray
    y: np.ndarray
    is_member: np.ndarray
    X_shadow: np.ndarray
    y_shadow: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    signals: MembershipSignals  # reference models trained on pools that contain the candidates
    shadow_signals: MembershipSignals  # shadow models trained on data disjoint from the target's


@pytest.fixture(scope="session")
def membership_setup(fashion) -> MembershipSetup:
    n = N_MEMBERS
    pools = fashion.split(
        {"members": n, "nonmembers": n, "population": 2 * n, "shadow": 4 * n}, random_state=0
    )
    mem, non, pop, shadow = pools["members"], pools["nonmembers"], pools["population"], pools["shadow"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        target = mlp_trainer().fit(mem.X, mem.y)
        X = np.vstack([mem.X, non.X])
        y = np.r_[mem.y, non.y]
        is_member = np.r_[np.ones(n, bool), np.zeros(n, bool)]
        refs = ReferenceModels(mlp_trainer(), n_models=16, random_state=0, n_jobs=2).fit(
            np.vstack([X, pop.X]), np.r_[y, pop.y]
        )
        shadows = ReferenceModels(mlp_trainer(), n_models=10, train_size=n, random_state=1, n_jobs=2).fit(
            shadow.X, shadow.y
        )
    return MembershipSetup(
        target=target, X=X, y=y, is_member=is_member, X_shadow=shadow.X, y_shadow=shadow.y,
        X_test=non.X, y_test=non.y,
        signals=collect_signals(target, X, y, is_member=is_member, references=refs),
        shadow_signals=collect_signals(target, X, y, is_member=is_member, references=shadows),
    )
