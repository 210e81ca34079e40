"""The model-zoo backdoor: a backdoored pretrained model fine-tuned by its victim on clean data.

Measured (seed 0; digits, 900 attacker / 450 victim / 447 test images, 2x2 patch, 10% poisoned, MLP 64
hidden units, victim's Adam at 1e-3): ASR 99.0% as downloaded; kept last layer 97.8 / 97.5 / 94.0% after
1 / 5 / 20 epochs; last layer re-initialised 7.9 / 44.4 / 9.9% (clean accuracy back to 91.7%).
The torch path: a small Fashion-MNIST CNN (3000 attacker / 600 victim images, 3x3 patch, 5%, 6 epochs);
the gu2017 quick run (4000 / 1000 images, 8 epochs) measured ASR 98.8% as downloaded, 64.7% after 20
epochs with the last layer kept and 15.3% with it re-initialised.
"""

import copy
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from mlpentest import datasets
from mlpentest.attacks.poisoning.backdoor import BadNets
from mlpentest.errors import InvalidParameterError, UnsupportedModelError
from mlpentest.experiments.backdoor_zoo import FinetuneSurvival, finetune_survival


@pytest.fixture(scope="module")
def digits_zoo():
    parts = datasets.load("digits").split({"train": 900, "victim": 450, "test": 447}, random_state=0)
    tr = parts["train"]
    result = BadNets(target_class=0, fraction=0.1, image_shape=(8, 8), patch_size=2, random_state=0).run(
        tr.X, tr.y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier((64,), max_iter=500, random_state=0).fit(result.X_poisoned, result.y_poisoned)
    return mlp, result, parts["victim"], parts["test"]


def test_mlp_survival_table(digits_zoo):
    mlp, result, victim, test = digits_zoo
    before = [w.copy() for w in mlp.coefs_]
    table = finetune_survival(mlp, result, victim.X, victim.y, test.X, test.y, random_state=0)
    assert isinstance(table, FinetuneSurvival)
    assert [(r.reinit, r.epochs) for r in table.rows] == [(False, e) for e in (0, 1, 5, 20)] + [
        (True, e) for e in (0, 1, 5, 20)]
    # the caller's model is untouched (deep copies are fine-tuned)
    assert all(np.array_equal(a, b) for a, b in zip(before, mlp.coefs_, strict=True))
    assert not mlp.warm_start
    kept0, kept20 = table.row(reinit=False, epochs=0), table.row(reinit=False, epochs=20)
    assert kept0.asr >= 0.9 and kept0.clean_accuracy >= 0.93  # measured 99.0% / 97.1%
    assert kept20.asr >= 0.8  # the backdoor survives fine-tuning of every layer (measured 94.0%)
    reset0, reset20 = table.row(reinit=True, epochs=0), table.row(reinit=True, epochs=20)
    assert reset0.clean_accuracy < 0.4  # a random output layer
    assert reset20.clean_accuracy >= 0.85  # the victim's data teaches it again (measured 91.7%)
    # a new output layer forgets the attacker's label: measured ASR 9.9% against 94.0% when kept
    assert reset20.asr < kept20.asr - 0.5
    text = table.to_text()
    assert "re-initialised" in text and text.count("\n") == 8
    d = table.to_dict()
    assert d["n_victim"] == 450 and len(d["rows"]) == 8
    table.plot()


def test_higher_lr_erodes_the_backdoor_more(digits_zoo):
    mlp, result, victim, test = digits_zoo
    slow = finetune_survival(mlp, result, victim.X, victim.y, test.X, test.y, epochs=(20,),
                             reinit_last_layer=(False,), lr=1e-3)
    fast = finetune_survival(mlp, result, victim.X, victim.y, test.X, test.y, epochs=(20,),
                             reinit_last_layer=(False,), lr=1e-2)
    assert fast.rows[0].asr < slow.rows[0].asr - 0.15  # measured 62.5% vs 94.0%


def test_bad_arguments(digits_zoo):
    mlp, result, victim, test = digits_zoo
    args = (mlp, result, victim.X, victim.y, test.X, test.y)
    with pytest.raises(InvalidParameterError, match="epochs"):
        finetune_survival(*args, epochs=(-1, 2))
    with pytest.raises(InvalidParameterError, match="epochs"):
        finetune_survival(*args, epochs=("5",))
    with pytest.raises(InvalidParameterError, match="epochs"):
        finetune_survival(*args, epochs=5)
    with pytest.raises(InvalidParameterError, match="lr"):
        finetune_survival(*args, lr=float("nan"))
    with pytest.raises(InvalidParameterError, match="optimizer"):
        finetune_survival(*args, optimizer="rmsprop")
    with pytest.raises(InvalidParameterError, match="reinit_last_layer"):
        finetune_survival(*args, reinit_last_layer=("yes",))
    with pytest.raises(UnsupportedModelError, match="pretrained"):
        finetune_survival(object(), *args[1:])
    with pytest.raises(UnsupportedModelError, match="not fitted"):
        finetune_survival(MLPClassifier(), *args[1:])


def test_torch_cnn_survival(fashion):
    torch = pytest.importorskip("torch")
    from mlpentest.experiments.backdoor_zoo import small_cnn, train_torch

    torch.set_num_threads(1)
    parts = fashion.split({"train": 3000, "victim": 600, "test": 600}, random_state=0)
    tr, victim, test = parts["train"], parts["victim"], parts["test"]
    result = BadNets(target_class=0, fraction=0.05, image_shape=(28, 28), random_state=0).run(tr.X, tr.y)
    torch.manual_seed(0)
    net = train_torch(small_cnn((28, 28), 10), result.X_poisoned, result.y_poisoned, epochs=6,
                      schedule="cosine", seed=0)
    state = copy.deepcopy(net.state_dict())
    table = finetune_survival(net, result, victim.X, victim.y, test.X, test.y, epochs=(0, 1, 5),
                              random_state=0)
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())
    kept0 = table.row("CNN", reinit=False, epochs=0)
    assert kept0.asr >= 0.9 and kept0.clean_accuracy >= 0.75
    reset5 = table.row("CNN", reinit=True, epochs=5)
    assert reset5.clean_accuracy >= 0.65
    assert reset5.asr < table.row("CNN", reinit=False, epochs=5).asr
