"""BadNets / blended backdoors: the issue's bars on digits and Fashion-MNIST, the trigger, errors.

Bars (issue 13) and what these seeds measure (clean model -> model trained on the poisoned set):

* digits, MLP(64), 1300 train / 497 test, 5% poisoning, 3x3 patch: accuracy 0.976 -> 0.974, ASR
  0.000 -> 1.000 (bar: ASR >= 90%, within 2 points);
* Fashion-MNIST, small strided CNN, 6000 train / 2000 test, 3 epochs, 5%, 3x3 patch: accuracy 0.830
  -> 0.838, ASR 0.04 -> 0.99 (bar: ASR >= 95%, within 1.5 points);
* blend (alpha 0.2) on digits: ASR 0.998 (bar 80%); all-to-all at 10%: ASR 0.83 (bar 70%);
  breast cancer, logistic regression, 4 features set to their maxima, 5%: ASR 0.97 (bar 85%).
"""

import json

import matplotlib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from mlpentest.attacks.poisoning import BackdoorEvaluation, BackdoorResult, BadNets
from mlpentest.datasets import load
from mlpentest.errors import InvalidInputError, InvalidParameterError
from mlpentest.results import figure_of

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    pools = load("digits").split({"train": 1300, "test": 497}, random_state=0)
    return pools["train"].X, pools["train"].y, pools["test"].X, pools["test"].y


pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    # tiny matrices: BLAS threads only fight each other (and anything else on the machine)
    with threadpool_limits(1, user_api="blas"):
        yield


def _mlp():
    return MLPClassifier(hidden_layer_sizes=(64,), max_iter=200, random_state=0)


@pytest.fixture(scope="module")
def clean_mlp(digits):
    X, y, _, _ = digits
    return _mlp().fit(X, y)


def _bars(res, clean_model, X_test, y_test, estimator=None):
    """(evaluation of the clean model, evaluation of the model trained on the poisoned set)."""
    poisoned = clone(estimator if estimator is not None else _mlp()).fit(res.X_poisoned, res.y_poisoned)
    return res.evaluate(clean_model, X_test, y_test), res.evaluate(poisoned, X_test, y_test)


# ---------------------------------------------------------------------- the bars
def test_patch_on_digits_mlp_meets_the_bar(digits, clean_mlp):
    X, y, Xt, yt = digits
    res = BadNets(target_class=0, fraction=0.05, image_shape=(8, 8), patch_size=3, random_state=0).run(X, y)
    assert isinstance(res, BackdoorResult) and res.n_poison == 65
    clean, poisoned = _bars(res, clean_mlp, Xt, yt)
    assert isinstance(poisoned, BackdoorEvaluation)
    assert poisoned.n_triggered == int(np.sum(yt != 0))
    assert clean.attack_success_rate < 0.05  # the trigger alone does nothing to a clean model
    assert poisoned.attack_success_rate >= 0.90
    assert poisoned.clean_accuracy >= clean.clean_accuracy - 0.02
    assert poisoned.clean_target_rate < 0.05  # no trigger, no target: the backdoor stays hidden


@pytest.mark.slow
def test_patch_on_fashion_mnist_cnn_meets_the_bar():
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.set_num_threads(2)
    pools = load("fashion-mnist").split({"train": 6000, "test": 2000}, random_state=0)
    X, y, Xt, yt = pools["train"].X, pools["train"].y, pools["test"].X, pools["test"].y

    def train(X, y):
        torch.manual_seed(0)
        # strided convolutions instead of pooling: a quarter of the cost, the corner patch still seen
        net = nn.Sequential(
            nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
            nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10),
        )
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        Xt_, yt_ = torch.as_tensor(X), torch.as_tensor(y)
        gen = torch.Generator().manual_seed(0)
        for _ in range(3):
            for batch in torch.randperm(len(Xt_), generator=gen).split(64):
                opt.zero_grad()
                nn.functional.cross_entropy(net(Xt_[batch]), yt_[batch]).backward()
                opt.step()
        return net.eval()

    res = BadNets(target_class=0, fraction=0.05, image_shape=(28, 28), random_state=0).run(X, y)
    assert res.X_poisoned.dtype == np.float32 and res.n_poison == 300
    # a bare nn.Module is wrapped with flat inputs by evaluate
    clean = res.evaluate(train(X, y), Xt, yt)
    poisoned = res.evaluate(train(res.X_poisoned, res.y_poisoned), Xt, yt)
    assert clean.attack_success_rate < 0.10
    assert poisoned.attack_success_rate >= 0.95
    assert poisoned.clean_accuracy >= clean.clean_accuracy - 0.015


def test_blend_trigger_on_digits(digits, clean_mlp):
    X, y, Xt, yt = digits
    res = BadNets(target_class=3, fraction=0.05, trigger="blend", alpha=0.2, random_state=0).run(X, y)
    assert res.image_shape == (8, 8)  # inferred: 64 is a square
    np.testing.assert_array_equal(res.trigger_mask, np.full(64, 0.2))
    assert 0.0 <= res.trigger_pattern.min() and res.trigger_pattern.max() <= 1.0
    rows = res.poison_indices
    np.testing.assert_allclose(res.X_poisoned[rows], 0.8 * X[rows] + 0.2 * res.trigger_pattern)
    clean, poisoned = _bars(res, clean_mlp, Xt, yt)
    assert clean.attack_success_rate < 0.10
    assert poisoned.attack_success_rate >= 0.80
    assert poisoned.clean_accuracy >= clean.clean_accuracy - 0.02


def test_all_to_all_sends_each_class_to_the_next(digits, clean_mlp):
    X, y, Xt, yt = digits
    res = BadNets(target_class=None, mode="all-to-all", fraction=0.1, random_state=0).run(X, y)
    assert res.target_class is None and res.n_poison == 130
    np.testing.assert_array_equal(res.target_labels([0, 4, 9]), [1, 5, 0])
    rows = res.poison_indices
    np.testing.assert_array_equal(res.y_poisoned[rows], (y[rows] + 1) % 10)
    assert len(np.unique(y[rows])) == 10  # drawn from every class, the target's too
    clean, poisoned = _bars(res, clean_mlp, Xt, yt)
    assert poisoned.n_triggered == len(yt)
    assert clean.attack_success_rate < 0.05
    assert poisoned.attack_success_rate >= 0.70
    assert poisoned.clean_accuracy >= clean.clean_accuracy - 0.02


def test_tabular_trigger_on_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X, Xt, y, yt = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X)
    X, Xt = scaler.transform(X), scaler.transform(Xt)
    features = [5, 10, 15, 25]
    res = BadNets(target_class=1, fraction=0.05, features=features, bounds=None, random_state=0).run(X, y)
    assert res.image_shape is None
    np.testing.assert_array_equal(np.flatnonzero(res.trigger_mask), features)
    # unbounded: each trigger feature is set to its largest training value
    np.testing.assert_allclose(res.trigger_pattern[features], X[:, features].max(axis=0))
    changed = np.flatnonzero(np.any(res.X_poisoned != X, axis=1))
    assert set(changed) <= set(res.poison_indices) and np.all(y[res.poison_indices] == 0)
    clean_model = LogisticRegression(max_iter=2000).fit(X, y)
    clean, poisoned = _bars(res, clean_model, Xt, yt, LogisticRegression(max_iter=2000))
    assert poisoned.n_triggered == int(np.sum(yt == 0))
    assert clean.attack_success_rate < 0.10
    assert poisoned.attack_success_rate >= 0.85
    assert poisoned.clean_accuracy >= clean.clean_accuracy - 0.02
    figure_of(res.plot())  # a bar chart of the written features
    plt.close("all")


# ---------------------------------------------------------------------- the poisoned set and the trigger
def test_poison_rows_labels_and_patch_position(digits):
    X, y, _, _ = digits
    res = BadNets(target_class=7, fraction=0.1, patch_size=3, random_state=1).run(X, y)
    assert res.n_poison == 130 and np.all(np.diff(res.poison_indices) > 0)
    assert np.all(y[res.poison_indices] != 7)  # all-to-one draws from the other classes only
    np.testing.assert_array_equal(res.poison_mask, np.isin(np.arange(len(y)), res.poison_indices))
    np.testing.assert_array_equal(np.flatnonzero(res.y_poisoned != y), res.poison_indices)
    np.testing.assert_array_equal(res.y_poisoned[res.poison_indices], 7)
    keep = ~res.poison_mask
    np.testing.assert_array_equal(res.X_poisoned[keep], X[keep])
    mask = res.trigger_mask.reshape(8, 8)
    assert mask[5:, 5:].all() and mask.sum() == 9  # the bottom-right corner
    patch = res.trigger_pattern.reshape(8, 8)[5:, 5:]
    np.testing.assert_array_equal(patch, [[1, 0, 1], [0, 1, 0], [1, 0, 1]])  # checkerboard of the bounds
    np.testing.assert_array_equal(res.X_poisoned[res.poison_indices].reshape(-1, 8, 8)[:, 5:, 5:],
                                  np.broadcast_to(patch, (130, 3, 3)))


@pytest.mark.parametrize(("position", "corner"), [("top-left", (0, 0)), ("top-right", (0, 6)),
                                                  ("bottom-left", (6, 0)), ("center", (3, 3)),
                                                  ((1, 4), (1, 4))])
def test_patch_positions(digits, position, corner):
    X, y, _, _ = digits
    res = BadNets(patch_size=2, position=position, pattern=0.5, random_state=0).run(X, y)
    mask = res.trigger_mask.reshape(8, 8)
    r, c = corner
    assert mask[r:r + 2, c:c + 2].all() and mask.sum() == 4
    assert np.all(res.trigger_pattern[res.trigger_mask > 0] == 0.5)


def test_colour_images_get_the_patch_on_every_channel():
    rng = np.random.RandomState(0)
    X, y = rng.uniform(0.2, 0.8, size=(40, 6 * 5 * 3)), np.repeat([0, 1], 20)
    pattern = np.stack([np.eye(2), np.zeros((2, 2)), np.ones((2, 2))], axis=-1)
    res = BadNets(target_class=1, fraction=0.25, image_shape=(6, 5, 3), patch_size=2, pattern=pattern,
                  random_state=0).run(X, y)
    mask, patt = res.trigger_mask.reshape(6, 5, 3), res.trigger_pattern.reshape(6, 5, 3)
    assert mask[4:, 3:, :].all() and mask.sum() == 12
    np.testing.assert_array_equal(patt[4:, 3:], pattern)
    figure_of(res.plot())  # colour images are drawn in colour
    plt.close("all")


def test_apply_trigger_one_point_and_batch(digits):
    X, y, Xt, _ = digits
    res = BadNets(target_class=0, random_state=0).run(X, y)
    before = Xt[:3].copy()
    batch = res.apply_trigger(Xt[:3])
    single = res.apply_trigger(Xt[0])
    assert batch.shape == (3, 64) and single.shape == (64,)
    np.testing.assert_array_equal(single, batch[0])
    np.testing.assert_array_equal(Xt[:3], before)  # copies: the test inputs are left as they were
    assert not np.array_equal(batch, before)
    assert res.apply_trigger(Xt[:2].astype(np.float32)).dtype == np.float32
    with pytest.raises(InvalidInputError, match="^X: expected 64 features"):
        res.apply_trigger(Xt[:, :10])
    with pytest.raises(InvalidInputError, match="^X_test: expected 64 features"):
        res.evaluate(LogisticRegression().fit(X[:100], y[:100]), Xt[:, :10], y)
    with pytest.raises(InvalidInputError, match="^y: labels must be classes"):
        res.target_labels([11])


def test_source_classes_restrict_the_poison_and_the_asr(digits, clean_mlp):
    X, y, Xt, yt = digits
    res = BadNets(target_class=0, fraction=0.05, source_classes=[1, 2], random_state=0).run(X, y)
    assert set(y[res.poison_indices]) <= {1, 2}
    ev = res.evaluate(clean_mlp, Xt, yt)
    assert ev.n_triggered == int(np.isin(yt, [1, 2]).sum())


def test_same_seed_same_poison_other_seed_other_poison(digits):
    X, y, _, _ = digits
    a = BadNets(trigger="blend", random_state=3).run(X, y)
    b = BadNets(trigger="blend", random_state=3).run(X, y)
    c = BadNets(trigger="blend", random_state=4).run(X, y)
    np.testing.assert_array_equal(a.poison_indices, b.poison_indices)
    np.testing.assert_array_equal(a.trigger_pattern, b.trigger_pattern)
    np.testing.assert_array_equal(a.X_poisoned, b.X_poisoned)
    assert not np.array_equal(a.poison_indices, c.poison_indices)
    assert not np.array_equal(a.trigger_pattern, c.trigger_pattern)


def test_results_serialise_and_plot(digits, clean_mlp):
    X, y, Xt, yt = digits
    res = BadNets(target_class=0, random_state=0).run(X, y)
    doc = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert doc["type"] == "BackdoorResult" and doc["params"]["n_poison"] == 65 and doc["target_class"] == 0
    ev = res.evaluate(clean_mlp, Xt, yt)
    doc = json.loads(json.dumps(ev.to_dict(), allow_nan=False))
    assert doc["clean_accuracy"] == ev.clean_accuracy and set(ev.summary()) >= {"attack success rate"}
    for drawn in (res.plot(), res.plot(plt.subplots()[1]), ev.plot()):
        assert any(a.images or a.patches for a in figure_of(drawn).axes)
    plt.close("all")


# ---------------------------------------------------------------------- typed errors
@pytest.mark.parametrize(("settings", "error", "match"), [
    ({"fraction": 0.0}, InvalidParameterError, "^fraction"),
    ({"fraction": 1.0}, InvalidParameterError, "^fraction"),
    ({"fraction": 0.0001}, InvalidParameterError, "^fraction: .* poisons no row"),
    ({"fraction": 0.95}, InvalidParameterError, "^fraction: .* only"),
    ({"target_class": 10}, InvalidParameterError, "^target_class"),
    ({"target_class": "0"}, InvalidParameterError, "^target_class"),
    ({"target_class": None}, InvalidParameterError, "^target_class"),  # only all-to-all takes None
    ({"trigger": "pixel"}, InvalidParameterError, "^trigger"),
    ({"mode": "one-to-one"}, InvalidParameterError, "^mode"),
    ({"alpha": 0.0}, InvalidParameterError, "^alpha"),
    ({"alpha": 1.5}, InvalidParameterError, "^alpha"),
    ({"patch_size": 0}, InvalidParameterError, "^patch_size"),
    ({"patch_size": 9}, InvalidParameterError, "^patch_size: 9 does not fit"),
    ({"patch_size": 2.0}, InvalidParameterError, "^patch_size"),
    ({"position": "middle"}, InvalidParameterError, "^position"),
    ({"position": (7, 7)}, InvalidParameterError, "^position: a 3x3 patch"),
    ({"position": (-1, 0)}, InvalidParameterError, "^position"),
    ({"image_shape": (8, 9)}, InvalidInputError, r"^X_train: expected 72 features"),
    ({"image_shape": (8, 0)}, InvalidParameterError, "^image_shape"),
    ({"image_shape": 64}, InvalidParameterError, "^image_shape"),
    ({"pattern": np.full((3, 3), 2.0)}, InvalidParameterError, "^pattern: values must lie in bounds"),
    ({"pattern": np.ones((4, 4))}, InvalidParameterError, r"^pattern: expected shape \(3, 3, 1\)"),
    ({"pattern": [np.nan]}, InvalidParameterError, "^pattern"),
    ({"trigger": "blend", "pattern": np.ones(10)}, InvalidParameterError, "^pattern: a blend pattern"),
    ({"features": [1, 1]}, InvalidParameterError, "^features: indices repeat"),
    ({"features": [64]}, InvalidParameterError, "^features: index 64 is out of range"),
    ({"features": [0.5]}, InvalidParameterError, "^features"),
    ({"features": [0, 1], "pattern": [1.0, 0.0, 1.0]}, InvalidParameterError, "^pattern: expected shape"),
    ({"source_classes": [0]}, InvalidParameterError, "^source_classes: no class"),
    ({"source_classes": [12]}, InvalidParameterError, "^source_classes"),
    ({"bounds": (1.0, 0.0)}, InvalidParameterError, "^bounds"),
    ({"bounds": (0.0, 0.5)}, InvalidInputError, "^X_train: values must lie in"),
    ({"random_state": -1}, InvalidParameterError, "^random_state"),
    ({"fraction": float("nan")}, InvalidParameterError, "^fraction"),
    ({"alpha": float("inf")}, InvalidParameterError, "^alpha"),
])
def test_bad_settings_are_refused_naming_them(digits, settings, error, match):
    X, y, _, _ = digits
    attack = BadNets(**settings)  # __init__ stores, run validates
    with pytest.raises(error, match=match):
        attack.run(X, y)


def test_bad_inputs_are_refused_naming_them(digits):
    X, y, _, _ = digits
    with pytest.raises(InvalidInputError, match="^X_train: contains NaN"):
        BadNets().run(np.where(np.eye(len(X), 64, dtype=bool), np.nan, X), y)
    with pytest.raises(InvalidInputError, match="^y_train: expected 1300 labels"):
        BadNets().run(X, y[:-1])
    with pytest.raises(InvalidInputError, match="^y_train: a backdoor needs at least two classes"):
        BadNets().run(X, np.zeros(len(y), dtype=int))
    with pytest.raises(InvalidParameterError, match="^image_shape: a patch trigger needs"):
        BadNets().run(X[:, :60], y)
    with pytest.raises(InvalidInputError, match="^X_train: expected a 2-D array"):
        BadNets().run(X[0], y[:1])
