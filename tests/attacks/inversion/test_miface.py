"""MI-Face (Fredrikson et al. 2015) on real Fashion-MNIST: white-box, black-box, and what rounding does.

The target trains on 1,500 images; the attacker's auxiliary data (for Process-DAE) are 1,500 other,
unlabelled images. A reconstruction counts when it is closer (MSE) to its own class's mean image than to
any other class's mean. Measured (seed 0), classified as their class / nearest their own mean / MSE to it:
white-box with Process-DAE, softmax regression 10 / 10 / 0.050, MLP 10 / 10 / 0.053; black-box
(probabilities only, ~26,000 queries for the 10 classes) 10 / 10 / 0.055 and 9 / 9 / 0.067; plain MI-Face
without the DAE 10 / 10 / 0.216 and 10 / 6 / 0.240 (noise around the class's template); confidences
rounded (black-box) to 2 decimals 7 / 5 and 9 / 4, to 1 decimal 1 / 1 and 2 / 1; output noise (softmax,
the NES average sees through small noise): 0.01 9 nearest own, 0.05 7, 0.1 4, 0.2 2.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from mlpentest.attacks.inversion import InversionResult, MIFace
from mlpentest.defenses import ConfidenceMasking, OutputNoise
from mlpentest.errors import CapabilityError, InvalidParameterError
from mlpentest.models import wrap

BLACK_BOX_BUDGET = 40_000  # queries for all 10 classes


@pytest.fixture(scope="module")
def task(fashion):
    pools = fashion.split({"train": 1500, "aux": 1500}, random_state=0)
    X, y, X_aux = pools["train"].X, pools["train"].y, pools["aux"].X
    means = np.stack([X[y == c].mean(axis=0) for c in range(10)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        softmax = LogisticRegression(max_iter=100, C=0.1, tol=1e-3).fit(X, y)
        mlp = MLPClassifier((64,), max_iter=60, random_state=0).fit(X, y)
    return {"softmax": softmax, "mlp": mlp}, X_aux, means


@pytest.mark.parametrize("name", ["softmax", "mlp"])
def test_white_box_reconstructions_are_their_class(task, name):
    models, X_aux, means = task
    result = MIFace(models[name], X_aux).run(class_means=means)
    assert isinstance(result, InversionResult) and result.params["gradient"] == "white-box"
    assert result.classified_as_target.all()
    assert result.nearest_mean_is_own.sum() >= 8  # bar: 8 of 10 nearest their own class mean
    assert (result.mse_to_own_mean < result.mse_to_nearest_other_mean).sum() >= 8
    assert result.image_shape == (28, 28)


def test_the_dae_is_what_makes_them_recognisable(task):
    models, X_aux, means = task
    plain = MIFace(models["softmax"]).run(class_means=means)
    dae = MIFace(models["softmax"], X_aux).run(class_means=means)
    assert plain.classified_as_target.all()  # the plain attack fools the model ...
    assert dae.mse_to_own_mean.mean() < 0.5 * plain.mse_to_own_mean.mean()  # ... with noise-like images
    assert (dae.mse_to_own_mean < plain.mse_to_own_mean).all()


@pytest.mark.parametrize("name", ["softmax", "mlp"])
def test_black_box_from_probabilities_only(task, name):
    models, X_aux, means = task
    api = wrap(models[name].predict_proba, input_shape=(784,), n_classes=10)  # no gradients, no logits
    result = MIFace(api, X_aux, random_state=0).run(class_means=means)
    assert result.params["gradient"] == "black-box"
    assert result.queries == api.queries <= BLACK_BOX_BUDGET
    assert result.nearest_mean_is_own.sum() >= 6  # bar: 6 of 10 within the budget


def test_rounded_confidences_defeat_the_black_box_attack(task):
    models, X_aux, means = task
    exact = MIFace(models["softmax"], X_aux, gradient="black-box", random_state=0).run(class_means=means)
    for decimals, loss in ((2, 3), (1, 6)):  # measured: 10 -> 5 and 10 -> 1 nearest their own mean
        masked = ConfidenceMasking(models["softmax"], decimals=decimals)
        rounded = MIFace(masked, X_aux, random_state=0).run(class_means=means)
        assert rounded.nearest_mean_is_own.sum() <= exact.nearest_mean_is_own.sum() - loss


def test_output_noise_defeats_the_black_box_attack(task):
    models, X_aux, means = task
    for scale, most in ((0.1, 6), (0.2, 4)):  # measured: 10 -> 4 and 10 -> 2 nearest their own mean
        noisy = OutputNoise(models["softmax"], scale=scale, random_state=0)
        result = MIFace(noisy, X_aux, random_state=0).run(class_means=means)
        assert result.nearest_mean_is_own.sum() <= most, scale


def test_labels_only_outputs_stop_it(task):
    models, X_aux, _ = task
    labels_only = wrap(models["mlp"].predict, input_shape=(784,), n_classes=10, output="labels")
    with pytest.raises(CapabilityError, match="MIFace needs a model that returns probabilities"):
        MIFace(labels_only, X_aux).run()


def test_class_means_are_never_read_and_stopping_rules_fire(task):
    models, X_aux, means = task
    a = MIFace(models["mlp"], X_aux, max_iter=40).run([2, 7], class_means=means[[2, 7]])
    b = MIFace(models["mlp"], X_aux, max_iter=40).run([2, 7], class_means=means[[7, 2]])
    np.testing.assert_array_equal(a.reconstructions, b.reconstructions)
    assert a.log["cost"].shape[1] == 2 and (a.iterations <= 40).all()
    early = MIFace(models["mlp"], X_aux, cost_threshold=0.5).run([2, 7])
    assert (early.iterations < 20).all() and (early.confidence >= 0.5).all()  # gamma: cost below 0.5
    patient = MIFace(models["mlp"], X_aux, patience=1, max_iter=300).run([2, 7])
    assert (patient.iterations < 300).all()  # beta = 1: the first step that does not improve stops it


def test_a_spent_budget_keeps_the_best_reconstructions(task):
    models, X_aux, means = task
    api = wrap(models["softmax"].predict_proba, input_shape=(784,), n_classes=10, query_budget=2_000)
    result = MIFace(api, X_aux, random_state=0).run(class_means=means)
    assert result.budget_exhausted and result.queries <= 2_000
    assert np.isfinite(result.confidence).all() and (result.confidence > 0.1).all()


def test_a_torch_cnn_is_inverted_white_box(task, fashion):
    pytest.importorskip("torch")
    from mlpentest.experiments.nets import CNNTrainer

    pools = fashion.split({"train": 1500}, random_state=0)
    net = CNNTrainer((28, 28), 10, epochs=2, min_steps=0)(pools["train"].X, pools["train"].y, seed=0)
    _, X_aux, means = task
    result = MIFace(net, X_aux).run(class_means=means)
    assert result.params["gradient"] == "white-box" and result.classified_as_target.sum() >= 8


def test_bad_settings_are_named(task):
    models, X_aux, _ = task
    with pytest.raises(InvalidParameterError, match="^X_aux: process='dae' needs auxiliary data"):
        MIFace(models["mlp"], process="dae").run()
    with pytest.raises(InvalidParameterError, match="^process: must map a batch"):
        MIFace(models["mlp"], process=lambda x: x[:, :3]).run()
    with pytest.raises(CapabilityError, match="gradient='white-box'"):
        api = wrap(models["mlp"].predict_proba, input_shape=(784,), n_classes=10)
        MIFace(api, gradient="white-box").run()
