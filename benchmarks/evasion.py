"""Evasion: mlpentest's attacks beside IBM ART's FGSM and PGD, on the same SVMs and MLP, strength and time.

Setup (everything seeded by ``--seed``):

* data: one pair of classes ("3" vs "7" by default) of a data set, split into disjoint, class-stratified
  training and test pools; every attack starts from the same ``--points`` test points;
* targets: scikit-learn ``SVC`` with a linear, an RBF and a cubic polynomial kernel, and an
  ``MLPClassifier``, all trained on the same training pool;
* budgets: for each norm (L-inf, L2) a few ``eps``; FGSM takes one step of size ``eps``; PGD takes
  ``--steps`` steps of ``2.5 * eps / steps`` (Madry et al.'s rule) from the clean point (no random start,
  in both libraries), projected onto the ball and the [0, 1] box; Biggio et al.'s ``EvasionSVM`` (L2 only,
  no mimicry term) takes at most ``--steps`` steps of the same length inside the L2 ball of radius ``eps``;
  DeepFool looks for the smallest L2 change and has no budget.

Success and distances are computed here, in the same way for every row, from the returned points:
success rate = share of the correctly classified test points whose prediction changed; "mean dist" =
mean distance, in the row's norm, of those successes. Timings use one BLAS/OpenMP/torch thread per process
(``--threads``). Progress goes to stderr, the table to stdout. ``--json PATH`` saves the setup and rows.
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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import _common as common  # benchmarks/ is on sys.path when a script runs
import numpy as np
from _common import aligned, cell
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from mlpentest import datasets
from mlpentest.attacks.evasion import FGSM, PGD, DeepFool, EvasionSVM
from mlpentest.models import wrap

DEFAULT_EPS = {  # (L-inf budgets, L2 budgets) in pixel units, pixels in [0, 1]
    "digits": ("0.05,0.1,0.2", "0.5,1,2"),
    "fashion-mnist": ("0.02,0.05,0.1", "0.5,1,2"),
    "mnist": ("0.05,0.1,0.2", "0.5,1,2"),
}
NORM_ORD = {"linf": np.inf, "l2": 2}


@dataclass
class Row:
    target: str
    attack: str
    library: str
    norm: str
    eps: float | None
    success_rate: float | None
    mean_distance: float | None
    seconds: float | None
    gradient_calls: int | None
    predictions: int | None
    note: str = ""


_T0 = time.perf_counter()


def progress(label: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.0f} s] {label} ...", file=sys.stderr, flush=True)


def make_targets(seed: int) -> dict[str, Any]:
    """The victims: three kernel SVMs and a one-hidden-layer MLP (unfitted)."""
    return {
        "SVC linear": SVC(kernel="linear", C=1.0),
        "SVC rbf": SVC(kernel="rbf", C=10.0, gamma="scale"),
        "SVC poly3": SVC(kernel="poly", degree=3, C=1.0, gamma="scale", coef0=1.0),
        "MLP(64)": MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-4, max_iter=500, random_state=seed),
    }


def score(clf: Any, X0: np.ndarray, X_adv: np.ndarray, y: np.ndarray, norm: str) -> tuple[float, float]:
    """(success rate among correctly classified points, mean ``norm`` distance of those successes)."""
    clean = clf.predict(X0) == y
    success = clean & (clf.predict(X_adv) != y)
    rate = float(success[clean].mean()) if clean.any() else 0.0
    dist = np.linalg.norm(X_adv - X0, ord=NORM_ORD[norm], axis=1)
    return rate, float(dist[success].mean()) if success.any() else float("nan")


def format_table(rows: list[Row]) -> str:
    head = ("target", "attack", "library", "norm", "eps", "success", "mean dist", "wall s", "grad calls",
            "predictions", "note")

    lines = [
        (
            r.target, r.attack, r.library, r.norm, cell(r.eps, "g"), cell(r.success_rate, ".3f"),
            cell(r.mean_distance, ".3f"), cell(r.seconds, ".3f"), cell(r.gradient_calls, "d"),
            cell(r.predictions, "d"), r.note,
        )
        for r in rows
    ]
    return aligned(head, lines, left={0, 1, 2, 3, len(head) - 1})


def import_art() -> dict[str, Any] | None:
    """ART's pieces used here, or None when ART is not installed (the ``bench`` extra)."""
    try:
        import art
        from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
        from art.estimators.classification import SklearnClassifier
    except ImportError:
        return None
    return {"FGM": FastGradientMethod, "PGD": ProjectedGradientDescent, "wrap": SklearnClassifier,
            "version": art.__version__}


class ArtCounter:
    """Counts the samples ART sends to its estimator's gradient and prediction methods (instance patch)."""

    def __init__(self, estimator: Any):
        self.gradient_calls = 0
        self.predictions = 0
        for name in ("loss_gradient", "class_gradient"):
            if hasattr(estimator, name):
                setattr(estimator, name, self._count(getattr(estimator, name), "gradient_calls"))
        estimator.predict = self._count(estimator.predict, "predictions")

    def _count(self, fn: Callable[..., Any], field: str) -> Callable[..., Any]:
        def counted(x: np.ndarray, *args: Any, **kwargs: Any) -> Any:
            setattr(self, field, getattr(self, field) + len(x))
            return fn(x, *args, **kwargs)

        return counted

    def reset(self) -> None:
        self.gradient_calls = self.predictions = 0


def parse_floats(text: str, name: str, p: argparse.ArgumentParser) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        p.error(f"{name}: expected comma-separated numbers, got {text!r}")
    if not values or min(values) <= 0:
        p.error(f"{name}: expected positive budgets, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", choices=sorted(DEFAULT_EPS))
    p.add_argument("--pair", default="3,7", help="the two classes, by index or name (default 3,7)")
    p.add_argument("--points", type=int, default=200, help="test points attacked (at most the test pool)")
    p.add_argument("--train", type=int, default=1000,
                   help="training pool size (at most half of the pair; digits: half of the pair)")
    p.add_argument("--eps-linf", help="comma-separated L-inf budgets (default depends on --dataset)")
    p.add_argument("--eps-l2", help="comma-separated L2 budgets (default depends on --dataset)")
    p.add_argument("--steps", type=int, default=40, help="PGD / EvasionSVM iterations (both libraries)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP/torch threads per process (1: stable timings on a shared machine; "
                   "0: the libraries' own choice)")
    p.add_argument("--skip-art", action="store_true", help="run only mlpentest's attacks")
    p.add_argument("--json", metavar="PATH", help="also save the setup and rows as JSON")
    args = p.parse_args(argv)
    if args.points < 2 or args.train < 10 or args.steps < 1 or args.threads < 0:
        p.error("--points must be >= 2, --train >= 10, --steps >= 1 and --threads >= 0")
    linf, l2 = DEFAULT_EPS[args.dataset]
    args.eps = {"linf": parse_floats(args.eps_linf or linf, "--eps-linf", p),
                "l2": parse_floats(args.eps_l2 or l2, "--eps-l2", p)}
    args.pair = [c.strip() for c in args.pair.split(",")]
    if len(args.pair) != 2:
        p.error("--pair: expected two classes, e.g. 3,7")
    args.pair = [int(c) if c.isdigit() else c for c in args.pair]
    return args


def load_pair(args: argparse.Namespace) -> tuple[str, datasets.Dataset, datasets.Dataset]:
    data = datasets.load(args.dataset, download=False).pair(*args.pair)
    n = data.n_samples
    n_train = n // 2 if args.dataset == "digits" else min(args.train, n // 2)
    n_test = min(args.points, n - n_train)
    pools = data.split({"train": n_train, "test": n_test}, random_state=args.seed)
    return data.name, pools["train"], pools["test"]


def run_ours(name: str, clf: Any, X: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> list[Row]:
    """Every mlpentest evasion attack on one target, all budgets, through one query-counted wrapper."""
    model = wrap(clf)
    rows = []

    def one(attack: str, norm: str, eps: float | None, make: Callable[[], Any], note: str = "") -> None:
        progress(f"{name}: {attack} {norm} eps={eps}")
        model.reset_queries()
        start = time.perf_counter()
        result = make()
        seconds = time.perf_counter() - start
        rate, dist = score(clf, X, result.x_adv, y, norm)
        if abs(rate - result.success_rate) > 1e-12:  # our own scoring must agree with the result's
            note = f"{note}; result says {result.success_rate:.3f}".lstrip("; ")
        rows.append(Row(name, attack, "mlpentest", norm, eps, rate, dist, seconds, model.gradient_queries,
                        model.queries, note))

    for norm in ("linf", "l2"):
        for eps in args.eps[norm]:
            step = 2.5 * eps / args.steps
            one("FGSM", norm, eps, lambda norm=norm, eps=eps: FGSM(model, eps=eps, norm=norm).run(X, y))
            one("PGD", norm, eps, lambda norm=norm, eps=eps, step=step: PGD(
                model, eps=eps, norm=norm, step=step, max_iter=args.steps, random_start=False).run(X, y))
            if norm == "l2":
                one("EvasionSVM", norm, eps, lambda eps=eps, step=step: EvasionSVM(
                    model, dmax=eps, max_iter=args.steps, t=step, lam=0.0).run(X, y))
    one("DeepFool", "l2", None, lambda: DeepFool(model, max_iter=50, overshoot=0.02).run(X, y),
        "min-norm, no budget")
    return rows


def run_art(
    name: str, clf: Any, X: np.ndarray, y: np.ndarray, args: argparse.Namespace, art: dict[str, Any]
) -> list[Row]:
    """ART's FastGradientMethod and ProjectedGradientDescent with the same budgets, steps and box."""
    art_clf = clf
    if isinstance(clf, SVC) and not isinstance(clf.probability, bool):
        # scikit-learn >= 1.9 deprecated SVC(probability=...): the attribute reads "deprecated", which ART
        # 1.20's ScikitlearnSVC.predict takes as True and calls predict_proba. A shallow copy (same fitted
        # model) says False, so ART predicts labels as it does for probability=False.
        art_clf = copy.copy(clf)
        art_clf.probability = False
    estimator = art["wrap"](art_clf, clip_values=(0.0, 1.0))
    onehot = np.eye(len(clf.classes_))[np.searchsorted(clf.classes_, y)]
    reason = ""
    if not hasattr(estimator, "loss_gradient"):
        reason = f"not supported: {type(estimator).__name__} has no loss gradients"
    else:
        try:
            estimator.loss_gradient(X[:1], onehot[:1])
        except NotImplementedError as exc:
            reason = f"not supported: {exc or 'NotImplementedError'}"
    if reason:
        return [Row(name, a, "ART", "-", None, None, None, None, None, None, reason) for a in ("FGM", "PGD")]
    counter = ArtCounter(estimator)
    rows = []
    for norm in ("linf", "l2"):
        art_norm = np.inf if norm == "linf" else 2
        for eps in args.eps[norm]:
            step = 2.5 * eps / args.steps
            attacks = {
                "FGM": lambda art_norm=art_norm, eps=eps: art["FGM"](
                    estimator, norm=art_norm, eps=eps, eps_step=eps, num_random_init=0, batch_size=len(X)),
                "PGD": lambda art_norm=art_norm, eps=eps, step=step: art["PGD"](
                    estimator, norm=art_norm, eps=eps, eps_step=step, max_iter=args.steps,
                    num_random_init=0, batch_size=len(X), verbose=False),
            }
            for attack, make in attacks.items():
                progress(f"{name}: ART {attack} {norm} eps={eps}")
                counter.reset()
                start = time.perf_counter()
                x_adv = make().generate(X.astype(np.float32), onehot.astype(np.float32))
                seconds = time.perf_counter() - start
                rate, dist = score(clf, X, np.asarray(x_adv, dtype=np.float64), y, norm)
                rows.append(Row(name, attack, "ART", norm, eps, rate, dist, seconds, counter.gradient_calls,
                                counter.predictions))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    art = None if args.skip_art else import_art()  # may import torch, before the thread limits below
    versions = common.versions(common.art_status(art["version"] if art else None, args.skip_art))
    limits = common.limit_threads(args.threads)
    targets_info: dict[str, dict[str, Any]] = {}
    rows: list[Row] = []
    with limits:
        np.random.seed(args.seed)
        pair_name, train, test = load_pair(args)
        X, y = test.X.astype(np.float64), test.y
        for name, clf in make_targets(args.seed).items():
            progress(f"train {name}")
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(train.X, train.y)
            targets_info[name] = {
                "train_seconds": time.perf_counter() - start,
                "train_accuracy": clf.score(train.X, train.y),
                "test_accuracy": clf.score(X, y),
                "support_vectors": int(clf.support_vectors_.shape[0]) if hasattr(clf, "support_vectors_")
                else None,
                # points where the model's own loss (hinge for an SVC) is flat: why FGSM/PGD use the margin
                "zero_loss_gradient": int(np.sum(~np.any(wrap(clf).loss_gradient(X, y), axis=1))),
            }
            rows += run_ours(name, clf, X, y, args)
            if art is not None:
                rows += run_art(name, clf, X, y, args, art)

    setup = {
        "dataset": pair_name, "train": len(train.y), "points": len(y), "features": X.shape[1],
        "eps": args.eps, "steps": args.steps, "seed": args.seed, "targets": targets_info,
        **common.machine(args.threads, load_start), "versions": versions,
    }
    print(report(setup, rows, art is not None, args.skip_art))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"setup": setup, "rows": [asdict(r) for r in rows]}, fh, indent=2)
    return 0


def report(setup: dict[str, Any], rows: list[Row], with_art: bool, skipped: bool) -> str:
    s, v = setup, setup["versions"]
    out = [
        f"evasion benchmark: {s['dataset']}, {s['train']} training / {s['points']} test points attacked, "
        f"{s['features']} features in [0, 1]",
        "budgets: linf " + ", ".join(f"{e:g}" for e in s["eps"]["linf"]) + "; l2 "
        + ", ".join(f"{e:g}" for e in s["eps"]["l2"])
        + f"; PGD/EvasionSVM {s['steps']} steps of 2.5 * eps / {s['steps']}, no random start; "
        f"seed {s['seed']}",
        f"machine: {s['cpu_count']} CPUs ({s['machine']}), 1-min load average {s['load_average_start']:.1f} "
        f"at start, {s['load_average_end']:.1f} at end; threads per process: {s['threads']}",
        "versions: " + ", ".join(f"{k} {x}" for k, x in v.items()),
        "",
        "targets:",
    ]
    for name, t in s["targets"].items():
        sv = f", {t['support_vectors']} support vectors" if t["support_vectors"] is not None else ""
        out.append(f"  {name:11s} train accuracy {t['train_accuracy']:.3f}, test accuracy "
                   f"{t['test_accuracy']:.3f}{sv}, trained in {t['train_seconds']:.2f} s; "
                   f"zero loss gradient at {t['zero_loss_gradient']}/{s['points']} points")
    out += ["", format_table(rows), ""]
    notes = [
        "success: share of the correctly classified attacked points whose prediction changed; mean dist: "
        "mean distance (in the row's norm) of those successes, computed here from the returned points for "
        "every row. wall s: the attack alone. grad calls / predictions: samples sent to the model's "
        "gradient / prediction methods; ours include the 2 x points predictions that build the result.",
        "mlpentest's FGSM and PGD ascend the model's loss: cross-entropy for the MLP; for an SVC, whose "
        "own hinge loss is flat beyond the margin ('zero loss gradient' above), the logit margin "
        "max_(j != y) z_j - z_y instead. EvasionSVM and DeepFool follow the decision function itself.",
    ]
    if with_art:
        notes += [
            "ART: SklearnClassifier(clf, clip_values=(0, 1)); inputs as float32, true labels one-hot. "
            "FGM: eps_step = eps, num_random_init 0, minimal False. PGD: same eps, eps_step and max_iter as "
            "ours, num_random_init 0; ART's numpy PGD keeps the last iterate, ours too (one restart). "
            "ART's ScikitlearnSVC 'loss gradient' is the gradient of the SVM's decision values (Biggio's "
            "Eq. 1 with lambda 0, no hinge), computed in a Python loop over samples and support vectors; "
            "it supports linear, poly and rbf kernels (not sigmoid; its poly gradient omits the constant "
            "factor gamma, harmless for sign / normalised steps). scikit-learn MLPClassifier has no ART "
            "wrapper with gradients, hence 'not supported'. With scikit-learn >= 1.9, ART's SVC predict "
            "misreads the deprecated SVC.probability; ART gets a shallow copy with probability=False.",
        ]
    else:
        notes.append("ART skipped (--skip-art)." if skipped
                     else "ART skipped: not installed (pip install 'mlpentest[bench]').")
    for note in notes:
        out += textwrap.wrap(note, 110, subsequent_indent="  ")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
