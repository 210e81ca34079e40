"""The HTML report in a real browser (issue 15, item 4): headless Chromium driven by Playwright.

:func:`check_report` opens a ``report.html`` at a desktop (1280x800) and a phone (390x844, mobile, 2x)
viewport and returns what it saw: every ``<img>`` (loaded, embedded), the summary table's rows, console
and page errors, requests that left the page, in-page links that lead nowhere, and whether the page is
wider than the screen; it keeps a full-page screenshot of each viewport. ``check_report(...)["problems"]``
is empty when the page passes. Other tests (the audit and demo reports) call it the same way::

    from test_report_browser import artifacts_dir, check_report   # tests/ is on sys.path under pytest
    assert check_report(out / "report.html", artifacts_dir(), name="audit")["problems"] == []

Browser: ``$MLPENTEST_BROWSER`` if set, else the first of chromium-headless-shell, chromium,
chromium-browser, google-chrome on ``PATH``, else Playwright's own download. Without Playwright or a
browser the tests skip with the reason; with ``MLPENTEST_REQUIRE_BROWSER=1`` (``.ci/run`` sets it) they
fail instead, so CI cannot pass by skipping. Screenshots go to ``$MLPENTEST_TEST_ARTIFACTS/browser/``
(default ``<repo>/test-artifacts/browser/``).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import io
import os
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
VIEWPORTS: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}
BROWSER_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")
INSTALL_HINT = (
    "to run it: apt-get install chromium-headless-shell and pip install playwright (dev extra), "
    "or set MLPENTEST_BROWSER to a Chromium binary"
)

# Runs in the page after load. ``width`` is the viewport's CSS width: on a phone, a page wider than the
# screen makes Chromium zoom out, which changes window.innerWidth but not the width that was asked for.
_PROBE = """
(width) => {
  const describe = (el) => {
    const cls = typeof el.className === 'string' && el.className
      ? '.' + el.className.split(' ').join('.') : '';
    return `<${el.tagName.toLowerCase()}${cls}> ${Math.round(el.getBoundingClientRect().right)}px`;
  };
  // inside a box that scrolls or clips sideways, overflow does not widen the page
  const contained = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(a).overflowX)) return true;
    }
    return false;
  };
  const summary = document.querySelector('table.summary');
  return {
    title: document.title,
    scroll_width: Math.max(document.documentElement.scrollWidth, document.body.scrollWidth),
    images: [...document.images].map((img) => ({
      alt: img.alt,
      src: img.getAttribute('src').slice(0, 40),
      embedded: img.getAttribute('src').startsWith('data:'),
      complete: img.complete,
      natural_width: img.naturalWidth,
      shown_width: img.getBoundingClientRect().width,
    })),
    summary_rows: summary ? summary.querySelectorAll('tbody tr').length : 0,
    summary_scroll_width: summary ? summary.scrollWidth : 0,
    summary_client_width: summary ? summary.clientWidth : 0,
    dead_links: [...document.querySelectorAll('a[href^="#"]')]
      .map((a) => a.getAttribute('href'))
      .filter((h) => h.length > 1 && !document.getElementById(decodeURIComponent(h.slice(1)))),
    too_wide: [...document.body.querySelectorAll('*')]
      .filter((el) => el.getBoundingClientRect().right > width + 1 && !contained(el))
      .slice(0, 8).map(describe),
  };
}
"""


def artifacts_dir() -> Path:
    """Screenshot folder: ``$MLPENTEST_TEST_ARTIFACTS/browser``, default ``<repo>/test-artifacts/browser``."""
    root = os.environ.get("MLPENTEST_TEST_ARTIFACTS") or REPO / "test-artifacts"
    folder = Path(root) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def browser_executable() -> str | None:
    """The Chromium to drive: ``$MLPENTEST_BROWSER``, else the first known name on PATH; ``None``: none."""
    chosen = os.environ.get("MLPENTEST_BROWSER")
    if chosen:
        return chosen
    return next((p for p in map(shutil.which, BROWSER_NAMES) if p), None)


def _unavailable(reason: str) -> None:
    if os.environ.get("MLPENTEST_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (MLPENTEST_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(f"{reason}; {INSTALL_HINT}")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium (a Playwright ``Browser``); skips (or fails, see module doc) without one."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"browser test: Playwright is not installed ({exc})")
    executable = browser_executable()
    with sync_playwright() as pw:
        if executable is None and not Path(pw.chromium.executable_path).exists():
            _unavailable(f"browser test: no Chromium found (looked for {', '.join(BROWSER_NAMES)})")
        try:
            browser = pw.chromium.launch(executable_path=executable)
        except PlaywrightError as exc:
            _unavailable(f"browser test: cannot start {executable or 'Playwright Chromium'}: "
                         f"{str(exc).strip().splitlines()[0]}")
        try:
            yield browser
        finally:
            browser.close()


def _view(browser: Any, url: str, options: dict[str, Any], screenshot: Path) -> dict[str, Any]:
    """Load ``url`` in a fresh context with ``options``; the probe's facts plus what the page emitted."""
    start = time.perf_counter()
    context = browser.new_context(**options)
    console: list[dict[str, str]] = []
    page_errors: list[str] = []
    outside: list[str] = []
    failed: list[str] = []

    def route(r: Any) -> None:
        # The report promises to be self-contained: anything but the file itself is noted and refused,
        # which also keeps the check offline and deterministic.
        if r.request.url == url:
            r.continue_()
        else:
            outside.append(r.request.url[:120])
            r.abort()

    try:
        context.route("**/*", route)
        page = context.new_page()
        page.on("console", lambda m: console.append({"type": m.type, "text": m.text}))
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.on("requestfailed", lambda r: failed.append(f"{r.url[:120]} ({r.failure})"))
        page.goto(url, wait_until="load")
        facts = page.evaluate(_PROBE, options["viewport"]["width"])
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()
    facts.update(
        width=options["viewport"]["width"], console=console, page_errors=page_errors,
        outside_requests=outside, failed_requests=[f for f in failed if f.split(" (")[0] not in outside],
        screenshot=str(screenshot), seconds=time.perf_counter() - start,
    )
    return facts


def _problems(facts: dict[str, Any]) -> list[str]:
    out = [f"page error: {e}" for e in facts["page_errors"]]
    out += [f"console error: {m['text']}" for m in facts["console"] if m["type"] == "error"]
    out += [f"fetched something outside the page: {u}" for u in facts["outside_requests"]]
    out += [f"request failed: {u}" for u in facts["failed_requests"]]
    for img in facts["images"]:
        if not (img["complete"] and img["natural_width"] > 0):
            out.append(f"figure did not load: {img['alt']!r} ({img['src']}...)")
        elif img["shown_width"] <= 0:
            out.append(f"figure loaded but is not shown: {img['alt']!r}")
        if not img["embedded"]:
            out.append(f"figure is not embedded in the page: {img['alt']!r} ({img['src']})")
    if facts["summary_rows"] == 0:
        out.append("no summary table (table.summary with rows)")
    out += [f"link to a missing anchor: {h}" for h in facts["dead_links"]]
    if facts["scroll_width"] > facts["width"]:
        out.append(f"page is {facts['scroll_width']}px wide on a {facts['width']}px screen; "
                   f"too wide: {', '.join(facts['too_wide']) or '?'}")
    return out


def check_report(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    browser: Any = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Open ``path`` (an HTML report) at every viewport of :data:`VIEWPORTS` and say what is wrong.

    Returns ``{"path", "seconds", "viewports": {viewport: facts}, "problems": [...]}``; ``problems``
    (each prefixed with its viewport) is empty when every figure loaded and is embedded, the summary table
    has rows, no console error or page error fired, nothing was fetched from outside the page, every
    in-page link has its anchor and the page is no wider than the screen. Full-page screenshots are
    written to ``out_dir/<name>-<viewport>.png`` (``name``: the report's folder name by default).
    ``browser``: a Playwright browser to reuse; by default one is started (and the calling test skips
    when none can be).
    """
    path = Path(path).resolve()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = name or path.parent.name
    if browser is None:
        with chromium() as own:
            return check_report(path, out_dir, browser=own, name=name)
    start = time.perf_counter()
    views: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for view, options in VIEWPORTS.items():
        views[view] = _view(browser, path.as_uri(), options, out_dir / f"{name}-{view}.png")
        problems += [f"{view}: {p}" for p in _problems(views[view])]
    seconds = time.perf_counter() - start
    return {"path": str(path), "seconds": seconds, "viewports": views, "problems": problems}


# --------------------------------------------------------------------------------------------------
# the reports under test: real results on digits, fixed seeds
# --------------------------------------------------------------------------------------------------

N_FIGURES = 3  # membership ROC, evasion examples, security curve; the sanitisation result has no figure


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two reports written by ``mlpentest.report.render``.

    ``attacks``: membership (loss threshold on an overfit MLP), PGD evasion shown as digit images, a
    two-model security-evaluation curve and kNN label sanitisation (a result with no figure): four
    kinds of summary, so the summary table lists name/value pairs. ``wide-summary``: the curve alone,
    whose six numbers become six columns, wider than a phone.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    from mlpentest import datasets
    from mlpentest.attacks.evasion import PGD, security_evaluation
    from mlpentest.attacks.membership import ThresholdAttack, collect_signals
    from mlpentest.defenses.sanitization import knn_sanitize
    from mlpentest.report import render

    digits = datasets.load("digits")
    pools = digits.split({"members": 300, "nonmembers": 300}, random_state=0)
    members, nonmembers = pools["members"], pools["nonmembers"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        target = MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-6, max_iter=200, random_state=0)
        target.fit(members.X, members.y)
    X = np.vstack([members.X, nonmembers.X])
    y = np.r_[members.y, nonmembers.y]
    is_member = np.r_[np.ones(len(members.y), bool), np.zeros(len(nonmembers.y), bool)]
    membership = ThresholdAttack(metric="loss", class_dependent=False).run(
        collect_signals(target, X, y, is_member=is_member)
    )

    pair = digits.pair(3, 7).split({"train": 240, "test": 40}, random_state=0)
    train, test = pair["train"], pair["test"]
    models = {f"logistic C={c:g}": LogisticRegression(C=c, max_iter=1000).fit(train.X, train.y)
              for c in (1.0, 0.01)}
    evasion = PGD(models["logistic C=1"], eps=2.0, norm="l2", max_iter=20, random_state=0).run(test.X, test.y)
    evasion = dataclasses.replace(evasion, image_shape=digits.image_shape)
    curve = security_evaluation(
        models, test.X, test.y, budgets=[0.0, 0.5, 1.0, 2.0], budget_name="eps", norm="l2",
        attack_factory=lambda m, b: PGD(m, eps=b, norm="l2", max_iter=20, random_state=0),
    )
    flipped = np.random.default_rng(0).random(len(train.y)) < 0.1
    sanitized = knn_sanitize(train.X, np.where(flipped, 1 - train.y, train.y), k=10, poison_mask=flipped)

    root = tmp_path_factory.mktemp("reports")
    metadata = {"dataset": "digits (sklearn)", "seed": 0, "target": repr(target), "data": str(root)}
    attacks = render(
        {"membership: loss threshold": membership, "evasion: PGD-L2": evasion,
         "security evaluation curve": curve, "sanitisation: kNN relabel": sanitized},
        root / "attacks", title="mlpentest browser test", metadata=metadata,
    )
    wide = render({"security evaluation curve": curve}, root / "wide-summary", metadata=metadata)
    return {"attacks": attacks.html, "wide-summary": wide.html}


def _announce(capsys: pytest.CaptureFixture[str], result: dict[str, Any]) -> None:
    shots = [v["screenshot"] for v in result["viewports"].values()]
    with capsys.disabled():
        print(f"\nbrowser screenshots ({result['seconds']:.1f} s): {', '.join(shots)}")


def test_attack_report_loads_cleanly_on_desktop_and_phone(browser, reports, capsys):
    result = check_report(reports["attacks"], artifacts_dir(), browser=browser, name="attacks")
    _announce(capsys, result)
    assert result["problems"] == []
    for view, facts in result["viewports"].items():
        assert facts["title"] == "mlpentest browser test", view
        assert len(facts["images"]) == N_FIGURES, view
        assert facts["summary_rows"] == 4, view
        assert Path(facts["screenshot"]).stat().st_size > 10_000, view
    # On the phone every figure is scaled down to the screen, none drawn at its natural width, and the
    # summary (name/value pairs, stacked; the kind column hidden) fits without scrolling sideways.
    phone = result["viewports"]["phone"]
    assert phone["summary_scroll_width"] <= phone["summary_client_width"]
    assert all(img["shown_width"] <= phone["width"] < img["natural_width"] for img in phone["images"])


def test_wide_summary_table_scrolls_inside_its_box_on_a_phone(browser, reports, capsys):
    result = check_report(reports["wide-summary"], artifacts_dir(), browser=browser, name="wide-summary")
    _announce(capsys, result)
    assert result["problems"] == []
    phone = result["viewports"]["phone"]
    assert phone["summary_rows"] == 1 and len(phone["images"]) == 1
    # The table really is wider than the phone: it scrolls in its own box while the page keeps its width.
    assert phone["summary_scroll_width"] > phone["summary_client_width"]
    assert phone["scroll_width"] <= phone["width"]


def _png() -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    plt.imsave(buf, np.eye(4), format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def test_check_report_finds_what_breaks_a_page(tmp_path, browser):
    """Every check can fail: a page with each fault is caught, fault by fault, and the good figure is not."""
    page = tmp_path / "broken" / "report.html"
    page.parent.mkdir()
    page.write_text(
        '<!DOCTYPE html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>broken</title></head><body>"
        f'<img alt="good" src="data:image/png;base64,{_png()}">'
        '<img alt="corrupt" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==">'
        '<img alt="remote" src="https://example.invalid/figure.png">'
        '<a href="#nowhere">dead link</a><div id="wide" style="width: 900px">wide</div>'
        '<script>console.error("boom in the console"); throw new Error("boom in the page");</script>'
        "</body></html>",
        encoding="utf-8",
    )
    result = check_report(page, tmp_path / "shots", browser=browser)
    problems = result["problems"]
    for view in VIEWPORTS:
        mine = [p.split(": ", 1)[1] for p in problems if p.startswith(f"{view}: ")]
        expected = [
            "page error: boom in the page",
            "console error: boom in the console",
            "fetched something outside the page: https://example.invalid/figure.png",
            "figure did not load: 'corrupt'",
            "figure did not load: 'remote'",
            "figure is not embedded in the page: 'remote'",
            "no summary table",
            "link to a missing anchor: #nowhere",
        ]
        for text in expected:
            assert any(p.startswith(text) for p in mine), (view, text, mine)
        assert not any("'good'" in p for p in mine), mine
        assert (view == "phone") == any(p.startswith("page is 9") and "<div> " in p for p in mine), mine
        assert Path(result["viewports"][view]["screenshot"]).is_file()
