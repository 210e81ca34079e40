"""Poisoning at scale: PoisoningSVM's time per step vs training-set size, full vs incremental retraining.

Issue 16: retraining the SVC from scratch after every gradient step grows ~n^2; the incremental solver
(``solver="incremental"``, an exact active-set method warm-started from the previous step, after
Cauwenberghs and Poggio 2001) should be >= 10x faster per step at 3000 training points and find the same
poison point (max abs difference < 1e-6 after 20 steps) with the same test error.

Setup (everything seeded by ``--seed``): one pair of Fashion-MNIST classes (sandals vs sneakers by default)
split into disjoint, class-stratified pools: the attacker's validation set (``--valid``), a held-out test
set (``--test``) and a training pool, whose first ``n`` points (shuffled) are the SVM's training set for
each size in ``--sizes``. Target: ``SVC(kernel=--kernel, C=--C)`` (rbf/poly: gamma fixed to scikit-learn's
"scale" value on the training set, poly degree 2). One poison point starts from the first training point
of class 0 with label 1 and takes ``--steps`` gradient steps of ``--step`` (``tol=0``: no early stop) with
each solver, and the returned points are compared. Above ``--full-max`` training points one full retraining
takes minutes: there only ``--full-steps-large`` steps of full retraining are timed, outside the attack, and
nothing is compared.

Time per step: the mean wall time of one step's retraining + gradient (``evaluate``), the starting point's
own evaluation excluded; "setup" is the rest of the run (validation, the clean SVM's libsvm fit, the final
SVM). Test error: the SVM retrained exactly (as the attack does) on the training set plus the returned
poison point, 0/1 error on the test set. Progress goes to stderr, the table to stdout; ``--json PATH``
saves the rows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import _common as common  # benchmarks/ is on sys.path when a script runs
import numpy as np
from _common import aligned, cell
from sklearn.svm import SVC

from mlpentest import datasets
from mlpentest.attacks.poisoning import PoisoningSVM, _svm_math

_T0 = time.perf_counter()


def progress(label: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.0f} s] {label} ...", file=sys.stderr, flush=True)


@dataclass
class Row:
    n: int
    steps: int
    full_step_s: float | None
    incremental_step_s: float
    speedup: float | None
    full_setup_s: float | None
    incremental_setup_s: float
    warm_share: float
    max_abs_diff: float | None
    loss_max_rel_diff: float | None
    test_error_clean: float
    test_error_incremental: float
    test_error_full: float | None
    valid_error_after: float


@contextlib.contextmanager
def timed_evaluations() -> Iterator[list[float]]:
    """Wall time of every retraining + gradient step of PoisoningSVM, whichever solver (a benchmark's
    view into the attack's private engines; the attack itself keeps no clock per step)."""
    times: list[float] = []
    originals = {cls: cls.__dict__["evaluate"] for cls in (_svm_math.FullRetrain, _svm_math.WarmRetrain)}

    def wrap(original: Any) -> Any:
        def evaluate(self: Any, x: np.ndarray) -> Any:
            start = time.perf_counter()
            out = original(self, x)
            times.append(time.perf_counter() - start)
            return out
        return evaluate

    try:
        for cls, original in originals.items():
            cls.evaluate = wrap(original)
        yield times
    finally:
        for cls, original in originals.items():
            cls.evaluate = original


def make_svm(kernel: str, C: float, X: np.ndarray) -> SVC:
    settings: dict[str, Any] = {"kernel": kernel, "C": C}
    if kernel != "linear":
        settings["gamma"] = 1.0 / (X.shape[1] * X.var())
    if kernel == "poly":
        settings["degree"] = 2
    return SVC(**settings)


def attack(solver: str, clf: SVC, X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray,
           steps: int, args: argparse.Namespace) -> tuple[Any, float, float]:
    """The result, the mean time per step and the setup time of one poison point's ``steps`` steps."""
    x0 = X[y == 0][0]
    with timed_evaluations() as times:
        start = time.perf_counter()
        result = PoisoningSVM(clf, X, y, t=args.step, tol=0.0, solver=solver).attack(
            x0, 1, Xv, yv, num_iterations=steps)
        wall = time.perf_counter() - start
    per_step = float(np.mean(times[1:])) if len(times) > 1 else float("nan")
    return result, per_step, wall - sum(times[1:])


def test_error(clf: SVC, X: np.ndarray, y: np.ndarray, poison: np.ndarray | None, Xte: np.ndarray,
               yte: np.ndarray) -> float:
    """0/1 test error of the exact SVM (libsvm polished to the KKT conditions, as the attack retrains) on
    the training set plus the poison point: libsvm alone stops anywhere within its tolerance, which moves
    test points near the boundary with differences in the poison point as small as round-off."""
    problem = _svm_math.SVMProblem.from_training_set(clf, X, y, (0.0, 1.0))
    X, y = problem.X, problem.y
    if poison is not None:
        X, y = np.vstack([X, poison[None]]), np.append(y, 1.0)
    svm = problem.fit(X, y, libsvm_tol=1e-3)
    margins = np.where(yte == problem.classes[1], 1.0, -1.0) * svm.decision_function(Xte)
    return float(np.mean(margins <= 0.0))


def full_steps_alone(clf: SVC, X: np.ndarray, y: np.ndarray, Xv: np.ndarray, yv: np.ndarray, steps: int,
                     args: argparse.Namespace) -> float:
    """Mean time of the first ``steps`` evaluations (start point included) of full retraining, without the
    rest of the attack (its clean and final SVMs are two more full fits): for sizes where one takes
    minutes."""
    problem = _svm_math.SVMProblem.from_training_set(clf, X, y, (0.0, 1.0))
    Xv, yv = problem.check_valid(Xv, yv)
    engine = _svm_math.FullRetrain(problem, Xv, yv)
    x = X[y == 0][0].copy()
    engine.start(x, 1.0)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        _, _, grad, _, _ = engine.evaluate(x)
        times.append(time.perf_counter() - start)
        x = np.clip(x + args.step * grad / max(np.linalg.norm(grad), 1e-300), 0.0, 1.0)
    return float(np.mean(times))


def run_size(n: int, pool: tuple[np.ndarray, np.ndarray], Xv: np.ndarray, yv: np.ndarray, Xte: np.ndarray,
             yte: np.ndarray, args: argparse.Namespace) -> Row:
    X, y = pool[0][:n], pool[1][:n]
    clf = make_svm(args.kernel, args.C, X).fit(X, y)
    progress(f"n={n}: incremental, {args.steps} steps")
    fast, fast_step, fast_setup = attack("incremental", clf, X, y, Xv, yv, args.steps, args)
    progress(f"n={n}: incremental {fast_step:.4f} s/step, setup {fast_setup:.1f} s")
    full = full_step = full_setup = None
    if args.skip_full:
        pass
    elif n <= args.full_max:
        progress(f"n={n}: full retraining, {args.steps} steps")
        full, full_step, full_setup = attack("full", clf, X, y, Xv, yv, args.steps, args)
    else:
        progress(f"n={n}: full retraining, {args.full_steps_large} step(s) alone")
        full_step = full_steps_alone(clf, X, y, Xv, yv, args.full_steps_large, args)
    progress(f"n={n}: test errors")
    clean = test_error(clf, X, y, None, Xte, yte)
    err_fast = test_error(clf, X, y, fast.x_poison, Xte, yte)
    err_full = None if full is None else test_error(clf, X, y, full.x_poison, Xte, yte)
    diff = loss_diff = None
    if full is not None:
        diff = float(np.abs(fast.x_poison - full.x_poison).max())
        a, b = fast.log["validation_loss"], full.log["validation_loss"]
        loss_diff = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))) if len(a) == len(b) else None
    return Row(n, args.steps, full_step, fast_step, None if full_step is None else full_step / fast_step,
               full_setup, fast_setup, float(np.mean(fast.log["warm_start"])), diff, loss_diff, clean,
               err_fast, err_full, fast.poisoned_error)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist", "digits"])
    p.add_argument("--pair", default="5,7", help="the two classes, by index or name (default 5,7)")
    p.add_argument("--sizes", default="100,300,1000,3000,10000", help="training-set sizes")
    p.add_argument("--valid", type=int, default=200, help="attacker's validation points")
    p.add_argument("--test", type=int, default=2000, help="held-out test points")
    p.add_argument("--kernel", default="linear", choices=["linear", "rbf", "poly"])
    p.add_argument("--C", type=float, default=10.0)
    p.add_argument("--steps", type=int, default=20, help="gradient steps of the poison point")
    p.add_argument("--step", type=float, default=0.5, help="step length (unit-norm gradient)")
    p.add_argument("--full-max", type=int, default=3000,
                   help="largest size at which full retraining runs all --steps steps")
    p.add_argument("--full-steps-large", type=int, default=1,
                   help="above --full-max, time only this many full-retraining steps, outside the attack")
    p.add_argument("--skip-full", action="store_true", help="time only the incremental solver")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads (0: the libraries' choice)")
    p.add_argument("--json", metavar="PATH", help="also save the setup and rows as JSON")
    args = p.parse_args(argv)
    try:
        args.sizes = sorted({int(v) for v in args.sizes.split(",") if v.strip()})
    except ValueError:
        p.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    if not args.sizes or min(args.sizes) < 10 or args.valid < 2 or args.test < 2:
        p.error("--sizes must be integers >= 10, --valid and --test >= 2")
    if args.steps < 1 or args.full_steps_large < 1 or args.step <= 0 or args.C <= 0 or args.threads < 0:
        p.error("--steps and --full-steps-large must be >= 1, --step and --C > 0, --threads >= 0")
    args.pair = [int(c) if c.strip().isdigit() else c.strip() for c in args.pair.split(",")]
    if len(args.pair) != 2:
        p.error("--pair: expected two classes, e.g. 5,7")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    versions = common.versions("not used")
    rows: list[Row] = []
    with common.limit_threads(args.threads):
        data = datasets.load(args.dataset, download=False).pair(*args.pair)
        pools = data.split({"train": max(args.sizes), "valid": args.valid, "test": args.test},
                           random_state=args.seed)
        order = np.random.RandomState(args.seed).permutation(pools["train"].n_samples)
        pool = pools["train"].X.astype(np.float64)[order], pools["train"].y[order]
        Xv, yv = pools["valid"].X.astype(np.float64), pools["valid"].y
        Xte, yte = pools["test"].X.astype(np.float64), pools["test"].y
        for n in args.sizes:
            rows.append(run_size(n, pool, Xv, yv, Xte, yte, args))
            print(format_table(rows[-1:]), file=sys.stderr, flush=True)
    setup = {
        "dataset": data.name, "pair": args.pair, "features": Xv.shape[1], "valid": len(yv), "test": len(yte),
        "kernel": args.kernel, "C": args.C, "steps": args.steps, "step": args.step,
        "full_max": args.full_max, "full_steps_large": args.full_steps_large, "seed": args.seed,
        **common.machine(args.threads, load_start), "versions": versions,
    }
    print(report(setup, rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"setup": setup, "rows": [asdict(r) for r in rows]}, fh, indent=2)
    return 0


def format_table(rows: list[Row]) -> str:
    head = ("train n", "steps", "full s/step", "incr. s/step", "speed-up", "full setup s", "incr. setup s",
            "warm", "max |dx|", "loss rel. diff", "test err clean", "incr.", "full", "valid err after")
    lines = [(str(r.n), str(r.steps), cell(r.full_step_s, ".4f"), cell(r.incremental_step_s, ".4f"),
              cell(r.speedup, ".1f"), cell(r.full_setup_s, ".2f"), cell(r.incremental_setup_s, ".2f"),
              cell(r.warm_share, ".2f"), cell(r.max_abs_diff, ".1e"), cell(r.loss_max_rel_diff, ".1e"),
              cell(r.test_error_clean, ".4f"), cell(r.test_error_incremental, ".4f"),
              cell(r.test_error_full, ".4f"), cell(r.valid_error_after, ".3f")) for r in rows]
    return aligned(head, lines, left=set())


def report(setup: dict[str, Any], rows: list[Row]) -> str:
    s = setup
    out = [
        f"poisoning scaling: {s['dataset']} classes {s['pair'][0]} vs {s['pair'][1]}, {s['features']} "
        f"features in [0, 1]; {s['valid']} validation / {s['test']} test points; SVC kernel={s['kernel']} "
        f"C={s['C']:g}",
        f"one poison point, {s['steps']} steps of {s['step']:g} (above n={s['full_max']}: "
        f"{s['full_steps_large']} step(s) of full retraining timed alone); seed {s['seed']}",
        f"machine: {s['cpu_count']} CPUs ({s['machine']}), 1-min load average {s['load_average_start']:.1f} "
        f"at start, {s['load_average_end']:.1f} at end; threads per process: {s['threads']}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in s["versions"].items() if k != "art"),
        "",
        format_table(rows),
        "",
    ]
    notes = [
        "s/step: mean wall time of one step's retraining + gradient (the starting point's own evaluation "
        "excluded; above --full-max, full: the mean of the steps timed alone, start included); setup: the "
        "rest of the run (input checks, the clean SVM, the incremental solver's first solve from it, the "
        "final SVM). full: libsvm from scratch at every step (tol 1e-9, no shrinking), polished in float64 "
        "to the exact optimum (KKT conditions to 1e-9); incr.: the same exact solver warm-started from the "
        "previous step (its clean SVM: libsvm at tol 1e-3, polished the same way). warm: share of "
        "evaluations the warm start solved (the rest retrained from scratch). max |dx|: max abs difference "
        "of the returned poison points after `steps` steps of each; loss rel. diff: largest relative "
        "difference of the validation losses along the way. Test errors: the SVM retrained exactly (libsvm "
        "polished to the KKT conditions) on the training set plus the poison point, held-out test set.",
    ]
    for note in notes:
        out += textwrap.wrap(note, 110, subsequent_indent="  ")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
