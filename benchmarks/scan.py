"""Model-file scanners side by side: mlpentest.supplychain.scan beside picklescan, modelscan and fickling.

Setup (everything seeded by ``--seed``):

* the corpus of :func:`mlpentest.supplychain.corpus.build_corpus` in a temporary directory: malicious
  pickles, joblib, PyTorch, numpy, skops files and archives (one technique each) and benign scikit-learn,
  numpy, scipy, PyTorch, safetensors and skops files; payloads are harmless and nothing is ever loaded;
* plus large benign files for throughput: a PyTorch state_dict (``--large-mb`` MB, zip and legacy format)
  and a joblib bundle of a RandomForest and float arrays of about the same size;
* every tool scans every file through its Python API, in this process: ours ``scan(path)``; picklescan
  ``scan_file_path`` (default, and ``strict=True`` which treats every unknown import as dangerous);
  modelscan ``ModelScan().scan``; fickling ``scan_file`` / ``scan_zip_archive`` (graceful).

A file's outcome per tool: *flagged* (ours: verdict "suspicious"; picklescan: a dangerous import;
modelscan: any issue; fickling: severity above "likely safe"), *clean*, or *not handled* (the tool
crashed, reported an error, or skipped the format without a verdict). Peers that do not know a format
often call it clean: that counts as a miss, not as "not handled". MB/s is measured on the large files
only; corpus seconds is the time over the whole corpus (large files excluded). One thread
(``--threads 1``). Progress goes to stderr, the tables to stdout; ``--json PATH`` saves every outcome.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import logging
import os
import platform
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common as common  # benchmarks/ is on sys.path when a script runs
import numpy as np
from _common import aligned, cell

from mlpentest.supplychain.corpus import CorpusEntry, build_corpus
from mlpentest.supplychain.scan import scan

_T0 = time.perf_counter()
FLAGGED, CLEAN, NOT_HANDLED = "flagged", "clean", "not handled"


def progress(label: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.0f} s] {label} ...", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--large-mb", type=int, default=64, help="size of each large benign file (default 64)")
    p.add_argument("--quick", action="store_true", help="small large files (8 MB), for a fast run")
    p.add_argument("--tools", default="mlpentest,picklescan,picklescan-strict,modelscan,fickling",
                   help="comma-separated subset of the tools")
    p.add_argument("--no-torch", action="store_true", help="leave the PyTorch files out")
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads (0: library default)")
    p.add_argument("--keep", metavar="DIR", help="write the corpus here and keep it (default: a temp dir)")
    p.add_argument("--json", metavar="PATH", help="also save every outcome as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.large_mb = min(args.large_mb, 8)
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = set(args.tools) - set(TOOLS)
    if unknown or "mlpentest" not in args.tools:
        p.error(f"--tools: a subset of {', '.join(TOOLS)} that includes mlpentest (unknown: {unknown})")
    if args.large_mb < 1 or args.threads < 0:
        p.error("--large-mb must be >= 1 and --threads >= 0")
    return args


# ------------------------------------------------------------------------------------------------- tools
def run_ours(path: Path) -> tuple[str, str]:
    result = scan(path)
    if result.verdict == "suspicious":
        worst = max(result.findings, key=lambda f: ("low", "medium", "high", "critical").index(f.severity))
        return FLAGGED, f"{worst.severity}: {worst.target}"
    if result.verdict == "unreadable":
        return NOT_HANDLED, "; ".join(result.errors)[:120]
    return CLEAN, ""


def run_picklescan(path: Path, *, strict: bool = False) -> tuple[str, str]:
    from picklescan.scanner import scan_file_path

    result = scan_file_path(str(path), strict=strict)
    dangerous = [f"{g.module}.{g.name}" for g in result.globals if g.safety.value == "dangerous"]
    if result.issues_count > 0:
        return FLAGGED, ", ".join(sorted(set(dangerous)))[:120]
    if result.scan_err:
        return NOT_HANDLED, "scan error"
    return CLEAN, ""


def run_modelscan(path: Path, *, _scanner: list = []) -> tuple[str, str]:  # noqa: B006 - one scanner reused
    from modelscan.modelscan import ModelScan

    if not _scanner:
        _scanner.append(ModelScan())
    report = _scanner[0].scan(path)
    issues = report.get("issues", [])
    if issues:
        return FLAGGED, ", ".join(sorted({f"{i.get('module')}.{i.get('operator')}" for i in issues}))[:120]
    if report.get("errors"):
        return NOT_HANDLED, str(report["errors"][0].get("description", report["errors"][0]))[:120]
    if report["summary"]["scanned"]["total_scanned"] == 0:
        return NOT_HANDLED, "skipped: " + "; ".join(
            s["description"] for s in report["summary"]["skipped"]["skipped_files"])[:110]
    return CLEAN, ""


def run_fickling(path: Path) -> tuple[str, str]:
    import fickling
    from fickling.analysis import Severity

    results = (list(fickling.scan_zip_archive(str(path), graceful=True).values()) if zipfile.is_zipfile(path)
               else [fickling.scan_file(str(path), graceful=True)])
    worst = [a.severity for r in results for a in r.results]
    if any(s > Severity.LIKELY_SAFE for s in worst):
        return FLAGGED, max(worst).name
    errors = [e for r in results for e in r.errors]
    if errors:
        return NOT_HANDLED, errors[0][:120]
    return CLEAN, ""


TOOLS: dict[str, tuple[Callable[[Path], tuple[str, str]], str]] = {
    "mlpentest": (run_ours, "mlpentest"),
    "picklescan": (run_picklescan, "picklescan"),
    "picklescan-strict": (lambda p: run_picklescan(p, strict=True), "picklescan"),
    "modelscan": (run_modelscan, "modelscan"),
    "fickling": (run_fickling, "fickling"),
}


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# -------------------------------------------------------------------------------------------- large files
def large_files(directory: Path, megabytes: int, seed: int, with_torch: bool) -> list[CorpusEntry]:
    """Benign files of about ``megabytes`` MB each: where scanners spend their time on real models."""
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(seed)
    out = []
    if with_torch:
        import torch

        torch.manual_seed(seed)
        side = 1024
        layers = max(1, megabytes * 1024 * 1024 // (4 * side * side))
        state = {f"layers.{i}.weight": torch.randn(side, side) for i in range(layers)}
        state.update({f"layers.{i}.bias": torch.zeros(side) for i in range(layers)})
        for legacy in (False, True):
            path = directory / f"large_state_dict{'_legacy' if legacy else ''}.pt"
            torch.save(state, path, _use_new_zipfile_serialization=not legacy)
            out.append(CorpusEntry(path, False, "torch-legacy" if legacy else "torch-zip", "large",
                                   f"{layers} x 1024x1024 float32 state_dict", "torch"))
    X, y = load_digits(return_X_y=True)
    forest = RandomForestClassifier(20, random_state=seed).fit(X, y)
    n = max(1, megabytes * 1024 * 1024 // 8 // 256)
    bundle = {"forest": forest, "embeddings": rng.standard_normal((n, 256)), "labels": np.arange(n)}
    path = directory / "large_bundle.joblib"
    joblib.dump(bundle, path)
    out.append(CorpusEntry(path, False, "joblib", "large", "RandomForest plus float/int arrays", "joblib"))
    return out


# ----------------------------------------------------------------------------------------------- running
def run_tool(name: str, entries: list[CorpusEntry]) -> dict[str, dict[str, Any]]:
    """Outcome, note and seconds of one tool on every file; a crash is 'not handled', never the end."""
    func = TOOLS[name][0]
    out = {}
    for entry in entries:
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcome, note = func(entry.path)
        except Exception as exc:  # noqa: BLE001 - a peer's crash is a result here
            outcome, note = NOT_HANDLED, f"crashed: {type(exc).__name__}: {exc}"[:120]
        out[entry.path.name] = {"outcome": outcome, "note": note, "seconds": time.perf_counter() - start}
    return out


def summary_rows(outcomes: dict[str, dict], corpus: list[CorpusEntry], large: list[CorpusEntry]
                 ) -> list[list[str]]:
    malicious = [e.path.name for e in corpus if e.malicious]
    benign = [e.path.name for e in corpus if not e.malicious] + [e.path.name for e in large]
    large_mb = sum(e.path.stat().st_size for e in large) / 1e6
    ours_s = sum(outcomes["mlpentest"][e.path.name]["seconds"] for e in corpus)
    rows = []
    for tool, res in outcomes.items():
        detected = sum(res[n]["outcome"] == FLAGGED for n in malicious)
        fp = sum(res[n]["outcome"] == FLAGGED for n in benign)
        not_handled = sum(r["outcome"] == NOT_HANDLED for r in res.values())
        large_s = sum(res[e.path.name]["seconds"] for e in large)
        corpus_s = sum(res[e.path.name]["seconds"] for e in corpus)
        rows.append([tool, f"{detected}/{len(malicious)}", f"{fp}/{len(benign)}", str(not_handled),
                     cell(large_mb / large_s if large_s > 0 else None, ".0f"), cell(corpus_s, ".2f"),
                     cell(corpus_s / ours_s if ours_s > 0 else None, ".2f")])
    return rows


def report(setup: dict[str, Any], outcomes: dict[str, dict], corpus: list[CorpusEntry],
           large: list[CorpusEntry]) -> str:
    lines = [f"{k}: {v}" for k, v in setup.items()]
    head = ["tool", "detected", "false pos.", "not handled", "large MB/s", "corpus s", "time vs ours"]
    lines += ["", aligned(head, summary_rows(outcomes, corpus, large), left={0})]
    ours = outcomes["mlpentest"]
    lines.append("")
    for tool, res in outcomes.items():
        missed = [e.path.name for e in corpus if e.malicious and res[e.path.name]["outcome"] != FLAGGED]
        lines.append(f"missed by {tool} ({len(missed)}): {', '.join(missed) or 'none'}")
    lines.append("")
    peer_only = sorted({f"{e.path.name} (by {tool})" for tool, res in outcomes.items() for e in corpus
                        if e.malicious and res[e.path.name]["outcome"] == FLAGGED
                        and ours[e.path.name]["outcome"] != FLAGGED})
    lines.append(f"malicious files a peer detects that mlpentest misses: {', '.join(peer_only) or 'none'}")
    flagged_benign = [f"{e.path.name} ({ours[e.path.name]['note']})" for e in [*corpus, *large]
                      if not e.malicious and ours[e.path.name]["outcome"] == FLAGGED]
    lines.append(f"benign files mlpentest flags: {', '.join(flagged_benign) or 'none'}")
    for tool, res in outcomes.items():
        fps = [e.path.name for e in [*corpus, *large]
               if not e.malicious and res[e.path.name]["outcome"] == FLAGGED]
        if tool != "mlpentest" and fps:
            more = f", ... ({len(fps) - 8} more)" if len(fps) > 8 else ""
            lines.append(f"benign files {tool} flags ({len(fps)}): {', '.join(fps[:8])}{more}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    for noisy in ("picklescan", "modelscan", "fickling"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    with_torch = not args.no_torch and version("torch") is not None
    tools = [t for t in args.tools if version(TOOLS[t][1]) is not None]
    absent = [t for t in args.tools if t not in tools]
    limits = common.limit_threads(args.threads or None)
    holder = (contextlib.nullcontext(args.keep) if args.keep
              else tempfile.TemporaryDirectory(prefix="scanbench"))
    with holder as folder, limits:
        root = Path(folder)
        progress("building the corpus")
        corpus = build_corpus(root / "corpus", random_state=args.seed, include_torch=with_torch)
        progress(f"writing large files ({args.large_mb} MB each)")
        (root / "large").mkdir(exist_ok=True)
        large = large_files(root / "large", args.large_mb, args.seed, with_torch)
        if with_torch:
            import torch

            if args.threads:
                torch.set_num_threads(args.threads)
        outcomes = {}
        for tool in tools:
            progress(f"{tool}: {len(corpus) + len(large)} files")
            outcomes[tool] = run_tool(tool, [*corpus, *large])
        setup = {
            "corpus": f"{sum(e.malicious for e in corpus)} malicious, {sum(not e.malicious for e in corpus)} "
                      f"benign files (seed {args.seed}, torch {'in' if with_torch else 'left out'}); large: "
                      + ", ".join(f"{e.path.name} {e.path.stat().st_size / 1e6:.0f} MB" for e in large),
            "versions": ", ".join(f"{t} {version(TOOLS[t][1])}" for t in dict.fromkeys(tools)
                                  if t != "picklescan-strict") + f", python {platform.python_version()}",
            "not installed": ", ".join(absent) or "none",
            "machine": ", ".join(f"{k} {v}" for k, v in
                                 common.machine(args.threads or None, load_start).items()),
        }
        print(report(setup, outcomes, corpus, large))
        if args.json:
            payload = {"setup": setup, "files": {e.path.name: {"malicious": e.malicious, "kind": e.kind,
                                                               "technique": e.technique}
                                                 for e in [*corpus, *large]},
                       "outcomes": outcomes}
            Path(args.json).write_text(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
