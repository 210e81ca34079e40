"""Membership inference: mlpentest's attacks beside IBM ART's, on one overfit MLP, strength and time.

Setup (everything seeded by ``--seed``):

* data: disjoint, class-stratified pools of one data set — ``members`` (the target's training set),
  ``nonmembers`` (as many records the target never saw), ``population`` and a ``shadow`` pool;
* target: an overfit scikit-learn ``MLPClassifier`` trained on the members;
* candidates: half of the members and half of the non-members are handed to ART's supervised black-box
  attack for training (as its documentation does); **every attack is evaluated on the other half**;
* reference models (LiRA, RMIA, threshold calibration): ``--references`` MLPs trained like the target on
  random halves of all candidate records (Carlini et al.'s scheme: each candidate is IN half of them);
* shadow models (Shokri's attack, ours and ART's): ``--shadows`` MLPs trained like the target on random
  halves of the shadow pool, which shares no record with the target's data.
* ``--targets mlp,lr,rf,gb`` (optional) adds a second table after the first: the same members, held-out
  candidates and population, but the target and its ``--references`` reference models are each of those
  types in turn (MLP, logistic regression, random forest, histogram gradient boosting; also ``svm``, a
  calibrated RBF SVC), attacked by the loss threshold (global and per class), online LiRA and online
  RMIA (the MLP rows reuse the first table's models).

Timings use one BLAS/OpenMP/torch thread per process (``--threads``): on a busy shared machine a
two-thread BLAS ran an MLP fit 15x slower than one thread. ``--n-jobs`` adds processes to our model
training; ART trains its shadow models one after another. Progress goes to stderr, the table to stdout.
Run ``python benchmarks/membership.py --help``; ``--json PATH`` saves the setup, costs and rows.
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
from dataclasses import asdict, dataclass
from typing import Any

import _common as common  # benchmarks/ is on sys.path when a script runs
import numpy as np
from _common import aligned
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC

from mlpentest import datasets
from mlpentest.attacks.membership import (
    RMIA,
    LiRA,
    MembershipResult,
    MembershipSignals,
    ReferenceModels,
    ShadowModelAttack,
    ThresholdAttack,
    collect_signals,
)
from mlpentest.training import fit_trainer

ART_MODEL_TYPES = ("nn", "rf", "gb", "lr", "dt", "knn", "svm")

# What each attack is allowed to know besides the target's outputs on the candidates and their labels.
KNOWLEDGE = {
    "R": "reference MLPs trained like the target on random halves of all candidates (each candidate is "
    "IN half of them), plus population records; no membership label of the target",
    "R-out": "as R, but only the reference models that did NOT train on the candidate are used",
    "R-thr": "only the target's output; the threshold (which AUC/TPR do not depend on) is calibrated on R",
    "S": "shadow MLPs trained like the target on random halves of a shadow pool disjoint from the "
    "target's data (Shokri et al.); no membership label of the target",
    "L": "the TRUE membership of the other half of the candidates (the target's members and non-members "
    "themselves), as in ART's MembershipInferenceBlackBox documentation",
}


def train_mlp(X: np.ndarray, y: np.ndarray, seed: int) -> MLPClassifier:
    """The target's recipe: a one-hidden-layer MLP, almost no weight decay, trained until it memorises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-6, max_iter=200, random_state=seed).fit(X, y)


def quietly(estimator: Any) -> Callable[[np.ndarray, np.ndarray, int], Any]:
    """``trainer(X, y, seed)`` fitting a clone of ``estimator``, its ConvergenceWarnings silenced (they would
    come from every worker process)."""
    def train(X: np.ndarray, y: np.ndarray, seed: int) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return fit_trainer(estimator, X, y, seed)

    return train


def target_recipes() -> dict[str, tuple[str, Callable[[np.ndarray, np.ndarray, int], Any]]]:
    """The target types of ``--targets``: a description and the ``trainer(X, y, seed)`` that trains the
    target and, identically, its reference models."""
    return {
        "mlp": ("MLP(64), alpha 1e-6, 200 epochs (the first table's target)", train_mlp),
        "lr": ("logistic regression, C=100", quietly(LogisticRegression(C=100.0, max_iter=500))),
        "rf": ("random forest, 100 trees", quietly(RandomForestClassifier(n_estimators=100))),
        "gb": ("histogram gradient boosting, 30 rounds, 32 bins",
               quietly(HistGradientBoostingClassifier(max_iter=30, max_bins=32))),
        "svm": ("RBF SVC (C=10) calibrated by 3-fold sigmoid",
                quietly(CalibratedClassifierCV(SVC(C=10.0), cv=3))),
    }


@dataclass
class Row:
    attack: str
    library: str
    knowledge: str
    auc: float
    balanced_accuracy: float
    tpr_at_1pct_fpr: float
    tpr_at_01pct_fpr: float
    attack_seconds: float
    models_seconds: float

    @property
    def total_seconds(self) -> float:
        return self.attack_seconds + self.models_seconds


_T0 = time.perf_counter()


def timed(label: str, fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and its wall time; progress goes to stderr so the table on stdout stays clean."""
    print(f"[{time.perf_counter() - _T0:6.0f} s] {label} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def row_from(result: MembershipResult, library: str, knowledge: str, seconds: float, models: float) -> Row:
    return Row(
        result.attack, library, knowledge, result.auc, result.balanced_accuracy, result.tpr_at_1pct_fpr,
        result.tpr_at_01pct_fpr, seconds, models,
    )


def format_table(rows: list[Row]) -> str:
    head = ("attack", "library", "knows", "AUC", "bal.acc", "TPR@1%FPR", "TPR@0.1%FPR", "attack s",
            "models s", "total s")
    lines = [
        (
            r.attack, r.library, r.knowledge, f"{r.auc:.3f}", f"{r.balanced_accuracy:.3f}",
            f"{r.tpr_at_1pct_fpr:.3f}", f"{r.tpr_at_01pct_fpr:.4f}", f"{r.attack_seconds:.1f}",
            f"{r.models_seconds:.1f}", f"{r.total_seconds:.1f}",
        )
        for r in rows
    ]
    return aligned(head, lines, left={0, 1, 2})


def import_art() -> tuple[Any, Any, Any, str] | None:
    """ART's pieces used here, or None when ART is not installed (the ``bench`` extra)."""
    try:
        import art
        from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
        from art.attacks.inference.membership_inference.shadow_models import ShadowModels
        from art.estimators.classification import SklearnClassifier
    except ImportError:
        return None
    return MembershipInferenceBlackBox, ShadowModels, SklearnClassifier, art.__version__


def seed_globals(seed: int) -> None:
    """ART's default attack models draw from the global numpy / torch generators; pin them."""
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - ART's "nn" attack model needs torch anyway
        return
    torch.manual_seed(seed)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "digits"])
    p.add_argument("--members", type=int, default=2500, help="target training set size (= non-members)")
    p.add_argument("--references", type=int, default=16, help="reference models for LiRA/RMIA (even)")
    p.add_argument("--shadows", type=int, default=10, help="shadow models of Shokri's attack (ours, ART's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-jobs", type=int, default=1,
                   help="processes for our model training and SVM grid search (ART has no such option)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP/torch threads per process (1: stable timings on a shared machine; "
                   "0: the libraries' own choice)")
    p.add_argument("--art-models", default="nn,rf,gb",
                   help=f"comma-separated ART attack_model_type values, from {','.join(ART_MODEL_TYPES)}")
    p.add_argument("--skip-art", action="store_true", help="run only mlpentest's attacks")
    p.add_argument("--targets", default="",
                   help="comma-separated target types for a second table (loss threshold, LiRA, RMIA per "
                   f"target type), from {','.join(target_recipes())}; default: none")
    p.add_argument("--json", metavar="PATH", help="also save the setup, costs and rows as JSON")
    args = p.parse_args(argv)
    if args.members < 20:
        p.error("--members must be at least 20")
    if args.references < 2 or args.references % 2:
        p.error("--references must be an even number >= 2 (each candidate is IN exactly half of them)")
    if args.shadows < 1 or args.threads < 0:
        p.error("--shadows must be >= 1 and --threads >= 0")
    args.art_models = [m.strip() for m in args.art_models.split(",") if m.strip()]
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = sorted(set(args.targets) - set(target_recipes()))
    if unknown:
        p.error(f"--targets: unknown type(s) {unknown}; choose from {tuple(target_recipes())}")
    bad = sorted(set(args.art_models) - set(ART_MODEL_TYPES))
    if bad:
        p.error(f"--art-models: unknown type(s) {bad}; choose from {ART_MODEL_TYPES}")
    return args


@dataclass
class Setup:
    """The target, its data and the held-out candidates every attack is scored on."""

    dataset: str
    target: MLPClassifier
    target_seconds: float
    members: datasets.Dataset
    nonmembers: datasets.Dataset
    population: datasets.Dataset
    shadow: datasets.Dataset
    members_fit: np.ndarray  # rows of members / nonmembers shown to ART's supervised attack
    nonmembers_fit: np.ndarray
    X_eval: np.ndarray
    y_eval: np.ndarray
    is_member: np.ndarray


def make_setup(args: argparse.Namespace) -> Setup:
    n, seed = args.members, args.seed
    data = datasets.load(args.dataset, download=False)
    rest = data.n_samples - 2 * n
    if rest < 40:
        sys.exit(f"{args.dataset} has {data.n_samples} records, too few for --members {n}: need {2 * n + 40}")
    n_pop = min(2 * n, rest // 2)
    pools = data.split(
        {"members": n, "nonmembers": n, "population": n_pop, "shadow": min(2 * n, rest - n_pop)},
        random_state=seed,
    )
    mem, non = pools["members"], pools["nonmembers"]
    target, target_s = timed("target", lambda: train_mlp(mem.X, mem.y, seed))
    # ART's supervised attack learns from half of the members and non-members; all attacks are scored on
    # the other half, so no attack is evaluated on a record whose membership it was shown.
    rng = np.random.RandomState(seed)
    mem_order, non_order = rng.permutation(n), rng.permutation(n)
    mem_eval, non_eval = mem_order[n // 2:], non_order[n // 2:]
    return Setup(
        dataset=data.name, target=target, target_seconds=target_s, members=mem, nonmembers=non,
        population=pools["population"], shadow=pools["shadow"],
        members_fit=mem_order[: n // 2], nonmembers_fit=non_order[: n // 2],
        X_eval=np.vstack([mem.X[mem_eval], non.X[non_eval]]),
        y_eval=np.r_[mem.y[mem_eval], non.y[non_eval]],
        is_member=np.r_[np.ones(len(mem_eval), bool), np.zeros(len(non_eval), bool)],
    )


def run_ours(
    args: argparse.Namespace, s: Setup
) -> tuple[list[Row], dict[str, tuple[str, float]], MembershipSignals]:
    """Reference and shadow models, one round of queries each, then every mlpentest membership attack.

    Also returns the reference signals (the ``--targets`` table reuses them for its MLP row)."""
    seed, n = args.seed, len(s.members.y)
    mem, non, pop, shadow = s.members, s.nonmembers, s.population, s.shadow
    X_cand, y_cand = np.vstack([mem.X, non.X]), np.r_[mem.y, non.y]
    refs, refs_s = timed("reference models", lambda: ReferenceModels(
        train_mlp, n_models=args.references, random_state=seed, n_jobs=args.n_jobs
    ).fit(X_cand, y_cand))
    shadow_size = len(shadow.y) // 2
    shadows, shadows_s = timed("shadow models", lambda: ReferenceModels(
        train_mlp, n_models=args.shadows, train_size=shadow_size, random_state=seed + 1, n_jobs=args.n_jobs
    ).fit(shadow.X, shadow.y))
    signals, signals_s = timed("reference signals", lambda: collect_signals(
        s.target, s.X_eval, s.y_eval, is_member=s.is_member, references=refs, population=(pop.X, pop.y)
    ))
    shadow_signals, shadow_signals_s = timed("shadow signals", lambda: collect_signals(
        s.target, s.X_eval, s.y_eval, is_member=s.is_member, references=shadows
    ))
    costs = {
        "target": (f"1 MLP on {n} members", s.target_seconds),
        "reference models": (f"{args.references} MLPs on {n} records each", refs_s),
        "reference signals": (
            f"target + references queried on {len(s.y_eval)} candidates and {len(pop.y)} population records",
            signals_s,
        ),
        "shadow models (ours)": (f"{args.shadows} MLPs on {shadow_size} records each", shadows_s),
        "shadow signals (ours)": (
            f"target + shadows queried on candidates and {len(shadow.y)} shadow records", shadow_signals_s
        ),
    }
    ref_cost, shadow_cost = refs_s + signals_s, shadows_s + shadow_signals_s
    attacks: list[tuple[Any, Any, str, float]] = [
        (ShadowModelAttack(n_jobs=args.n_jobs, random_state=seed), shadow_signals, "S", shadow_cost),
        (ShadowModelAttack(per_class=False, max_train_per_class=2000, n_jobs=args.n_jobs, random_state=seed),
         shadow_signals, "S", shadow_cost),
        (ThresholdAttack(metric="loss", class_dependent=False), signals, "R-thr", ref_cost),
        (ThresholdAttack(metric="loss"), signals, "R", ref_cost),
        (ThresholdAttack(metric="modified_entropy"), signals, "R", ref_cost),
        (LiRA(), signals, "R", ref_cost),
        (LiRA(online=False), signals, "R-out", ref_cost),
        (RMIA(), signals, "R", ref_cost),
        (RMIA(online=False), signals, "R-out", ref_cost),
    ]
    rows = []
    for attack, sig, knowledge, models_s in attacks:
        result, seconds = timed(type(attack).__name__, lambda attack=attack, sig=sig: attack.run(sig))
        rows.append(row_from(result, "mlpentest", knowledge, seconds, models_s))
    return rows, costs, signals


def run_art(
    args: argparse.Namespace, s: Setup, art: tuple[Any, Any, Any, str]
) -> tuple[list[Row], dict[str, tuple[str, float]]]:
    """ART's black-box attack (supervised, on half the candidates) and its shadow-model pipeline."""
    BlackBox, ShadowModels, SklearnClassifier, _ = art
    seed = args.seed
    art_target = SklearnClassifier(model=s.target)
    mem, non = s.members, s.nonmembers

    def score(attack: Any) -> np.ndarray:
        # infer(probabilities=True) gives the attack model's member probability: our ROC score. ART's own
        # decision (probabilities=False) is that probability rounded, i.e. member iff > 0.5.
        return np.asarray(attack.infer(s.X_eval, s.y_eval, probabilities=True), dtype=np.float64).ravel()

    def row(name: str, scores: np.ndarray, knowledge: str, seconds: float, models_s: float) -> Row:
        result = MembershipResult.from_scores(scores, s.is_member, scores > 0.5, s.y_eval, attack=name)
        return row_from(result, "ART", knowledge, seconds, models_s)

    rows = []
    for kind in args.art_models:
        def black_box(kind: str = kind) -> np.ndarray:
            seed_globals(seed)
            attack = BlackBox(art_target, attack_model_type=kind)
            attack.fit(mem.X[s.members_fit], mem.y[s.members_fit], non.X[s.nonmembers_fit],
                       non.y[s.nonmembers_fit])
            return score(attack)

        name = f"ART black box ({kind})"
        scores, seconds = timed(name, black_box)
        rows.append(row(name, scores, "L", seconds, 0.0))

    def make_shadow_dataset() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            shadows = ShadowModels(art_target, num_shadow_models=args.shadows, random_state=seed)
            # ScikitlearnClassifier.fit wants one-hot labels; member_ratio 0.5 matches our shadow models.
            onehot = np.eye(art_target.nb_classes)[s.shadow.y]
            return shadows.generate_shadow_dataset(s.shadow.X, onehot, member_ratio=0.5)

    shadow_data, shadow_s = timed("ART shadow models", make_shadow_dataset)
    (in_x, in_y, in_pred), (out_x, out_y, out_pred) = shadow_data
    costs = {"shadow models (ART)": (
        f"{args.shadows} MLPs on {len(in_x) // args.shadows} records each, trained one after another; "
        f"attack training set {len(in_x) + len(out_x)} rows", shadow_s,
    )}
    for kind in args.art_models:
        def shadow_attack(kind: str = kind) -> np.ndarray:
            seed_globals(seed)
            attack = BlackBox(art_target, attack_model_type=kind)
            attack.fit(in_x, in_y, out_x, out_y, pred=in_pred, test_pred=out_pred)
            return score(attack)

        name = f"ART shadow models ({kind})"
        scores, seconds = timed(name, shadow_attack)
        rows.append(row(name, scores, "S", seconds, shadow_s))
    return rows, costs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    art = None if args.skip_art else import_art()  # imports torch too, before the thread limits below
    versions = common.versions(common.art_status(art[3] if art else None, args.skip_art))
    if art is not None:
        import torch  # ART's inference attacks load it

        versions["torch"] = torch.__version__
    limits = common.limit_threads(args.threads)
    with limits:
        seed_globals(args.seed)
        s = make_setup(args)
        rows, costs, mlp_signals = run_ours(args, s)
        if art is not None:
            art_rows, art_costs = run_art(args, s, art)
            rows += art_rows
            costs.update(art_costs)
        sweep = run_target_sweep(
            args, s, mlp_signals, costs["reference models"][1] + costs["reference signals"][1]
        )

    n_members = len(s.members.y)
    setup = {
        "dataset": s.dataset, "members": n_members, "nonmembers": len(s.nonmembers.y),
        "population": len(s.population.y), "shadow_pool": len(s.shadow.y),
        "art_attack_train": len(s.members_fit) + len(s.nonmembers_fit),
        "evaluated_candidates": len(s.y_eval), "evaluated_members": int(s.is_member.sum()),
        "target_train_accuracy": s.target.score(s.members.X, s.members.y),
        "target_test_accuracy": s.target.score(s.nonmembers.X, s.nonmembers.y),
        "references": args.references, "shadows": args.shadows, "seed": args.seed, "n_jobs": args.n_jobs,
        **common.machine(args.threads, load_start), "versions": versions,
    }
    print(report(setup, costs, rows, art is not None))
    if sweep:
        print("\n" + sweep_report(setup, sweep))
    if args.json:
        doc = {
            "setup": setup,
            "costs_seconds": {k: {"what": what, "seconds": sec} for k, (what, sec) in costs.items()},
            "knowledge": KNOWLEDGE,
            "rows": [asdict(r) | {"total_seconds": r.total_seconds} for r in rows],
        }
        if sweep:
            doc["target_sweep"] = [asdict(r) for r in sweep]
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
    return 0


def report(
    setup: dict[str, Any], costs: dict[str, tuple[str, float]], rows: list[Row], with_art: bool
) -> str:
    s, v = setup, setup["versions"]
    n_out = s["evaluated_candidates"] - s["evaluated_members"]
    out = [
        f"membership inference benchmark: {s['dataset']}, {s['members']} members, {s['nonmembers']} "
        f"non-members, {s['population']} population, {s['shadow_pool']} shadow pool",
        f"target MLP(64): train accuracy {s['target_train_accuracy']:.3f}, test accuracy "
        f"{s['target_test_accuracy']:.3f} (on the non-members)",
        f"evaluated on {s['evaluated_candidates']} held-out candidates ({s['evaluated_members']} members); "
        f"{s['references']} reference / {s['shadows']} shadow models; seed {s['seed']}, n_jobs {s['n_jobs']}",
        f"machine: {s['cpu_count']} CPUs ({s['machine']}), 1-min load average {s['load_average_start']:.1f} "
        f"at start, {s['load_average_end']:.1f} at end; threads per process: {s['threads']}",
        "versions: " + ", ".join(f"{k} {x}" for k, x in v.items()),
        "",
        "one-off costs (seconds):",
    ]
    width = max(len(k) for k in costs)
    out += [f"  {k.ljust(width)}  {sec:7.1f}  {what}" for k, (what, sec) in costs.items()]
    out += ["", format_table(rows), "", "knows: what an attack uses besides the target's outputs on the "
            "candidates and their labels"]
    for key in dict.fromkeys(r.knowledge for r in rows):
        out += textwrap.wrap(KNOWLEDGE[key], 108, initial_indent=f"  {key:6s}", subsequent_indent=" " * 8)
    notes = [
        "attack s: the attack alone (ART: fit + infer, with its queries to the target). models s: the "
        "one-off training and querying of the models it needs, counted in full for every row that needs "
        "them. Wall times depend on what else runs on the machine (see the load average).",
        f"TPR@0.1%FPR: {n_out} evaluated non-members allow {int(0.001 * n_out + 1e-9)} false positive(s); "
        "tied scores are never split, so ties near the top cost TPR.",
    ]
    if with_art:
        notes += [
            "ART rows: AUC and TPR are computed (by the same code as ours) from infer(..., probabilities="
            "True), the attack model's member probability; bal.acc from ART's own decision (probability "
            "> 0.5). ART's black box trained on the other "
            f"{s['art_attack_train']} candidates with their true membership. ART's shadow models are "
            "sklearn clones of the target (same random_state, different data), trained one after another; "
            "its attack model learns from every shadow record, ours from at most 1000 per class (SVM, "
            "C and gamma by 5-fold CV; 2000 for the single model).",
        ]
    else:
        notes.append(
            "ART skipped (--skip-art)." if v["art"].startswith("skipped")
            else "ART skipped: not installed (pip install 'mlpentest[bench]')."
        )
    for note in notes:
        out += textwrap.wrap(note, 110, subsequent_indent="  ")
    return "\n".join(out)



# ---------------------------------------------------------------------------- target-type sweep (--targets)
SWEEP_ATTACKS = (
    ("loss threshold", lambda: ThresholdAttack(metric="loss", class_dependent=False)),
    ("loss threshold (per class)", lambda: ThresholdAttack(metric="loss")),
    ("LiRA online", lambda: LiRA()),
    ("RMIA online", lambda: RMIA()),
)


@dataclass
class SweepRow:
    target: str
    train_accuracy: float
    test_accuracy: float
    attack: str
    auc: float
    tpr_at_1pct_fpr: float
    tpr_at_01pct_fpr: float
    models_seconds: float


def run_target_sweep(
    args: argparse.Namespace, s: Setup, mlp_signals: MembershipSignals, mlp_seconds: float
) -> list[SweepRow]:
    """For each ``--targets`` type: a target on the members, reference models of the same type on random
    halves of all candidates, the held-out candidates' signals (with the population), four attacks."""
    seed, mem, non, pop = args.seed, s.members, s.nonmembers, s.population
    X_cand, y_cand = np.vstack([mem.X, non.X]), np.r_[mem.y, non.y]
    recipes = target_recipes()
    rows = []
    for kind in args.targets:
        _, recipe = recipes[kind]
        if kind == "mlp":
            target, signals, models_s = s.target, mlp_signals, mlp_seconds
        else:
            def build(recipe: Any = recipe) -> tuple[Any, MembershipSignals]:
                target = recipe(mem.X, mem.y, seed)
                refs = ReferenceModels(
                    recipe, n_models=args.references, random_state=seed, n_jobs=args.n_jobs
                ).fit(X_cand, y_cand)
                return target, collect_signals(
                    target, s.X_eval, s.y_eval, is_member=s.is_member, references=refs,
                    population=(pop.X, pop.y),
                )

            (target, signals), models_s = timed(f"{kind}: target, {args.references} reference models", build)
        train_acc, test_acc = target.score(mem.X, mem.y), target.score(non.X, non.y)
        for name, make in SWEEP_ATTACKS:
            result = make().run(signals)
            rows.append(SweepRow(
                kind, train_acc, test_acc, name, result.auc, result.tpr_at_1pct_fpr, result.tpr_at_01pct_fpr,
                models_s,
            ))
    return rows


def sweep_report(setup: dict[str, Any], rows: list[SweepRow]) -> str:
    recipes = target_recipes()
    head = ("target", "train acc", "test acc", "attack", "AUC", "TPR@1%FPR", "TPR@0.1%FPR", "models s")
    lines = [
        (
            r.target, f"{r.train_accuracy:.3f}", f"{r.test_accuracy:.3f}", r.attack, f"{r.auc:.3f}",
            f"{r.tpr_at_1pct_fpr:.3f}", f"{r.tpr_at_01pct_fpr:.4f}", f"{r.models_seconds:.1f}",
        )
        for r in rows
    ]
    out = textwrap.wrap(
        f"target types (--targets): {setup['dataset']}, the same {setup['members']} members, held-out "
        f"candidates ({setup['evaluated_candidates']}, {setup['evaluated_members']} members) and population; "
        f"{setup['references']} reference models of the target's type on random halves of all candidates",
        110, subsequent_indent="  ",
    )
    out += [aligned(head, lines, left={0, 3}), ""]
    out += [f"  {kind:4s} {recipes[kind][0]}" for kind in dict.fromkeys(r.target for r in rows)]
    note = ("models s: training the target and its reference models and querying them (mlp: the first "
            "table's reference models and signals, reused).")
    out += textwrap.wrap(note, 110, subsequent_indent="  ")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
