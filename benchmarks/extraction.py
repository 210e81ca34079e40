"""Model extraction: mlpentest's Knockoff Nets, Copycat and equation solving beside IBM ART's, same victims.

Sections (``--sections``, all by default; each is one function in ``SECTIONS``):

``knockoff`` — a neural victim copied from natural data (everything seeded by ``--seed``):

* data: disjoint, class-stratified pools of Fashion-MNIST's 70,000 images: the victim's training set
  (``--train``), the attacker's pool (``--pool``; its labels are read only by ART's adaptive KnockoffNets,
  which needs them as actions) and a held-out test set (``--test``) on which "fidelity" (agreement with the
  victim's label) and the copies' accuracy are measured. A second pool from another data set: scikit-learn's
  1,797 8x8 digits upscaled (bilinear) to 20x20 and centred in 28x28, the only other images on this machine.
* victim: a torch MLP 784-256-10 (ReLU), Adam 1e-3, batch 128, ``--victim-epochs`` epochs.
* mlpentest: ``KnockoffNets`` random and adaptive (probabilities) and ``Copycat`` (labels) with their
  defaults, the query counts as checkpoints of ONE run per attack; "wall s" at a count is that run's time up
  to the checkpoint (its ``callback``'s timestamps, less the time the callback spends scoring the copy).
* ART: ``CopycatCNN`` (hard labels; victim = ``PyTorchClassifier`` on the logits), ``KnockoffNets`` random
  with ``use_probability=True`` (the victim gets a softmax layer: ART hands the estimator's outputs to the
  thief as its labels, and logits as labels train nothing — fidelity 0.095 when tried) and ``KnockoffNets``
  adaptive (reward "all"; logits victim, as its docstring assumes). ART's API takes ``nb_stolen``, so each
  query count is a separate run; "curve s" adds the runs up to a count. The thief: the victim's
  architecture, fresh per run, Adam 1e-3, ``batch_size_fit=64``, ``nb_epochs=--art-epochs``.
* every run is a forked process of its own: "peak MiB" is the growth of its peak resident set (VmHWM reset
  at the start); runs past ``--mem-cap`` MiB or ``--run-timeout`` s are killed and reported as such.

``equation`` — Tramèr et al.'s equation solving (``EquationSolving``) on digits: a softmax regression
(exact, d + 1 queries; ART has no equation-solving attack) and a one-hidden-layer ReLU MLP (by optimisation)
beside ART's ``FunctionallyEquivalentExtraction`` (Jagielski et al. 2020), the ART attack that targets
that architecture (a float64 torch copy of the victim behind ``PyTorchClassifier``).

``retraining`` — labels only, on digits (500 victim training images, an attacker pool of 897 other digits,
400 held out): an RBF SVC answering labels, copied by ``Retraining`` (uniform / line-search / adaptive
queries from the pool, one retraining round per 50 queries) at 100-800 queries, beside ART's ``CopycatCNN``
(the closest ART has: hard labels of the same pool, a 64-64-10 torch thief) at the same budgets; and
``PathFinding`` on an unpruned decision tree whose API names the leaf (ART has no tree-extraction attack).

Progress goes to stderr, the tables to stdout; ``--json PATH`` saves setup and rows.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
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

from mlpentest import datasets

QUICK = {"train": 6000, "pool": 6000, "test": 2000, "queries": "250,1000,4000", "victim_epochs": 5}


@dataclass
class Row:
    section: str
    pool: str
    attack: str
    library: str
    queries: int | None
    fidelity: float | None
    fidelity_sd: float | None
    accuracy: float | None
    seconds: float | None
    curve_seconds: float | None
    peak_mib: float | None
    ratio: float | None = None  # ART's wall time over ours, same count, paired attack
    note: str = ""


_T0 = time.perf_counter()


def progress(label: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.0f} s] {label} ...", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- isolated runs
def _status_kib(key: str, pid: str = "self") -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_mib(base: int | None) -> float | None:
    hwm = _status_kib("VmHWM")
    return None if base is None or hwm is None else (hwm - base) / 1024


def isolated(job: Callable[[int | None], dict[str, Any]], cap_mib: float, timeout: float) -> dict[str, Any]:
    """``job(base_kib)`` in a forked process; its result, or why there is none (killed, error)."""
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)

    def target() -> None:
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
                fh.write("5")  # reset the peak resident set to the current one
            base = _status_kib("VmRSS")
        except OSError:
            base = None
        try:
            out = job(base)
        except Exception as exc:  # noqa: BLE001 - a peer's failure is a result to report
            out = {"error": f"{type(exc).__name__}: {exc}"[:160]}
        out.setdefault("peak_mib", peak_mib(base))
        send.send(out)

    proc = ctx.Process(target=target)
    start, out, killed = time.perf_counter(), None, ""
    proc.start()
    while out is None and (proc.is_alive() or recv.poll()):
        if recv.poll(0.2):
            out = recv.recv()
            break
        rss = _status_kib("VmRSS", str(proc.pid))
        if rss is not None and rss / 1024 > cap_mib:
            killed = f"killed at {rss / 2**20:.1f} GiB resident (cap {cap_mib / 1024:.0f} GiB)"
        elif time.perf_counter() - start > timeout:
            killed = f"killed after {timeout:.0f} s (--run-timeout)"
        if killed:
            proc.kill()
    proc.join()
    return out if out is not None else {"error": killed or f"died (exit code {proc.exitcode})"}


# ---------------------------------------------------------------------- knockoff section
def mlp(torch: Any, d: int, h: int, k: int, seed: int) -> Any:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Linear(h, k))


def train_victim(torch: Any, X: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> Any:
    net = mlp(torch, X.shape[1], 256, 10, seed)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=gen)
        for i in range(0, len(X), 128):
            b = perm[i : i + 128]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(Xt[b]), yt[b]).backward()
            opt.step()
    return net.eval()


def digits_28() -> np.ndarray:
    """scikit-learn's digits, 8x8 upscaled (bilinear) to 20x20 and centred in 28x28, values in [0, 1]."""
    from scipy.ndimage import zoom

    small = datasets.load("digits").X.reshape(-1, 8, 8)
    out = np.zeros((len(small), 28, 28), dtype=np.float32)
    out[:, 4:24, 4:24] = np.clip(zoom(small, (1, 2.5, 2.5), order=1), 0.0, 1.0)
    return out.reshape(len(small), -1)


def ours_curve(kind: str, net: Any, pool: np.ndarray, counts: list[int], Xte: np.ndarray, yte: np.ndarray,
               seed: int) -> Callable[[int | None], dict[str, Any]]:
    def job(base: int | None) -> dict[str, Any]:
        from mlpentest.attacks.extraction import Copycat, KnockoffNets
        from mlpentest.models import wrap

        stages: list[dict[str, Any]] = []
        clock = {"start": 0.0, "outside": 0.0}
        victim = wrap(net, input_shape=(pool.shape[1],))
        truth = victim.predict(Xte)  # scored here, outside the clock, as ART's runs are

        def callback(n: int, stolen: Any) -> None:
            now, labels = time.perf_counter(), stolen.predict(Xte)
            stages.append({"queries": n, "seconds": now - clock["start"] - clock["outside"],
                           "fidelity": float(np.mean(labels == truth)),
                           "accuracy": float(np.mean(labels == yte)), "peak_mib": peak_mib(base)})
            clock["outside"] += time.perf_counter() - now

        kw: dict[str, Any] = {"budget": counts[-1], "checkpoints": counts, "callback": callback,
                              "random_state": seed}
        attack = Copycat(victim, **kw) if kind == "copycat" else KnockoffNets(victim, strategy=kind, **kw)
        clock["start"] = time.perf_counter()
        attack.run(pool)
        return {"stages": stages}

    return job


def art_run(kind: str, net: Any, pool: np.ndarray, pool_y: np.ndarray, n: int, Xte: np.ndarray,
            yte: np.ndarray, seed: int, epochs: int) -> Callable[[int | None], dict[str, Any]]:
    def job(base: int | None) -> dict[str, Any]:
        import torch
        from art.attacks.extraction import CopycatCNN, KnockoffNets
        from art.estimators.classification import PyTorchClassifier

        def classifier(module: Any, optimizer: Any = None) -> Any:
            return PyTorchClassifier(module, loss=torch.nn.CrossEntropyLoss(), optimizer=optimizer,
                                     input_shape=(pool.shape[1],), nb_classes=10, clip_values=(0.0, 1.0))

        probabilities = kind == "random"
        victim = classifier(torch.nn.Sequential(net, torch.nn.Softmax(dim=1)) if probabilities else net)
        np.random.seed(seed)
        thief_net = mlp(torch, pool.shape[1], 256, 10, seed + 1)
        thief = classifier(thief_net, torch.optim.Adam(thief_net.parameters(), 1e-3))
        common_kw = {"batch_size_fit": 64, "batch_size_query": 256, "nb_epochs": epochs, "nb_stolen": n}
        if kind == "copycat":
            attack, y = CopycatCNN(victim, use_probability=False, **common_kw), None
        else:
            attack = KnockoffNets(victim, sampling_strategy=kind, reward="all", verbose=False,
                                  use_probability=probabilities, **common_kw)
            y = pool_y if kind == "adaptive" else None
        start = time.perf_counter()
        stolen = attack.extract(pool, y, thieved_classifier=thief)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            truth = net(torch.from_numpy(Xte)).argmax(1).numpy()
        pred = stolen.predict(Xte).argmax(1)
        return {"seconds": seconds, "fidelity": float(np.mean(pred == truth)),
                "accuracy": float(np.mean(pred == yte))}

    return job


OURS = {"random": "KnockoffNets random", "adaptive": "KnockoffNets adaptive", "copycat": "Copycat"}
ARTS = {"random": "KnockoffNets random", "adaptive": "KnockoffNets adaptive", "copycat": "CopycatCNN"}


def summarise(section: str, pool: str, attack: str, library: str, runs: list[dict[str, Any]],
              queries: int, curve: float | None = None, note: str = "") -> Row:
    """One row from the repeats of one (attack, query count): means, the fidelity's deviation, max peak."""
    good = [r for r in runs if "error" not in r]
    if not good:
        return Row(section, pool, attack, library, queries, None, None, None, None, None, None,
                   note=runs[0]["error"] if runs else note)
    fid = [r["fidelity"] for r in good]
    peaks = [r["peak_mib"] for r in good if r.get("peak_mib") is not None]
    seconds = float(np.mean([r["seconds"] for r in good]))
    sd = float(np.std(fid, ddof=1)) if len(fid) > 1 else None
    return Row(section, pool, attack, library, queries, float(np.mean(fid)), sd,
               float(np.mean([r["accuracy"] for r in good])), seconds, seconds if curve is None else curve,
               max(peaks) if peaks else None, note=note)


def knockoff_section(args: argparse.Namespace, art: bool) -> tuple[list[Row], dict[str, Any]]:
    import torch

    data = datasets.load("fashion-mnist", download=False)
    pools = data.split({"victim": args.train, "pool": args.pool, "test": args.test}, random_state=args.seed)
    Xte, yte = pools["test"].X, pools["test"].y
    progress("knockoff: train the victim (torch MLP 784-256-10)")
    start = time.perf_counter()
    net = train_victim(torch, pools["victim"].X, pools["victim"].y, args.seed, args.victim_epochs)
    train_seconds = time.perf_counter() - start
    with torch.no_grad():
        victim_acc = float(np.mean(net(torch.from_numpy(Xte)).argmax(1).numpy() == yte))
    counts = args.queries
    sources = {"Fashion-MNIST": (pools["pool"].X, pools["pool"].y, [c for c in counts if c <= args.pool])}
    digits = digits_28()
    sources["digits 28x28"] = (digits, datasets.load("digits").y,
                               sorted({c for c in counts if c < len(digits)} | {len(digits)}))
    seeds = [args.seed + r for r in range(args.repeats)]
    rows: list[Row] = []
    for pool_name, (X_pool, y_pool, points) in sources.items():
        ours: dict[str, dict[int, Row]] = {}
        for kind, name in OURS.items():
            progress(f"knockoff: mlpentest {name}, {pool_name} pool, one run to {points[-1]} queries")
            jobs = [ours_curve(kind, net, X_pool, points, Xte, yte, s) for s in seeds]
            runs = [isolated(job, args.mem_cap, args.run_timeout) for job in jobs]
            ours[kind] = {}
            for i, n in enumerate(points):
                per = [r["stages"][i] if "stages" in r and i < len(r["stages"]) else r for r in runs]
                ours[kind][n] = summarise("knockoff", pool_name, name, "mlpentest", per, n)
                rows.append(ours[kind][n])
        if not art:
            continue
        for kind, name in ARTS.items():
            curve = 0.0
            for n in points:
                if kind == "adaptive" and n > args.art_adaptive_max:
                    rows.append(Row("knockoff", pool_name, name, "ART", n, None, None, None, None, None, None,
                                    note=f"not run: above --art-adaptive-max {args.art_adaptive_max}"))
                    continue
                progress(f"knockoff: ART {name}, {pool_name} pool, {n} queries")
                y = y_pool if kind == "adaptive" else None
                runs = [isolated(art_run(kind, net, X_pool, y, n, Xte, yte, s, args.art_epochs), args.mem_cap,
                                 args.run_timeout) for s in seeds]
                row = summarise("knockoff", pool_name, name, "ART", runs, n)
                if row.seconds is not None:
                    curve += row.seconds
                    row.curve_seconds = curve
                    mine = ours[kind][n].seconds
                    row.ratio = row.seconds / mine if mine else None
                rows.append(row)
    setup = {"train": args.train, "pool": args.pool, "test": args.test, "digits_pool": len(digits),
             "victim_test_accuracy": victim_acc, "victim_train_seconds": train_seconds, "seeds": seeds,
             "queries": counts, "art_epochs": args.art_epochs}
    return rows, setup


# ---------------------------------------------------------------------- equation section
def equation_section(args: argparse.Namespace, art: bool) -> tuple[list[Row], dict[str, Any]]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    from mlpentest.attacks.extraction import EquationSolving
    from mlpentest.models import wrap

    d = datasets.load("digits").split({"train": 900, "pool": 600, "test": 297}, random_state=args.seed)
    Xte, yte, X_pool = d["test"].X.astype(np.float64), d["test"].y, d["pool"].X.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        softmax = LogisticRegression(C=1.0, max_iter=2000).fit(d["train"].X, d["train"].y)
        relu = MLPClassifier((args.hidden,), max_iter=500, random_state=args.seed)
        relu.fit(d["train"].X, d["train"].y)
    rows: list[Row] = []
    victims = (("softmax regression", softmax, None), (f"MLP 64-{args.hidden}-10 ReLU", relu, args.hidden))
    for name, victim, hidden in victims:
        def job(base: int | None, victim: Any = victim, hidden: int | None = hidden) -> dict[str, Any]:
            api = wrap(lambda X: victim.predict_proba(X), input_shape=(64,), n_classes=10)  # scores only
            attack = EquationSolving(api, hidden=hidden, random_state=args.seed)
            result = attack.run(X_pool if hidden else None, X_test=Xte, y_test=yte)
            error = np.nan
            if hidden is None:  # the API hides the weights from the attack; the benchmark reads them to score
                W, b = victim.coef_ - victim.coef_.mean(axis=0), victim.intercept_ - victim.intercept_.mean()
                copy = result.stolen.estimator
                error = max(np.abs(copy.coef_ - W).max(), np.abs(copy.intercept_ - b).max())
            return {"seconds": result.wall_seconds, "fidelity": result.fidelity,
                    "accuracy": result.stolen_accuracy, "queries": result.queries, "error_max": error}

        progress(f"equation: mlpentest EquationSolving on the {name}")
        out = isolated(job, args.mem_cap, args.run_timeout)
        exact = "error" not in out and not np.isnan(out["error_max"])
        note = f"max parameter error {out['error_max']:.1e}" if exact else ""
        row = summarise("equation", name, "EquationSolving", "mlpentest", [out], out.get("queries", 0),
                        note=note)
        rows.append(row)
        if not art:
            continue
        if hidden is None:
            rows.append(Row("equation", name, "(none)", "ART", None, None, None, None, None, None, None,
                            note="ART has no equation-solving attack (Tramèr et al. 2016); its "
                            "FunctionallyEquivalentExtraction needs a ReLU hidden layer"))
            continue
        progress(f"equation: ART FunctionallyEquivalentExtraction on the {name}")
        job = fee_job(relu, X_pool, Xte, yte, args.hidden, args.seed)
        out = isolated(job, args.mem_cap, args.run_timeout)
        art_row = summarise("equation", name, "FunctionallyEquivalentExtraction", "ART", [out],
                            out.get("queries", 0), note=out.get("error", ""))
        if "error" in out:
            art_row.queries, art_row.seconds = out.get("queries"), out.get("seconds")
        art_row.ratio = art_row.seconds / row.seconds if art_row.seconds and row.seconds else None
        rows.append(art_row)
    setup = {"digits": "900 train / 600 pool / 297 test", "hidden": args.hidden,
             "victim_accuracy": {"softmax": softmax.score(Xte, yte), "relu": relu.score(Xte, yte)}}
    return rows, setup


def fee_job(mlp_victim: Any, X_pool: np.ndarray, Xte: np.ndarray, yte: np.ndarray, hidden: int,
            seed: int) -> Callable[[int | None], dict[str, Any]]:
    """ART's FunctionallyEquivalentExtraction on a float64 torch copy of the MLP (float32 fails: ART feeds
    float64 queries to a float32 module); queries counted at ``predict``."""
    def job(base: int | None) -> dict[str, Any]:
        import torch
        from art.attacks.extraction import FunctionallyEquivalentExtraction
        from art.estimators.classification import PyTorchClassifier

        net = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
        net = net.double()
        with torch.no_grad():
            for layer, W, b in zip((net[0], net[2]), mlp_victim.coefs_, mlp_victim.intercepts_, strict=True):
                layer.weight[:] = torch.from_numpy(W.T)
                layer.bias[:] = torch.from_numpy(b)
        clf = PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(), input_shape=(64,), nb_classes=10)
        count, predict = [0], clf.predict

        def counted(x: np.ndarray, *a: Any, **k: Any) -> np.ndarray:
            count[0] += len(x)
            return predict(x, *a, **k)

        clf.predict = counted
        np.random.seed(seed)
        start = time.perf_counter()
        try:
            stolen = FunctionallyEquivalentExtraction(clf, num_neurons=hidden).extract(X_pool)
        except Exception as exc:  # noqa: BLE001 - ART's failure is the result
            return {"error": f"{type(exc).__name__}: {exc}"[:150], "queries": count[0],
                    "seconds": time.perf_counter() - start}
        seconds = time.perf_counter() - start
        pred = stolen.predict(Xte).argmax(1)
        return {"seconds": seconds, "fidelity": float(np.mean(pred == mlp_victim.predict(Xte))),
                "accuracy": float(np.mean(pred == yte)), "queries": count[0]}

    return job


# ---------------------------------------------------------------------- retraining section
RETRAIN_BUDGETS = (100, 200, 400, 800)


def retraining_section(args: argparse.Namespace, art: bool) -> tuple[list[Row], dict[str, Any]]:
    """Labels-only victims on digits: Retraining's strategies (natural pool) beside ART's CopycatCNN on the
    same pool and budgets (ART has no Tramèr retraining); path finding on a tree (ART has none)."""
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    from mlpentest.attacks.extraction import PathFinding, Retraining
    from mlpentest.models import wrap

    d = datasets.load("digits").split({"train": 500, "pool": 897, "test": 400}, random_state=args.seed)
    Xte, yte, X_pool = d["test"].X, d["test"].y, d["pool"].X
    svm = SVC(gamma="scale").fit(d["train"].X, d["train"].y)
    truth = svm.predict(Xte)
    seeds = [args.seed + r for r in range(args.repeats)]
    rows: list[Row] = []
    for strategy in ("uniform", "line-search", "adaptive"):
        for n in RETRAIN_BUDGETS:
            def job(base: int | None, strategy: str = strategy, n: int = n, seed: int = 0) -> dict[str, Any]:
                labels = wrap(svm.predict, input_shape=(64,), n_classes=10, output="labels")
                result = Retraining(labels, strategy=strategy, budget=n, rounds=n // 50,
                                    random_state=seed).run(X_pool, X_test=Xte, y_test=yte)
                return {"seconds": result.wall_seconds, "fidelity": result.fidelity,
                        "accuracy": result.stolen_accuracy}

            progress(f"retraining: mlpentest {strategy}, {n} queries")
            runs = [isolated(lambda base, s=s, job=job: job(base, seed=s), args.mem_cap, args.run_timeout)
                    for s in seeds]
            rows.append(summarise("retraining", "digits", f"Retraining {strategy}", "mlpentest", runs, n))
    if art:
        ours = {r.queries: r for r in rows if r.attack == "Retraining adaptive"}
        for n in RETRAIN_BUDGETS:
            progress(f"retraining: ART CopycatCNN, {n} queries")
            runs = [isolated(art_copycat_digits(svm, X_pool, n, Xte, yte, truth, s, args.art_epochs),
                             args.mem_cap, args.run_timeout) for s in seeds]
            row = summarise("retraining", "digits", "CopycatCNN", "ART", runs, n)
            mine = ours[n].seconds
            row.ratio = row.seconds / mine if row.seconds and mine else None
            rows.append(row)
    tree = DecisionTreeClassifier(random_state=args.seed).fit(d["train"].X, d["train"].y)

    def tree_job(base: int | None) -> dict[str, Any]:
        labels = wrap(tree.predict, input_shape=(64,), n_classes=10, output="labels")
        result = PathFinding(labels, leaf_id=tree.apply, random_state=args.seed).run(X_test=Xte, y_test=yte)
        return {"seconds": result.wall_seconds, "fidelity": result.fidelity,
                "accuracy": result.stolen_accuracy, "queries": result.queries,
                "leaves": result.params["leaves"]}

    progress("retraining: mlpentest PathFinding on a decision tree")
    out = isolated(tree_job, args.mem_cap, args.run_timeout)
    note = f"{out.get('leaves')} of {tree.get_n_leaves()} leaves; ART has no tree attack"
    rows.append(summarise("retraining", "digits tree", "PathFinding", "mlpentest", [out],
                          out.get("queries", 0), note=note))
    setup = {"digits": "500 victim train / 897 attacker pool / 400 test", "victim": "RBF SVC, labels only",
             "victim_accuracy": float(np.mean(truth == yte)), "rounds": "one per 50 queries"}
    return rows, setup


def art_copycat_digits(svm: Any, pool: np.ndarray, n: int, Xte: np.ndarray, yte: np.ndarray,
                       truth: np.ndarray, seed: int, epochs: int) -> Callable[[int | None], dict[str, Any]]:
    """ART's CopycatCNN against the labels-only SVM (behind ``ScikitlearnSVC``), a 64-64-10 torch thief."""
    def job(base: int | None) -> dict[str, Any]:
        import torch
        from art.attacks.extraction import CopycatCNN
        from art.estimators.classification import PyTorchClassifier
        from art.estimators.classification.scikitlearn import ScikitlearnSVC

        # ScikitlearnSVC answers one-hot labels unless ``svm.probability`` is truthy; scikit-learn 1.9's
        # deprecation sentinel for that parameter is, so it is set to False on a copy
        labels_only = copy.copy(svm)
        labels_only.probability = False
        victim = ScikitlearnSVC(labels_only, clip_values=(0.0, 1.0))
        np.random.seed(seed)
        net = mlp(torch, 64, 64, 10, seed + 1)
        thief = PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(), optimizer=torch.optim.Adam(
            net.parameters(), 1e-3), input_shape=(64,), nb_classes=10, clip_values=(0.0, 1.0))
        attack = CopycatCNN(victim, batch_size_fit=32, batch_size_query=256, nb_epochs=epochs, nb_stolen=n,
                            use_probability=False)
        start = time.perf_counter()
        stolen = attack.extract(pool.astype(np.float32), thieved_classifier=thief)
        seconds = time.perf_counter() - start
        pred = stolen.predict(Xte.astype(np.float32)).argmax(1)
        return {"seconds": seconds, "fidelity": float(np.mean(pred == truth)),
                "accuracy": float(np.mean(pred == yte))}

    return job


SECTIONS: dict[str, Callable[[argparse.Namespace, bool], tuple[list[Row], dict[str, Any]]]] = {
    "knockoff": knockoff_section,
    "equation": equation_section,
    "retraining": retraining_section,
}


# ---------------------------------------------------------------------- report
def format_table(rows: list[Row]) -> str:
    head = ("pool / victim", "attack", "library", "queries", "fidelity", "± sd", "stolen acc", "wall s",
            "curve s", "ART/ours", "peak MiB", "note")
    lines = [(r.pool, r.attack, r.library, cell(r.queries, "d"), cell(r.fidelity, ".4f"),
              cell(r.fidelity_sd, ".4f"), cell(r.accuracy, ".4f"), cell(r.seconds, ".2f"),
              cell(r.curve_seconds, ".2f"), "-" if r.ratio is None else f"{r.ratio:.2f}x",
              cell(r.peak_mib, ".0f"), r.note) for r in rows]
    return aligned(head, lines, left={0, 1, 2, len(head) - 1})


NOTES = {
    "knockoff": [
        "fidelity: share of the held-out test images on which the copy predicts the victim's label; stolen "
        "acc: the copy's accuracy on their true labels (means over the repeats; ± sd: the fidelity's "
        "standard deviation when --repeats > 1). wall s: ours = one run's time up to this checkpoint "
        "(training the earlier stages included), ART = its run for this count; curve s: what the curve up "
        "to this count cost (ours: the same run; ART: its runs added up); ART/ours: ART's wall s over ours "
        "(same count, paired attack). peak MiB: growth of the run's peak resident set (ours: up to this "
        "checkpoint).",
        "mlpentest: defaults (student: the architecture of MLPClassifier((256,)) trained by mlpentest on "
        "the answers, Knockoff Nets at distillation temperature 4, Copycat on one-hot labels; Adam 3e-3 "
        "with a cosine rate per stage, 20 epochs per stage over all queries so far, batch = sqrt(queries) "
        "within [20, 128], warm-started from the previous stage). Adaptive: actions = 8 x 4 k-means "
        "clusters of the pool (no labels), reward 'all', rounds of 32 queries. Both sides are timed without "
        "scoring.",
        "ART: thief = the victim's architecture, fresh per run, Adam 1e-3, batch 64, nb_epochs "
        "--art-epochs. KnockoffNets adaptive gets the pool's true labels as its actions (it refuses to run "
        "without them) and trains the thief on one query at a time; its memory grows with the queries (see "
        "peak MiB).",
    ],
    "equation": [
        "EquationSolving: exact for the softmax regression (d + 1 queries; 'max parameter error' against "
        "the victim's weights, read for scoring only); the MLP by optimisation on its number of parameters "
        "of queries drawn from the 600-image digits pool (topped up with uniform points). Both victims are "
        "seen only as a probability API. ART FunctionallyEquivalentExtraction: num_neurons = the hidden "
        "width, x = the same pool; its queries counted at the classifier's predict.",
    ],
}


def report(setup: dict[str, Any], rows: list[Row], sections: list[str]) -> str:
    s, v = setup, setup["versions"]
    out = [
        f"model extraction benchmark: sections {', '.join(sections)}; seed {s['seed']}",
        f"machine: {s['cpu_count']} CPUs ({s['machine']}), 1-min load average {s['load_average_start']:.1f} "
        f"at start, {s['load_average_end']:.1f} at end; threads per process: {s['threads']}",
        "versions: " + ", ".join(f"{k} {x}" for k, x in v.items()),
    ]
    if "knockoff" in s:
        k = s["knockoff"]
        out += [f"knockoff: Fashion-MNIST, {k['train']} victim training / {k['pool']} attacker pool / "
                f"{k['test']} test images (disjoint); second pool: {k['digits_pool']} digits upscaled to "
                f"28x28; victim test accuracy {k['victim_test_accuracy']:.4f} (trained in "
                f"{k['victim_train_seconds']:.1f} s); "
                f"repeats (attack seeds) {k['seeds']}"]
    if "equation" in s:
        e = s["equation"]
        out += [f"equation: digits, {e['digits']}; victims' test accuracy: softmax regression "
                f"{e['victim_accuracy']['softmax']:.4f}, MLP {e['victim_accuracy']['relu']:.4f}"]
    for section in sections:
        part = [r for r in rows if r.section == section]
        out += ["", f"[{section}]", format_table(part)]
        for note in NOTES.get(section, []):
            out += textwrap.wrap(note, 110, subsequent_indent="  ")
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {list(SECTIONS)}")
    p.add_argument("--train", type=int, default=30000, help="victim's training images (Fashion-MNIST)")
    p.add_argument("--pool", type=int, default=30000, help="attacker's pool of Fashion-MNIST images")
    p.add_argument("--test", type=int, default=10000, help="held-out images for fidelity and accuracy")
    p.add_argument("--queries", default="250,1000,4000,16000", help="query counts (checkpoints of our runs)")
    p.add_argument("--victim-epochs", type=int, default=10)
    p.add_argument("--art-epochs", type=int, default=30, help="ART's nb_epochs (thief training per run)")
    p.add_argument("--art-adaptive-max", type=int, default=1000,
                   help="largest query count for ART's adaptive KnockoffNets (its memory grows per query)")
    p.add_argument("--hidden", type=int, default=16, help="hidden units of the equation section's ReLU MLP")
    p.add_argument("--repeats", type=int, default=1, help="attack seeds per row (seed, seed + 1, ...)")
    p.add_argument("--mem-cap", type=float, default=8192, help="MiB resident at which a run is killed")
    p.add_argument("--run-timeout", type=float, default=900, help="seconds after which a run is killed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads per process")
    p.add_argument("--skip-art", action="store_true", help="run only mlpentest's attacks")
    p.add_argument("--quick", action="store_true", help=f"small sizes for a smoke run: {QUICK}")
    p.add_argument("--json", metavar="PATH", help="also save the setup and rows as JSON")
    args = p.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == p.get_default(key):
                setattr(args, key, value)
    try:
        args.queries = sorted({int(q) for q in str(args.queries).split(",") if q.strip()})
    except ValueError:
        p.error(f"--queries: expected comma-separated ints, got {args.queries!r}")
    args.sections = [s for s in args.sections.split(",") if s]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown or not args.queries or min(args.queries) < 1 or args.repeats < 1:
        p.error(f"unknown sections {sorted(unknown)}, or --queries / --repeats below 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    art_version = None
    if not args.skip_art:
        try:
            import art

            art_version = art.__version__
        except ImportError:
            pass
    versions = common.versions(common.art_status(art_version, args.skip_art))
    import torch  # the knockoff victim; imported before the thread limits so that they reach it

    versions["torch"] = torch.__version__
    rows: list[Row] = []
    setup: dict[str, Any] = {"seed": args.seed}
    with common.limit_threads(args.threads):
        for name in args.sections:
            section_rows, section_setup = SECTIONS[name](args, art_version is not None)
            rows += section_rows
            setup[name] = section_setup
    setup.update(common.machine(args.threads, load_start), versions=versions)
    print(report(setup, rows, args.sections))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"setup": setup, "rows": [asdict(r) for r in rows]}, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
