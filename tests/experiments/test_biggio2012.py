"""End-to-end quick run of the Biggio et al. 2012 poisoning reproduction (digits 3 vs 7, plus
Fashion-MNIST Pullover vs Coat when its files are present; about 7 s on two cores).

Measured (quick, seed 0; 100 training points, 3 poison points): digits 3 vs 7 test error linear
0.015 -> 0.160, RBF 0.008 -> 0.107, poly (degree 2) 0.008 -> 0.168; validation error 0 -> 0.21 / 0.20 /
0.21. One poison point against the linear SVM: validation error 0 -> 0.18.
"""

import json

import matplotlib
import numpy as np
import pytest

from mlpentest.attacks.poisoning import PoisoningResult
from mlpentest.experiments import biggio2012
from mlpentest.report import render

matplotlib.use("Agg")

DIGITS = "digits (3 vs 7)"


@pytest.fixture(scope="module")
def outcome():
    stages = []
    out = biggio2012.run(quick=True, random_state=0, on_result=stages.append)
    assert len(stages) == 2 * len(out.metadata["datasets"])
    return out


def test_results_present(outcome):
    assert outcome.metadata["datasets"][0] == DIGITS
    for name in outcome.metadata["datasets"]:
        one = outcome.results[f"{name}: one poison point, linear SVM"]
        assert isinstance(one, PoisoningResult) and one.image_shape is not None
        assert one.poisoned_error > one.clean_error
        curve = outcome.results[f"{name}: error vs poison points"]
        assert isinstance(curve, biggio2012.PoisoningCurveResult)
        assert curve.kernels == ("linear", "rbf", "poly") and curve.n_train == 100
        assert curve.n_points[0] == 0
        assert curve.test_error.shape == curve.validation_error.shape == (3, len(curve.n_points))


def test_poison_raises_error_for_every_kernel_on_digits(outcome):
    curve = outcome.results[f"{DIGITS}: error vs poison points"]
    assert curve.n_points[-1] == 3
    # measured: validation error 0 -> about 0.2 and test error about 0.01 -> 0.11-0.17 for every kernel
    assert np.all(curve.validation_error[:, 0] <= 0.03)
    val = curve.validation_error
    assert np.all(val[:, -1] >= val[:, 0] + 0.10), val
    assert np.all(curve.test_error[:, -1] >= curve.test_error[:, 0] + 0.05), curve.test_error
    one = outcome.results[f"{DIGITS}: one poison point, linear SVM"]
    assert one.poisoned_error - one.clean_error >= 0.10


def test_report_renders(outcome, tmp_path):
    files = render(outcome.results, tmp_path, title="biggio2012", metadata=outcome.metadata)
    payload = json.loads(files.json.read_text())
    assert len(payload["results"]) == len(outcome.results)
    html = files.html.read_text()
    assert "error vs poison points" in html and "data:image/png" in html
    curve = outcome.results[f"{DIGITS}: error vs poison points"]
    assert "valid error" in curve.to_text()
    json.dumps(curve.to_dict(), allow_nan=False)
