"""End-to-end quick run of the Biggio et al. 2013 reproduction (digits 3 vs 7, plus Fashion-MNIST
Sandal vs Sneaker when its files are present; about 10 s on two busy cores).

Measured (quick, seed 0): digits 3 vs 7 SVM accuracy 0.99 for all three kernels; accuracy under attack at
dmax 0.8 (L2): linear 0.50, RBF 0.70, poly 0.60, MLP with PGD-L2 0.675.
"""

import json
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from mlpentest.attacks.evasion import EvasionResult
from mlpentest.attacks.evasion.security_curve import SecurityCurveResult
from mlpentest.experiments import biggio2013
from mlpentest.metrics import ClassificationReport
from mlpentest.report import render


@pytest.fixture(scope="module")
def outcome():
    stages = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        out = biggio2013.run(quick=True, random_state=0, on_result=stages.append)
    assert len(stages) == 3 * len(out.metadata["datasets"])
    return out


def test_results_present(outcome):
    digits = "digits (3 vs 7)"
    assert outcome.metadata["datasets"][0] == digits
    for name in outcome.metadata["datasets"]:
        for kernel in ("linear", "rbf", "poly"):
            assert isinstance(outcome.results[f"{name}: SVM ({kernel} kernel)"], ClassificationReport)
        for lam in ("0", "10"):
            figure = outcome.results[f"{name}: EvasionSVM on RBF SVM, lam={lam}"]
            assert isinstance(figure, EvasionResult) and figure.image_shape is not None
            assert figure.success_rate > 0.5
        assert isinstance(outcome.results[f"{name}: security evaluation curves"], SecurityCurveResult)
    for kernel in ("linear", "rbf", "poly"):
        assert outcome.results[f"{digits}: SVM ({kernel} kernel)"].accuracy > 0.95


def test_curves_decrease(outcome):
    for name in outcome.metadata["datasets"]:
        curve = outcome.results[f"{name}: security evaluation curves"]
        assert curve.models == ("SVM linear (EvasionSVM)", "SVM rbf (EvasionSVM)", "SVM poly (EvasionSVM)",
                                "MLP (PGD-L2)")
        assert curve.budgets[0] == 0 and np.all(np.diff(curve.accuracy, axis=1) <= 0)
        assert np.all(curve.accuracy[:, -1] <= curve.accuracy[:, 0] - 0.3), curve.accuracy


def test_report_renders(outcome, tmp_path):
    files = render(outcome.results, tmp_path, title="biggio2013", metadata=outcome.metadata)
    payload = json.loads(files.json.read_text())
    assert len(payload["results"]) == len(outcome.results)
    html = files.html.read_text()
    assert "security evaluation curve" in html and "data:image/png" in html
