"""Model inversion: mlpentest's MI-Face beside IBM ART's MIFace, on the same targets and data.

Setup (everything seeded by ``--seed``):

* data: disjoint, class-stratified pools of one data set (Fashion-MNIST by default): the target's
  training set (``--train``), the attacker's auxiliary pool (``--aux``, same domain, labels unused) and a
  test pool (``--test``, only to report the targets' accuracy);
* targets: softmax regression (``LogisticRegression``, C=0.1) and an ``MLPClassifier((64,))``, trained on
  the training pool;
* every attack reconstructs one input per class (all 10 classes). Scores are computed here, in the same
  way for every row, from the returned images: "classified" = the target labels the reconstruction as its
  class; "own mean" = the nearest class mean (MSE) is the class's own. The class means are the mean images
  of the target's training pool, used only to score (no attack reads them);
* mlpentest: ``MIFace`` with its defaults (300 normalised steps of 1.0 from a blank image, best iterate):
  white-box with Process-DAE (a linear denoiser fitted to the auxiliary pool), white-box plain
  (``process=None``: Fredrikson et al.'s gradient descent, clipped to [0, 1]; the closest match to ART)
  and black-box (only ``predict_proba`` behind ``mlpentest.models.wrap``; NES gradient estimates);
* ART: ``MIFace`` on ``SklearnClassifier(clf, clip_values=(0, 1))`` with its defaults, then a sweep of
  what its API lets one set (learning rate, iterations, starting image; the stopping threshold set so
  that no class stops early) whose best settings per starting image give the "tuned" rows.

Timings use one BLAS/OpenMP/torch thread per process (``--threads``). Progress goes to stderr, the tables
to stdout. ``--png PATH`` saves both libraries' reconstructions side by side; ``--json PATH`` the setup
and rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import _common as common  # benchmarks/ is on sys.path when a script runs
import numpy as np
from _common import aligned, cell
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from mlpentest import datasets
from mlpentest.attacks.inversion import MIFace
from mlpentest.models import wrap

DEFAULT_SIZES = {  # (train, aux, test)
    "digits": (700, 700, 397),
    "fashion-mnist": (3000, 3000, 1000),
    "mnist": (3000, 3000, 1000),
}
SWEEP_STARTS = ("zeros", "grey", "aux mean")
# tuned rows: the data-free start (as ours) and the one that uses the auxiliary pool (as our Process-DAE)
TUNED_STARTS = ("zeros", "aux mean")


@dataclass
class Row:
    target: str
    attack: str
    library: str
    mode: str
    classified: int | None
    own_mean: int | None
    mse_own: float | None
    mse_other: float | None
    mse_blank: float | None
    queries: int | None
    gradient_calls: int | None
    seconds: float | None
    ratio: float | None = None  # ART's wall time over ours (white-box plain), same target
    note: str = ""


@dataclass
class SweepRow:
    target: str
    start: str
    learning_rate: float
    iterations: int
    classified: int
    own_mean: int
    mse_own: float
    mse_other: float
    seconds: float
    gradient_calls: int
    predictions: int
    chosen: bool = False
    images: np.ndarray | None = field(default=None, repr=False)


_T0 = time.perf_counter()


def progress(label: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.0f} s] {label} ...", file=sys.stderr, flush=True)


def make_targets(seed: int) -> dict[str, Any]:
    """The victims (unfitted): softmax regression and a one-hidden-layer MLP, as in the MI-Face tests."""
    return {
        "softmax": LogisticRegression(max_iter=100, C=0.1, tol=1e-3),
        "MLP(64)": MLPClassifier(hidden_layer_sizes=(64,), max_iter=60, random_state=seed),
    }


def scores(clf: Any, images: np.ndarray, means: np.ndarray) -> dict[str, Any]:
    """Classified as target, nearest mean is own (counts), mean MSE to own / nearest other mean."""
    images = np.asarray(images, dtype=np.float64)
    k = len(images)
    mse = ((images[:, None, :] - means[None, :, :]) ** 2).mean(axis=2)  # (k, k): image i vs mean j
    others = np.where(np.eye(k, dtype=bool), np.inf, mse).min(axis=1)
    return {
        "classified": int(np.sum(clf.predict(images) == clf.classes_)),
        "own_mean": int(np.sum(np.argmin(mse, axis=1) == np.arange(k))),
        "mse_own": float(np.diag(mse).mean()),
        "mse_other": float(others.mean()),
    }


def format_table(rows: list[Row]) -> str:
    head = ("target", "attack", "library", "mode", "classified", "own mean", "MSE own", "MSE other",
            "MSE blank", "queries", "grad calls", "wall s", "ART/ours", "note")
    lines = [
        (
            r.target, r.attack, r.library, r.mode,
            "-" if r.classified is None else f"{r.classified}/10",
            "-" if r.own_mean is None else f"{r.own_mean}/10",
            cell(r.mse_own, ".4f"), cell(r.mse_other, ".4f"), cell(r.mse_blank, ".4f"), cell(r.queries, "d"),
            cell(r.gradient_calls, "d"), cell(r.seconds, ".2f"),
            "-" if r.ratio is None else f"{r.ratio:.1f}x", r.note,
        )
        for r in rows
    ]
    return aligned(head, lines, left={0, 1, 2, 3, len(head) - 1})


def format_sweep(sweep: list[SweepRow]) -> str:
    """One line per target, start and learning rate; per iteration count: classified, own mean, MSE own /
    MSE other, a star on the tuned rows' settings."""
    iters = sorted({s.iterations for s in sweep})
    head = ("target", "start", "lr", *(f"{i} iterations" for i in iters), f"wall s ({iters[-1]})")
    groups: dict[tuple[str, str, float], dict[int, SweepRow]] = {}
    for s in sweep:
        groups.setdefault((s.target, s.start, s.learning_rate), {})[s.iterations] = s
    lines = []
    for (target, start, rate), by_iter in groups.items():
        cells = [
            f"{r.classified:2d} {r.own_mean:2d} {r.mse_own:.3f}/{r.mse_other:.3f}{' *' if r.chosen else '  '}"
            for r in (by_iter[i] for i in iters)
        ]
        lines.append((target, start, f"{rate:g}", *cells, f"{by_iter[iters[-1]].seconds:.2f}"))
    return aligned(head, lines, left={0, 1})


def import_art() -> dict[str, Any] | None:
    """ART's pieces used here, or None when ART is not installed (the ``bench`` extra)."""
    try:
        import art
        from art.attacks.inference.model_inversion import MIFace as ArtMIFace
        from art.estimators.classification import SklearnClassifier
    except ImportError:
        return None
    return {"MIFace": ArtMIFace, "wrap": SklearnClassifier, "version": art.__version__}


class ArtCounter:
    """Counts the samples ART sends to its estimator's class gradient and prediction (instance patch),
    and the gradient samples per class."""

    def __init__(self, estimator: Any, n_classes: int):
        self.gradient_calls = 0
        self.predictions = 0
        self.per_class = np.zeros(n_classes, dtype=np.int64)
        gradient = self._count(estimator.class_gradient, "gradient_calls")

        def class_gradient(x: np.ndarray, label: Any = None, **kwargs: Any) -> Any:
            if label is not None:
                np.add.at(self.per_class, np.broadcast_to(np.asarray(label), (len(x),)), 1)
            return gradient(x, label, **kwargs)

        estimator.class_gradient = class_gradient
        estimator.predict = self._count(estimator.predict, "predictions")

    def _count(self, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        def counted(x: np.ndarray, *args: Any, **kwargs: Any) -> Any:
            setattr(self, name, getattr(self, name) + len(x))
            return fn(x, *args, **kwargs)

        return counted

    def reset(self) -> None:
        self.gradient_calls = self.predictions = 0
        self.per_class[:] = 0


def parse_floats(text: str, name: str, p: argparse.ArgumentParser) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        p.error(f"{name}: expected comma-separated numbers, got {text!r}")
    if not values or min(values) <= 0:
        p.error(f"{name}: expected positive numbers, got {text!r}")
    return values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", choices=sorted(DEFAULT_SIZES))
    p.add_argument("--train", type=int, help="target's training pool (default: 3000; digits 700)")
    p.add_argument("--aux", type=int, help="attacker's unlabelled auxiliary pool (default: as --train)")
    p.add_argument("--test", type=int,
                   help="test pool, for the targets' accuracy only (default: 1000; digits 397)")
    p.add_argument("--art-max-iter", type=int, default=10_000,
                   help="max_iter of ART's default row (ART's default: 10000)")
    p.add_argument("--sweep-rates", default="0.01,0.1,1,2,3,5,10,30,100",
                   help="ART learning rates tried for the tuned rows")
    p.add_argument("--sweep-iters", default="10,100,1000,10000",
                   help="ART iteration counts tried for the tuned rows (checkpoints of one run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP/torch threads per process (1: stable timings on a shared machine; "
                   "0: the libraries' own choice)")
    p.add_argument("--skip-art", action="store_true", help="run only mlpentest's attacks")
    p.add_argument("--png", metavar="PATH", help="save the reconstructions of every row as a PNG")
    p.add_argument("--json", metavar="PATH", help="also save the setup and rows as JSON")
    args = p.parse_args(argv)
    train, aux, test = DEFAULT_SIZES[args.dataset]
    args.train = train if args.train is None else args.train
    args.aux = (aux if args.train == train else args.train) if args.aux is None else args.aux
    args.test = test if args.test is None else args.test
    if args.train < 50 or args.aux < 2 or args.test < 0 or args.threads < 0 or args.art_max_iter < 1:
        p.error("--train must be >= 50, --aux >= 2, --test >= 0, --threads >= 0 and --art-max-iter >= 1")
    args.sweep_rates = parse_floats(args.sweep_rates, "--sweep-rates", p)
    iters = parse_floats(args.sweep_iters, "--sweep-iters", p)
    if any(i != int(i) for i in iters):
        p.error(f"--sweep-iters: expected whole numbers, got {args.sweep_iters!r}")
    args.sweep_iters = sorted({int(i) for i in iters})
    return args


def load_pools(args: argparse.Namespace) -> tuple[datasets.Dataset, dict[str, datasets.Dataset]]:
    data = datasets.load(args.dataset, download=False)
    sizes = {"train": args.train, "aux": args.aux}
    if args.test:
        sizes["test"] = args.test
    if sum(sizes.values()) > data.n_samples:
        raise SystemExit(f"{data.name} has {data.n_samples} samples, fewer than --train + --aux + --test = "
                         f"{sum(sizes.values())}")
    return data, data.split(sizes, random_state=args.seed)


def run_ours(name: str, clf: Any, X_aux: np.ndarray, means: np.ndarray, blank: float,
             args: argparse.Namespace) -> tuple[list[Row], dict[str, np.ndarray]]:
    """mlpentest's MI-Face, white-box with and without Process-DAE, and black-box, all with defaults."""
    # black-box: the probabilities only, no gradients, no logits
    api = wrap(clf.predict_proba, input_shape=(X_aux.shape[1],), n_classes=len(clf.classes_))
    runs: list[tuple[str, str, Any, dict[str, Any]]] = [
        ("MI-Face + Process-DAE", "white-box", wrap(clf), {"X_aux": X_aux}),
        ("MI-Face plain", "white-box", wrap(clf), {"process": None}),
        ("MI-Face + Process-DAE", "black-box", api, {"X_aux": X_aux, "random_state": args.seed}),
    ]
    rows, images = [], {}
    for attack, mode, model, kwargs in runs:
        progress(f"{name}: mlpentest {attack}, {mode}")
        result = MIFace(model, **kwargs).run(class_means=means)
        s = scores(clf, result.reconstructions, means)
        note = ""
        if result.params["gradient"] != mode:
            note = f"ran {result.params['gradient']}"
        mine = (int(result.classified_as_target.sum()), int(result.nearest_mean_is_own.sum()))
        if mine != (s["classified"], s["own_mean"]):  # the result's own scoring must agree with ours
            note = f"{note}; result says {mine[0]}/10, {mine[1]}/10".lstrip("; ")
        rows.append(Row(name, attack, "mlpentest", mode, **s, mse_blank=blank, queries=result.queries,
                        gradient_calls=model.gradient_queries, seconds=result.wall_seconds,
                        note=f"{int(result.iterations.max())} steps max" + (f"; {note}" if note else "")))
        images[f"ours {mode}{' plain' if 'plain' in attack else ' DAE'}"] = result.reconstructions
    return rows, images


def starting_images(kind: str, k: int, X_aux: np.ndarray) -> np.ndarray:
    d = X_aux.shape[1]
    if kind == "zeros":
        return np.zeros((k, d), dtype=np.float32)
    if kind == "grey":
        return np.full((k, d), 0.5, dtype=np.float32)
    return np.tile(X_aux.mean(axis=0), (k, 1)).astype(np.float32)


def run_art(
    name: str, clf: Any, X_aux: np.ndarray, means: np.ndarray, blank: float, art: dict[str, Any],
    class_names: tuple[str, ...], args: argparse.Namespace,
) -> tuple[list[Row], list[SweepRow], dict[str, np.ndarray]]:
    """ART's MIFace: its defaults, then a sweep; the best settings per starting image give tuned rows."""
    estimator = art["wrap"](clf, clip_values=(0.0, 1.0))
    if not hasattr(estimator, "class_gradient"):
        reason = f"not supported: {type(estimator).__name__} has no class gradients"
        return [Row(name, "MIFace", "ART", "white-box", None, None, None, None, blank, None, None, None,
                    note=reason)], [], {}
    try:
        art["MIFace"](estimator, verbose=False)
    except Exception as exc:  # noqa: BLE001 - ART refuses the wrapper (EstimatorError): say so, go on
        return [Row(name, "MIFace", "ART", "white-box", None, None, None, None, blank, None, None, None,
                    note=f"not supported: {type(exc).__name__}")], [], {}
    k = len(clf.classes_)
    counter = ArtCounter(estimator, k)
    labels = np.arange(k)  # class indices; clf.classes_ are 0..k-1 here

    progress(f"{name}: ART MIFace defaults (max_iter {args.art_max_iter}, one class at a time)")
    start = time.perf_counter()
    x_default = art["MIFace"](estimator, max_iter=args.art_max_iter, verbose=False).infer(None, labels)
    seconds = time.perf_counter() - start
    default_iters = f"max_iter {args.art_max_iter}"
    if args.art_max_iter == 10_000:
        default_iters += " (ART's default)"
    default_iters += ", lr 0.1, threshold 0.99, from zeros"
    early = [f"{class_names[c]} after {n} step{'s' if n > 1 else ''}"
             for c, n in enumerate(counter.per_class) if n < args.art_max_iter]
    if early:
        default_iters += "; stopped early: " + ", ".join(early)
    rows = [Row(name, "MIFace defaults", "ART", "white-box", **scores(clf, x_default, means), mse_blank=blank,
                queries=counter.predictions, gradient_calls=counter.gradient_calls, seconds=seconds,
                note=default_iters)]
    images = {"ART defaults": np.asarray(x_default, dtype=np.float64)}

    # The sweep. threshold=1.0: ART keeps a class going while cost <= threshold, so every class runs the
    # full max_iter; each configuration then continues from the previous checkpoint's images, which is
    # the same as one run of that many iterations (no state besides the images).
    sweep: list[SweepRow] = []
    for start_kind in SWEEP_STARTS:
        for rate in args.sweep_rates:
            progress(f"{name}: ART sweep, start {start_kind}, learning rate {rate:g}")
            x, done, seconds = starting_images(start_kind, k, X_aux), 0, 0.0
            counter.reset()
            for iters in args.sweep_iters:
                attack = art["MIFace"](estimator, max_iter=iters - done, threshold=1.0,
                                       learning_rate=float(rate), batch_size=k, verbose=False)
                t = time.perf_counter()
                x = attack.infer(x, labels)
                seconds += time.perf_counter() - t
                done = iters
                sweep.append(SweepRow(name, start_kind, rate, iters, **scores(clf, x, means), seconds=seconds,
                                      gradient_calls=counter.gradient_calls, predictions=counter.predictions,
                                      images=np.asarray(x, np.float64)))
    for start_kind in TUNED_STARTS:
        candidates = [s for s in sweep if s.start == start_kind]
        best = min(candidates, key=lambda s: (-s.own_mean, -s.classified, round(s.mse_own, 3), s.iterations))
        best.chosen = True
        rows.append(Row(name, f"MIFace tuned ({start_kind})", "ART", "white-box", best.classified,
                        best.own_mean, best.mse_own, best.mse_other, blank, best.predictions,
                        best.gradient_calls, best.seconds,
                        note=f"lr {best.learning_rate:g}, {best.iterations} iterations, threshold 1.0, "
                        f"batch {k}, from {start_kind}"))
        assert best.images is not None
        images[f"ART tuned, {start_kind}"] = best.images
    return rows, sweep, images


def save_png(path: str, panels: dict[str, dict[str, np.ndarray | None]], means: np.ndarray,
             shape: tuple[int, ...], class_names: tuple[str, ...], title: str) -> None:
    """One row of images per attack, targets one after the other, the class means on top; an attack
    without images (None) gets an empty row that says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines: list[tuple[str, np.ndarray | None]] = [("class means (scoring only)", means)]
    for target, images in panels.items():
        lines += [(f"{target}: {label}", imgs) for label, imgs in images.items()]
    k = len(means)
    width, height, margin = 1.0 * k + 2.1, 1.05 * len(lines) + 0.8, 2.1  # inches; margin for the labels
    fig, axes = plt.subplots(len(lines), k, figsize=(width, height), squeeze=False)
    fig.subplots_adjust(left=margin / width, right=0.99, top=1 - 0.7 / height, bottom=0.01, wspace=0.06,
                        hspace=0.18)
    for r, (label, imgs) in enumerate(lines):
        for c in range(k):
            ax = axes[r, c]
            if imgs is None:
                ax.axis("off")
                continue
            ax.imshow(np.asarray(imgs[c]).reshape(shape), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(class_names[c][:11], fontsize=7)
        if imgs is None:
            axes[r, 0].text(0.0, 0.5, label, ha="left", va="center", fontsize=8,
                            transform=axes[r, 0].transAxes)
        else:
            axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(title, fontsize=9, y=1 - 0.12 / height)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    art = None if args.skip_art else import_art()  # may import torch, before the thread limits below
    versions = common.versions(common.art_status(art["version"] if art else None, args.skip_art))
    limits = common.limit_threads(args.threads)
    targets_info: dict[str, dict[str, Any]] = {}
    rows: list[Row] = []
    sweep: list[SweepRow] = []
    panels: dict[str, dict[str, np.ndarray | None]] = {}
    with limits:
        np.random.seed(args.seed)
        data, pools = load_pools(args)
        X, y = pools["train"].X.astype(np.float64), pools["train"].y
        X_aux = pools["aux"].X.astype(np.float64)
        means = np.stack([X[y == c].mean(axis=0) for c in range(data.n_classes)])
        blank = float((means**2).mean())  # an all-zero image's MSE to the class means, averaged over classes
        aux_mean_mse = float(((means - X_aux.mean(axis=0)) ** 2).mean())  # the aux pool's mean image, same
        for name, clf in make_targets(args.seed).items():
            progress(f"train {name}")
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(X, y)
            targets_info[name] = {
                "train_seconds": time.perf_counter() - start,
                "train_accuracy": clf.score(X, y),
                "test_accuracy": clf.score(pools["test"].X, pools["test"].y) if "test" in pools else None,
            }
            ours, our_images = run_ours(name, clf, X_aux, means, blank, args)
            panels[name] = dict(our_images)
            rows += ours
            if art is not None:
                art_rows, art_sweep, art_images = run_art(name, clf, X_aux, means, blank, art,
                                                          data.class_names, args)
                plain = next(r.seconds for r in ours if r.attack == "MI-Face plain")
                for r in art_rows:
                    r.ratio = None if r.seconds is None or not plain else r.seconds / plain
                rows += art_rows
                sweep += art_sweep
                panels[name].update(art_images)
                if not art_images:
                    panels[name]["ART MIFace: " + art_rows[0].note] = None

    setup = {
        "dataset": data.name, "train": len(y), "aux": len(X_aux),
        "test": len(pools["test"].y) if "test" in pools else 0, "features": X.shape[1],
        "image_shape": list(data.image_shape), "classes": list(data.class_names), "seed": args.seed,
        "mse_blank": blank, "mse_aux_mean": aux_mean_mse, "art_max_iter": args.art_max_iter,
        "sweep_rates": args.sweep_rates, "sweep_iters": args.sweep_iters, "targets": targets_info,
        **common.machine(args.threads, load_start), "versions": versions,
    }
    print(report(setup, rows, sweep, art is not None, args.skip_art))
    if args.png:
        save_png(args.png, panels, means, data.image_shape, data.class_names,
                 f"MI-Face reconstructions, {data.name}: mlpentest and ART (same targets, same data)")
        progress(f"saved {args.png}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            sweep_dicts = [{k: v for k, v in asdict(s).items() if k != "images"} for s in sweep]
            json.dump({"setup": setup, "rows": [asdict(r) for r in rows], "sweep": sweep_dicts}, fh, indent=2)
    return 0


def report(
    setup: dict[str, Any], rows: list[Row], sweep: list[SweepRow], with_art: bool, skipped: bool
) -> str:
    s, v = setup, setup["versions"]
    out = [
        f"model inversion benchmark: {s['dataset']}, {s['train']} training / {s['aux']} auxiliary "
        f"(unlabelled) / {s['test']} test images, {s['features']} features in [0, 1]; all "
        f"{len(s['classes'])} classes inverted; seed {s['seed']}",
        f"references: a blank image has MSE {s['mse_blank']:.4f} to its class mean (mean over classes); the "
        f"auxiliary pool's mean image {s['mse_aux_mean']:.4f}",
        f"machine: {s['cpu_count']} CPUs ({s['machine']}), 1-min load average {s['load_average_start']:.1f} "
        f"at start, {s['load_average_end']:.1f} at end; threads per process: {s['threads']}",
        "versions: " + ", ".join(f"{k} {x}" for k, x in v.items()),
        "",
        "targets:",
    ]
    for name, t in s["targets"].items():
        test = "-" if t["test_accuracy"] is None else f"{t['test_accuracy']:.3f}"
        out.append(f"  {name:8s} train accuracy {t['train_accuracy']:.3f}, test accuracy {test}, trained in "
                   f"{t['train_seconds']:.2f} s")
    out += ["", format_table(rows), ""]
    notes = [
        "classified: reconstructions the target labels as their class; own mean: reconstructions whose "
        "nearest class mean (MSE) is their own; MSE own / other: mean over classes of the MSE to the own "
        "class mean / to the nearest other class mean; MSE blank: the same for an all-zero image. All "
        "computed here from the returned images, the same way for every row. A low 'MSE own' alone can "
        "mislead: the auxiliary pool's mean image, which knows nothing of any class, scores "
        f"{s['mse_aux_mean']:.4f}; what matters is own mean and the gap to 'MSE other'.",
        "queries: samples whose probabilities the attack asked for; grad calls: samples sent to a gradient "
        "method (ours: cross-entropy loss gradient; ART: class_gradient). wall s: the attack alone (ours: "
        "result.wall_seconds, including fitting the DAE); ART/ours: an ART row's wall time over ours "
        "white-box plain on the same target, from this one run.",
        "mlpentest: MIFace defaults: start from a blank image, 300 steps of L2 length 1 along the normalised "
        "gradient of the cross-entropy, clipped to [0, 1] (plain) or passed through the linear Process-DAE "
        "(noise 0.02) fitted to the auxiliary pool; stop a class after 100 steps without improvement; "
        "return each class's least-cost iterate. Black-box: the target's predict_proba behind "
        "mlpentest.models.wrap (no gradients, no logits), NES estimates with 5 antithetic pairs in the "
        "auxiliary pool's 20 leading principal directions.",
    ]
    if with_art:
        notes += [
            "ART: MIFace on SklearnClassifier(clf, clip_values=(0, 1)); y = class indices; x=None (ART "
            "then starts from zeros, like ours); verbose=False (no progress bar), nothing else changed in "
            "the defaults row. ART ascends its class_gradient (for LogisticRegression the gradient of log "
            "p_label, so the same direction as ours) with raw steps learning_rate * gradient, clips to "
            "[0, 1], and returns the last iterate. Its stopping rule is the paper's inverted: a class keeps "
            "going while cost = 1 - p_label <= threshold (or the cost got worse than the last "
            "window_length); with the defaults (threshold 0.99) every class whose probability passes 0.01 "
            "runs all max_iter iterations, and a class still under 0.01 after its first step stops there.",
            "ART tuned: every combination of starting image (zeros; grey 0.5; the mean image of the "
            "auxiliary pool, the same unlabelled data our Process-DAE uses), learning rate and iterations "
            "in the sweep table below, with threshold=1.0 (no class stops early) and batch_size = number "
            "of classes (speed only; the classes do not interact then). The tuned row per start is the "
            "sweep's best by own mean, then classified, then MSE own (to 3 decimals), then fewer "
            "iterations: picked with the class means, i.e. with knowledge no attacker has and that our rows "
            "(library defaults) did not get. window_length is moot with threshold 1.0. MLPClassifier: "
            "ART's SklearnClassifier has no class gradients for it (MIFace refuses the wrapper), hence "
            "'not supported'.",
        ]
        short = {"MI-Face + Process-DAE": "ours DAE", "MI-Face plain": "ours plain", "MIFace defaults":
                 "ART defaults", "MIFace tuned (zeros)": "ART tuned zeros", "MIFace tuned (aux mean)":
                 "ART tuned aux mean"}
        costs = [f"{r.target} {short.get(r.attack, r.attack)} {1e3 * r.seconds / r.gradient_calls:.3f}"
                 for r in rows if r.seconds and r.gradient_calls and r.mode == "white-box"]
        notes.append("wall time per gradient call (ms): " + "; ".join(costs) + ". ART/ours mostly reflects "
                     "how many iterations each takes (ours at most 300, ART's default 10000) and that ART's "
                     "default batch_size=1 inverts one class at a time.")
    else:
        notes.append("ART skipped (--skip-art)." if skipped
                     else "ART skipped: not installed (pip install 'mlpentest[bench]').")
    for note in notes:
        out += textwrap.wrap(note, 110, subsequent_indent="  ")
    if sweep:
        out += ["", "ART MIFace sweep (threshold 1.0, all classes in one batch), per iteration count: "
                "classified, own mean (of 10),", "MSE own / MSE other; * = the tuned row's settings:",
                format_sweep(sweep)]
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
