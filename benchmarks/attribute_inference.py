"""Attribute inference: mlpentest's AttributeInference beside IBM ART's attribute-inference attacks.

Setup (everything seeded by ``--seed``):

* data (both ship offline): scikit-learn's diabetes data, sensitive attribute ``sex`` (1/2), labels the
  disease progression in tertiles; and, with statsmodels installed, Fair's affairs survey, sensitive
  attribute religiousness (1-4), label any affair. Each is split into disjoint pools: ``members`` (the
  target's training set), ``nonmembers`` and the attacker's ``population`` records;
* targets, trained on the members: an MLP (64 hidden units, alpha 1e-6: it memorises), the same MLP
  with alpha 10 (strongly regularised), a fully grown decision tree; for the regression variant an MLP
  regressor and a decision-tree regressor on the raw target (diabetes progression, time in affairs);
* every attack infers the attribute of every member and non-member from the other features; what else
  it knows is in the ``knows`` column: ``y`` the record's true label (or target), ``out`` the model's
  answer on the record itself, ``wb`` the tree's structure and leaf counts, ``-`` nothing about the
  record beyond its other features. All know the attacker's population records (values, priors, and
  the training data of ART's attack models).

Accuracy is computed here, in the same way for every row, from the returned guesses. ``queries`` counts
the records sent to the target's prediction method by the attack, ``+n`` the record owners' own queries
whose answers an attack observed. Timings use one BLAS/OpenMP/torch thread (``--threads``); ``x ours``
is a row's wall time over that of mlpentest's "proba" row on the same target, from one run. Progress goes
to stderr, the table to stdout. ``--json PATH`` saves the setup and rows.
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
from _common import aligned, cell
from sklearn.compose import TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlpentest.attacks.inversion import AttributeInference
from mlpentest.attacks.inversion.attribute_data import AttributeData, load_attribute_data
from mlpentest.models import wrap

SIZES = {"diabetes": (150, 150, 142), "fair": (200, 200, 1000)}


@dataclass
class Row:
    data: str
    target: str
    attack: str
    library: str
    knows: str
    members: float | None
    nonmembers: float | None
    queries: int | None
    observed: int | None
    seconds: float | None
    ratio: float | None = None
    note: str = ""


_T0 = time.perf_counter()


def progress(label: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.0f} s] {label} ...", file=sys.stderr, flush=True)


def make_targets(seed: int) -> dict[str, tuple[Any, bool]]:
    """The victims (unfitted) and whether each is a regressor."""
    def mlp(alpha: float, regressor: bool = False) -> Any:
        net = (MLPRegressor if regressor else MLPClassifier)(
            hidden_layer_sizes=(64,), alpha=alpha, max_iter=3000, random_state=seed
        )
        model = make_pipeline(StandardScaler(), net)  # a regressor's target is standardised too
        return TransformedTargetRegressor(model, transformer=StandardScaler()) if regressor else model

    return {
        "MLP": (mlp(1e-6), False), "MLP alpha=10": (mlp(10.0), False),
        "tree": (DecisionTreeClassifier(random_state=seed), False),
        "MLP regressor": (mlp(1e-6, regressor=True), True),
        "tree regressor": (DecisionTreeRegressor(random_state=seed), True),
    }


class Pools:
    def __init__(self, data: AttributeData, seed: int):
        n_mem, n_non, n_pop = SIZES[data.name]
        p = data.split({"members": n_mem, "nonmembers": n_non, "population": n_pop}, random_state=seed)
        self.data, self.members, self.population = data, p["members"], p["population"]
        self.X = np.vstack([p["members"].X, p["nonmembers"].X])
        self.y = np.r_[p["members"].y, p["nonmembers"].y]
        self.target = np.r_[p["members"].target, p["nonmembers"].target]
        self.is_member = np.r_[np.ones(n_mem, bool), np.zeros(n_non, bool)]
        self.truth = self.X[:, data.attribute]

    def score(self, guess: np.ndarray) -> tuple[float, float]:
        hit = np.asarray(guess, dtype=np.float64).ravel() == self.truth
        return float(hit[self.is_member].mean()), float(hit[~self.is_member].mean())


def run_ours(pools: Pools, name: str, model: Any, regressor: bool) -> list[Row]:
    """mlpentest's attack, several knowledge settings, one query-counted wrapper per run."""
    a, data = pools.data.attribute, pools.data.name
    rows: list[Row] = []

    def imputer() -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression())

    if regressor:
        variants = {"value": ({"output": "value"}, pools.target, "y"),
                    "value, LR prior": ({"output": "value", "prior": imputer()}, pools.target, "y")}
        population: Any = (pools.population.X, pools.population.target)
    else:
        variants = {"proba": ({}, pools.y, "y"), "label": ({"output": "label"}, pools.y, "y"),
                    "proba, LR prior": ({"prior": imputer()}, pools.y, "y"),
                    "proba, observed": ({}, None, "out")}
        population = pools.population.X
    for attack, (settings, y, knows) in variants.items():
        progress(f"{data} {name}: ours {attack}")
        target = model if regressor else wrap(model)
        start = time.perf_counter()
        res = AttributeInference(target, attribute=a, random_state=0, **settings).run(
            pools.X, y, is_member=pools.is_member, population=population
        )
        seconds = time.perf_counter() - start
        members, nonmembers = pools.score(res.inferred)
        rows.append(Row(data, name, attack, "mlpentest", knows, members, nonmembers, res.queries,
                        res.observation_queries or None, seconds))
        if attack in ("proba", "value", "proba, LR prior", "value, LR prior"):
            base = "imputation (LR)" if "LR" in attack else "prior only"
            rows.append(Row(data, "-", base, "mlpentest", "-", *pools.score(res.baseline), 0, None, None,
                            note="the attack's own baseline: no query, no target"))
    return rows


def import_art() -> dict[str, Any] | None:
    """ART's pieces used here, or None when ART is not installed (the ``bench`` extra)."""
    try:
        import art
        from art.attacks.inference import attribute_inference as ai
        from art.estimators.classification import SklearnClassifier
        from art.estimators.regression.scikitlearn import (
            ScikitlearnDecisionTreeRegressor,
            ScikitlearnRegressor,
        )
    except ImportError:
        return None
    return {"ai": ai, "classifier": SklearnClassifier, "regressor": ScikitlearnRegressor,
            "tree regressor": ScikitlearnDecisionTreeRegressor, "version": art.__version__}


def seed_art(seed: int) -> None:
    """ART's attack models draw from the global numpy and torch generators: seed both before each."""
    np.random.seed(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def counted(estimator: Any) -> list[int]:
    """Count the samples ART sends to ``estimator.predict`` (instance patch); returns the live counter."""
    count = [0]
    predict = estimator.predict

    def wrapper(x: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        count[0] += len(x)
        return predict(x, *args, **kwargs)

    estimator.predict = wrapper
    return count


def run_art(
    pools: Pools, name: str, model: Any, regressor: bool, art: dict[str, Any], seed: int
) -> list[Row]:
    """ART's black-box attack on this target and, for trees, its two white-box decision-tree attacks."""
    ai, a, data = art["ai"], pools.data.attribute, pools.data.name
    values = pools.data.values.tolist()
    priors = [float(np.mean(pools.population.X[:, a] == v)) for v in values]
    X_rest = np.delete(pools.X, a, axis=1)
    y = pools.target if regressor else pools.y
    tree = isinstance(model, DecisionTreeClassifier | DecisionTreeRegressor)
    rows: list[Row] = []

    def estimator() -> Any:
        if regressor:
            return (art["tree regressor"] if tree else art["regressor"])(model)
        return art["classifier"](model)

    def one(attack: str, knows: str, go: Callable[[Any], np.ndarray], observe: bool = False) -> None:
        progress(f"{data} {name}: ART {attack}")
        seed_art(seed)
        est = estimator()
        count = counted(est)
        start = time.perf_counter()
        pred = None
        if observe:  # the record owners' own queries, whose answers ART's black-box attack reads
            out = est.predict(pools.X)
            pred = out.reshape(-1, 1) if regressor else np.argmax(out, axis=1).reshape(-1, 1)
        observed, count[0] = count[0], 0
        guess = go(est) if pred is None else go((est, pred))
        seconds = time.perf_counter() - start
        rows.append(Row(data, name, attack, "ART", knows, *pools.score(guess), count[0], observed or None,
                        seconds))

    for kind in ("nn", "rf"):
        def black_box(arg: tuple[Any, np.ndarray], kind: str = kind) -> np.ndarray:
            est, pred = arg
            attack = ai.AttributeInferenceBlackBox(est, attack_feature=a, attack_model_type=kind)
            attack.fit(pools.population.X, pools.population.target if regressor else pools.population.y)
            return attack.infer(X_rest, y=y, pred=pred, values=values)

        one(f"BlackBox {kind}", "y+out", black_box, observe=True)
    if tree and not regressor:
        one("WhiteBoxDecisionTree", "y+wb", lambda est: ai.AttributeInferenceWhiteBoxDecisionTree(
            est, attack_feature=a).infer(X_rest, y, values=values, priors=priors))
    if tree:
        one("WhiteBoxLifestyleDT", "wb", lambda est: ai.AttributeInferenceWhiteBoxLifestyleDecisionTree(
            est, attack_feature=a).infer(X_rest, values=values, priors=priors))
    return rows


def run_art_baselines(pools: Pools, art: dict[str, Any], seed: int) -> list[Row]:
    """ART's model-free baselines: imputation from the other features, and from them plus the label."""
    ai, a, data = art["ai"], pools.data.attribute, pools.data.name
    values = pools.data.values.tolist()
    X_rest = np.delete(pools.X, a, axis=1)
    rows = []
    progress(f"{data}: ART Baseline")
    seed_art(seed)
    start = time.perf_counter()
    attack = ai.AttributeInferenceBaseline(attack_feature=a)
    attack.fit(pools.population.X)
    guess = attack.infer(X_rest, values=values)
    rows.append(Row(data, "-", "Baseline nn", "ART", "-", *pools.score(guess), 0, None,
                    time.perf_counter() - start, note="imputation: no model"))
    for label, regression, y_pop, y in (("label", False, pools.population.y, pools.y),
                                        ("target", True, pools.population.target, pools.target)):
        progress(f"{data}: ART BaselineTrueLabel ({label})")
        seed_art(seed)
        start = time.perf_counter()
        attack = ai.AttributeInferenceBaselineTrueLabel(attack_feature=a, is_regression=regression)
        attack.fit(pools.population.X, y_pop)
        guess = attack.infer(X_rest, y, values=values)
        rows.append(Row(data, "-", f"BaselineTrueLabel nn ({label})", "ART", "y", *pools.score(guess), 0,
                        None, time.perf_counter() - start, note="imputation with the label: no model"))
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", action="append", choices=sorted(SIZES),
                   help="data set(s) to run (default: both; 'fair' needs statsmodels)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP/torch threads per process (0: the libraries' own choice)")
    p.add_argument("--skip-art", action="store_true", help="run only mlpentest's attack")
    p.add_argument("--json", metavar="PATH", help="also save the setup and rows as JSON")
    args = p.parse_args(argv)
    if args.threads < 0:
        p.error("--threads must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    art = None if args.skip_art else import_art()  # may import torch, before the thread limits below
    versions = common.versions(common.art_status(art["version"] if art else None, args.skip_art))
    names = args.dataset or list(SIZES)
    rows: list[Row] = []
    targets_info: dict[str, dict[str, Any]] = {}
    skipped = []
    with common.limit_threads(args.threads):
        for data_name in names:
            try:
                pools = Pools(load_attribute_data(data_name), args.seed)
            except ImportError as exc:  # the fair data needs statsmodels
                skipped.append(f"{data_name}: {exc}")
                continue
            for name, (model, regressor) in make_targets(args.seed).items():
                progress(f"{data_name}: train {name}")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model.fit(pools.members.X, pools.members.target if regressor else pools.members.y)
                y = pools.target if regressor else pools.y
                fit = model.score(pools.X[pools.is_member], y[pools.is_member])
                held = model.score(pools.X[~pools.is_member], y[~pools.is_member])
                targets_info[f"{data_name} / {name}"] = {"members": fit, "nonmembers": held,
                                                         "metric": "R^2" if regressor else "accuracy"}
                ours = run_ours(pools, name, model, regressor)
                theirs = run_art(pools, name, model, regressor, art, args.seed) if art is not None else []
                reference = ours[0].seconds or float("nan")
                for row in ours + theirs:
                    if row.seconds is not None:
                        row.ratio = row.seconds / reference
                seen = {(r.data, r.attack) for r in rows if r.target == "-"}
                rows += [r for r in ours if r.target != "-" or (r.data, r.attack) not in seen] + theirs
            if art is not None:
                rows += run_art_baselines(pools, art, args.seed)
    setup = {"data": {n: dict(zip(("members", "nonmembers", "population"), SIZES[n], strict=True))
                      for n in names}, "seed": args.seed, "targets": targets_info, "skipped": skipped,
             **common.machine(args.threads, load_start), "versions": versions}
    print(report(setup, rows, art is not None, args.skip_art))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"setup": setup, "rows": [asdict(r) for r in rows]}, fh, indent=2)
    return 0


def format_table(rows: list[Row]) -> str:
    head = ("data", "target", "attack", "library", "knows", "members", "non-members", "queries", "wall s",
            "x ours", "note")
    lines = [
        (r.data, r.target, r.attack, r.library, r.knows, cell(r.members, ".3f"), cell(r.nonmembers, ".3f"),
         cell(r.queries, "d") + (f" +{r.observed}" if r.observed else ""), cell(r.seconds, ".3f"),
         cell(r.ratio, ".1f"), r.note)
        for r in rows
    ]
    return aligned(head, lines, left={0, 1, 2, 3, 4, len(head) - 1})


def report(setup: dict[str, Any], rows: list[Row], with_art: bool, skipped_art: bool) -> str:
    s = setup
    sizes = "; ".join(f"{n}: {d['members']} members / {d['nonmembers']} non-members / {d['population']} "
                      "attacker records" for n, d in s["data"].items())
    out = [
        "attribute inference benchmark: " + sizes,
        f"seed {s['seed']}; machine: {s['cpu_count']} CPUs ({s['machine']}), 1-min load average "
        f"{s['load_average_start']:.1f} at start, {s['load_average_end']:.1f} at end; threads per process: "
        f"{s['threads']}",
        "versions: " + ", ".join(f"{k} {x}" for k, x in s["versions"].items()),
        "",
        "targets (members / non-members):",
    ]
    for name, t in s["targets"].items():
        out.append(f"  {name:28s} {t['metric']} {t['members']:.3f} / {t['nonmembers']:.3f}")
    out += [f"  skipped {x}" for x in s["skipped"]]
    out += ["", format_table(rows), ""]
    notes = [
        "members / non-members: share of records whose hidden attribute the attack got right. mlpentest: "
        "AttributeInference, argmax_v prior(v) * L(obs | x_v) over the candidate values (one batch of "
        "records x values queries); prior = value frequencies in the attacker's records (add-one), or "
        "'LR prior' = a logistic regression on them, p(v | other features). 'prior only' / 'imputation' "
        "are the guesses of those priors alone. 'observed': y unknown, the model's answer on the record "
        "(the owner's query, +n) is explained instead.",
    ]
    if with_art:
        notes.append(
            "ART: AttributeInferenceBlackBox trains an attack model (nn: ART's torch MLP, 100 epochs; rf: "
            "a random forest) on the attacker's records, from their other features, the target's "
            "predictions on them (the queries) and their labels, and reads the target's predictions on "
            "the attacked records (+n) and their labels. WhiteBoxDecisionTree / WhiteBoxLifestyleDT read "
            "the tree's leaves and sample counts (priors: the value frequencies in the attacker's "
            "records; WhiteBoxDecisionTree is given the true labels). Baseline / BaselineTrueLabel never "
            "query the target. 'x ours': wall time over mlpentest's proba (value) row on that target.")
    else:
        notes.append("ART skipped (--skip-art)." if skipped_art
                     else "ART skipped: not installed (pip install 'mlpentest[bench]').")
    for note in notes:
        out += textwrap.wrap(note, 110, subsequent_indent="  ")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
