"""Server-side defences against black-box attacks through real HTTP (a reduced api-defences table)."""

import math

import pytest

from mlpentest.errors import InvalidParameterError

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from mlpentest.experiments import api_defences  # noqa: E402


@pytest.fixture(scope="module")
def table():
    outcome = api_defences.run(quick=True, random_state=0, defences=("none", "labels only", "PRADA", "top-1"))
    return outcome.results["server-side defences"]


def test_each_defence_changes_what_the_attacks_get(table):
    rows = {r.defence.split(" (")[0].split(",")[0]: r for r in table.rows}
    print(table.to_text())
    none, labels, prada, top1 = rows["none"], rows["labels only"], rows["PRADA"], rows["top-1"]
    # undefended: the attacks work through the API
    assert none.membership_auc > 0.5 and none.stealing_fidelity > 0.9 and none.evasion_success >= 0.8
    assert none.inversion_recovered >= 8
    # labels only: score-based attacks cannot run, label-based ones are untouched
    assert math.isnan(labels.membership_auc) and math.isnan(labels.inversion_recovered)
    assert labels.stealing_fidelity == none.stealing_fidelity
    # top-1 hides the confidences MI-Face climbs
    assert top1.inversion_recovered <= 4 and top1.confidence_error > 0
    # PRADA refuses synthetic streams (line search, HopSkipJump's probes) but not natural-data stealing
    assert prada.line_search_queries < none.line_search_queries
    assert prada.evasion_success < none.evasion_success
    assert prada.stealing_fidelity == none.stealing_fidelity
    # utility: labels are never changed, the benign client is always served
    assert {r.accuracy for r in table.rows} == {none.accuracy}
    assert all(r.benign_served == 1 for r in table.rows)
    assert table.plot() is not None


def test_unknown_defences_are_refused():
    with pytest.raises(InvalidParameterError, match="defences"):
        api_defences.run(quick=True, defences=("firewall",))
