"""Backdoor defences against BadNets (3x3 checkerboard patch, 5% of the training set, all-to-one, target 0).

Measured on digits (1300 training / 497 test points, MLPClassifier(64, alpha=1e-2), seed 0): the
poisoned model has ASR 1.00 at clean accuracy 0.978 (clean model: 0.978). Activation clustering with
exclusionary reinforcement flags 92 points: recall 1.00, precision 0.71, false-positive rate 2.2%;
retrained without them the model has ASR 0.00 at clean accuracy 0.954 (cost 2.4 points). With the
default alpha=1e-4 one poison point escapes (recall 0.985) and the retrained model keeps ASR 0.18: a
regularised retraining recipe is part of the defence. Spectral signatures on this 64-unit MLP separate
poorly (recall 0.23 at the paper's 1.5 x 5% per class; 0.83 at FPR 0.48 with epsilon = 0.33): reported.
Fine-pruning does not remove the backdoor from this MLP (ASR stays ~0.99 at the search's 17% pruning);
on a small torch CNN on digits (conv 16/32, 30 epochs) it does: ASR 1.00 -> 0.11 at clean accuracy
0.985 -> 0.970 (22% of conv2's channels pruned, 10 epochs of fine-tuning on 300 clean points). On a
Fashion-MNIST slice (3000 images, conv 8/16 CNN, 4 epochs; ASR 0.64) it took ASR to 0.07-0.09 at clean
accuracy 0.78-0.81 (0.80 before); that run is too slow for the suite here.
"""

import copy
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from mlpentest.attacks.poisoning.backdoor import BadNets
from mlpentest.datasets import load
from mlpentest.defenses.backdoor import (
    ActivationClustering,
    BackdoorDetection,
    SpectralSignatures,
    activations,
)
from mlpentest.defenses.backdoor_pruning import FinePruning, PruningResult
from mlpentest.errors import CapabilityError, InvalidInputError, InvalidParameterError


def _mlp(X, y, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-2, max_iter=300, random_state=seed).fit(X, y)


@pytest.fixture(scope="module")
def digits():
    s = load("digits").split({"train": 1300, "test": 497}, random_state=0)
    X, y = s["train"].X.astype(np.float64), s["train"].y
    attack = BadNets(target_class=0, fraction=0.05, image_shape=(8, 8), random_state=0).run(X, y)
    clean = _mlp(X, y)
    poisoned = _mlp(attack.X_poisoned, attack.y_poisoned)
    return X, y, s["test"].X.astype(np.float64), s["test"].y, attack, clean, poisoned


def test_activations_match_the_mlp_forward_pass(digits):
    X, _, _, _, _, clean, _ = digits
    A = activations(clean, X[:5])
    assert A.shape == (5, 64)
    assert np.allclose(A, np.maximum(X[:5] @ clean.coefs_[0] + clean.intercepts_[0], 0.0))


def test_activation_clustering_removes_the_backdoor(digits):
    X, y, Xt, yt, attack, clean, poisoned = digits
    before = attack.evaluate(poisoned, Xt, yt)
    baseline = attack.evaluate(clean, Xt, yt)
    assert before.attack_success_rate >= 0.9  # the backdoor is there to remove
    det = ActivationClustering(method="exclusionary", random_state=0).run(
        poisoned, attack.X_poisoned, attack.y_poisoned, poison_mask=attack.poison_mask)
    assert isinstance(det, BackdoorDetection)
    assert det.recall >= 0.8 and det.false_positive_rate <= 0.10  # the bar (measured 1.00, 0.022)
    assert det.flagged_classes[0] == 0
    keep = det.kept_indices
    after = attack.evaluate(_mlp(attack.X_poisoned[keep], attack.y_poisoned[keep]), Xt, yt)
    assert after.attack_success_rate < 0.10  # measured 0.00
    assert after.clean_accuracy >= baseline.clean_accuracy - 0.04  # stated cost: measured 2.4 points
    d = det.to_dict()
    assert d["type"] == "BackdoorDetection" and d["recall"] == det.recall
    det.plot()


def test_clean_training_set_gives_few_false_positives(digits):
    X, y, _, _, _, clean, _ = digits
    det = ActivationClustering(method="exclusionary", random_state=0).run(
        clean, X, y, poison_mask=np.zeros(len(y), dtype=bool))
    assert det.false_positive_rate <= 0.05
    assert np.isnan(det.recall)


def test_other_detectors_are_reported(digits):
    _, _, _, _, attack, _, poisoned = digits
    args = (poisoned, attack.X_poisoned, attack.y_poisoned)
    spectral = SpectralSignatures().run(*args, poison_mask=attack.poison_mask)
    # 1.5 x 5% of each class is removed, as in Tran et al.'s Alg. 1
    per_class = np.bincount(attack.y_poisoned)
    assert spectral.n_suspicious == sum(int(np.ceil(0.075 * n)) for n in per_class)
    assert spectral.scores.shape == (len(attack.y_poisoned),) and np.all(spectral.scores >= 0)
    size = ActivationClustering(random_state=0).run(*args, poison_mask=attack.poison_mask)
    assert size.recall >= 0.9  # the poison forms the small cluster of class 0; clean classes add FPs
    sil = ActivationClustering(method="silhouette", random_state=0).run(*args)
    assert np.isnan(sil.precision) and sil.n_suspicious > 0
    surrogate = ActivationClustering(method="exclusionary", random_state=0,
                                     surrogate=LogisticRegression(max_iter=300)).run(*args)
    assert 0 < surrogate.n_suspicious < len(args[1])


def test_fine_pruning_mlp_prunes_a_copy(digits):
    _, _, Xt, yt, attack, _, poisoned = digits
    saved = copy.deepcopy(poisoned.coefs_)
    pruning = FinePruning(prune_fraction=0.25, finetune_epochs=3, random_state=0)
    res = pruning.run(poisoned, Xt[:250], yt[:250])
    assert isinstance(res, PruningResult) and res.layer == "hidden layer 0"
    assert len(res.pruned_units) == 16 and res.prune_fraction == 0.25
    assert all(np.array_equal(a, b) for a, b in zip(saved, poisoned.coefs_, strict=True))  # untouched
    assert np.all(res.model.coefs_[-1][res.pruned_units] == 0.0)  # pruned units stay dead after fine-tuning
    assert np.all(res.model.coefs_[0][:, res.pruned_units] == 0.0)
    ev = attack.evaluate(res.model, Xt[250:], yt[250:])
    assert ev.clean_accuracy >= attack.evaluate(poisoned, Xt[250:], yt[250:]).clean_accuracy - 0.05
    searched = FinePruning(finetune_epochs=0, random_state=0).run(poisoned, Xt[:250], yt[:250])
    assert searched.clean_accuracy_before - searched.clean_accuracy_pruned <= 0.04
    assert res.to_dict()["model"] == "MLPClassifier"


@pytest.mark.slow  # training four CNNs: ~6 s on 2 free cores, minutes on a loaded machine
def test_fine_pruning_torch_cnn():
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.set_num_threads(2)
    s = load("digits").split({"train": 1100, "defender": 300, "test": 397}, random_state=0)
    attack = BadNets(target_class=0, fraction=0.05, image_shape=(8, 8), random_state=0).run(
        s["train"].X, s["train"].y)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
            self.fc1, self.fc2 = nn.Linear(32 * 4, 64), nn.Linear(64, 10)

        def forward(self, x):
            x = torch.relu(self.conv1(x.reshape(-1, 1, 8, 8)))
            x = torch.max_pool2d(torch.relu(self.conv2(x)), 4)
            return self.fc2(torch.relu(self.fc1(x.flatten(1))))

    def train(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        net = Net()
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        Xp = torch.as_tensor(attack.X_poisoned, dtype=torch.float32)
        yp = torch.as_tensor(attack.y_poisoned)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(30):
            for b in torch.randperm(len(Xp), generator=gen).split(64):
                opt.zero_grad()
                nn.functional.cross_entropy(net(Xp[b]), yp[b]).backward()
                opt.step()
        return net.eval()

    # How much of the backdoor fine-pruning removes varies with the network's initialisation (and, for one
    # seed, with the CPU's floating point): measured here over seeds 0-3, ASR 1.00 -> 0.46 / 0.04 / 0.29 /
    # 0.23 (mean 0.26), clean accuracy within 1.5 points, 12-25% of conv2's channels pruned. So the bar is
    # on every seed (the backdoor at least loses ~half its success) and on the mean.
    Xt, yt = s["test"].X, s["test"].y
    after_asr = []
    for seed in range(4):
        net = train(seed)
        before = attack.evaluate(net, Xt, yt)
        conv2 = net.conv2.weight.detach().clone()
        res = FinePruning(finetune_epochs=10, lr=1e-3, random_state=0).run(
            net, s["defender"].X, s["defender"].y)
        after = attack.evaluate(res.model, Xt, yt)
        assert before.attack_success_rate >= 0.9
        assert after.attack_success_rate < 0.6
        assert after.clean_accuracy >= before.clean_accuracy - 0.05
        after_asr.append(after.attack_success_rate)
    assert np.mean(after_asr) < 0.4
    assert torch.equal(net.conv2.weight, conv2)  # the caller's network is untouched
    assert res.layer == "conv2" and res.model is not net
    assert torch.all(res.model.conv2.weight[torch.as_tensor(res.pruned_units)] == 0)


def test_typed_errors(digits):
    X, y, _, _, attack, clean, _ = digits
    with pytest.raises(InvalidParameterError, match="expected_fraction"):
        SpectralSignatures(expected_fraction=1.5).run(clean, X, y)
    with pytest.raises(InvalidParameterError, match="method"):
        ActivationClustering(method="magic").run(clean, X, y)
    with pytest.raises(InvalidParameterError, match="layer"):
        activations(clean, X, layer=3)
    with pytest.raises(InvalidInputError, match="X"):
        SpectralSignatures().run(clean, np.full((4, 64), np.nan), y[:4])
    with pytest.raises(InvalidInputError, match="poison_mask"):
        SpectralSignatures().run(clean, X, y, poison_mask=np.ones(3, dtype=bool))
    with pytest.raises(CapabilityError, match="model"):
        SpectralSignatures().run(LogisticRegression(max_iter=200).fit(X, y), X, y)
    with pytest.raises(CapabilityError, match="model"):
        FinePruning().run(LogisticRegression(max_iter=200).fit(X, y), X, y)
    with pytest.raises(InvalidParameterError, match="prune_fraction"):
        FinePruning(prune_fraction=1.0).run(clean, X, y)
    with pytest.raises(InvalidInputError, match="y_clean"):
        FinePruning().run(clean, X, y[:-1])
