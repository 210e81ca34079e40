import numpy as np
import pytest

from mlpentest import datasets

torch = pytest.importorskip("torch")

from mlpentest.experiments.nets import CNNTrainer  # noqa: E402


def test_cnn_trainer_learns_digits_and_is_reproducible():
    data = datasets.load("digits")
    pools = data.split({"train": 400, "test": 400}, random_state=0)
    trainer = CNNTrainer(data.image_shape, 10, epochs=1, min_steps=150)
    model = trainer(pools["train"].X, pools["train"].y, seed=0)
    assert model.predict_proba(pools["test"].X).shape == (400, 10)
    accuracy = np.mean(model.predict(pools["test"].X) == pools["test"].y)
    assert accuracy > 0.8  # a CNN that learned nothing would sit near 0.1
    again = trainer(pools["train"].X, pools["train"].y, seed=0)
    first = pools["test"].X[:5]
    np.testing.assert_allclose(model.predict_proba(first), again.predict_proba(first))


def test_cnn_trainer_handles_colour_images():
    rng = np.random.default_rng(0)
    X = rng.random((64, 8 * 8 * 3)).astype(np.float32)
    y = np.arange(64) % 3
    model = CNNTrainer((8, 8, 3), 3, epochs=1, min_steps=2)(X, y, seed=1)
    assert model.predict_proba(X[:4]).shape == (4, 3)
