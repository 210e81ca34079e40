"""Property-based: random command lines get an exit status (0, 1 or 2) and a message, never a traceback.

The long-running work (the demo, the reproductions) is replaced by a fake that checks the arguments it
receives and returns an empty report, so that thousands of command lines parse, validate and report in
seconds. ``datasets`` and ``attacks`` run for real.
"""

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlpentest.cli import main
from mlpentest.experiments import biggio2012, biggio2013, demo, shokri2017
from mlpentest.results import ImageGrid

TOKENS = [
    "demo", "reproduce", "datasets", "attacks", "shokri2017", "biggio2013", "biggio2012", "nope",
    "--seed", "--out", "--quiet", "-q", "--data-dir", "--n-jobs", "--dataset", "--quick", "--sizes",
    "--shadows", "--model", "--cache-dir", "--family", "--help", "--version",
    "0", "-1", "1", "2", "250", "1e3", "nan", "inf", "-", "", " ", "digits", "fashion-mnist", "cifar10",
    "mlp", "svm", "cnn", "evasion", "poisoning", "membership", "/dev/null", "/proc/nope", "a\x00b",
]


@pytest.fixture(autouse=True)
def fast_experiments(monkeypatch, tmp_path):
    import numpy as np

    grid = ImageGrid("x", np.zeros((1, 2, 2)), ("x",), np.zeros(1, bool))

    class Outcome:
        results = {"x": grid}
        metadata = {"dataset": "digits", "n_train": 1, "n_test": 1, "model": "x", "fit_seconds": 0}

    def fake(**kwargs):
        assert kwargs.get("random_state", 0) >= 0
        assert kwargs.get("n_jobs") in (None, -1) or kwargs["n_jobs"] >= 1
        assert kwargs.get("n_shadow", 2) >= 2
        callback = kwargs.get("on_result")
        if callback is not None:
            callback(Outcome())
        return Outcome()

    for module in (demo, shokri2017, biggio2013, biggio2012):
        monkeypatch.setattr(module, "run", fake)
    monkeypatch.chdir(tmp_path)  # the default --out lands here


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=6)), max_size=7))
@example(argv=["demo", "--out", "a\x00b"])
@example(argv=["reproduce", "biggio2012", "--cache-dir", "a\x00b"])
@example(argv=["demo", "--out", "/proc/nope/deeper"])
@example(argv=["demo", "--data-dir", "/dev/null", "--dataset", "fashion-mnist"])
def test_any_command_line_ends_with_a_status(argv, capsys):
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse: --help / --version (0) or a usage error (2)
        status = exc.code
    out, err = capsys.readouterr()
    assert status in (0, 1, 2), (argv, status)
    assert "Traceback" not in out + err
    if status == 1:
        assert "error:" in err  # a typed error, printed as one line
