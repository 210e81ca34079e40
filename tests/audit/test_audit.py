"""`mlpentest audit`: a leaky and a hardened model get different verdicts, a tampered file stops at the
scan, results.json follows its schema, a served model is audited black-box, Ctrl-C keeps what finished."""

import json
import warnings

import joblib
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from mlpentest import audit as audit_mod
from mlpentest.audit import AuditData, audit, audit_file, load_data, schema
from mlpentest.cli import main
from mlpentest.defenses import ConfidenceMasking, dp_logistic_regression
from mlpentest.supplychain import safe, tamper

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def small():
    """Digits: a model trained on 150 records (members) and 600 records it never saw."""
    full = load_data("digits", random_state=0)
    return AuditData(
        "digits (150 training records)",
        full.X_train[:150],
        full.y_train[:150],
        full.X_test[:600],
        full.y_test[:600],
        (8, 8),
    )


@pytest.fixture(scope="module")
def leaky(small):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-6, max_iter=400, random_state=0).fit(
            small.X_train, small.y_train
        )


@pytest.fixture(scope="module")
def leaky_report(leaky, small):
    return audit(leaky, small, attacks=("membership", "inversion"), quick=True, random_state=0)


def test_a_leaky_and_a_hardened_model_get_different_verdicts(leaky_report, small):
    # differentially private training (objective perturbation, epsilon 1) behind a top-1 API
    hardened_model = dp_logistic_regression(epsilon=1.0, random_state=0).fit(small.X_train, small.y_train)
    hardened = audit(
        ConfidenceMasking(hardened_model, top_k=1),
        small,
        attacks=("membership", "inversion"),
        quick=True,
        random_state=0,
        estimator=hardened_model,
    )
    print(leaky_report.summary.to_text(), hardened.summary.to_text(), sep="\n")
    assert leaky_report.verdicts == {"membership inference": "vulnerable", "model inversion": "vulnerable"}
    assert hardened.verdicts == {"membership inference": "resistant", "model inversion": "resistant"}
    rows = {r.check: r for r in leaky_report.summary.rows}
    # the recommended defence's effect is measured, and it helps
    assert rows["membership inference"].defence_value < rows["membership inference"].value
    assert rows["model inversion"].defence_value < rows["model inversion"].value


def test_results_json_follows_the_schema(leaky_report, tmp_path):
    files = leaky_report.render(tmp_path / "report")
    doc = json.loads(files.json.read_text())
    jsonschema.validate(doc, schema())
    assert doc["results"][0]["type"] == "AuditSummary" and doc["metadata"]["schema"] == "mlpentest-audit/1"
    html = files.html.read_text()
    assert "audit summary" in html and html.count("<img") >= 2  # ROC and reconstructions
    broken = dict(doc, results=[dict(doc["results"][0], rows=[{"check": "x"}])])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema())


def test_a_tampered_pickle_stops_at_the_scan(leaky, small, tmp_path, capsys):
    joblib.dump(leaky, tmp_path / "model.joblib")
    marker = tmp_path / "pwned"
    tamper.tamper(tmp_path / "model.joblib", tamper.Payload.marker(marker), out=tmp_path / "evil.joblib")
    report = audit_file(tmp_path / "evil.joblib", small, trust=True)
    assert report.verdicts == {"supply chain": "refused"} and not marker.exists()
    assert report.sections["supply chain: scan findings"].findings
    np.savez(
        tmp_path / "data.npz",
        X_train=small.X_train,
        y_train=small.y_train,
        X_test=small.X_test,
        y_test=small.y_test,
    )
    code = main(
        [
            "audit",
            "--model",
            str(tmp_path / "evil.joblib"),
            "--data",
            str(tmp_path / "data.npz"),
            "--trust",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    assert code == 3 and not marker.exists()
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    jsonschema.validate(doc, schema())
    assert doc["metadata"]["verdicts"] == {"supply chain": "refused"}


def test_the_command_audits_a_model_file(leaky, small, tmp_path, capsys):
    safe.save(leaky, tmp_path / "model.skops")
    np.savez(
        tmp_path / "data.npz",
        X_train=small.X_train,
        y_train=small.y_train,
        X_test=small.X_test,
        y_test=small.y_test,
        image_shape=np.array([8, 8]),
    )
    code = main(
        [
            "audit",
            "--model",
            str(tmp_path / "model.skops"),
            "--data",
            str(tmp_path / "data.npz"),
            "--attacks",
            "stealing,inversion",
            "--budget",
            "150",
            "--quick",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "[2/2] inversion" in out and "ETA" in out
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    jsonschema.validate(doc, schema())
    assert doc["metadata"]["verdicts"] == {
        "supply chain": "resistant",
        "model stealing": "vulnerable",
        "model inversion": "vulnerable",
    }


def test_a_served_model_is_audited_black_box(leaky, small):
    pytest.importorskip("fastapi")
    from mlpentest.serve import ServeConfig, running

    with running(leaky, ServeConfig(decimals=2)) as url:
        report = audit_mod.audit_url(
            url, small, attacks=("stealing", "evasion", "poisoning"), budget=150, quick=True
        )
    assert report.summary.access.startswith("black-box")
    rows = {r.check: r for r in report.summary.rows}
    assert rows["model stealing"].verdict == "vulnerable" and rows["evasion"].attack.startswith("HopSkipJump")
    assert not np.isnan(rows["evasion"].value)
    # the registry's facts: label flipping needs the training set, which a black-box auditor lacks
    assert rows["poisoning"].verdict == "not run" and "training set" in rows["poisoning"].note


def test_ctrl_c_keeps_what_finished(leaky, small, monkeypatch):
    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setitem(audit_mod.CHECKS, "evasion", (interrupted, ("pgd",), 1.0))
    report = audit(leaky, small, attacks=("stealing", "evasion", "inversion"), budget=100, quick=True)
    assert report.summary.interrupted and list(report.verdicts) == ["model stealing"]


def test_bad_arguments_are_refused(leaky, small):
    with pytest.raises(Exception, match="attacks"):
        audit(leaky, small, attacks=("phishing",))
    with pytest.raises(Exception, match="budget"):
        audit(leaky, small, budget=float("nan"))


def test_the_audit_report_reads_in_a_browser(leaky_report, tmp_path):
    from test_report_browser import artifacts_dir, check_report  # tests/ is on sys.path (root conftest)

    files = leaky_report.render(tmp_path / "report")
    outcome = check_report(files.html, artifacts_dir(), name="audit")
    assert outcome["problems"] == []
