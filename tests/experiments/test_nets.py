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


def test_cnn_trainer_steps_grow_with_the_training_set(monkeypatch):
    # the rule: max(min_steps, epochs * ceil(n / batch_size)) updates; no fixed floor by default
    steps = []

    class CountingAdam(torch.optim.Adam):
        def step(self, *args, **kwargs):
            steps.append(1)
            return super().step(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", CountingAdam)
    rng = np.random.default_rng(0)
    for n, expected in ((40, 3), (130, 9)):  # 1 and 3 batches of 64 per epoch, 3 epochs
        steps.clear()
        X = rng.random((n, 8 * 8)).astype(np.float32)
        CNNTrainer((8, 8), 2, epochs=3, threads=1)(X, np.arange(n) % 2, seed=0)
        assert len(steps) == expected == CNNTrainer((8, 8), 2, epochs=3).n_steps(n)
    steps.clear()
    CNNTrainer((8, 8), 2, epochs=1, min_steps=5, threads=1)(X, np.arange(130) % 2, seed=0)
    assert len(steps) == 5  # the floor, stopping inside the second epoch
