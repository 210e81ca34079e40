"""Scaling of reference-model training: wall time and client memory vs models, pool size and backend.

What is measured (Fashion-MNIST, everything seeded by ``--seed``; issue 16):

* **headline**: ``ReferenceModels`` training 8 MLPs (64 hidden units, Adam, up to 200 epochs) on 2500
  records each (random halves of a 5000-record pool): serially, with joblib's 2 local processes and on a
  Dask cluster of 1 and 2 worker processes (``dask scheduler`` and ``dask worker --nthreads 1`` processes on
  127.0.0.1, started once per run as a user would, and kept). joblib and Dask (2 workers) run back to back,
  ``--repeats`` times, alternating which goes first; the ratio Dask / joblib is taken per pair. ``dask,
  before`` is the previous implementation (every training subset materialised in the client and shipped
  through joblib's Dask bridge), for comparison.
* **models / pool**: the same with a shorter recipe (20 epochs) for 4, 16 and 64 models on a 5000-record
  pool, and for 16 models on pools of 2000 to 20000 records: wall time per backend, and the client's
  memory in separate runs with ``tracemalloc`` on (2 epochs: the same model sizes, less waiting).
  ``peak`` is the largest traced Python/numpy allocation during ``fit``; ``kept`` what is still allocated
  after it (the models, the membership matrix, row hashes); ``working`` = peak - kept; ``RSS rise`` the
  rise of the client's peak resident set (``VmHWM``, reset before ``fit``). ``joblib, before`` is the
  previous implementation.
* **overhead**: per-task cost of each backend (no-op tasks that receive the shared pool), the cost of a
  call (start, send the pool), the Dask scatter, and one MLP fit in the client, in a Dask worker as Dask
  runs a plain task, and in a worker through ``mlpentest.parallel`` (which undoes the nanny's
  ``MALLOC_TRIM_THRESHOLD_``; see that module's docstring): wall, user and system CPU seconds.

Then a paragraph: how each measure grows, and what N workers would give, extrapolated from the measured fit
time and overheads. Every configuration runs in a fresh client process (clean memory peaks); every backend
is warm before it is timed (worker processes started, modules imported; the cost of a cold start is in the
overhead section); each process and every worker uses one BLAS/OpenMP thread. The machine's load average is
printed with every row: on a shared machine, compare only rows measured back to back. ``--quick``: 40-epoch
headline, 5-epoch sweeps at 4 and 64 models, memory only for the pool sizes (about 2 minutes on 2 idle
cores); the default takes about 5 minutes there (more on a loaded machine). ``--json PATH`` saves everything.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

HEADLINE_EPOCHS, SCALING_EPOCHS, MEMORY_EPOCHS = 200, 20, 2
_T0 = time.perf_counter()


def progress(label: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.0f} s] {label} ...", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------------
# Child process: one configuration, measured in a fresh interpreter


def mlp(X: np.ndarray, y: np.ndarray, seed: int, epochs: int) -> Any:
    """The recipe: a 64-unit MLP, as benchmarks/membership.py trains its targets (warnings silenced)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        net = MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-6, max_iter=epochs, random_state=seed)
        return net.fit(X, y)


def _status(field: str) -> int:
    """A field of /proc/self/status in bytes (VmRSS, VmHWM); 0 where there is no /proc."""
    try:
        text = open("/proc/self/status").read()
    except OSError:
        return 0
    match = re.search(rf"{field}:\s+(\d+) kB", text)
    return int(match.group(1)) * 1024 if match else 0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes and all their descendants."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = proc.cpu_times()
                    total += times.user + times.system
        except psutil.Error:
            continue
    return total


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:  # "5": reset the peak RSS (Linux >= 4.0)
            fh.write("5")
    except OSError:
        pass


def _pool(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from mlpentest import datasets

    data = datasets.load("fashion-mnist")
    rows = np.random.RandomState(seed).permutation(len(data.X))[:n]
    return np.ascontiguousarray(data.X[rows]), data.y[rows].copy()


def _before(trainer: Any, X: np.ndarray, y: np.ndarray, m: int, seed: int, how: str, scheduler: str | None
            ) -> list[Any]:
    """The previous ReferenceModels.fit: every training subset materialised here, then shipped per job."""
    import joblib

    from mlpentest.training import fit_trainer

    rng = np.random.RandomState(seed)
    membership = np.argsort(rng.random_sample((len(X), m)), axis=1) < m // 2
    seeds = rng.randint(0, 2**31 - 1, size=m)
    jobs = [(X[membership[:, j]], y[membership[:, j]], int(seeds[j])) for j in range(m)]
    if how == "joblib":
        return joblib.Parallel(n_jobs=2)(joblib.delayed(fit_trainer)(trainer, *job) for job in jobs)
    from distributed import Client

    with Client(scheduler, set_as_default=False) as client, joblib.parallel_config(backend="dask",
                                                                                   client=client):
        return joblib.Parallel()(joblib.delayed(fit_trainer)(trainer, *job) for job in jobs)


class _Cluster:
    """``dask scheduler`` and ``dask worker --nworkers N --nthreads 1`` processes on 127.0.0.1, as a user
    starts them by hand (so the scheduler's work and memory are not counted in the client's)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> _Cluster:
        import socket

        from distributed import Client

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.scheduler_address = f"tcp://127.0.0.1:{port}"
        dask = [sys.executable, "-m", "dask"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
        try:
            scheduler = [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
            self.procs.append(subprocess.Popen(scheduler, **quiet))
            self.procs.append(subprocess.Popen([*dask, "worker", self.scheduler_address, "--nworkers",
                                                str(self.workers), "--nthreads", "1", "--host", "127.0.0.1",
                                                "--no-dashboard"], **quiet))
            with Client(self.scheduler_address, timeout="60s", set_as_default=False) as client:
                client.wait_for_workers(self.workers, timeout=120)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal

        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


def child_fit(spec: dict[str, Any]) -> dict[str, Any]:
    """Train ``spec["models"]`` reference models once; wall time and memory of the client."""
    import gc
    import tracemalloc

    from threadpoolctl import threadpool_limits

    from mlpentest.attacks.membership import ReferenceModels

    X, y = _pool(spec["pool"], spec["seed"])
    backend, m, address = spec["backend"], spec["models"], spec.get("scheduler")
    trainer = functools.partial(mlp, epochs=spec["epochs"])
    _warm_up(backend)
    kwargs: dict[str, Any] = {"serial": {}, "joblib": {"n_jobs": 2},
                              "dask": {"backend": "dask", "scheduler": address}}.get(backend, {})
    gc.collect()
    _reset_peak_rss()
    rss0 = _status("VmRSS")
    load = os.getloadavg()[0]
    if spec["memory"]:
        tracemalloc.start()
    cpu0 = cpu_seconds([os.getpid()])  # this process and joblib's worker processes
    start = time.perf_counter()
    with threadpool_limits(1):
        if backend.endswith("-before"):
            models = _before(trainer, X, y, m, spec["seed"], backend.split("-")[0], address)
        else:
            models = ReferenceModels(trainer, n_models=m, random_state=spec["seed"], **kwargs).fit(X, y)
    wall = time.perf_counter() - start
    cpu = cpu_seconds([os.getpid()]) - cpu0
    peak_rss = _status("VmHWM") - rss0
    out = {"wall": wall, "cpu": cpu, "rss": peak_rss, "load": load, "pool_mb": X.nbytes / 1e6}
    if spec["memory"]:
        gc.collect()  # garbage (e.g. serialisation buffers in reference cycles) is not kept by fit
        kept, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out.update(peak=peak, kept=kept)
    del models
    return out


def _imports() -> None:
    """What a worker imports to train: done before timing, so every backend starts warm."""
    import sklearn.neural_network  # noqa: F401

    import mlpentest.parallel  # noqa: F401
    import mlpentest.training  # noqa: F401


def _warm_up(backend: str) -> None:
    """Start joblib's worker processes (loky keeps them for the next call) and import the recipe's
    modules where it will run; Dask workers were warmed when their cluster started."""
    if backend.startswith("joblib"):
        import joblib

        joblib.Parallel(n_jobs=2)(joblib.delayed(_imports)() for _ in range(2))
    if backend.startswith("dask"):
        import distributed  # noqa: F401 - a first import inside the measurement would count ~17 MB
    _imports()


def _noop(shared: Any, item: int) -> int:
    return item


def _timed_fit(X: np.ndarray, y: np.ndarray, epochs: int) -> tuple[float, float, float]:
    """(wall, user CPU, system CPU) seconds of one fit, in whatever process runs it."""
    t0, w0 = os.times(), time.perf_counter()
    mlp(X, y, 0, epochs)
    t1 = os.times()
    return time.perf_counter() - w0, t1.user - t0.user, t1.system - t0.system


def _fit_on_shared(shared: tuple[np.ndarray, np.ndarray], epochs: int) -> tuple[float, float, float]:
    """A plain Dask task (no mlpentest wrapper): the worker's allocator as the nanny set it."""
    return _timed_fit(*shared, epochs)


def child_overhead(spec: dict[str, Any]) -> dict[str, Any]:
    """Per-task overhead of loky and Dask (1 and 2 workers), the pool's transfer, and the in-worker fit."""
    from threadpoolctl import threadpool_limits

    from mlpentest.parallel import iter_parallel

    X, y = _pool(spec["pool"], spec["seed"])
    n_tasks, out = spec["tasks"], {"load": os.getloadavg()[0], "pool_mb": X.nbytes / 1e6}

    def per_task(**kw: Any) -> tuple[float, float]:
        """(a first call of one no-op task: start, send the pool; seconds per further task of a call)."""
        start = time.perf_counter()
        list(iter_parallel(_noop, range(1), shared=(X, y), **kw))
        first = time.perf_counter() - start
        start = time.perf_counter()
        list(iter_parallel(_noop, range(1), shared=(X, y), **kw))  # warm: the cost of any call
        once = time.perf_counter() - start
        start = time.perf_counter()
        list(iter_parallel(_noop, range(n_tasks), shared=(X, y), **kw))
        return first, max(time.perf_counter() - start - once, 0.0) / (n_tasks - 1)

    out["serial"] = per_task(backend="sequential")
    out["loky"] = per_task(n_jobs=2)  # the first call also starts the worker processes
    half = X[: len(X) // 2], y[: len(X) // 2]
    from distributed import Client

    for workers in (1, 2):
        address = spec["schedulers"][str(workers)]
        out[f"dask{workers}"] = per_task(backend="dask", scheduler=address)
        with Client(address, set_as_default=False) as client:
            start = time.perf_counter()
            future = client.scatter([(X, y)], broadcast=True, hash=False)[0]
            out[f"scatter{workers}"] = time.perf_counter() - start
            del future
    address = spec["schedulers"]["1"]
    fits: dict[str, list[tuple[float, float, float]]] = {"client": [], "plain": [], "ours": []}
    with Client(address, set_as_default=False) as client:
        shared = client.scatter([half], broadcast=True, hash=False)[0]
        for repeat in range(spec["fit_repeats"] + 1):  # the first round warms every path up
            with threadpool_limits(1):
                timings = {"client": _timed_fit(*half, spec["epochs"])}
            timings["plain"] = client.submit(_fit_on_shared, shared, spec["epochs"], pure=False).result()
            timings["ours"] = _ours_fit(address, half, spec["epochs"])
            if repeat:
                for key, value in timings.items():
                    fits[key].append(value)
    out["fits"] = {k: np.median(np.array(v), axis=0).tolist() for k, v in fits.items()}
    out["load_end"] = os.getloadavg()[0]
    return out


def _ours_fit(scheduler: str, shared: tuple[np.ndarray, np.ndarray], epochs: int) -> tuple[float, ...]:
    """One fit through mlpentest.parallel on the cluster: (wall, user, system) inside the worker."""
    from mlpentest.parallel import iter_parallel

    ((_, timing),) = iter_parallel(_fit_on_shared, [epochs], shared=shared, backend="dask",
                                   scheduler=scheduler)
    return timing


# ----------------------------------------------------------------------------------------------------------
# Parent: run the configurations, print the tables


def run_child(spec: dict[str, Any], timeout: float = 3600) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{spec} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


ALL_TIMING = ["serial", "joblib, 2 processes", "dask, 1 worker", "dask, 2 workers"]
BACKENDS = {  # label -> (backend, workers)
    "serial": ("serial", 0), "joblib, 2 processes": ("joblib", 2), "dask, 1 worker": ("dask", 1),
    "dask, 2 workers": ("dask", 2), "dask, 2 workers, before": ("dask-before", 2),
    "joblib, 2 processes, before": ("joblib-before", 2),
}


_CLUSTERS: dict[int, _Cluster] = {}


def _warm_workers(scheduler: str) -> None:
    from distributed import Client

    with Client(scheduler, set_as_default=False) as client:
        client.run(_imports)


def scheduler_of(workers: int) -> str:
    """The address of a cluster of ``workers`` single-threaded workers, started once per run and warmed."""
    if workers not in _CLUSTERS:
        progress(f"starting a Dask scheduler and {workers} worker(s)")
        _CLUSTERS[workers] = _Cluster(workers).__enter__()
        _warm_workers(_CLUSTERS[workers].scheduler_address)
    return _CLUSTERS[workers].scheduler_address


def fit_run(label: str, *, models: int, pool: int, epochs: int, seed: int, memory: bool = False
            ) -> dict[str, Any]:
    backend, workers = BACKENDS[label]
    progress(f"{label}: {models} models, pool {pool}, {epochs} epochs{' (memory)' if memory else ''}")
    spec = {"kind": "fit", "backend": backend, "models": models, "pool": pool, "epochs": epochs,
            "seed": seed, "memory": memory,
            "scheduler": scheduler_of(workers) if backend.startswith("dask") else None}
    cluster = [p.pid for p in _CLUSTERS[workers].procs] if backend.startswith("dask") else []
    cpu0 = cpu_seconds(cluster)
    out = run_child(spec)
    out["cpu"] += cpu_seconds(cluster) - cpu0  # scheduler, nannies and workers
    return {"label": label, "models": models, "pool": pool, "epochs": epochs, **out}


def mb(value: float) -> str:
    return f"{value / 1e6:.1f}"


def headline(args: argparse.Namespace, epochs: int) -> dict[str, Any]:
    kw = {"models": 8, "pool": 5000, "epochs": epochs, "seed": args.seed}
    runs: dict[str, list[dict[str, Any]]] = {}
    runs["serial"] = [fit_run("serial", **kw)]
    for r in range(args.repeats):
        pair = ["joblib, 2 processes", "dask, 2 workers"]
        for label in pair if r % 2 == 0 else pair[::-1]:  # back to back, alternating which goes first
            runs.setdefault(label, []).append(fit_run(label, **kw))
    runs["dask, 1 worker"] = [fit_run("dask, 1 worker", **kw)]
    if not args.quick:
        runs["dask, 2 workers, before"] = [fit_run("dask, 2 workers, before", **kw)]
    serial = runs["serial"][0]["wall"]
    rows = []
    for label, rs in runs.items():
        walls = [r["wall"] for r in rs]
        cpus = [r["cpu"] for r in rs]
        rows.append([label, ", ".join(f"{w:.1f}" for w in walls), f"{np.median(walls):.1f}",
                     f"{serial / np.median(walls):.2f}x", ", ".join(f"{c:.1f}" for c in cpus),
                     ", ".join(f"{r['load']:.1f}" for r in rs)])
    pairs = list(zip(runs["joblib, 2 processes"], runs["dask, 2 workers"], strict=True))
    ratios = [d["wall"] / j["wall"] for j, d in pairs]
    cpu_ratios = [d["cpu"] / j["cpu"] for j, d in pairs]
    print(f"\n## Headline: 8 MLPs on 2500 Fashion-MNIST records each ({epochs} epochs at most)\n")
    print(aligned(["backend", "wall s (each run)", "median", "speed-up", "CPU s (all processes)",
                   "load at start"], rows, left={0}))
    print(f"\nDask (2 workers) / joblib (2 processes), per back-to-back pair: wall "
          f"{', '.join(f'{x:.2f}' for x in ratios)}, median {np.median(ratios):.2f} (goal: at most 1.15); "
          f"CPU seconds {', '.join(f'{x:.2f}' for x in cpu_ratios)}, median {np.median(cpu_ratios):.2f}. "
          "On a busy machine the CPU ratio is the steadier: both backends get the same share of 2 "
          "cores, and on idle cores the wall time follows the CPU time divided by 2.")
    return {"runs": runs, "dask_over_joblib": ratios, "dask_over_joblib_cpu": cpu_ratios}


def sweep(args: argparse.Namespace, title: str, points: list[tuple[int, int]], key: str, epochs: int,
          timing_labels: list[str], memory_labels: list[str]) -> dict[str, Any]:
    """Timing runs, then memory runs, for each (models, pool) in ``points``."""
    timing: dict[int, dict[str, dict[str, Any]]] = {}
    memory: dict[int, dict[str, dict[str, Any]]] = {}
    for models, pool in points:
        x = models if key == "models" else pool
        timing[x] = {lb: fit_run(lb, models=models, pool=pool, epochs=epochs, seed=args.seed)
                     for lb in timing_labels}
        memory[x] = {lb: fit_run(lb, models=models, pool=pool, epochs=MEMORY_EPOCHS, seed=args.seed,
                                 memory=True) for lb in memory_labels}
    if timing_labels:
        rows = []
        for x, t in timing.items():
            walls = [f"{t[lb]['wall']:.1f}" if lb in t else "-" for lb in ALL_TIMING]
            both = "dask, 2 workers" in t and "joblib, 2 processes" in t
            ratio = (f"{t['dask, 2 workers']['wall'] / t['joblib, 2 processes']['wall']:.2f} / "
                     f"{t['dask, 2 workers']['cpu'] / t['joblib, 2 processes']['cpu']:.2f}" if both else "-")
            loads = [r["load"] for r in t.values()]
            rows.append([str(x), *walls, ratio, f"{min(loads):.1f}-{max(loads):.1f}"])
        print(f"\n## {title}: wall time, s ({epochs} epochs at most)\n")
        print(aligned([key, "serial", "joblib 2", "dask 1", "dask 2", "dask2/joblib wall / CPU", "load"],
                      rows, left=set()))
    rows = []
    for x, mem in memory.items():
        for lb, r in mem.items():
            rows.append([str(x), lb, mb(r["peak"]), mb(r["kept"]), mb(r["peak"] - r["kept"]), mb(r["rss"]),
                         f"{r['pool_mb']:.1f}"])
    print(f"\n## {title}: client memory, MB ({MEMORY_EPOCHS} epochs; tracemalloc on)\n")
    print(aligned([key, "backend", "peak", "kept", "working", "RSS rise", "pool"], rows, left={1}))
    return {"timing": timing, "memory": memory}


def overhead(args: argparse.Namespace, epochs: int) -> dict[str, Any]:
    progress("per-task overhead, pool transfer, in-worker fit")
    spec = {"kind": "overhead", "pool": 5000, "seed": args.seed, "tasks": 100 if args.quick else 400,
            "epochs": epochs, "fit_repeats": 2 if args.quick else 3,
            "schedulers": {str(w): scheduler_of(w) for w in (1, 2)}}
    out = run_child(spec)
    rows = [[name, f"{out[key][0]:.2f}", f"{out[key][1] * 1e3:.2f}"]
            for name, key in (("sequential", "serial"), ("joblib, 2 processes", "loky"),
                              ("dask, 1 worker", "dask1"), ("dask, 2 workers", "dask2"))]
    print(f"\n## Overhead ({spec['tasks']} no-op tasks that receive the {out['pool_mb']:.1f} MB pool; "
          f"load {out['load']:.1f} -> {out['load_end']:.1f})\n")
    print(aligned(["backend", "first call of 1 task, s", f"per further task, ms ({spec['tasks']} tasks)"],
                  rows, left={0}))
    print(f"\nDask scatter of the pool to every worker: {out['scatter1']:.2f} s (1 worker), "
          f"{out['scatter2']:.2f} s (2 workers)")
    names = {"client": "client process (1 BLAS thread)", "plain": "Dask worker, plain task",
             "ours": "Dask worker, through mlpentest.parallel"}
    rows = [[names[k], f"{v[0]:.2f}", f"{v[1]:.2f}", f"{v[2]:.2f}"] for k, v in out["fits"].items()]
    print(f"\nOne MLP fit ({epochs} epochs, 2500 records), median of {spec['fit_repeats']}:\n")
    print(aligned(["where", "wall s", "user s", "system s"], rows, left={0}))
    return out


def _grow(timing: dict[int, dict[str, dict[str, Any]]], label: str) -> tuple[float, float]:
    """(slope, intercept) of wall time against x over the sweep's first and last points."""
    xs = sorted(timing)
    w0, w1 = timing[xs[0]][label]["wall"], timing[xs[-1]][label]["wall"]
    slope = (w1 - w0) / (xs[-1] - xs[0])
    return slope, w0 - slope * xs[0]


def extrapolate(results: dict[str, Any]) -> str:
    """How each measure grows, and what N workers would give (from the measured costs)."""
    paragraphs = []
    short = {"serial": "serial", "joblib, 2 processes": "joblib (2 processes)",
             "dask, 1 worker": "Dask (1 worker)", "dask, 2 workers": "Dask (2 workers)"}
    mods, pools = results.get("models"), results.get("pool")
    if mods:
        fits = {name: _grow(mods["timing"], lb) for lb, name in short.items()
                if all(lb in t for t in mods["timing"].values())}
        cells = [f"{name} {a:.2f} s per model + {b:.1f} s" for name, (a, b) in fits.items()]
        paragraphs.append(
            "Time against models: linear, " + "; ".join(cells) + " (slope and intercept between the first "
            "and last rows; the intercept is the fixed cost of starting processes, connecting and sending "
            "the pool, blurred by the machine's load)."
        )
    if pools and pools["timing"] and all("serial" in t for t in pools["timing"].values()):
        per = [f"{x}: {pools['timing'][x]['serial']['wall'] / 16:.2f} s" for x in sorted(pools["timing"])]
        paragraphs.append(
            "Time against pool size: each model trains on half the pool, so a model's fit grows with it "
            "(serial, per model: " + ", ".join(per) + "); the pool is sent once per call whatever the "
            "number of models."
        )
    if mods:
        mem = mods["memory"]
        lo, hi = min(mem), max(mem)
        parts = []
        for lb in ("serial", "joblib, 2 processes", "dask, 2 workers", "joblib, 2 processes, before"):
            if lb in mem[lo]:
                a, b = mem[lo][lb], mem[hi][lb]
                parts.append(f"{lb}: peak {mb(a['peak'])} -> {mb(b['peak'])} MB, of which not kept "
                             f"{mb(a['peak'] - a['kept'])} -> {mb(b['peak'] - b['kept'])} MB")
        kept = (mem[hi]["joblib, 2 processes"]["kept"] - mem[lo]["joblib, 2 processes"]["kept"]) / (hi - lo)
        paragraphs.append(
            f"Client memory from {lo} to {hi} models: " + "; ".join(parts) + f". What fit returns grows by "
            f"{kept / 1e3:.0f} kB per model (the fitted MLPs, with their Adam state, and the membership "
            "matrix); everything else is bounded by the pool's size (checks, row hashes, the one copy joblib "
            "writes to its memory map or Dask serialises), not by the number of models. The previous "
            "implementation held every training subset at once."
        )
    head, over = results.get("headline"), results.get("overhead")
    if head and over:
        t_fit = head["runs"]["serial"][0]["wall"] / 8  # one core: the serial run's time per model
        o_task, start = over["dask2"][1], over["dask2"][0]
        copy = max(over["scatter2"] - over["scatter1"], 0.0)
        lines = []
        for m in (64, 256):
            cells = []
            for n in (2, 8, 32, 128):
                fixed = start + copy * math.ceil(math.log2(n)) + m * o_task
                t = fixed + math.ceil(m / n) * t_fit
                cells.append(f"N={n}: {m * t_fit / t:.1f}x ({100 * fixed / t:.0f}% overhead)")
            lines.append(f"{m} models: " + ", ".join(cells))
        paragraphs.append(
            f"N workers (extrapolated on paper from the costs measured here, not measured on a cluster): "
            f"a headline model costs t_fit = {t_fit:.1f} s on one core (the serial run / 8); a Dask call "
            f"costs {start:.2f} s to connect, scatter the pool and run a first task; each further task "
            f"{o_task * 1e3:.1f} ms of scheduling and transfer; the pool reaches one more worker in "
            f"{copy:.2f} s (scatter to 2 workers minus 1), and the scheduler copies it worker to worker in "
            "a binary tree, so N workers need about log2(N) rounds. With N one-core workers, T(N) ~ start + "
            "log2(N) x copy + m x task + ceil(m / N) x t_fit, and the speed-up over one core is "
            "m x t_fit / T(N): " + "; ".join(lines) + ". Past N = m more workers buy nothing; a real "
            "network copies the pool more slowly than loopback (a 300 MB CIFAR-sized pool at 1 GB/s: 0.3 s "
            "per round)."
        )
    return "\n\n".join(textwrap.fill(p, 110) for p in paragraphs)


def aligned(head: list[str], rows: list[list[str]], *, left: set[int]) -> str:
    import _common as common  # benchmarks/ is on sys.path when a script runs

    return common.aligned(head, rows, left=left)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smaller runs everywhere (a few minutes)")
    p.add_argument("--sections", default="headline,models,pool,overhead",
                   help="comma-separated: headline, models, pool, overhead (default: all)")
    p.add_argument("--repeats", type=int, default=2, help="back-to-back joblib/Dask pairs in the headline")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also save every measurement as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        result = child_fit(spec) if spec["kind"] == "fit" else child_overhead(spec)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    unknown = sections - {"headline", "models", "pool", "overhead"}
    if unknown:
        raise SystemExit(f"--sections: unknown {sorted(unknown)}")
    import platform

    import distributed
    import joblib
    import sklearn

    epochs = 40 if args.quick else HEADLINE_EPOCHS
    scaling = 5 if args.quick else SCALING_EPOCHS
    print("# Reference models: scaling with models, pool size and backend (Fashion-MNIST)\n")
    print(f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"joblib {joblib.__version__}, distributed {distributed.__version__}; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f} at start; 1 BLAS thread per process; every backend warm "
          "(processes started, modules imported) before it is timed")
    results: dict[str, Any] = {"quick": args.quick, "seed": args.seed, "load_start": os.getloadavg()[0]}
    new = ["serial", "joblib, 2 processes", "dask, 2 workers"]
    before = ["joblib, 2 processes, before"]
    try:
        if "headline" in sections:
            results["headline"] = headline(args, epochs)
        if "models" in sections:
            counts = (4, 64) if args.quick else (4, 16, 64)
            results["models"] = sweep(args, "Models (pool of 5000)", [(m, 5000) for m in counts], "models",
                                      scaling, new if args.quick else ALL_TIMING, new + before)
        if "pool" in sections:
            pools = (2000, 5000) if args.quick else (2000, 5000, 20000)
            results["pool"] = sweep(args, "Pool size (16 models)", [(16, p) for p in pools], "pool", scaling,
                                    [] if args.quick else ALL_TIMING, new[1:] + before)
        if "overhead" in sections:
            results["overhead"] = overhead(args, scaling)
    finally:
        for cluster in _CLUSTERS.values():
            cluster.__exit__()
    results["load_end"] = os.getloadavg()[0]
    print("\n## How it grows\n")
    print(extrapolate(results))
    print(f"\nload average {results['load_start']:.2f} at start, {results['load_end']:.2f} at the end")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
