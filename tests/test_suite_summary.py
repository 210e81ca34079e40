"""The suite's closing line when Fashion-MNIST is missing (tests/conftest.py's terminal-summary hook)."""

import types
from pathlib import Path

import pytest

ROOT_CONFTEST = Path(__file__).with_name("conftest.py")


@pytest.fixture
def pytest_terminal_summary(request):
    """The hook of the suite's root conftest, as pytest loaded it (several modules are named conftest)."""
    for plugin in request.config.pluginmanager.get_plugins():
        if Path(getattr(plugin, "__file__", "") or "") == ROOT_CONFTEST:
            return plugin.pytest_terminal_summary
    raise AssertionError("tests/conftest.py is not loaded")


class _Reporter:
    def __init__(self, skipped):
        self.stats = {"skipped": [types.SimpleNamespace(longrepr=reason) for reason in skipped]}
        self.lines = []

    def write_line(self, line, **markup):
        self.lines.append(line)


def test_skips_for_missing_fashion_mnist_are_counted_with_the_fix(pytest_terminal_summary):
    reporter = _Reporter([
        ("tests/x.py", 3, "Skipped: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist): no"),
        ("tests/y.py", 9, "Skipped: Debian's dataset-fashion-mnist is not installed"),
        ("tests/z.py", 1, "Skipped: torch is not installed"),
    ])
    pytest_terminal_summary(reporter)
    assert reporter.lines == [
        "2 tests skipped because Fashion-MNIST is not installed; to run them: sudo apt-get install "
        "dataset-fashion-mnist (or put its IDX files in $MLPENTEST_DATA/fashion-mnist)"
    ]


def test_no_line_when_nothing_was_skipped_for_it(pytest_terminal_summary):
    reporter = _Reporter([("tests/z.py", 1, "Skipped: torch is not installed")])
    pytest_terminal_summary(reporter)
    assert reporter.lines == []
