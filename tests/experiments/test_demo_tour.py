"""``mlpentest demo``: the quick tour end to end through the CLI, and the tour's fault handling."""

import contextlib
import dataclasses
import html as markup
import io
import json
import re

import numpy as np
import pytest

from mlpentest.cli import main
from mlpentest.errors import InvalidParameterError, OptionalDependencyError
from mlpentest.experiments import demo
from mlpentest.experiments._tour_parts import PartOutput

#: every section the tour writes, by part (quick tour, digits only)
SECTIONS = {
    "target": ["Target: RBF SVM on held-out digits", "Target: predictions"],
    "membership": [
        "Membership: shadow models (Shokri et al. 2017), loss threshold, LiRA and RMIA; "
        "MLP (scikit-learn) on 100 digits, 4 shadow models",
        "Membership: the shadow-model attack's member / non-member decisions",
        "Membership: mitigations (regularisation, early stopping, top-1, rounding, DP)",
    ],
    "evasion": [
        "Evasion: '7' -> '3' on the RBF SVM (digits (3 vs 7)), without mimicry",
        "Evasion: '7' -> '3' on the RBF SVM (digits (3 vs 7)), with mimicry (lam=10)",
        "Evasion: security-evaluation curves, digits (3 vs 7) (linear / RBF / poly SVMs, MLP)",
    ],
    "poisoning": ["Poisoning: one poison point against a linear SVM (Biggio et al. 2012)",
                  "Poisoning: error vs number of poison points (linear / RBF / poly SVMs)"],
    "inversion": ["Inversion: MI-Face white-box, softmax regression on the digits",
                  "Inversion: MI-Face black-box, softmax regression on the digits",
                  "Inversion: countermeasures (rounding, top-1, labels only, noise, DP)"],
    "stealing": ["Stealing: equation solving and rounded confidences (Tramèr et al. 2016)",
                 "Stealing: retraining from labels, fidelity vs queries"],
    "backdoor": ["Backdoor: BadNets against a digits MLP (Gu et al. 2017)", "Backdoor: detection and removal",
                 "Backdoor: clean and triggered test images"],
    "supply-chain": ["Supply chain: a tampered model file, scanned without loading"],
}


def _has_fickling() -> bool:
    try:
        import fickling  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    """The quick tour through the CLI, once: (exit status, stdout, results.json, report.html)."""
    out = tmp_path_factory.mktemp("tour")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(["demo", "--quick", "--seed", "0", "--out", str(out)])
    data = json.loads((out / "results.json").read_text())
    return status, printed.getvalue(), data, (out / "report.html").read_text()


def _section(data, heading):
    return next(r for r in data["results"] if r["section"] == heading)


@pytest.mark.slow
def test_every_part_finishes_and_every_section_is_in_the_report(tour):
    status, printed, data, html = tour
    assert status == 0
    summary = data["results"][0]
    assert summary["section"] == demo.SUMMARY and summary["type"] == "TourSummary"
    statuses = {row["part"]: row["status"] for row in summary["rows"]}
    assert list(statuses) == [p.title for p in demo.PARTS]
    expected_supply = "done" if _has_fickling() else "skipped"
    assert all(s == "done" for part, s in statuses.items() if not part.startswith("supply chain"))
    assert statuses["supply chain: tampered model file"] == expected_supply
    assert "failed parts" not in data["metadata"]
    sections = [r["section"] for r in data["results"]]
    for key, headings in SECTIONS.items():
        if key == "supply-chain" and not _has_fickling():
            continue
        for heading in headings:
            assert heading in sections, heading
            assert f"<h2>{markup.escape(heading)}</h2>" in html, heading
    # one figure per section (the summary's included): every result of the tour draws one
    assert html.count("data:image/png;base64,") == len(sections)
    assert data["metadata"]["quick"] is True and data["metadata"]["datasets"] == ["digits"]
    # one progress line per part, numbered, with its time, then the report's path
    progress = r"^\[(\d)/8\] (.+?) \.\.\. (\w+) in [\d.]+ s \(CPU [\d.]+ s\), elapsed \d+ s$"
    lines = re.findall(progress, printed, flags=re.M)
    assert [int(i) for i, _, _ in lines] == list(range(1, 9))
    assert printed.strip().splitlines()[-1].startswith("report written to ")


@pytest.mark.slow
def test_the_tour_measures_what_each_paper_shows(tour):
    _, _, data, _ = tour
    target = _section(data, "Target: RBF SVM on held-out digits")
    assert target["accuracy"] > 0.95

    # membership: the reference-model attacks beat the loss threshold; top-1 outputs take AUC down
    compared = {r["attack"]: r for r in _section(data, SECTIONS["membership"][0])["results"]}
    loss = compared["loss threshold"]["auc"]
    assert compared["LiRA offline"]["auc"] > loss + 0.03 and compared["RMIA offline"]["auc"] > loss + 0.03
    assert compared["shadow models (Shokri)"]["auc"] > 0.55
    rows = {r["mitigation"]: r for r in _section(data, SECTIONS["membership"][2])["rows"]}
    assert max(rows["top-1 label only"]["auc"].values()) < max(rows["no defence"]["auc"].values()) - 0.05

    # evasion: every SVM loses accuracy as the budget grows; the adversarial images cross the boundary
    curve = _section(data, SECTIONS["evasion"][2])
    for name, accuracy in zip(curve["models"], curve["accuracy"], strict=True):
        assert accuracy[0] > 0.9 and accuracy[-1] < accuracy[0] - 0.2, name
    for heading in SECTIONS["evasion"][:2]:
        assert all(_section(data, heading)["success"])

    # poisoning: a few poison points raise every kernel's test error
    poison = _section(data, SECTIONS["poisoning"][1])
    for kernel, errors in zip(poison["kernels"], poison["test_error"], strict=True):
        assert errors[-1] > errors[0] + 0.05, kernel

    # inversion: reconstructions look like their class; rounding to 1 decimal stops the black-box attack
    inverted = _section(data, SECTIONS["inversion"][0])
    rec, means = np.asarray(inverted["reconstructions"]), np.asarray(inverted["class_means"])
    nearest = ((rec[:, None, :] - means[None, :, :]) ** 2).mean(axis=2).argmin(axis=1)
    assert np.sum(nearest == np.arange(len(rec))) >= 8
    defences = {r["defence"]: r for r in _section(data, SECTIONS["inversion"][2])["rows"]}
    assert defences["none"]["nearest_mean_is_own"] >= 8
    assert defences["round to 1 decimal"]["nearest_mean_is_own"] <= 3

    # stealing: softmax regression copied exactly; rounding breaks it; the attacker's pool beats the box
    solving = {r["attack"]: r for r in _section(data, SECTIONS["stealing"][0])["rows"]}
    assert solving["equation solving"]["test_disagreement"] == 0.0
    assert solving["rounded to 2 decimals"]["test_disagreement"] > 0.5
    retrain = {r["attack"]: r for r in _section(data, SECTIONS["stealing"][1])["rows"]}
    assert (retrain["uniform, synthesised"]["test_disagreement"]
            > retrain["adaptive, attacker's pool"]["test_disagreement"] + 0.3)

    # backdoor: the trigger works, the clean model ignores it, a detector cuts the ASR
    attack = {(r["trigger"], r["mode"]): r for r in _section(data, SECTIONS["backdoor"][0])["rows"]}
    assert attack[("patch", "all-to-one")]["asr"] > 0.8 and attack[("none", "-")]["asr"] < 0.1
    rows = _section(data, SECTIONS["backdoor"][1])["rows"]
    undefended = rows[0]["asr"]  # the detectors' model, 2% of its rows poisoned
    detected = [r["asr"] for r in rows if r["defence"] in ("Spectral Signatures", "Activation Clustering")]
    assert min(detected) < undefended / 2

    if _has_fickling():
        scan = _section(data, SECTIONS["supply-chain"][0])
        verdicts = {r["role"]: r["verdict"] for r in scan["rows"]}
        assert verdicts == {"original": "clean", "tampered": "suspicious", "skops copy": "clean"}
        tampered = next(r for r in scan["rows"] if r["role"] == "tampered")
        assert any(target == "builtins.exec" for _, target, _ in tampered["findings"])
        assert scan["payload_ran"] is False and scan["original_sha256"] != scan["tampered_sha256"]


# ---------------------------------------------------------------------------- fault handling (cheap)
def _only_target(extra, *, first=False):
    target = next(p for p in demo.PARTS if p.key == "target")
    return (extra, target) if first else (target, extra)


def _raising(exc):
    def part(ctx):
        raise exc

    return part


def test_a_failing_part_is_recorded_and_the_tour_goes_on(monkeypatch):
    boom = demo.Part("boom", "a part that fails", "-", _raising(RuntimeError("boom")))
    monkeypatch.setattr(demo, "PARTS", _only_target(boom, first=True))
    events, published = [], []
    outcome = demo.run(quick=True, on_part=events.append, on_result=published.append)
    assert outcome.metadata["failed parts"] == {"a part that fails": "RuntimeError: boom"}
    assert "Target: RBF SVM on held-out digits" in outcome.results
    summary = outcome.results[demo.SUMMARY]
    assert [(r.status, r.headline) for r in summary.rows][0] == ("failed", "RuntimeError: boom")
    assert summary.rows[1].status == "done" and "accuracy 0.9" in summary.rows[1].headline
    assert [(e.index, e.status) for e in events] == [(1, "running"), (1, "failed"), (2, "running"),
                                                     (2, "done")]
    assert len(published) == 2 and list(published[0].results) == [demo.SUMMARY]


def test_a_missing_extra_skips_the_part(monkeypatch):
    missing = OptionalDependencyError("fickling", "tamper", "building a tampering payload")
    part = demo.Part("needs-extra", "a part with an extra", "-", _raising(missing))
    monkeypatch.setattr(demo, "PARTS", _only_target(part))
    outcome = demo.run(quick=True)
    assert "failed parts" not in outcome.metadata
    assert "pip install 'mlpentest[tamper]'" in outcome.metadata["skipped parts"]["a part with an extra"]
    assert [r.status for r in outcome.results[demo.SUMMARY].rows] == ["done", "skipped"]


def test_ctrl_c_publishes_what_finished_and_propagates(monkeypatch):
    stop = demo.Part("stop", "a part that is interrupted", "-", _raising(KeyboardInterrupt()))
    monkeypatch.setattr(demo, "PARTS", _only_target(stop))
    published = []
    with pytest.raises(KeyboardInterrupt):
        demo.run(quick=True, on_result=published.append)
    last = published[-1]
    assert last.metadata["interrupted"] == "during part 2/2: a part that is interrupted"
    assert "Target: predictions" in last.results
    assert [r.status for r in last.results[demo.SUMMARY].rows] == ["done", "interrupted"]


def test_parts_selects_and_orders_like_the_tour(monkeypatch):
    calls = []

    def record(key):
        def part(ctx):
            calls.append((key, ctx.quick, ctx.fashion))
            return PartOutput({}, key)
        return part

    recorded = tuple(dataclasses.replace(p, function=record(p.key)) for p in demo.PARTS)
    monkeypatch.setattr(demo, "PARTS", recorded)
    outcome = demo.run(quick=True, parts=["stealing", "membership"])
    assert calls == [("membership", True, None), ("stealing", True, None)]
    assert [r.headline for r in outcome.results[demo.SUMMARY].rows] == ["membership", "stealing"]


@pytest.mark.parametrize("kwargs, message", [
    ({"parts": ["nope"]}, "parts: expected one of"),
    ({"parts": "target"}, "parts: expected a non-empty sequence"),
    ({"parts": []}, "parts: expected a non-empty sequence"),
    ({"random_state": -1}, "random_state: expected a value >= 0"),
    ({"random_state": 1.5}, "random_state: expected Integral"),
    ({"n_jobs": 0}, "n_jobs: expected None, -1 or a number of jobs >= 1, got 0"),
    ({"quick": "yes"}, "quick: expected one of (True, False)"),
    ({"fashion": "auto"}, "fashion: expected one of (None, True, False)"),
])
def test_bad_settings_are_refused_before_any_work(kwargs, message, monkeypatch):
    monkeypatch.setattr(demo.datasets, "load", _raising(AssertionError("work started")))
    with pytest.raises(InvalidParameterError) as exc:
        demo.run(**kwargs)
    assert message in str(exc.value)


def test_the_supply_chain_files_are_written_scanned_and_never_loaded(tmp_path):
    pytest.importorskip("fickling")
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    from mlpentest.experiments._tour_supplychain import tamper_and_scan

    X, y = load_digits(return_X_y=True)
    table = tamper_and_scan(LogisticRegression(max_iter=50).fit(X[:200] / 16, y[:200]), directory=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["model.joblib", "model.skops", "model.tampered.joblib"]  # no marker: nothing loaded
    assert not table.payload_ran
    assert (tmp_path / "model.tampered.joblib").read_bytes() != (tmp_path / "model.joblib").read_bytes()
    assert [r.verdict for r in table.rows] == ["clean", "suspicious", "clean"]
    assert "builtins.exec" in table.to_text() and table.summary()["tampered: verdict"] == "suspicious"
