import base64
import dataclasses
import json
import logging
import os
import re
from html.parser import HTMLParser
from typing import Any, ClassVar

import matplotlib
import numpy as np
import pytest

import mlpentest
import mlpentest.report as report_module
from mlpentest.errors import InvalidInputError, InvalidParameterError
from mlpentest.metrics import classification_report
from mlpentest.report import ReportFiles, render
from mlpentest.results import Result, new_axes

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass(frozen=True)
class _Curve(Result):
    """A test result with a figure and a NaN field."""

    auc: float
    scores: np.ndarray
    title: ClassVar[str] = "toy curve"

    def plot(self, ax: Any = None) -> Any:
        ax = new_axes(ax)
        ax.plot(np.sort(self.scores))
        return ax


@dataclasses.dataclass(frozen=True)
class _Broken(Result):
    """A test result whose figure fails halfway, after opening a figure."""

    leak: float
    title: ClassVar[str] = "broken <figure>"

    def plot(self, ax: Any = None) -> Any:
        new_axes(ax)
        raise RuntimeError("no ink left & no paper")


@dataclasses.dataclass(frozen=True)
class _Plain(Result):
    """A test result without a figure."""

    n: int
    title: ClassVar[str] = "toy curve"


class _Page(HTMLParser):
    """Collects what the tests look at: tags, attributes, text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-strict JSON constant {name}")


def _results() -> dict[str, Result]:
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2])
    return {
        "SVM <held-out>": classification_report(y_true, y_pred, target_names=["zero", "one", "two"]),
        "curve": _Curve(auc=float("nan"), scores=np.array([0.3, 0.1, 0.2])),
        "broken": _Broken(leak=0.25),
    }


@pytest.fixture(autouse=True)
def _no_figures_left_open():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "render() left figures open"


def test_render_writes_a_self_contained_page(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mlpentest.report"):
        files = render(
            _results(), tmp_path / "out", title="audit & co", metadata={"seed": 3, "model": "SVC()"}
        )
    assert files == ReportFiles(html=tmp_path / "out" / "report.html", json=tmp_path / "out" / "results.json")
    raw = files.html.read_text(encoding="utf-8")
    page = _parse(files.html)
    text = " ".join(page.text)

    assert "audit & co" in text and "audit &amp; co" in raw  # escaped in the source
    assert f"mlpentest {mlpentest.__version__}" in text and "UTC" in text
    assert "seed" in text and "SVC()" in text
    # The summary table up top, one row per result, headed by the result names.
    summary = raw[raw.index('<table class="summary">') : raw.index("</table>", raw.index('class="summary"'))]
    assert raw.index('class="summary"') < raw.index('<section class="result"')
    assert summary.count("<tr>") == 1 + 3
    for cell in ("SVM &lt;held-out&gt;", ">accuracy<", ">0.7143<", ">7<", ">0.2500<", ">NaN<"):
        assert cell in summary
    # Sections: the text table in <pre>, escaped; the figures as embedded PNGs.
    assert page.tags.count("section") == 4 and page.tags.count("pre") == 1
    assert "precision    recall  f1-score   support" in raw
    images = [v for tag, k, v in page.attrs if tag == "img" and k == "src"]
    assert len(images) == 2  # the report's confusion matrix and the curve; none for the broken one
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_SIGNATURE)
    # The broken figure: a visible note, a logged warning, and the rest of the page intact.
    assert "RuntimeError: no ink left &amp; no paper" in raw
    assert any("broken" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    # Self-contained: no scripts, no external resources.
    assert "script" not in page.tags and "link" not in page.tags
    for _, key, value in page.attrs:
        if key in {"src", "href"}:
            assert value is not None and not re.match(r"(?i)(https?:)?//", value)
            assert value.startswith(("data:", "#"))
    assert "@import" not in raw and "url(" not in raw


def test_results_json_is_strict_and_complete(tmp_path):
    files = render(_results(), tmp_path, metadata={"threshold": float("inf"), "classes": (1, 2)})
    doc = json.loads(files.json.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    assert set(doc) == {"title", "created", "mlpentest_version", "metadata", "results"}
    assert doc["title"] == "mlpentest report" and doc["mlpentest_version"] == mlpentest.__version__
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", doc["created"])
    assert doc["metadata"] == {"threshold": None, "classes": [1, 2]}
    assert [r["section"] for r in doc["results"]] == ["SVM <held-out>", "curve", "broken"]
    assert [r["type"] for r in doc["results"]] == ["ClassificationReport", "_Curve", "_Broken"]
    report = doc["results"][0]
    assert report["accuracy"] == pytest.approx(5 / 7) and report["confusion"][2] == [1, 0, 2]
    assert doc["results"][1]["auc"] is None  # NaN -> null


def test_headings_default_to_titles_and_are_deduplicated(tmp_path):
    results = [_Curve(auc=0.5, scores=np.zeros(2)), _Plain(n=1), _Curve(auc=0.7, scores=np.ones(2))]
    files = render(results, tmp_path)
    doc = json.loads(files.json.read_text())
    assert [r["section"] for r in doc["results"]] == ["toy curve", "toy curve (2)", "toy curve (3)"]
    page = _parse(files.html)
    assert [v for tag, k, v in page.attrs if tag == "section" and k == "id"] == [
        "summary",
        "result-1",
        "result-2",
        "result-3",
    ]
    # _Plain has no figure, and gets no error note for it.
    assert len([v for tag, k, v in page.attrs if tag == "img" and k == "src"]) == 2
    assert 'class="error"' not in files.html.read_text()


def test_single_result(tmp_path):
    files = render(_Plain(n=12345), tmp_path)
    assert ">12,345<" in files.html.read_text()
    assert json.loads(files.json.read_text())["results"] == [
        {"type": "_Plain", "title": "toy curve", "n": 12345, "section": "toy curve"}
    ]


def test_path_may_name_the_html_file(tmp_path):
    target = tmp_path / "new" / "audit.html"
    files = render(_Plain(n=1), target)
    assert files.html == target and files.json == tmp_path / "new" / "results.json"
    assert target.is_file() and files.json.is_file()
    assert sorted(p.name for p in target.parent.iterdir()) == ["audit.html", "results.json"]


def test_path_that_is_another_file_is_rejected(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("keep me")
    with pytest.raises(InvalidParameterError, match="path"):
        render(_Plain(n=1), other)
    assert other.read_text() == "keep me"
    with pytest.raises(InvalidParameterError, match="path"):
        render(_Plain(n=1), other / "sub")  # a file where a directory should be


def test_existing_directory_is_reused_and_report_replaced(tmp_path):
    render(_Plain(n=1), tmp_path, title="first")
    render(_Plain(n=2), tmp_path, title="second")
    assert "second" in (tmp_path / "report.html").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["title"] == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "results.json"]


@pytest.mark.parametrize(
    "bad, match",
    [([], "nothing to report"), ({}, "nothing to report"), (None, "results"), ("text", "results")],
)
def test_empty_or_wrong_results_are_rejected(tmp_path, bad, match):
    with pytest.raises(InvalidInputError, match=match):
        render(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_non_result_item_is_named_by_position(tmp_path):
    with pytest.raises(InvalidInputError, match=r"results\[1\].*dict"):
        render([_Plain(n=1), {"auc": 0.5}], tmp_path)
    with pytest.raises(InvalidInputError, match=r"results\['b'\].*float"):
        render({"a": _Plain(n=1), "b": 0.5}, tmp_path)


def test_bad_title_or_metadata(tmp_path):
    with pytest.raises(InvalidParameterError, match="title"):
        render(_Plain(n=1), tmp_path, title=3)
    with pytest.raises(InvalidParameterError, match="metadata"):
        render(_Plain(n=1), tmp_path, metadata=[("a", 1)])


def test_failed_html_write_keeps_the_old_report_and_leaves_no_temp_files(tmp_path, monkeypatch):
    render(_Plain(n=1), tmp_path, title="old report")
    old_html = (tmp_path / "report.html").read_bytes()
    real_fsync = os.fsync

    def fsync_fails_on_html(fd: int) -> None:
        try:
            head = os.pread(fd, 15, 0)
        except OSError:  # a directory
            head = b""
        if head.startswith(b"<!DOCTYPE html"):
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(report_module.os, "fsync", fsync_fails_on_html)
    with pytest.raises(OSError, match="No space left"):
        render(_results(), tmp_path, title="new report")
    assert (tmp_path / "report.html").read_bytes() == old_html
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "results.json"]


def test_failure_before_writing_keeps_both_files(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Unserialisable(Result):
        def to_dict(self) -> dict[str, Any]:
            raise RuntimeError("cannot serialise")

    render(_Plain(n=1), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(RuntimeError, match="cannot serialise"):
        render([_Plain(n=2), Unserialisable()], tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_new_files_are_readable_by_others(tmp_path):
    files = render(_Plain(n=1), tmp_path)
    assert files.html.stat().st_mode & 0o777 == 0o644
    os.chmod(files.html, 0o600)
    render(_Plain(n=2), tmp_path)
    assert files.html.stat().st_mode & 0o777 == 0o600  # an existing report keeps its permissions


def test_render_does_not_change_the_backend(tmp_path):
    backend = matplotlib.get_backend()
    render(_results(), tmp_path)
    assert matplotlib.get_backend() == backend
