"""Poisoning logistic regression by implicit differentiation (Mei & Zhu 2015), digits 3 vs 8.

Measured (C=1, seed 0): the implicit gradient matches central finite differences of the really
retrained model to a relative error of about 4e-4; three poisoning points (labels flipped, step=0.5, 15
iterations) raise the validation error from 0.03 to about 0.14.
"""

import numpy as np
import pytest
from scipy.special import log_expit
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from mlpentest.attacks.poisoning.logistic import PoisoningLogisticRegression, validation_loss_gradient
from mlpentest.datasets import load
from mlpentest.errors import CapabilityError, InvalidInputError


@pytest.fixture(scope="module")
def data():
    s = load("digits").pair(3, 8).split({"train": 150, "valid": 100, "test": 100}, random_state=0)
    f = np.float64
    return (
        s["train"].X.astype(f),
        s["train"].y,
        s["valid"].X.astype(f),
        s["valid"].y,
        s["test"].X,
        s["test"].y,
    )


def test_implicit_gradient_matches_finite_differences_of_retraining(data):
    X, y, Xv, yv, _, _ = data
    xc, yc = X[0].copy(), 1 - y[0]

    def fit(point):
        clf = LogisticRegression(C=1.0, tol=1e-12, max_iter=10000)
        return clf.fit(np.vstack([X, point]), np.append(y, yc))

    def val_loss(point):
        m = fit(point)
        z = Xv @ m.coef_[0] + m.intercept_[0]
        return -np.mean(yv * log_expit(z) + (1 - yv) * log_expit(-z))

    model = fit(xc)
    g = validation_loss_gradient(
        model, np.vstack([X, xc]), np.append(y, yc).astype(float), xc, float(yc), Xv, yv.astype(float)
    )
    eps = 1e-2  # the loss is smooth; smaller steps drown in the solver's tolerance
    fd = np.array([(val_loss(xc + eps * e) - val_loss(xc - eps * e)) / (2 * eps) for e in np.eye(X.shape[1])])
    assert np.linalg.norm(g - fd) / np.linalg.norm(fd) < 1e-2


def test_three_poison_points_raise_validation_error(data):
    X, y, Xv, yv, Xt, yt = data
    attack = PoisoningLogisticRegression(LogisticRegression(), X, y, step=0.5, max_iter=15)
    res = attack.run(Xv, yv, x_init=X[:3], labels=1 - y[:3])
    xc, log = res
    assert xc.shape == (3, 64) and xc.min() >= 0 and xc.max() <= 1
    assert len(log["validation_loss"]) == 16
    # bars: validation loss grows, error rises by at least 6 pp over the clean model
    assert log["validation_loss"][-1] > log["validation_loss"][0] + 0.05
    assert res.poisoned_error >= res.clean_error + 0.06
    np.testing.assert_array_equal(res.X_poisoned, np.vstack([X, xc]))
    poisoned = LogisticRegression().fit(res.X_poisoned, res.y_poisoned)
    clean = LogisticRegression().fit(X, y)
    assert np.mean(poisoned.predict(Xt) != yt) > np.mean(clean.predict(Xt) != yt)  # held-out too
    res.plot()
    assert res.to_dict()["type"] == "PoisoningResult" and res.loss_name == "cross-entropy"


def test_rejects_unsupported_models_and_inputs(data):
    X, y, Xv, yv, _, _ = data
    one_step = {"max_iter": 1}
    with pytest.raises(CapabilityError, match="LogisticRegression"):
        PoisoningLogisticRegression(SVC(), X, y, **one_step).run(Xv, yv, x_init=X[0], labels=1)
    with pytest.raises(CapabilityError, match="L2"):
        PoisoningLogisticRegression(LogisticRegression(C=np.inf), X, y, **one_step).run(Xv, yv)
    with pytest.raises(InvalidInputError, match="^labels: label 5"):
        PoisoningLogisticRegression(LogisticRegression(), X, y, **one_step).run(
            Xv, yv, x_init=X[0], labels=5
        )
    with pytest.raises(InvalidInputError, match=r"^x_init: values must lie in \[0.0, 1.0\]"):
        PoisoningLogisticRegression(LogisticRegression(), X, y, **one_step).run(Xv, yv, x_init=X[0] + 2.0)
    single = PoisoningLogisticRegression(LogisticRegression(), X, y, **one_step).run(Xv, yv, x_init=X[0])
    flipped = 1 - LogisticRegression().fit(X, y).predict(X[:1])[0]
    assert single.x_poison.shape == (64,) and single.labels[0] == flipped
