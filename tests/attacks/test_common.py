"""Checks every registered attack must pass (the scikit-learn ``test_common`` idea), over the registry.

Registering an attack in ``mlpentest.attacks.REGISTRY`` is all it takes to be checked here: settings are
stored unchanged by ``__init__`` (which validates nothing) and left unchanged by ``run``; the same
``random_state`` gives the same result; NaN/inf or wrongly typed settings and input of the wrong width
are refused with a typed error naming the argument; one 1-D point in gives one 1-D point out; the
result is the family's type, carries ``attack``/``params``/``wall_seconds``, serialises to strict JSON
and plots. ``SETTINGS`` below only makes the runs small (and gives required settings a value).
"""

import dataclasses
import importlib
import inspect
import json
import pkgutil
import re

import matplotlib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

import mlpentest
from mlpentest import datasets
from mlpentest.attacks import REGISTRY
from mlpentest.attacks.base import Attack, AttackResult
from mlpentest.attacks.evasion import EvasionResult
from mlpentest.attacks.extraction import ExtractionResult
from mlpentest.attacks.inversion import AttributeInferenceResult, InversionResult
from mlpentest.attacks.membership import MembershipResult, MembershipSignals, ReferenceModels, collect_signals
from mlpentest.attacks.poisoning import BackdoorResult, PoisoningResult
from mlpentest.errors import CapabilityError, InvalidInputError, InvalidParameterError
from mlpentest.models import wrap
from mlpentest.results import Result, figure_of

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: small, fast settings per registered attack; several entries test several variants of one class
SETTINGS = {
    "shadow-models": [{"max_train_per_class": 200, "random_state": 0},
                      {"per_class": False, "attack_model": LogisticRegression(), "random_state": 0}],
    "threshold": [{"class_dependent": False}, {"metric": "confidence"}, {"metric": "entropy"},
                  {"metric": "modified_entropy", "min_per_class": 5}],
    "lira": [{}, {"online": False, "fix_variance": False}],
    "rmia": [{}, {"online": False, "n_population": 200, "random_state": 0}],
    "evasion-svm": [{"dmax": 2.0, "t": 0.2, "max_iter": 30}],
    "fgsm": [{"eps": 0.3}],
    "pgd": [{"eps": 1.5, "norm": "l2", "max_iter": 10, "random_state": 0}],
    "deepfool": [{}],
    "hop-skip-jump": [{"max_iter": 2, "max_evals": 30, "init_evals": 10, "random_state": 0}],
    "nes": [{"eps": 0.3, "max_iter": 10, "samples": 10, "random_state": 0}],
    "poisoning-svm": [{"max_iter": 5, "random_state": 0}],
    "poisoning-logistic": [{"max_iter": 3, "random_state": 0}],
    "random-label-flip": [{"fraction": 0.2, "random_state": 0}],
    "greedy-label-flip": [{"n_flips": 3, "candidates": 5, "random_state": 0}],
    "mi-face": [{"max_iter": 15, "patience": 5},
                {"max_iter": 8, "gradient": "black-box", "samples": 3, "random_state": 0}],
    "equation-solving": [{"random_state": 0}, {"verify": 3, "bounds": None, "random_state": 0},
                         {"hidden": 4, "max_queries": 150, "random_state": 0}],
    "knockoff-nets": [{"budget": 40, "epochs": 5, "random_state": 0},
                      {"strategy": "adaptive", "budget": 30, "checkpoints": (10, 20), "actions": (2, 2),
                       "epochs": 5, "random_state": 0}],
    "copycat": [{"budget": 40, "epochs": 5, "random_state": 0}],
    "retraining": [{"budget": 60, "rounds": 3, "random_state": 0},
                   {"strategy": "line-search", "budget": 60, "rounds": 3, "steps": 3, "random_state": 0},
                   {"strategy": "uniform", "budget": 40, "rounds": 2, "student": LogisticRegression(),
                    "random_state": 0}],
    "path-finding": [{"random_state": 0},
                     {"eps": 1e-3, "categorical": {36: [0.0, 0.5, 1.0]}, "random_state": 0}],
    "badnets": [{"target_class": 1, "fraction": 0.1, "random_state": 0},
                {"target_class": 0, "trigger": "blend", "alpha": 0.3, "image_shape": (8, 8),
                 "random_state": 0},
                {"target_class": None, "mode": "all-to-all", "fraction": 0.2, "random_state": 0},
                {"target_class": 1, "features": [0, 9, 63], "pattern": [1.0, 0.0, 1.0], "random_state": 0}],
    "attribute-inference": [
        {"attribute": 20, "values": [0.0, 0.5, 1.0], "prior": "uniform", "random_state": 0},
        {"attribute": 20, "values": [0.0, 0.5, 1.0], "prior": [0.5, 0.3, 0.2], "output": "label",
         "random_state": 0},
    ],
}
CASES = [(name, settings) for name in REGISTRY for settings in SETTINGS.get(name, [{}])]
IDS = [f"{name}-{i}" for name in REGISTRY for i in range(len(SETTINGS.get(name, [{}])))]
RESULT_TYPES = {"membership": MembershipResult, "evasion": EvasionResult, "poisoning": PoisoningResult,
                "inversion": InversionResult, "attribute-inference": AttributeInferenceResult,
                "extraction": ExtractionResult, "backdoor": BackdoorResult}


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


@pytest.fixture(scope="module")
def pair():
    """Digits 3 vs 7: 60 training, 40 validation, 12 evasion points."""
    pools = datasets.load("digits").pair(3, 7).split({"train": 60, "valid": 40, "test": 12}, random_state=0)
    return pools["train"], pools["valid"], pools["test"]


@pytest.fixture(scope="module")
def models(pair):
    train = pair[0]
    return {
        "logistic": LogisticRegression(max_iter=1000).fit(train.X, train.y),  # gradients, scores, labels
        "svc": SVC(kernel="linear", C=1.0).fit(train.X, train.y),
        "tree": DecisionTreeClassifier(max_leaf_nodes=6, random_state=0).fit(train.X, train.y),  # leaf ids
    }


class Case:
    """One registered attack, built for a small run on the family's data."""

    def __init__(self, name, settings, signals, pair, models):
        self.info = REGISTRY[name]
        self.family = self.info.family
        self.settings = settings
        train, valid, test = pair
        kinds = {"SVC": "svc", "DecisionTreeClassifier": "tree"}
        model = models[next((kinds[n] for n in self.info.needs if n in kinds), "logistic")]
        if self.family == "membership":
            self.inputs, self.args = (), (signals,)
        elif self.family in ("evasion", "attribute-inference"):  # points, and their labels
            self.inputs, self.args = (model,), (test.X, test.y)
        elif self.family == "inversion":  # the model and unlabelled auxiliary data; run() inverts all
            self.inputs, self.args = (model, valid.X), ()
        elif self.family == "backdoor":  # no model: the training set to poison
            self.inputs, self.args = (), (train.X, train.y)
        elif self.family == "extraction":  # the victim; a query pool; held-out points to score the copy
            self.inputs, self.args = (model,), (valid.X,)
            self.kwargs = {"X_test": test.X, "y_test": test.y}
        else:
            self.inputs, self.args = (model, train.X, train.y), (valid.X, valid.y)

    def make(self, **changes):
        return self.info.cls(*self.inputs, **{**self.settings, **changes})

    kwargs: dict = {}

    def run(self, attack=None, *args, **kwargs):
        return (attack or self.make()).run(*(args or self.args), **{**self.kwargs, **kwargs})


@pytest.fixture(params=CASES, ids=IDS)
def case(request, signals, pair, models):
    return Case(*request.param, signals, pair, models)


def case_model(X, y):
    """A model trained on the (clean) training set, for the checks of a backdoor's ``evaluate``."""
    return LogisticRegression(max_iter=1000).fit(X, y)


def _snapshot(attack):
    return {k: (id(v), repr(v)) for k, v in attack.get_params().items()}


def test_every_attack_class_is_registered():
    """An Attack subclass that is not in the registry would escape these checks: there is none."""
    package = importlib.import_module("mlpentest.attacks")
    for module in pkgutil.walk_packages(package.__path__, "mlpentest.attacks."):
        importlib.import_module(module.name)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    ours = {c for c in subclasses(Attack) if c.__module__.startswith("mlpentest.")}
    assert ours == {info.cls for info in REGISTRY.values()}
    assert all(name == name.lower() and " " not in name for name in REGISTRY)


def test_init_stores_settings_unchanged_and_validates_nothing(case):
    attack = case.make()
    params = attack.get_params()
    assert set(params) == set(inspect.signature(type(attack)).parameters)
    for name, value in case.settings.items():
        assert params[name] is value
    # every setting garbage: __init__ must still accept it (validation belongs to run)
    garbage = {k: float("nan") for k in attack.settings()}
    type(attack)(*case.inputs, **garbage)
    assert repr(attack).startswith(type(attack).__name__ + "(")


def test_run_leaves_settings_unchanged_and_stamps_the_result(case):
    attack = case.make()
    before = _snapshot(attack)
    result = case.run(attack)
    assert _snapshot(attack) == before
    assert isinstance(result, AttackResult) and isinstance(result, RESULT_TYPES[case.family])
    assert result.attack == attack.display_name()
    assert set(attack.settings()) <= set(result.params)
    for name, value in case.settings.items():  # as given, or resolved to the same value
        assert result.params[name] is value or result.params[name] == value
    assert isinstance(result.wall_seconds, float) and result.wall_seconds > 0.0
    assert result.budget_exhausted is False


def test_same_random_state_gives_the_same_result(case):
    def doc(result):
        out = result.to_dict()
        out.pop("wall_seconds")
        return json.dumps(out, sort_keys=True)

    assert doc(case.run()) == doc(case.run())


def test_result_serialises_and_plots(case):
    result = case.run()
    doc = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert doc["type"] == type(result).__name__
    assert doc["attack"] == result.attack and isinstance(doc["params"], dict) and doc["wall_seconds"] > 0
    summary = result.summary()
    assert summary and all(isinstance(v, int | float | str) for v in summary.values())
    figure = figure_of(result.plot())
    drawn = [a for a in figure.axes if a.lines or a.patches or a.images or a.collections]
    assert drawn, f"{type(result).__name__}.plot() drew nothing"
    plt.close("all")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_settings_are_refused_naming_them(case, bad):
    for name in case.make().settings():
        with pytest.raises(InvalidParameterError, match=rf"^{re.escape(name)}\b"):
            case.run(case.make(**{name: bad}))


def test_wrongly_typed_numeric_settings_are_refused_naming_them(case):
    attack = case.make()
    numeric = [k for k, v in attack.settings().items()
               if isinstance(v, int | float) and not isinstance(v, bool)]
    for name in numeric + ["random_state"] * ("random_state" in attack.settings()):
        with pytest.raises(InvalidParameterError, match=rf"^{re.escape(name)}\b"):
            case.run(case.make(**{name: "abc"}))


def test_input_of_the_wrong_width_is_refused_naming_it(case):
    if case.family == "membership":
        with pytest.raises(InvalidInputError, match="^signals"):
            case.run(None, case.args[0].target_proba)
        return
    if case.family == "extraction":
        with pytest.raises(InvalidInputError, match="^X_test: expected 64 features"):
            case.run(X_test=case.kwargs["X_test"][:, :10])
        return
    if case.family == "inversion":
        model, X_aux = case.inputs
        with pytest.raises(InvalidInputError, match="^class_means: expected 64 features"):
            case.run(class_means=X_aux[:2, :10])
        if "X_aux" in case.info.cls.inputs:
            with pytest.raises(InvalidInputError, match="^X_aux: expected 64 features"):
                case.info.cls(model, X_aux[:, :10], **case.settings).run()
        return
    if case.family == "backdoor":  # the trigger fits the training set's width; test inputs must match
        X, y = case.args
        result = case.run()
        with pytest.raises(InvalidInputError, match="^X: expected 64 features"):
            result.apply_trigger(X[:, :10])
        with pytest.raises(InvalidInputError, match="^X_test: expected 64 features"):
            result.evaluate(case_model(X, y), X[:, :10], y)
        if case.settings.get("image_shape") is not None:
            with pytest.raises(InvalidInputError, match="^X_train: expected 64 features"):
                case.run(None, X[:, :10], y)
        return
    X, y = case.args
    name = "X_valid" if case.family == "poisoning" else "X"
    with pytest.raises(InvalidInputError, match=rf"^{name}: expected 64 features"):
        case.run(None, X[:, :10], y)


def test_bad_input_is_refused_before_any_query_is_spent(case):
    """A typo in the last argument must not cost a budget: every input is checked before the first query."""
    if case.family not in ("extraction", "evasion", "attribute-inference", "inversion"):
        pytest.skip("membership (signals), backdoor (no model), poisoning (the model is retrained)")
    victim = wrap(case.inputs[0])
    attack = case.info.cls(victim, *case.inputs[1:], **case.settings)
    if case.family == "inversion":
        with pytest.raises(InvalidInputError, match="^class_means"):
            case.run(attack, class_means=case.inputs[1][:2, :10])
    elif case.family == "extraction":
        X_test, y_test = case.kwargs["X_test"], case.kwargs["y_test"]
        bad = [({"X_test": X_test[:, :10]}, "X_test"), ({"X_test": X_test, "y_test": y_test[:3]}, "y_test")]
        for kwargs, name in bad:
            with pytest.raises(InvalidInputError, match=rf"^{name}"):
                case.run(attack, **kwargs)
    else:
        X, y = case.args
        with pytest.raises(InvalidInputError, match=r"^y"):
            case.run(attack, X, y[:3])
    assert victim.queries == 0


def test_one_point_in_gives_one_point_out(case):
    if case.family == "membership":
        pytest.skip("membership attacks score signals, not points")
    if case.family == "extraction":
        pytest.skip("extraction attacks choose their own queries")
    if case.family == "backdoor":  # one test input in, one triggered input out
        result, X = case.run(), case.args[0]
        single, batch = result.apply_trigger(X[0]), result.apply_trigger(X[:1])
        assert single.shape == (X.shape[1],) and batch.shape == (1, X.shape[1])
        np.testing.assert_array_equal(single, batch[0])
        return
    if case.family == "inversion":  # one label in, one reconstruction out
        batch, single = case.run(None, [1]), case.run(None, 1)
        assert single.reconstructions.shape == (64,) and batch.reconstructions.shape == (1, 64)
        np.testing.assert_array_equal(single.reconstructions, batch.reconstructions[0])
        return
    if case.family == "attribute-inference":
        X, y = case.args
        batch, single = case.run(None, X[:1], y[:1]), case.run(None, X[0], y[0])
        assert single.inferred.shape == single.true_values.shape == () and single.posterior.shape == (3,)
        np.testing.assert_array_equal(single.posterior, batch.posterior[0])
        return
    if case.family == "evasion":
        X, y = case.args
        batch, single = case.run(None, X[:1], y[:1]), case.run(None, X[0], y[0])
        assert single.x0.shape == single.x_adv.shape == (X.shape[1],)
        assert single.success.shape == single.y_adv.shape == ()
        np.testing.assert_array_equal(single.x_adv, batch.x_adv[0])
        assert all(v.ndim == batch.log[k].ndim - 1 for k, v in single.log.items())
        return
    if "x_init" not in inspect.signature(case.make()._run).parameters:
        pytest.skip("label flipping moves no points")
    X_train = case.inputs[1]
    batch = case.make().run(*case.args, x_init=X_train[:1])
    single = case.make().run(*case.args, x_init=X_train[0])
    assert single.x_poison.shape == (X_train.shape[1],) and batch.x_poison.shape == (1, X_train.shape[1])
    np.testing.assert_array_equal(single.x_poison, batch.x_poison[0])


def test_evasion_threat_model_is_what_the_attack_needs(case):
    """The registry's threat model is honest: label-only and score-only attacks run on such a model;
    white-box ones refuse a model that gives only scores."""
    if case.family != "evasion":
        pytest.skip("evasion only")
    model, (X, y) = case.inputs[0], case.args
    views = {
        "labels": wrap(model.predict, input_shape=(X.shape[1],), n_classes=2, output="labels"),
        "scores": wrap(model.predict_proba, input_shape=(X.shape[1],), output="proba"),
    }
    threat = case.info.threat_model
    if threat == "white-box":
        with pytest.raises(CapabilityError, match=f"^{type(case.make()).__name__} needs a model with"):
            case.info.cls(views["scores"], **case.settings).run(X, y)
    else:
        result = case.info.cls(views[threat], **case.settings).run(X, y)
        assert result.queries == views[threat].queries > 0


def test_membership_signals_missing_what_the_attack_needs(case):
    if case.family != "membership":
        pytest.skip("membership only")
    signals = case.args[0]
    stripped = MembershipSignals(y=signals.y, target_proba=signals.target_proba, is_member=signals.is_member)
    if "reference models" in case.info.needs or case.settings.get("class_dependent", True):
        with pytest.raises((InvalidInputError, InvalidParameterError), match="signals|class_dependent"):
            case.run(None, stripped)
    else:
        assert case.run(None, stripped).auc > 0.5  # needs nothing beyond the target's outputs


def test_results_and_signals_are_compared_by_identity():
    """``eq=False`` everywhere: ``==`` on results holding arrays must not raise or compare arrays."""
    for module in pkgutil.walk_packages(mlpentest.__path__, "mlpentest."):
        if module.name.endswith(("__main__", "models.torch", "experiments.nets")):
            continue
        importlib.import_module(module.name)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in [*subclasses(Result), MembershipSignals]:
        if dataclasses.is_dataclass(cls) and cls.__module__.startswith("mlpentest."):
            assert cls.__eq__ is object.__eq__, f"{cls.__qualname__} compares by value (set eq=False)"
