"""End-to-end quick run of the Tramèr et al. 2016 reproduction (about 15 s with Fashion-MNIST's softmax).

Measured (quick, seed 0): equation solving recovers logistic / softmax regression on Breast Cancer, Iris,
Digits and Fashion-MNIST from d + 1 queries with parameter errors 1e-14 to 6e-11 and 0% disagreement; a
20-unit MLP from as many queries as unknowns disagrees on 2.1% (Breast Cancer) and 0.4% (Digits) of test
points. Path finding recovers every leaf of the Breast Cancer (12), Iris (4) and Digits (106) trees, 0%
disagreement. Retraining from labels (200 queries): 3-10% disagreement from the natural pool, 58-79%
from synthesised uniform queries. Rounding to 2 decimals: 26-91% disagreement and a note. The
countermeasures table: labels only stops equation solving, PRADA's reference test stops both synthesised
streams after 10 queries, and nothing stops retraining from natural digits except the query budget.
"""

import json
import math

import matplotlib
import pytest

from mlpentest.cli import main
from mlpentest.experiments import tramer2016
from mlpentest.report import render

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def outcome():
    stages = []
    out = tramer2016.run(quick=True, random_state=0, on_result=stages.append)
    assert len(stages) == 5
    return out


def _rows(outcome, name):
    return {(r.model, r.data, r.attack): r for r in outcome.results[name].rows}


def test_equation_solving_is_exact_for_regressions(outcome):
    rows = outcome.results["equation solving"].rows
    exact = [r for r in rows if not r.model.startswith("MLP")]
    assert {r.data for r in exact} >= {"breast cancer", "iris", "digits"}
    for r in exact:
        assert r.test_disagreement == 0.0 and r.uniform_disagreement == 0.0, r
        assert r.parameter_error < 1e-6, r
        assert r.queries <= r.unknowns  # d + 1 queries: at most (d + 1) k
    for r in rows:
        if r.model.startswith("MLP"):
            assert r.queries == r.unknowns and r.test_disagreement < 0.05, r  # measured 2.1% / 0.4%


def test_path_finding_recovers_every_leaf(outcome):
    for r in outcome.results["path finding"].rows:
        assert r.test_disagreement == 0.0 and r.uniform_disagreement < 0.001, r
        found, total = r.note.split(" leaves")[0].split(" of ")
        assert found == total


def test_retraining_needs_natural_queries(outcome):
    rows = _rows(outcome, "retraining")
    for victim in ("RBF SVM (labels only)", "MLP (labels only)"):
        adaptive = rows[victim, "digits", "adaptive, pool"]
        assert adaptive.test_disagreement < 0.1  # measured 3.3% / 6.0% after 200 queries
        assert rows[victim, "digits", "uniform, synthesised"].test_disagreement > 0.5  # measured 79%
    assert len(outcome.results["retraining"].curves) == len(rows)


def test_rounding_breaks_exactness(outcome):
    for r in outcome.results["rounded confidences"].rows:
        assert r.parameter_error > 1e-4, r
        if "2" in r.attack:
            assert r.test_disagreement > 0.0 and "rounded" in r.note, r


def test_countermeasures_table(outcome):
    table = outcome.results["countermeasures"]
    rows = {(r.defence, r.attack): r for r in table.rows}
    assert rows["none", "equation solving"].fidelity == 1.0
    assert math.isnan(rows["labels only", "equation solving"].fidelity)
    assert rows["round to 2 decimals", "equation solving"].fidelity < 0.5
    budget = rows["query budget 100", "retraining, natural pool"]
    assert budget.queries == 100 and "partial" in budget.note
    for attack in ("equation solving", "retraining, uniform box"):  # synthesised streams: flagged
        row = rows["PRADA + reference, refuse", attack]
        assert row.flagged_at is not None and row.flagged_at <= 20 and row.fidelity < 0.5
    natural = rows["PRADA + reference, refuse", "retraining, natural pool"]
    assert natural.flagged_at is None and natural.fidelity > 0.9  # natural digits look benign
    assert 0.5 < table.delta < 1.0


def test_report_renders(outcome, tmp_path):
    files = render(outcome.results, tmp_path, title="tramer2016", metadata=outcome.metadata)
    payload = json.loads(files.json.read_text())
    assert len(payload["results"]) == len(outcome.results)
    assert files.html.read_text().count("data:image/png;base64,") == len(outcome.results)


def test_cli_lists_it(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    assert "tramer2016" in capsys.readouterr().out
