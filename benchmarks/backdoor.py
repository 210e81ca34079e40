"""Backdoors: mlpentest's BadNets and detectors beside IBM ART's, on the same Fashion-MNIST data and CNN.

Setup (everything seeded by ``--seed``):

* data: disjoint, class-stratified pools of Fashion-MNIST (``--train`` training images, ``--test`` held-out
  test images); the digits (8x8, 2x2 patch) with ``--dataset digits``.
* poison: ``--fraction`` of the training rows, drawn once among the rows whose class is not the target
  (class 0), relabelled to the target. Ours: ``BadNets`` (3x3 checkerboard patch, bottom-right corner).
  ART: ``PoisoningAttackBackdoor(add_pattern_bd)`` (its 4-pixel pattern 2 pixels from the bottom-right
  corner, pixel value 1) applied to the same rows.
* model: the gu2017 reproduction's CNN (``mlpentest.experiments.backdoor_zoo.small_cnn``: two conv+pool
  blocks, a 64-unit hidden layer), Adam 1e-3 with cosine decay, batch 64, ``--epochs`` epochs, the same
  recipe for every model; clean accuracy on the test set, ASR on triggered test images of other classes.
* detectors, on a training set with ``--detect-fraction`` (default 2%, about 17% of the target class)
  of its rows poisoned by our BadNets and the CNN trained on it: ours (``SpectralSignatures`` with
  ``expected_fraction=--epsilon``, ``ActivationClustering`` with its defaults) and ART's
  (``SpectralSignatureDefense`` with ``expected_pp_poison=--epsilon``, ``ActivationDefence`` with 2
  clusters, PCA to 10 dimensions, size analysis) on the same penultimate-layer activations: ART reads the
  activations of the last module of a ``PyTorchClassifier``, so it gets the network up to the hidden
  ReLU. Precision / recall / FPR of the flagged rows against the poisoned ones; the model retrained on
  the rows kept, its clean accuracy and ASR.

Wall times: poisoning and detection alone (training is shared and reported apart); "ratio" is ART's time
over ours from one run. Progress goes to stderr, the tables to stdout; ``--json PATH`` saves setup and rows.
"""

from __future__ import annotations

import argparse
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

from mlpentest import datasets
from mlpentest.attacks.poisoning.backdoor import BadNets
from mlpentest.defenses import ActivationClustering, SpectralSignatures
from mlpentest.experiments.backdoor_zoo import small_cnn, train_torch

QUICK = {"train": 4000, "test": 1000, "epochs": 6}
TARGET = 0


@dataclass
class Row:
    section: str
    library: str
    method: str
    flagged: int | None
    precision: float | None
    recall: float | None
    fpr: float | None
    clean_accuracy: float | None
    asr: float | None
    seconds: float | None
    ratio: float | None = None  # ART's time over ours, same task
    note: str = ""


_T0 = time.perf_counter()


def progress(label: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.0f} s] {label} ...", file=sys.stderr, flush=True)


def import_art() -> dict[str, Any] | None:
    try:
        import art
        from art.attacks.poisoning import PoisoningAttackBackdoor
        from art.attacks.poisoning.perturbations import add_pattern_bd
        from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense
        from art.estimators.classification import PyTorchClassifier
    except ImportError:
        return None
    return {"version": art.__version__, "backdoor": PoisoningAttackBackdoor, "pattern": add_pattern_bd,
            "ss": SpectralSignatureDefense, "ac": ActivationDefence, "classifier": PyTorchClassifier}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "digits"])
    p.add_argument("--train", type=int, default=10000, help="training images (default 10000)")
    p.add_argument("--test", type=int, default=2000, help="held-out test images (default 2000)")
    p.add_argument("--epochs", type=int, default=8, help="CNN training epochs (default 8)")
    p.add_argument("--fraction", type=float, default=0.05, help="poisoned share of the training rows")
    p.add_argument("--detect-fraction", type=float, default=0.02,
                   help="poisoned share of the detectors' training set (default 0.02)")
    p.add_argument("--epsilon", type=float, default=0.1,
                   help="Spectral Signatures' bound on a class's poisoned share, both libraries")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK['train']} training / {QUICK['test']} test images, {QUICK['epochs']} epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="BLAS/torch threads per process (default 1)")
    p.add_argument("--skip-art", action="store_true", help="run only mlpentest")
    p.add_argument("--json", metavar="PATH", help="also save the setup and rows as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.train, args.test, args.epochs = QUICK["train"], QUICK["test"], QUICK["epochs"]
    return args


# ---------------------------------------------------------------------- models
def train(X: np.ndarray, y: np.ndarray, shape: tuple[int, ...], epochs: int, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    return train_torch(small_cnn(shape, 10), X, y, epochs=epochs, schedule="cosine", seed=seed)


def predict(net: Any, X: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.concatenate([net(torch.as_tensor(X[i:i + 1024], dtype=torch.float32)).argmax(1).numpy()
                               for i in range(0, len(X), 1024)])


def scores(net: Any, X_test: np.ndarray, y_test: np.ndarray, trigger: Any) -> tuple[float, float]:
    """Clean accuracy, and ASR on triggered test images whose class is not the target."""
    others = y_test != TARGET
    clean = float(np.mean(predict(net, X_test) == y_test))
    asr = float(np.mean(predict(net, trigger(X_test[others])) == TARGET))
    return clean, asr


def body(net: Any, shape: tuple[int, ...]) -> Any:
    """The network up to its hidden ReLU as an ``nn.Sequential`` (ART hooks the last module's output)."""
    from torch import nn

    height, width = shape[:2]
    return nn.Sequential(nn.Unflatten(1, (1, height, width)), net.features, *list(net.head)[:-1]).eval()


def detection(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = int(np.sum(flagged & truth))
    precision = tp / max(1, int(flagged.sum()))
    return precision, tp / max(1, int(truth.sum())), float(np.sum(flagged & ~truth) / max(1, np.sum(~truth)))


# ---------------------------------------------------------------------- the sections
def run_attacks(X, y, X_test, y_test, shape, args, art, rows) -> None:
    """Both libraries poison the same rows; the same CNN recipe trains on each poisoned set."""
    progress("clean model")
    t0 = time.perf_counter()
    clean_net = train(X, y, shape, args.epochs, args.seed)
    train_s = time.perf_counter() - t0
    ours = BadNets(target_class=TARGET, fraction=args.fraction, image_shape=shape,
                   patch_size=3 if shape[0] >= 16 else 2, random_state=args.seed)
    t0 = time.perf_counter()
    result = ours.run(X, y)
    our_s = time.perf_counter() - t0
    c, a = scores(clean_net, X_test, y_test, result.apply_trigger)
    rows.append(Row("attack", "-", "clean model", 0, None, None, None, c, a, train_s,
                    note="ASR: our trigger on a clean model; seconds: training"))
    progress("our BadNets model")
    net = train(result.X_poisoned, result.y_poisoned, shape, args.epochs, args.seed)
    c, a = scores(net, X_test, y_test, result.apply_trigger)
    rows.append(Row("attack", "mlpentest", "BadNets 3x3 patch", result.n_poison, None, None, None, c, a,
                    our_s))
    if art is not None:
        progress("ART's backdoor model")
        rows_idx = result.poison_indices

        def art_trigger(Z: np.ndarray) -> np.ndarray:
            img = art["pattern"](Z.reshape(-1, *shape[:2]).copy(), distance=2, pixel_value=1.0)
            return img.reshape(len(Z), -1).astype(np.float32)

        attack = art["backdoor"](art_trigger)
        t0 = time.perf_counter()
        Xp, yp = attack.poison(X[rows_idx], y=np.full(len(rows_idx), TARGET), broadcast=False)
        art_s = time.perf_counter() - t0
        X_art, y_art = X.copy(), y.copy()
        X_art[rows_idx], y_art[rows_idx] = Xp, yp
        art_net = train(X_art, y_art, shape, args.epochs, args.seed)
        c, a = scores(art_net, X_test, y_test, art_trigger)
        rows.append(Row("attack", "ART", "PoisoningAttackBackdoor (add_pattern_bd)", len(rows_idx), None,
                        None, None, c, a, art_s, art_s / max(our_s, 1e-9), "same rows"))


def run_defences(X, y, X_test, y_test, shape, args, art, rows) -> None:
    """Detectors of both libraries on our poisoned set; the CNN retrained on the rows each one keeps."""
    result = BadNets(target_class=TARGET, fraction=args.detect_fraction, image_shape=shape,
                     patch_size=3 if shape[0] >= 16 else 2, random_state=args.seed).run(X, y)
    progress(f"the detectors' model ({args.detect_fraction:.0%} poisoned)")
    net = train(result.X_poisoned, result.y_poisoned, shape, args.epochs, args.seed)
    c, a = scores(net, X_test, y_test, result.apply_trigger)
    rows.append(Row("defence", "-", "no defence", 0, None, None, None, c, a, None,
                    note=f"{args.detect_fraction:.0%} poisoned ({result.n_poison} rows)"))
    truth = result.poison_mask
    X, y = result.X_poisoned, result.y_poisoned
    ours = {"Spectral Signatures": SpectralSignatures(expected_fraction=args.epsilon),
            "Activation Clustering": ActivationClustering(random_state=args.seed),
            # Chen et al.'s exclusionary reclassification instead of the size rule (the same clusters)
            "Activation Clustering (exclusionary)": ActivationClustering(method="exclusionary",
                                                                         random_state=args.seed)}
    times: dict[str, float] = {}
    found: dict[tuple[str, str], np.ndarray] = {}
    for name, detector in ours.items():
        progress(f"ours: {name}")
        t0 = time.perf_counter()
        det = detector.run(net, X, y, poison_mask=truth)
        times[name] = time.perf_counter() - t0
        found[("mlpentest", name)] = np.asarray(det.suspicious_mask, dtype=bool)
    if art is not None:
        import torch

        # nb_classes is the labels' (both detectors split the rows by label); the outputs are activations
        clf = art["classifier"](model=body(net, shape), loss=torch.nn.CrossEntropyLoss(),
                                input_shape=(X.shape[1],), nb_classes=10, clip_values=(0.0, 1.0))
        onehot = np.eye(10)[y]
        progress("ART: SpectralSignatureDefense")
        t0 = time.perf_counter()
        _, clean_list = art["ss"](clf, X, onehot, expected_pp_poison=args.epsilon).detect_poison()
        found[("ART", "Spectral Signatures")] = np.asarray(clean_list) == 0
        times["ART Spectral Signatures"] = time.perf_counter() - t0
        progress("ART: ActivationDefence")
        t0 = time.perf_counter()
        _, clean_list = art["ac"](clf, X, onehot).detect_poison(nb_clusters=2, nb_dims=10, reduce="PCA")
        found[("ART", "Activation Clustering")] = np.asarray(clean_list) == 0
        times["ART Activation Clustering"] = time.perf_counter() - t0
    for (library, name), flagged in found.items():
        progress(f"retraining without {library}'s {name} rows")
        kept = ~flagged
        retrained = train(X[kept], y[kept], shape, args.epochs, args.seed)
        c, a = scores(retrained, X_test, y_test, result.apply_trigger)
        p, r, f = detection(flagged, truth)
        seconds = times[name if library == "mlpentest" else f"ART {name}"]
        ratio = seconds / times[name] if library == "ART" else None
        rows.append(Row("defence", library, name, int(flagged.sum()), p, r, f, c, a, seconds, ratio,
                        "removed + retrained"))


def format_table(rows: list[Row]) -> str:
    head = ("section", "library", "method", "flagged", "precision", "recall", "FPR", "clean acc", "ASR",
            "wall s", "ratio", "note")
    body_rows = [(r.section, r.library, r.method, cell(r.flagged, "d"), cell(r.precision, ".3f"),
                  cell(r.recall, ".3f"), cell(r.fpr, ".3f"), cell(r.clean_accuracy, ".3f"),
                  cell(r.asr, ".3f"),
                  cell(r.seconds, ".2f"), cell(r.ratio, ".2f"), r.note) for r in rows]
    return aligned(head, body_rows, left={0, 1, 2, 11})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    art = None if args.skip_art else import_art()
    versions = common.versions(common.art_status(art["version"] if art else None, args.skip_art))
    import torch

    limits = common.limit_threads(args.threads)
    rows: list[Row] = []
    with limits, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        data = datasets.load(args.dataset, download=False)
        pools = data.split({"train": args.train, "test": args.test}, random_state=args.seed)
        X, y = pools["train"].X, pools["train"].y
        X_test, y_test = pools["test"].X, pools["test"].y
        shape = tuple(data.image_shape)
        run_attacks(X, y, X_test, y_test, shape, args, art, rows)
        run_defences(X, y, X_test, y_test, shape, args, art, rows)
    setup = {"dataset": data.name, "train": len(y), "test": len(y_test), "epochs": args.epochs,
             "fraction": args.fraction, "detect_fraction": args.detect_fraction, "epsilon": args.epsilon,
             "seed": args.seed, "torch": torch.__version__,
             **common.machine(args.threads, load_start), "versions": versions}
    print(report(setup, rows, art is not None, args.skip_art))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"setup": setup, "rows": [asdict(r) for r in rows]}, fh, indent=2)
    return 0


def report(setup: dict[str, Any], rows: list[Row], with_art: bool, skipped: bool) -> str:
    s, v = setup, setup["versions"]
    out = [
        f"backdoor benchmark: {s['dataset']}, {s['train']} training / {s['test']} test images, "
        f"{s['fraction']:.0%} poisoned (detectors: {s['detect_fraction']:.0%}; spectral epsilon "
        f"{s['epsilon']:g}), target class {TARGET}, CNN {s['epochs']} epochs; seed {s['seed']}",
        f"machine: {s['cpu_count']} CPUs ({s['machine']}), 1-min load average {s['load_average_start']:.1f} "
        f"at start, {s['load_average_end']:.1f} at end; threads per process: {s['threads']}",
        "versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + f", torch {s['torch']}",
        "",
        format_table(rows),
        "",
    ]
    notes = [
        "attack rows: clean accuracy and ASR (triggered test images of other classes sent to the target) of "
        "the CNN trained on each poisoned set, each library's own trigger; wall s: poisoning alone (the "
        "clean row: one training run). defence rows: detectors on our poisoned set and its backdoored CNN; "
        "precision / recall / FPR of the flagged rows; clean acc / ASR of the CNN retrained on the rest; "
        "wall s: detection alone; ratio: ART's time over ours."
    ]
    if not with_art:
        notes.append("ART skipped (--skip-art)." if skipped
                     else "ART skipped: not installed (pip install 'mlpentest[bench]').")
    for note in notes:
        out += textwrap.wrap(note, 110, subsequent_indent="  ")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
