"""Property-based: garbage settings and garbage input to every registered attack.

Whatever is thrown at an attack — NaN/inf, wrong types, shapes, dtypes, empty arrays, None — the only
acceptable outcomes are a typed ``mlpentest`` error (which names the argument) or a valid result of the
attack's family: never a stack trace from deep inside numpy, never a hang. Settings and input are varied
one at a time, from the small, valid runs of ``test_common.SETTINGS``. Derandomised: CI sees the same
examples every run.
"""

import os
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from test_common import CASES, IDS, RESULT_TYPES, Case, models, pair, signals  # noqa: F401

from mlpentest import datasets
from mlpentest.attacks.membership import collect_signals
from mlpentest.errors import MlpentestError

EXAMPLES = int(os.environ.get("MLPENTEST_FUZZ_EXAMPLES", "12"))  # raise it to search longer
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

garbage = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 25),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.tuples(st.floats(allow_nan=True), st.floats(allow_nan=True)),
    st.lists(st.integers(-2, 5), max_size=3),
    st.sampled_from([np.nan, -1, 0, 1e300, "l2", "linf", "loss", (0, 1), (1, 0), np.array([1.0, 2.0]),
                     np.float32(0.5), np.int64(3), object()]),
)
elements = st.one_of(st.floats(-1.0, 2.0), st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0]))
arrays = st.one_of(
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=70),
               elements=elements),
    hnp.arrays(np.float64, st.tuples(st.integers(0, 12), st.just(64)), elements=st.floats(0.0, 1.0)),
    hnp.arrays(np.int64, st.tuples(st.integers(0, 6), st.sampled_from([63, 64])),
               elements=st.integers(-2, 3)),
    st.none(), st.text(max_size=5), st.lists(st.one_of(st.none(), st.floats(0, 1)), max_size=5),
)


@pytest.fixture(params=CASES, ids=IDS)
def case(request, signals, pair, models):  # noqa: F811
    return Case(*request.param, signals, pair, models)


def _outcome(run, family):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy on absurd values (1e300) inside sklearn
        try:
            result = run()
        except MlpentestError:
            return
    assert isinstance(result, RESULT_TYPES[family])


@FUZZ
@given(data=st.data())
def test_garbage_settings_give_a_typed_error_or_a_result(case, data):
    name = data.draw(st.sampled_from(sorted(case.make().settings())), label="setting")
    value = data.draw(garbage, label="value")
    _outcome(lambda: case.run(case.make(**{name: value})), case.family)


@pytest.fixture(scope="module")
def digits_target():
    data = datasets.load("digits")
    return LogisticRegression(max_iter=500).fit(data.X[:300], data.y[:300])


labels_or_none = st.one_of(st.none(), hnp.arrays(np.int64, st.integers(0, 12), elements=st.integers(-1, 11)))


@FUZZ
@given(X=arrays, labels=labels_or_none)
def test_garbage_input_gives_a_typed_error_or_a_result(case, digits_target, X, labels):
    if case.family == "extraction":  # a query pool and held-out data
        _outcome(lambda: case.make().run(X, X_test=X, y_test=labels), case.family)
        return
    if case.family == "inversion":  # labels to invert, and the class means the result is scored on
        _outcome(lambda: case.make().run(labels, class_means=X), case.family)
        return
    if case.family != "membership":
        _outcome(lambda: case.run(None, X, labels), case.family)
        return
    member = None if labels is None else labels % 2 == 0  # signals are built from the garbage

    def run():
        return case.run(None, collect_signals(digits_target, X, labels, is_member=member))

    _outcome(run, case.family)
