"""Attribute inference (Fredrikson et al. 2014, Yeom et al. 2018) on real tabular data, fixed seeds.

Diabetes (scikit-learn, 442 patients): the sensitive attribute is ``sex`` (column 1, values 1/2), the
label disease progression in tertiles; disjoint pools of 150 members (the target's training set), 150
non-members and 142 attacker records. The attacker's records put the prior at p(sex=1) = 0.43, so the
prior-only guess is 2, while 57 % of the members have sex 1: the bars below also ask the attack to beat
the best constant guess (0.573 on members), which only an oracle of the members' prior would make.
Target: an MLP (64 hidden units, alpha 1e-6, standardised inputs) that fits its members perfectly (test
accuracy 0.52). Measured, seed 0, the adversary knowing each record's label:

=====================================  =========  ===========  ==========================
attack on the MLP                      members    non-members  prior-only (members / non)
=====================================  =========  ===========  ==========================
probabilities                          0.733      0.487        0.427 / 0.413
labels only                            0.673      0.433        0.427 / 0.413
probabilities, alpha=10 (regularised)  0.493      0.473        0.427 / 0.413
probabilities, logistic-regression     0.833      0.600        0.673 / 0.573 (imputation)
prior p(sex | other features)
regression MLP (value), Gaussian L     0.640      0.467        0.427 / 0.413
=====================================  =========  ===========  ==========================

Fair's affairs survey (statsmodels; religiousness 1-4, label: any affair; 200 / 200 / 1000 records):
members 0.540, non-members 0.405, prior-only 0.385 / 0.380.
"""

import dataclasses
import inspect
import json
import re
import warnings

import matplotlib
import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mlpentest.attacks.base import AttackResult
from mlpentest.attacks.inversion import AttributeInference, AttributeInferenceResult
from mlpentest.attacks.inversion.attribute_data import load_attribute_data
from mlpentest.errors import (
    CapabilityError,
    InvalidInputError,
    InvalidParameterError,
    OptionalDependencyError,
)
from mlpentest.models import wrap
from mlpentest.results import figure_of

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _mlp(alpha, regressor=False):
    """64 hidden units on standardised inputs (and, for a regressor, a standardised target)."""
    net = (MLPRegressor if regressor else MLPClassifier)(
        hidden_layer_sizes=(64,), alpha=alpha, max_iter=3000, random_state=0
    )
    model = make_pipeline(StandardScaler(), net)
    return TransformedTargetRegressor(model, transformer=StandardScaler()) if regressor else model


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


class Setup:
    """Members, non-members and attacker records of one data set, and the targets trained on members."""

    def __init__(self, name, sizes):
        data = load_attribute_data(name)
        pools = data.split(sizes, random_state=0)
        self.members, self.nonmembers, self.population = (pools[p] for p in sizes)
        self.attribute, self.values = data.attribute, data.values
        self.X = np.vstack([self.members.X, self.nonmembers.X])
        self.y = np.r_[self.members.y, self.nonmembers.y]
        self.target = np.r_[self.members.target, self.nonmembers.target]
        self.is_member = np.r_[np.ones(len(self.members), bool), np.zeros(len(self.nonmembers), bool)]

    def attack(self, model, y="labels", **settings):
        settings = {"attribute": self.attribute, "random_state": 0, **settings}
        labels = {"labels": self.y, "target": self.target, None: None}[y]
        population = self.population.X
        if settings.get("output") == "value":
            population = (self.population.X, self.population.target)
        return AttributeInference(model, **settings).run(
            self.X, labels, is_member=self.is_member, population=population
        )


@pytest.fixture(scope="module")
def diabetes():
    return Setup("diabetes", {"members": 150, "nonmembers": 150, "population": 142})


@pytest.fixture(scope="module")
def overfit(diabetes):
    return _fit(_mlp(1e-6), diabetes.members.X, diabetes.members.y)


@pytest.fixture(scope="module")
def regularised(diabetes):
    return _fit(_mlp(10.0), diabetes.members.X, diabetes.members.y)


@pytest.fixture(scope="module")
def regressor(diabetes):
    return _fit(_mlp(1e-6, regressor=True), diabetes.members.X, diabetes.members.target)


def _best_constant(pool):
    """Accuracy of the best constant guess on ``pool``: the prior-only guess with the pool's own prior."""
    return max(np.mean(pool.X[:, pool.attribute] == v) for v in pool.values)


# ---------------------------------------------------------------------- strength
def test_beats_the_prior_on_members_of_an_overfit_model(diabetes, overfit):
    res = diabetes.attack(overfit)
    assert isinstance(res, AttributeInferenceResult) and res.attack == "attribute inference (proba)"
    assert res.n_attacked == 300 and np.all(res.baseline == 2.0) and res.budget_exhausted is False
    # bar: 15 points over the prior-only guess on members (measured 0.733 vs 0.427), 10 over the best
    # constant guess (0.573) ...
    assert res.member_accuracy >= res.baseline_member_accuracy + 0.15
    assert res.member_accuracy >= _best_constant(diabetes.members) + 0.10
    # ... and the model leaks more about its members than about other records (0.733 vs 0.487)
    assert res.advantage == pytest.approx(res.member_accuracy - res.nonmember_accuracy)
    assert res.advantage >= 0.15
    assert res.member_balanced_accuracy >= 0.65
    np.testing.assert_allclose(res.posterior.sum(axis=1), 1.0)
    np.testing.assert_array_equal(res.true_values, diabetes.X[:, 1])


def test_labels_only_still_beats_the_prior_on_members(diabetes, overfit):
    res = diabetes.attack(wrap(overfit.predict, input_shape=(10,), n_classes=3, output="labels"),
                          output="label")
    assert res.member_accuracy >= res.baseline_member_accuracy + 0.10  # measured 0.673 vs 0.427
    assert res.member_accuracy >= _best_constant(diabetes.members) + 0.05  # 0.573
    assert res.advantage >= 0.10  # non-members 0.433
    assert set(np.unique(res.posterior.round(12))) <= {0.0, 1.0, *np.round(res.prior[0], 12)}


def test_strong_regularisation_closes_the_gap(diabetes, overfit, regularised):
    leaky, tight = diabetes.attack(overfit), diabetes.attack(regularised)
    gain = tight.member_accuracy - tight.baseline_member_accuracy  # measured 0.493 - 0.427
    assert gain <= leaky.member_accuracy - leaky.baseline_member_accuracy - 0.15
    assert abs(tight.advantage) <= 0.08  # members 0.493, non-members 0.473


def test_regression_model_with_gaussian_likelihood(diabetes, regressor):
    reg = regressor
    res = diabetes.attack(reg, y="target", output="value")
    residual = diabetes.population.target - reg.predict(diabetes.population.X)
    assert res.sigma == pytest.approx(np.sqrt(np.mean(residual**2)))  # 76.3 on the attacker's records
    assert res.queries == 300 * 2 + 142  # candidates, plus the attacker's records for sigma
    assert res.member_accuracy >= res.baseline_member_accuracy + 0.15  # measured 0.640 vs 0.427
    assert res.advantage >= 0.10  # non-members 0.467
    given = diabetes.attack(reg, y="target", output="value", sigma=res.sigma)
    np.testing.assert_array_equal(given.inferred, res.inferred)
    assert given.queries == 600


def test_a_classifier_prior_adds_imputation_and_the_model_still_leaks(diabetes, overfit):
    imputer = make_pipeline(StandardScaler(), LogisticRegression())
    res = diabetes.attack(overfit, prior=imputer)
    assert not hasattr(imputer, "classes_")  # cloned, never fitted itself
    assert res.prior.shape == (300, 2) and len(np.unique(res.baseline)) == 2  # per record: imputation
    np.testing.assert_allclose(res.prior.sum(axis=1), 1.0)
    # imputation alone gets 0.673 of the members right; the model's answers add 16 points (0.833)
    assert res.baseline_member_accuracy >= _best_constant(diabetes.members) + 0.05
    assert res.member_accuracy >= res.baseline_member_accuracy + 0.10
    assert res.advantage >= 0.15  # non-members 0.600 (imputation 0.573)


def test_fair_religiousness_leaks_from_members():
    pytest.importorskip("statsmodels")
    fair = Setup("fair", {"members": 200, "nonmembers": 200, "population": 1000})
    model = _fit(_mlp(1e-6), fair.members.X, fair.members.y)
    res = fair.attack(model)
    assert fair.attribute == 4 and np.array_equal(res.values, [1.0, 2.0, 3.0, 4.0])
    assert res.member_accuracy >= res.baseline_member_accuracy + 0.08  # measured 0.540 vs 0.385
    assert res.advantage >= 0.08  # non-members 0.405


# ---------------------------------------------------------------------- the hidden column
class Spy:
    """A black-box model that keeps every batch it is asked about."""

    def __init__(self, clf):
        self.clf, self.batches = clf, []

    def __call__(self, X):
        self.batches.append(X.copy())
        return self.clf.predict_proba(X)


@pytest.mark.parametrize("prior", [None, "imputer"])
def test_the_attack_never_reads_the_hidden_column(diabetes, overfit, prior):
    if prior == "imputer":
        prior = make_pipeline(StandardScaler(), LogisticRegression())
    rng = np.random.RandomState(1)
    scrambled = diabetes.X.copy()
    scrambled[:, 1] = rng.uniform(-100, 100, size=len(scrambled))
    runs = []
    for X in (diabetes.X, scrambled):
        spy = Spy(overfit)
        model = wrap(spy, input_shape=(10,), n_classes=3)
        res = AttributeInference(model, attribute=1, prior=prior, random_state=0).run(
            X, diabetes.y, is_member=diabetes.is_member, population=diabetes.population.X
        )
        runs.append(res)
        # one batch: every record with each candidate value in the hidden column, nothing else
        assert len(spy.batches) == 1 and model.queries == res.queries == 300 * 2
        batch = spy.batches[0]
        np.testing.assert_array_equal(batch[:, 1], np.tile([1.0, 2.0], 300))
        np.testing.assert_array_equal(np.delete(batch, 1, axis=1), np.repeat(np.delete(X, 1, axis=1), 2, 0))
    np.testing.assert_array_equal(runs[0].inferred, runs[1].inferred)
    np.testing.assert_array_equal(runs[0].posterior, runs[1].posterior)
    np.testing.assert_array_equal(runs[0].baseline, runs[1].baseline)
    assert runs[1].accuracy < 0.01  # scored against the scrambled "truth"


def test_without_labels_only_the_record_owners_queries_see_the_records(diabetes, overfit):
    spy = Spy(overfit)
    model = wrap(spy, input_shape=(10,), n_classes=3)
    res = AttributeInference(model, attribute=1, output="label", random_state=0).run(
        diabetes.X, population=diabetes.population.X
    )
    assert [len(b) for b in spy.batches] == [300, 600]
    np.testing.assert_array_equal(spy.batches[0], diabetes.X)  # the owners' own queries
    np.testing.assert_array_equal(spy.batches[1][:, 1], np.tile([1.0, 2.0], 300))
    assert res.observation_queries == 300 and res.queries == 600 and model.queries == 900
    assert np.isnan(res.member_accuracy) and np.isnan(res.advantage) and res.is_member is None
    # the owner's answer is what the true value produces: the attack is never worse than the prior
    assert res.accuracy >= res.baseline_accuracy


def test_a_spent_budget_returns_what_was_attacked(diabetes, overfit):
    model = wrap(overfit, query_budget=101)
    res = diabetes.attack(model)
    assert res.budget_exhausted and res.n_attacked == 50 and res.queries == 100
    np.testing.assert_allclose(res.posterior[50:], res.prior[50:])
    np.testing.assert_array_equal(res.inferred[50:], res.baseline[50:])


# ---------------------------------------------------------------------- shapes and errors
def test_one_record_in_gives_one_record_out(diabetes, overfit):
    attack = AttributeInference(overfit, attribute=1, values=[1, 2], prior=[0.6, 0.4], random_state=0)
    batch = attack.run(diabetes.X[:1], diabetes.y[:1], is_member=diabetes.is_member[:1])
    single = attack.run(diabetes.X[0], diabetes.y[0], is_member=True)
    assert single.inferred.shape == single.true_values.shape == single.is_member.shape == ()
    assert single.posterior.shape == (2,) and batch.posterior.shape == (1, 2)
    assert single.inferred == batch.inferred[0] and single.queries == 2
    np.testing.assert_array_equal(single.posterior, batch.posterior[0])
    json.dumps(single.to_dict(), allow_nan=False)


def test_text_summary_and_plot(diabetes, overfit):
    res = diabetes.attack(overfit)
    text = res.to_text()
    assert text.splitlines()[0] == "attribute inference (proba): 2 candidate values, 600 queries"
    assert re.search(r"^members\s+150\s+0\.\d{3}\s+0\.\d{3}\s+0\.\d{3}$", text, re.M)
    summary = res.summary()
    assert summary["member accuracy"] == res.member_accuracy and summary["queries"] == 600
    ax = res.plot()
    assert len(ax.patches) == 6 and [t.get_text() for t in ax.get_xticklabels()][1] == "members\n(n=150)"
    plt.close("all")


BAD_SETTINGS = [
    ({"attribute": -1}, "attribute"),
    ({"attribute": 10}, "attribute"),
    ({"attribute": 1.0}, "attribute"),
    ({"values": ["a", "b"]}, "values"),
    ({"values": "ab"}, "values"),
    ({"values": [1.0, 1.0]}, "values"),
    ({"values": [1.0]}, "values"),
    ({"values": [[1.0, 2.0]]}, "values"),
    ({"values": np.array([1.0, np.inf])}, "values"),
    ({"prior": [0.5, 0.3, 0.2]}, "prior"),
    ({"prior": [-1.0, 2.0]}, "prior"),
    ({"prior": [0.0, 0.0]}, "prior"),
    ({"prior": "flat"}, "prior"),
    ({"prior": LinearRegression()}, "prior"),
    ({"output": "logits"}, "output"),
    ({"sigma": 1.0}, "sigma"),
    ({"output": "value", "sigma": 0.0}, "sigma"),
    ({"random_state": -1}, "random_state"),
]


@pytest.mark.parametrize(("settings", "name"), BAD_SETTINGS, ids=[f"{n}-{i}" for i, (_, n) in
                                                                  enumerate(BAD_SETTINGS)])
def test_bad_settings_are_refused_naming_them(diabetes, overfit, settings, name):
    with pytest.raises(InvalidParameterError, match=rf"^{name}\b"):
        diabetes.attack(overfit, **settings)


def test_bad_inputs_are_refused_naming_them(diabetes, overfit):
    attack = AttributeInference(overfit, attribute=1, random_state=0)
    X, y, pop = diabetes.X, diabetes.y, diabetes.population.X
    bad_X = X.copy()
    bad_X[3, 4] = np.nan
    cases = [
        (InvalidInputError, "X", (bad_X, y), {"population": pop}),
        (InvalidInputError, "X", (X[:, :9], y), {"population": pop}),
        (InvalidInputError, "X", (X[None], y), {"population": pop}),
        (InvalidInputError, "y", (X, y[:-1]), {"population": pop}),
        (InvalidInputError, "y", (X, y + 7), {"population": pop}),
        (InvalidInputError, "is_member", (X, y), {"population": pop, "is_member": np.ones(299, bool)}),
        (InvalidInputError, "is_member", (X, y), {"population": pop, "is_member": np.full(300, 2)}),
        (InvalidInputError, "population", (X, y), {"population": pop[:, :9]}),
        (InvalidInputError, "population", (X, y), {"population": np.full((5, 10), np.inf)}),
        (InvalidParameterError, "values", (X, y), {}),
    ]
    for error, name, args, kwargs in cases:
        with pytest.raises(error, match=rf"^{name}\b"):
            attack.run(*args, **kwargs)
    with pytest.raises(InvalidParameterError, match="^prior"):
        AttributeInference(overfit, attribute=1, values=[1, 2]).run(X, y)
    with pytest.raises(InvalidInputError, match="^population: the attribute"):
        attack.run(X, y, population=pop[pop[:, 1] == 1.0])


def test_model_and_output_must_match(diabetes, overfit):
    X, y = diabetes.X, diabetes.y
    reg = LinearRegression().fit(diabetes.members.X, diabetes.members.target)
    with pytest.raises(InvalidParameterError, match="^output: LinearRegression is a regressor"):
        AttributeInference(reg, attribute=1, values=[1, 2], prior="uniform").run(X, y)
    with pytest.raises(InvalidParameterError, match="^output: 'value' needs a regressor"):
        AttributeInference(overfit, attribute=1, values=[1, 2], prior="uniform", output="value",
                           sigma=1.0).run(X, y)
    with pytest.raises(InvalidParameterError, match="^sigma: output='value' needs sigma"):
        AttributeInference(reg, attribute=1, output="value").run(X, diabetes.target,
                                                                 population=diabetes.population.X)
    svc = SVC().fit(diabetes.members.X, diabetes.members.y)
    with pytest.raises(CapabilityError, match="output='label'"):
        AttributeInference(svc, attribute=1, values=[1, 2], prior="uniform").run(X, y)
    labels = AttributeInference(svc, attribute=1, values=[1, 2], prior="uniform", output="label")
    assert labels.run(X, y).queries == 600


def test_data_loaders_refuse_bad_arguments():
    with pytest.raises(InvalidParameterError, match="^name"):
        load_attribute_data("adult")
    with pytest.raises(InvalidParameterError, match="^bins"):
        load_attribute_data("diabetes", bins=1)
    data = load_attribute_data("diabetes", bins=2)
    assert data.attribute_name == "sex" and np.bincount(data.y).tolist() == [221, 221]
    with pytest.raises(InvalidParameterError, match="^sizes"):
        data.split({"a": 400, "b": 100})
    try:
        load_attribute_data("fair")
    except OptionalDependencyError as exc:  # pragma: no cover - without the tabular extra
        assert "mlpentest[tabular]" in str(exc)


# ---------------------------------------------------------------------- the shared checks
# The checks tests/attacks/test_common.py runs over every registered attack, applied here until the
# registry lists AttributeInference (family "attribute inference").
CASES = {
    "given": ({"attribute": 1, "values": [1.0, 2.0], "prior": "uniform", "random_state": 0}, "clf", False),
    "population": ({"attribute": 1, "random_state": 0}, "clf", True),
    "label": ({"attribute": 1, "output": "label", "random_state": 0}, "clf", True),
    "value": ({"attribute": 1, "output": "value", "sigma": 50.0, "random_state": 0}, "reg", True),
}


class Case:
    def __init__(self, key, diabetes, models):
        self.settings, kind, with_population = CASES[key]
        self.model = models[kind]
        small = slice(140, 160)  # 10 members, 10 non-members
        labels = diabetes.target if kind == "reg" else diabetes.y
        self.args = (diabetes.X[small], labels[small])
        self.kwargs = {"is_member": diabetes.is_member[small]}
        if with_population:
            self.kwargs["population"] = diabetes.population.X

    def make(self, **changes):
        return AttributeInference(self.model, **{**self.settings, **changes})

    def run(self, attack=None, *args):
        return (attack or self.make()).run(*(args or self.args), **self.kwargs)


@pytest.fixture(scope="module")
def models(overfit, regressor):
    return {"clf": overfit, "reg": regressor}


@pytest.fixture(params=list(CASES))
def case(request, diabetes, models):
    return Case(request.param, diabetes, models)


def _snapshot(attack):
    return {k: (id(v), repr(v)) for k, v in attack.get_params().items()}


def test_init_stores_settings_unchanged_and_validates_nothing(case):
    attack = case.make()
    params = attack.get_params()
    assert set(params) == set(inspect.signature(type(attack)).parameters)
    for name, value in case.settings.items():
        assert params[name] is value
    AttributeInference(case.model, **{k: float("nan") for k in attack.settings()})
    assert repr(attack).startswith("AttributeInference(")


def test_run_leaves_settings_unchanged_and_stamps_the_result(case):
    attack = case.make()
    before = _snapshot(attack)
    result = case.run(attack)
    assert _snapshot(attack) == before
    assert isinstance(result, AttackResult) and isinstance(result, AttributeInferenceResult)
    assert result.attack == attack.display_name()
    for name, value in case.settings.items():
        assert result.params[name] is value
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
    assert doc["type"] == "AttributeInferenceResult" and doc["attack"] == result.attack
    summary = result.summary()
    assert summary and all(isinstance(v, int | float | str) for v in summary.values())
    figure = figure_of(result.plot())
    assert [a for a in figure.axes if a.patches]
    plt.close("all")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"])
def test_non_finite_settings_are_refused_naming_them(case, bad):
    for name in case.make().settings():
        with pytest.raises(InvalidParameterError, match=rf"^{re.escape(name)}\b"):
            case.run(case.make(**{name: bad}))


def test_wrongly_typed_numeric_settings_are_refused_naming_them(case):
    attack = case.make()
    settings = attack.settings().items()
    numeric = [k for k, v in settings if isinstance(v, int | float) and not isinstance(v, bool)]
    assert "attribute" in numeric
    for name in numeric + ["random_state"]:
        with pytest.raises(InvalidParameterError, match=rf"^{re.escape(name)}\b"):
            case.run(case.make(**{name: "abc"}))


def test_input_of_the_wrong_width_is_refused_naming_it(case):
    X, y = case.args
    with pytest.raises(InvalidInputError, match=r"^X: expected 10 features"):
        case.run(None, X[:, :9], y)


def test_results_are_compared_by_identity():
    assert AttributeInferenceResult.__eq__ is object.__eq__
    assert dataclasses.is_dataclass(AttributeInferenceResult)
