"""Poisoning: mlpentest's PoisoningSVM beside IBM ART's PoisoningAttackSVM (Biggio et al. 2012).

Setup (everything seeded by ``--seed``):

* data: one pair of classes ("3" vs "7" by default) split into disjoint, class-stratified pools: the SVM's
  clean training set (``--train``, 100 as in the paper) and the attacker's validation set (``--valid``);
* targets: scikit-learn ``SVC`` with a linear (C=10), an RBF (C=100) and a degree-2 polynomial (C=100)
  kernel; ``gamma`` is resolved once on the clean training set (scikit-learn's "scale") and passed as a
  number, so both libraries retrain exactly the same SVM on the poisoned set;
* poison: for each count in ``--points``, that many starting points, the first training points of the
  first class with the flipped label (the same for both libraries); each point takes ``--iterations``
  gradient steps of length ``--step`` (unit-norm gradient), projected onto the [0, 1] box, the points
  optimised one after the other. Ours: ``PoisoningSVM.attack`` (one point) or ``run`` with
  ``tol=0``; ART: ``PoisoningAttackSVM.poison`` with ``eps`` so large that it never stops early.

The validation error before/after is computed here, in the same way for every row: the SVC retrained on
the training set plus the returned poison points, 0/1 error on the validation set. Timings use one
BLAS/OpenMP thread per process (``--threads``). Progress goes to stderr, the table to stdout.
``--json PATH`` saves the setup and rows.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import textwrap
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import _common as common  # benchmarks/ is on sys.path when a script runs
import numpy as np
from _common import aligned, cell
from sklearn.svm import SVC

from mlpentest import datasets
from mlpentest.attacks.poisoning import PoisoningSVM

SVMS: dict[str, dict[str, Any]] = {
    "linear": {"kernel": "linear", "C": 10.0},
    "rbf": {"kernel": "rbf", "C": 100.0},
    "poly": {"kernel": "poly", "C": 100.0, "degree": 2},
}


@dataclass
class Row:
    kernel: str
    library: str
    points: int
    iterations: int
    error_before: float | None
    error_after: float | None
    increase_pp: float | None
    seconds: float | None
    note: str = ""


_T0 = time.perf_counter()


def progress(label: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.0f} s] {label} ...", file=sys.stderr, flush=True)


def make_svm(kernel: str, X: np.ndarray) -> SVC:
    """The unfitted target; gamma fixed to scikit-learn's "scale" value on the clean training set."""
    settings = dict(SVMS[kernel])
    if kernel != "linear":
        settings["gamma"] = 1.0 / (X.shape[1] * X.var())
    return SVC(**settings)


def validation_error(kernel: str, X: np.ndarray, y: np.ndarray, poison: np.ndarray, label: int,
                     Xv: np.ndarray, yv: np.ndarray, gamma_from: np.ndarray) -> float:
    """0/1 validation error of the SVC retrained on (X, y) plus the poison points labelled ``label``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        labels = np.append(y, np.full(len(poison), label))
        fit = make_svm(kernel, gamma_from).fit(np.vstack([X, poison]), labels)
    return float(np.mean(fit.predict(Xv) != yv))


def format_table(rows: list[Row]) -> str:
    head = ("kernel", "library", "points", "iterations", "valid error before", "after", "increase (pp)",
            "pp / point", "wall s", "note")

    lines = []
    for r in rows:
        per_point = None if r.increase_pp is None else r.increase_pp / r.points
        lines.append((r.kernel, r.library, str(r.points), str(r.iterations), cell(r.error_before, ".3f"),
                      cell(r.error_after, ".3f"), cell(r.increase_pp, ".1f"), cell(per_point, ".1f"),
                      cell(r.seconds, ".2f"), r.note))
    return aligned(head, lines, left={0, 1, len(head) - 1})


def import_art() -> dict[str, Any] | None:
    """ART's pieces used here, or None when ART is not installed (the ``bench`` extra)."""
    try:
        import art
        from art.attacks.poisoning import PoisoningAttackSVM
        from art.estimators.classification import SklearnClassifier
    except ImportError:
        return None
    return {"attack": PoisoningAttackSVM, "wrap": SklearnClassifier, "version": art.__version__}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", choices=["digits", "fashion-mnist", "mnist"])
    p.add_argument("--pair", default="3,7", help="the two classes, by index or name (default 3,7)")
    p.add_argument("--train", type=int, default=100, help="clean training points (the paper: 100)")
    p.add_argument("--valid", type=int, default=200, help="attacker's validation points")
    p.add_argument("--points", default="1,2", help="comma-separated numbers of poison points (default 1,2)")
    p.add_argument("--iterations", type=int, default=20, help="gradient steps per poison point (both)")
    p.add_argument("--step", type=float, default=0.5, help="step length (unit-norm gradient, both)")
    p.add_argument("--kernels", default="linear,rbf,poly", help="comma-separated subset of linear,rbf,poly")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP threads per process (1: stable timings on a shared machine; "
                   "0: the libraries' own choice)")
    p.add_argument("--skip-art", action="store_true", help="run only mlpentest's attack")
    p.add_argument("--json", metavar="PATH", help="also save the setup and rows as JSON")
    args = p.parse_args(argv)
    try:
        args.points = sorted({int(v) for v in args.points.split(",") if v.strip()})
    except ValueError:
        p.error(f"--points: expected comma-separated integers, got {args.points!r}")
    args.kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    bad_kernel = not args.kernels or any(k not in SVMS for k in args.kernels)
    if not args.points or min(args.points) < 1 or bad_kernel:
        p.error("--points must be positive integers and --kernels a subset of linear,rbf,poly")
    if args.train < 10 or args.valid < 2 or args.iterations < 1 or args.step <= 0 or args.threads < 0:
        p.error("--train must be >= 10, --valid >= 2, --iterations >= 1, --step > 0 and --threads >= 0")
    args.pair = [int(c) if c.strip().isdigit() else c.strip() for c in args.pair.split(",")]
    if len(args.pair) != 2:
        p.error("--pair: expected two classes, e.g. 3,7")
    return args


def run_ours(kernel: str, X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray, starts: np.ndarray,
             n: int, args: argparse.Namespace) -> tuple[np.ndarray, float, str]:
    clf = make_svm(kernel, X).fit(X, y)
    attack = PoisoningSVM(clf, X, y, t=args.step, tol=0.0)
    start = time.perf_counter()
    if n == 1:
        result = attack.attack(starts[0], 1, Xv, yv, num_iterations=args.iterations)
    else:
        result = attack.with_settings(max_iter=args.iterations).run(Xv, yv, x_init=starts[:n], labels=1)
    seconds = time.perf_counter() - start
    steps = np.bincount(result.log["point_index"]) - 1
    note = "attack" if n == 1 else "run"
    if steps.min() < args.iterations:
        note += f"; stopped early (flat loss) after {', '.join(str(s) for s in steps)} steps"
    return np.atleast_2d(result.x_poison), seconds, note


def run_art(kernel: str, X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray, starts: np.ndarray,
            n: int, args: argparse.Namespace, art: dict[str, Any]) -> tuple[np.ndarray, float, str]:
    clf = make_svm(kernel, X).fit(X, y)
    # scikit-learn >= 1.9 deprecated SVC(probability=...): ART 1.20's ScikitlearnSVC takes the attribute's
    # "deprecated" as True; a shallow copy says False (ART refits this copy in place during the attack)
    art_clf = copy.copy(clf)
    art_clf.probability = False
    estimator = art["wrap"](art_clf, clip_values=(0.0, 1.0))
    onehot = np.eye(2)
    attack = art["attack"](estimator, step=args.step, eps=1e12, x_train=X, y_train=onehot[y], x_val=Xv,
                           y_val=onehot[yv], max_iter=args.iterations, verbose=False)
    np.random.seed(args.seed)  # ART perturbs Q_ss with np.random before inverting it
    start = time.perf_counter()
    poison, _ = attack.poison(starts[:n].copy(), onehot[np.ones(n, dtype=int)])
    return np.asarray(poison, dtype=np.float64), time.perf_counter() - start, "poison"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    art = None if args.skip_art else import_art()
    versions = common.versions(common.art_status(art["version"] if art else None, args.skip_art))
    limits = common.limit_threads(args.threads)
    rows: list[Row] = []
    with limits, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # SVC.probability deprecation, once per ART refit
        data = datasets.load(args.dataset, download=False).pair(*args.pair)
        pools = data.split({"train": args.train, "valid": args.valid}, random_state=args.seed)
        X, y = pools["train"].X.astype(np.float64), pools["train"].y
        Xv, yv = pools["valid"].X.astype(np.float64), pools["valid"].y
        starts = X[y == 0][: max(args.points)]
        for kernel in args.kernels:
            before = validation_error(kernel, X, y, X[:0], 1, Xv, yv, X)
            for n in args.points:
                for library in ("mlpentest", "ART") if art is not None else ("mlpentest",):
                    progress(f"{kernel}: {library}, {n} point(s), {args.iterations} iterations")
                    if library == "ART":
                        poison, seconds, note = run_art(kernel, X, y, Xv, yv, starts, n, args, art)
                    else:
                        poison, seconds, note = run_ours(kernel, X, y, Xv, yv, starts, n, args)
                    after = validation_error(kernel, X, y, poison, 1, Xv, yv, X)
                    increase = 100.0 * (after - before)
                    rows.append(Row(kernel, library, n, args.iterations, before, after, increase, seconds,
                                    note))

    setup = {
        "dataset": data.name, "train": len(y), "valid": len(yv), "features": X.shape[1],
        "points": args.points, "iterations": args.iterations, "step": args.step, "seed": args.seed,
        "svms": SVMS, **common.machine(args.threads, load_start), "versions": versions,
    }
    print(report(setup, rows, art is not None, args.skip_art))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"setup": setup, "rows": [asdict(r) for r in rows]}, fh, indent=2)
    return 0


def report(setup: dict[str, Any], rows: list[Row], with_art: bool, skipped: bool) -> str:
    s, v = setup, setup["versions"]
    out = [
        f"poisoning benchmark: {s['dataset']}, {s['train']} training / {s['valid']} validation points, "
        f"{s['features']} features in [0, 1]",
        f"SVMs: linear C=10, rbf C=100, poly degree 2 C=100 (gamma fixed to 'scale' on the clean set); "
        f"poison points {', '.join(str(p) for p in s['points'])}; {s['iterations']} steps of {s['step']:g} "
        f"per point; seed {s['seed']}",
        f"machine: {s['cpu_count']} CPUs ({s['machine']}), 1-min load average {s['load_average_start']:.1f} "
        f"at start, {s['load_average_end']:.1f} at end; threads per process: {s['threads']}",
        "versions: " + ", ".join(f"{k} {x}" for k, x in v.items()),
        "",
        format_table(rows),
        "",
    ]
    notes = [
        "valid error before / after: 0/1 error on the attacker's validation set of the SVC trained on the "
        "clean set / retrained with the returned poison points (computed here for every row); increase in "
        "percentage points; wall s: the attack alone. Starting points: the first training points of class "
        "0 with label 1, the same for both libraries.",
        "mlpentest: exact gradient of the validation hinge loss (Eq. 10, with the poison point's own "
        "coefficient when it reaches the margin), retrained SVM polished by a float64 KKT solve; it returns "
        "each point's best iterate and stops early only where the gradient is zero.",
    ]
    if with_art:
        notes.append(
            "ART: SklearnClassifier(svc, clip_values=(0, 1)), PoisoningAttackSVM(step, eps=1e12, max_iter) "
            "so that it takes every step; labels one-hot. ART's gradient sums Eq. 10's terms over every "
            "validation point (not only those inside the margin, so not the hinge loss's gradient), labels "
            "support vectors by the model's prediction, inverts a randomly perturbed Q_ss, loops over "
            "validation points in Python, and keeps the last iterate. "
            "With scikit-learn >= 1.9 ART gets a shallow copy of the SVC with probability=False.")
    else:
        notes.append("ART skipped (--skip-art)." if skipped
                     else "ART skipped: not installed (pip install 'mlpentest[bench]').")
    for note in notes:
        out += textwrap.wrap(note, 110, subsequent_indent="  ")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
