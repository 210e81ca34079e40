"""Serving: queries per second through mlpentest's HTTP client on loopback, and what attacks pay for HTTP.

The server is started as a user would start it: ``mlpentest serve MODEL.skops --port 0 --quiet`` in a
subprocess (one BLAS thread, like the benchmark process); every client runs in this process.

Sections (``--sections``, all by default):

``throughput`` — two targets, scikit-learn MLPs saved with skops: digits (64 features, 64 hidden units,
trained on 400 images) and Fashion-MNIST (784 features, 128 hidden units, ``--fmnist-train`` images). Each
is queried for probabilities on held-out rows with one sample per request and batches of ``--batches``,
by three clients:

* ``in-process``: ``wrap(model).predict_proba`` in this process, no HTTP: the floor;
* ``mlpentest``: ``wrap(url, batch_size=B).predict_proba`` (the client every attack uses);
* ``httpx``: a bare ``httpx.Client`` posting ``{"inputs": X.tolist()}`` and reading ``probabilities``
  with ``numpy.asarray``: the reference for what the client itself adds.

Per cell: requests per second, samples per second, client-side latency p50/p95 of one request, the CPU
time per request of this process and of the server and the time both waited for a CPU (the scheduler's
accounting: on a shared machine the CPU columns are the stable ones), the time per sample as a ratio to
in-process, and whether the answers are bit-identical to in-process ones. Each cell runs at least
``--min-requests`` requests and then until ``--cell-seconds`` have passed, after a few warm-up requests to
each new server.

``profile`` — where one request's time goes, at the batch sizes of ``--profile-batches``: each step of the
path timed on its own in this process (median CPU time of repeats, which other work on the machine does
not inflate) with the same bodies and the server's own code (:class:`mlpentest.serve.app.ServedModel`, the
payload parser, FastAPI's ``JSONResponse``): the client building the request (``X.tolist()`` + JSON), the
server's JSON parse, its validation (float64 conversion, shape, the boolean scan, finiteness), the model
(``predict`` for the labels and ``predict_proba``), the answer's encoding (``tolist`` + JSON), the client
decoding it. The round trips themselves are metered with the scheduler's accounting of both processes
(``/proc/PID/task/*/schedstat``): each side's CPU per request less its steps is its HTTP machinery (h11,
ASGI/FastAPI routing, the threadpool hop on the server; httpx on the client), and the mean round trip less
both sides' CPU is waiting (for a CPU on a busy machine, wake-ups, loopback). For scale: a ``GET
/v2/health/live`` round trip, one threadpool hop alone, and what-if rows (the boolean scan as a byte
search, raw float64 bodies, orjson where installed).

``attacks`` — digits, the overfit MLP of ``tests/serve/`` as target; the same attack in-process
(``wrap(model)``) and over HTTP (``wrap(url)``), with wall times and their ratio, requests sent, and
whether the results are identical: ``collect_signals`` on 200 members + 200 non-members with
``--refs`` reference models (trained once, outside the timings) followed by LiRA and RMIA; ``Retraining``
(adaptive) against the labels only (``LabelsOnly``); HopSkipJump against the labels only on a few points
(many small requests: the worst case for HTTP).

Progress goes to stderr, the tables to stdout; ``--json PATH`` saves setup and rows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _common as common  # benchmarks/ is on sys.path when a script runs
import numpy as np
from _common import aligned, cell

from mlpentest import datasets
from mlpentest.models import wrap
from mlpentest.supplychain import safe

SECTIONS = ("throughput", "profile", "attacks")
QUICK = {"cell_seconds": 0.25, "repeat_seconds": 0.08, "min_requests": 2, "fmnist_train": 1000,
         "fmnist_iter": 10, "refs": 2, "hsj_points": 3, "hsj_iter": 3, "retrain_budget": 100}
_T0 = time.perf_counter()
# the server gets the benchmark's thread limit too (the env is read when numpy/BLAS load)
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def progress(label: str) -> None:
    print(f"[{time.perf_counter() - _T0:6.0f} s] {label} ...", file=sys.stderr, flush=True)


@dataclass
class ThroughputRow:
    model: str
    client: str
    batch: int
    requests: int
    samples: int
    requests_per_s: float
    samples_per_s: float
    p50_ms: float
    p95_ms: float
    client_cpu_ms: float | None  # per request, this process (all threads)
    server_cpu_ms: float | None  # per request, the server process
    runq_ms: float | None  # per request: time both processes were runnable but waited for a CPU
    ratio: float | None  # time per sample over in-process's, same model and batch
    identical: bool | None


@dataclass
class ProfileRow:
    model: str
    batch: int
    step: str
    value: float
    unit: str  # "ms CPU", "ms wall" or "kB"
    share: float | None  # of the measured round trip


@dataclass
class AttackRow:
    attack: str
    setting: str
    samples_sent: int  # to /predict by the HTTP client, X_test scoring included
    requests: int
    inprocess_s: float
    http_s: float
    ratio: float
    identical: bool
    result: str


# ---------------------------------------------------------------------- the server
class Server:
    """``mlpentest serve PATH --port 0 --quiet`` in a subprocess, started at once; :meth:`wait` returns the
    URL it prints (servers started one after the other boot in parallel)."""

    def __init__(self, path: Path, threads: int | None, extra: tuple[str, ...] = ()):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if threads:
            env.update(dict.fromkeys(_THREAD_ENV, str(threads)))
        self.log = tempfile.TemporaryFile(mode="w+")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlpentest", "serve", str(path), "--port", "0", "--quiet", *extra],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        self._line: list[tuple[str, float]] = []
        self._reader = threading.Thread(target=self._read_url, daemon=True)
        self._reader.start()
        self.url: str | None = None
        self.start_seconds = float("nan")

    def _read_url(self) -> None:
        line = self.proc.stdout.readline()
        self._line.append((line, time.perf_counter() - self.started_at))

    def wait(self, timeout: float = 180.0) -> str:
        if self.url is None:
            self._reader.join(timeout)
            line = self._line[0][0] if self._line else ""
            if not line.startswith("http://"):
                self.stop()
                raise RuntimeError(f"the server did not start: {line!r} {self.stderr()[-2000:]}")
            self.url, self.start_seconds = line.strip(), self._line[0][1]
        return self.url

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        err = self.stderr()
        self.log.close()
        if "Traceback" in err:
            print(f"server stderr:\n{err[-3000:]}", file=sys.stderr)


# ---------------------------------------------------------------------- data and models
@dataclass
class Target:
    name: str
    model: Any
    path: Path
    X_query: np.ndarray  # held-out rows the clients send


def digits_data(seed: int) -> dict[str, np.ndarray]:
    """Digits scaled to [0, 1], shuffled, in the disjoint slices of ``tests/serve/conftest.py``."""
    data = datasets.load("digits")
    X, y = np.asarray(data.X, dtype=np.float64), np.asarray(data.y)
    X = X / X.max()
    order = np.random.RandomState(seed).permutation(len(X))
    X, y = X[order], y[order]
    names = ("train", "out", "pool")
    out = {f"X_{k}": X[400 * i: 400 * (i + 1)] for i, k in enumerate(names)}
    out |= {f"y_{k}": y[400 * i: 400 * (i + 1)] for i, k in enumerate(names)}
    out |= {"X_test": X[1200:], "y_test": y[1200:]}
    return out


def mlp(hidden: int, max_iter: int, seed: int) -> Any:
    """The target's recipe (the attacker's reference models use it too)."""
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(hidden,), alpha=1e-6, max_iter=max_iter, random_state=seed)


def targets(args: argparse.Namespace, workdir: Path, digits: dict[str, np.ndarray]) -> list[Target]:
    progress("training the targets")
    out = []
    model = mlp(64, 300, args.seed).fit(digits["X_train"], digits["y_train"])
    out.append(Target("digits", model, workdir / "digits.skops", digits["X_test"]))
    data = datasets.load("fashion-mnist", download=False)
    pools = data.split({"train": args.fmnist_train, "test": 2048}, random_state=args.seed)
    X = np.asarray(pools["train"].X, dtype=np.float64)
    model = mlp(128, args.fmnist_iter, args.seed).fit(X, pools["train"].y)
    out.append(Target("fashion-mnist", model, workdir / "fmnist.skops",
                      np.asarray(pools["test"].X, dtype=np.float64)))
    for t in out:
        safe.save(t.model, t.path)
    return out


# ---------------------------------------------------------------------- throughput
def chunks_of(X: np.ndarray, batch: int, count: int) -> list[np.ndarray]:
    """``count`` batches of ``batch`` rows of ``X`` (cycled when ``X`` is shorter)."""
    rows = np.resize(np.arange(len(X)), batch * count)
    return [X[rows[i * batch:(i + 1) * batch]] for i in range(count)]


def timed_requests(call: Callable[[np.ndarray], Any], chunks: list[np.ndarray], min_requests: int,
                   seconds: float) -> tuple[list[float], float, Any]:
    """Per-request latencies and the total time of at least ``min_requests`` calls, then until
    ``seconds`` have passed; and the first call's answer (for ``chunks[0]``). No warm-up call: the
    clients are connected already (the mlpentest client by its GET /info, the httpx one by
    ``httpx_client``), and the models were called before."""
    lat: list[float] = []
    first = None
    start = time.perf_counter()
    while len(lat) < min_requests or time.perf_counter() - start < seconds:
        x = chunks[len(lat) % len(chunks)]
        t = time.perf_counter()
        answer = call(x)
        lat.append(time.perf_counter() - t)
        first = answer if first is None else first
    return lat, time.perf_counter() - start, first


def _sched(pid: int | str) -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable but waiting for one) of all threads of ``pid``, from the
    scheduler's own accounting (/proc/PID/task/*/schedstat, nanoseconds); None where unavailable."""
    run = wait = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as fh:
                fields = fh.read().split()
            run, wait = run + int(fields[0]), wait + int(fields[1])
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return run / 1e9, wait / 1e9


class CpuMeter:
    """CPU and run-queue time of this process and the server between :meth:`start` and :meth:`per`."""

    def __init__(self, server_pid: int | None):
        self.server_pid = server_pid

    def start(self) -> None:
        self.client = _sched("self")
        self.server = _sched(self.server_pid) if self.server_pid else None

    def per(self, n: int) -> tuple[float | None, float | None, float | None]:
        """(client CPU, server CPU, run-queue wait of both) per request, seconds."""
        client = _sched("self")
        server = _sched(self.server_pid) if self.server_pid else None
        c = None if client is None or self.client is None else [(b - a) / n for a, b in zip(
            self.client, client, strict=True)]
        v = None if server is None or self.server is None else [(b - a) / n for a, b in zip(
            self.server, server, strict=True)]
        runq = None if c is None else c[1] + (v[1] if v is not None else 0.0)
        return (None if c is None else c[0]), (None if v is None else v[0]), runq


def httpx_client(url: str) -> tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    import httpx

    client = httpx.Client(base_url=url, timeout=120)
    client.get("/v2/health/live").raise_for_status()  # connected, like wrap(url) after its GET /info

    def call(x: np.ndarray) -> np.ndarray:
        r = client.post("/predict", json={"inputs": x.tolist(), "output": "proba"})
        r.raise_for_status()
        return np.asarray(r.json()["probabilities"], dtype=np.float64)

    return client, call


def warm_up(url: str, X: np.ndarray) -> None:
    """A few requests before any timing: the server's first answers pay one-off costs (lazy imports, the
    threadpool's threads, first model calls) that would land in the first cell."""
    with wrap(url) as remote:
        for batch in (1, 1, 1, 16, 16, 128):
            remote.predict_proba(X[:batch])


def run_throughput(target: Target, url: str, pid: int, args: argparse.Namespace,
                   rows: list[ThroughputRow]) -> None:
    local = wrap(target.model)
    client, raw = httpx_client(url)
    try:
        for batch in args.batches:
            chunks = chunks_of(target.X_query, batch, max(2, min(16, 4096 // batch)))
            expected = local.predict_proba(chunks[0])
            remote = wrap(url, batch_size=batch)
            floor = None
            for name, call in (("in-process", local.predict_proba), ("mlpentest", remote.predict_proba),
                               ("httpx", raw)):
                progress(f"throughput: {target.name}, batch {batch}, {name}")
                meter = CpuMeter(None if name == "in-process" else pid)
                meter.start()
                lat, total, answer = timed_requests(call, chunks, args.min_requests, args.cell_seconds)
                n = len(lat)
                cpu = [None if v is None else 1e3 * v for v in meter.per(n)]
                identical = None if name == "in-process" else bool(np.array_equal(answer, expected))
                per_sample = total / (n * batch)
                floor = per_sample if name == "in-process" else floor
                rows.append(ThroughputRow(
                    target.name, name, batch, n, n * batch, n / total, n * batch / total,
                    1e3 * float(np.percentile(lat, 50)), 1e3 * float(np.percentile(lat, 95)), *cpu,
                    None if name == "in-process" else per_sample / floor, identical))
            remote.close()
    finally:
        client.close()


# ---------------------------------------------------------------------- profile
_REPEAT = {"seconds": 0.3}  # --repeat-seconds


def median_seconds(fn: Callable[[], Any], budget: float | None = None, max_reps: int = 200,
                   clock: Callable[[], float] = time.perf_counter) -> float:
    """Median time of ``fn()`` on ``clock`` (wall by default; ``time.thread_time``: this thread's CPU,
    which a busy machine does not inflate) over repeats filling about ``budget`` wall seconds
    (``--repeat-seconds``), at least 3, after one untimed call."""
    budget = _REPEAT["seconds"] if budget is None else budget
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget and len(times) < max_reps):
        t = clock()
        fn()
        times.append(clock() - t)
    return statistics.median(times)


def cpu_seconds(fn: Callable[[], Any]) -> float:
    """Median CPU time of ``fn()`` in this thread."""
    return median_seconds(fn, clock=time.thread_time)


def threadpool_hop_seconds(reps: int = 300) -> float:
    """One ``run_in_threadpool`` round trip from an event loop (what each /predict pays once)."""
    from starlette.concurrency import run_in_threadpool

    async def hops() -> float:
        await run_in_threadpool(int)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            await run_in_threadpool(int)
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    return asyncio.run(hops())


def run_profile(target: Target, url: str, pid: int, args: argparse.Namespace, rows: list[ProfileRow]) -> None:
    import httpx

    from mlpentest.serve.app import ServedModel

    served = ServedModel(target.model)  # the server's own code, in this process
    remote = wrap(url)
    local = wrap(target.model)
    with httpx.Client(base_url=url, timeout=60) as raw:
        health = median_seconds(lambda: raw.get("/v2/health/live"))
    hop = threadpool_hop_seconds()
    for batch in args.profile_batches:
        progress(f"profile: {target.name}, batch {batch}")
        remote.batch_size = batch
        for step, v, unit, share in profile_batch(chunks_of(target.X_query, batch, 1)[0], served, remote,
                                                  local, pid, args):
            value = v / 1e3 if unit == "kB" else 1e3 * v
            rows.append(ProfileRow(target.name, batch, step, value, unit, share))
        for step, v in (("reference: GET /v2/health/live round trip", health),
                        ("reference: one threadpool hop alone", hop)):
            rows.append(ProfileRow(target.name, batch, step, 1e3 * v, "ms wall", None))
    remote.close()


def profile_batch(x: np.ndarray, served: Any, remote: Any, local: Any, pid: int,
                  args: argparse.Namespace) -> list[tuple[str, float, str, float | None]]:
    """``(step, seconds or bytes, unit, share of the mean round trip)`` of one request carrying ``x``.

    The round trips are metered (:class:`CpuMeter`): the client's and the server's CPU per request less
    the steps timed apart is the HTTP machinery's CPU on each side; run-queue time is the machine's load;
    what remains is idle waiting (wake-ups, loopback)."""
    import httpx
    from fastapi.responses import JSONResponse

    from mlpentest.serve._payload import _may_hold_booleans, parse_json, predict_request

    who = served._client("benchmark", "admin")
    shape, max_batch = served.base.input_shape, served.config.max_batch
    remote.predict_proba(x)
    meter = CpuMeter(pid)
    meter.start()
    lat, total, _ = timed_requests(remote.predict_proba, [x], max(5, args.min_requests),
                                   2 * args.cell_seconds)
    client_cpu, server_cpu, runq = meter.per(len(lat))
    round_trip, p50 = total / len(lat), float(np.median(lat))
    floor = median_seconds(lambda: local.predict_proba(x))
    body = json.dumps({"inputs": x.tolist(), "output": "proba"}, separators=(",", ":")).encode()
    doc = parse_json(body)
    X, _ = predict_request(doc, input_shape=shape, max_batch=max_batch)
    labels, P = served.answer(who, X, want_proba=True)

    def encode_answer() -> bytes:
        out = {"model": "model", "labels": labels.tolist(), "probabilities": P.tolist(),
               **served.usage(who)}
        return JSONResponse(out).body

    def binary_both_ways() -> None:  # what a raw float64 body would cost instead of the JSON steps
        X2 = np.frombuffer(x.tobytes(), dtype=np.float64).reshape(len(x), -1)
        np.isfinite(X2).all()
        np.frombuffer(P.tobytes(), dtype=np.float64).reshape(len(P), -1)

    answer = encode_answer()
    json_steps = [
        ("client: check X, build request (tolist + JSON)",
         cpu_seconds(lambda: remote._check_X(x)) + cpu_seconds(lambda: httpx.Request(
             "POST", remote.url + "/predict", json={"inputs": x.tolist(), "output": "proba"}))),
        ("server: JSON parse", cpu_seconds(lambda: parse_json(body))),
        ("server: validation (float64, shape, booleans, finite)",
         cpu_seconds(lambda: predict_request(doc, input_shape=shape, max_batch=max_batch))),
    ]
    scan = cpu_seconds(lambda: _may_hold_booleans(doc["inputs"]))
    model = cpu_seconds(lambda: served.answer(who, X, want_proba=True))
    proba = cpu_seconds(lambda: served.chain.predict_proba(X))
    json_tail = [
        ("server: encode answer (tolist + JSON)", cpu_seconds(encode_answer)),
        ("client: decode answer (JSON + numpy)", cpu_seconds(
            lambda: np.asarray(json.loads(answer)["probabilities"], dtype=np.float64))),
    ]
    json_total = sum(v for _, v in json_steps + json_tail)
    steps = dict(json_steps + json_tail)
    cpu = "ms CPU"
    if client_cpu is None or server_cpu is None:  # no schedstat here: one remainder
        rest = [("the rest: HTTP on both sides, ASGI, threadpool hop, waiting, loopback",
                 round_trip - json_total - model, "ms wall")]
    else:
        server_steps = model + sum(v for k, v in steps.items() if k.startswith("server"))
        client_steps = sum(v for k, v in steps.items() if k.startswith("client"))
        rest = [("server: HTTP parse, ASGI, FastAPI, threadpool (its CPU less the steps)",
                 server_cpu - server_steps, cpu),
                ("client: httpx, HTTP (its CPU less the steps)", client_cpu - client_steps, cpu),
                ("waiting: for a CPU (the load), wake-ups, loopback (the rest)",
                 round_trip - client_cpu - server_cpu, "ms wall")]
    table: list[tuple[str, float, str, bool]] = [
        *((k, v, cpu, True) for k, v in json_steps),
        ("  of which the boolean scan", scan, cpu, True),
        ("server: model (predict for labels + predict_proba)", model, cpu, True),
        ("  of which predict_proba alone", proba, cpu, True),
        *((k, v, cpu, True) for k, v in json_tail),
        *((k, v, unit, True) for k, v, unit in rest),
        (f"round trip through wrap(url) (mean of {len(lat)})", round_trip, "ms wall", True),
        ("all JSON steps above (client and server)", json_total, cpu, True),
        ("reference: round trip p50", p50, "ms wall", False),
        *((f"reference: {k}", v, unit, False) for k, v, unit in (
            ("client CPU per request", client_cpu, cpu), ("server CPU per request", server_cpu, cpu),
            ("run-queue wait per request, both processes", runq, "ms wall")) if v is not None),
        ("reference: in-process wrap(model).predict_proba", floor, "ms wall", False),
        ("what if: boolean scan as a byte search of the body",
         cpu_seconds(lambda: b"true" in body or b"false" in body), cpu, False),
        ("what if: raw float64 bodies instead of JSON (both ways)", cpu_seconds(binary_both_ways), cpu,
         False),
        *orjson_what_if(x, P),
        ("request body", len(body), "kB", False),
        ("answer body", len(answer), "kB", False),
    ]
    return [(step, v, unit, v / round_trip if share else None) for step, v, unit, share in table]


def orjson_what_if(x: np.ndarray, P: np.ndarray) -> list[tuple[str, float, str, bool]]:
    """The four JSON steps with orjson, where it is installed (it is not a dependency)."""
    try:
        import orjson
    except ImportError:
        return []

    def both_ways() -> tuple[np.ndarray, np.ndarray]:
        numpy = orjson.OPT_SERIALIZE_NUMPY
        doc = orjson.loads(orjson.dumps({"inputs": x, "output": "proba"}, option=numpy))
        answer = orjson.loads(orjson.dumps({"probabilities": P}, option=numpy))
        return (np.array(doc["inputs"], dtype=np.float64),
                np.asarray(answer["probabilities"], dtype=np.float64))

    X2, P2 = both_ways()
    same = "bit-identical" if np.array_equal(X2, x) and np.array_equal(P2, P) else "NOT bit-identical"
    return [(f"what if: orjson for the JSON steps (both ways; {same})", cpu_seconds(both_ways), "ms CPU",
             False)]


def server_stack(threads: int | None) -> str:
    """Which HTTP parser and event loop uvicorn's "auto" picks in the server's environment."""
    env = dict(os.environ)
    if threads:
        env.update(dict.fromkeys(_THREAD_ENV, str(threads)))
    probe = ("import importlib.util as u; print('httptools' if u.find_spec('httptools') else 'h11', "
             "'uvloop' if u.find_spec('uvloop') else 'asyncio')")
    try:
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                             timeout=60).stdout.split()
        return f"HTTP parser {out[0]}, event loop {out[1]}"
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


# ---------------------------------------------------------------------- attacks
def candidates(d: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The membership candidates: 200 of the target's training rows, 200 others; and the truth."""
    X = np.concatenate([d["X_train"][:200], d["X_out"][:200]])
    y = np.concatenate([d["y_train"][:200], d["y_out"][:200]])
    return X, y, np.r_[np.ones(200, bool), np.zeros(200, bool)]


def reference_models(d: dict[str, np.ndarray], args: argparse.Namespace) -> Any:
    """The attacker's reference models (the target's recipe) on the candidates and 200 pool rows."""
    from mlpentest.attacks.membership import ReferenceModels

    X, y, _ = candidates(d)
    return ReferenceModels(mlp(64, 300, args.seed), n_models=args.refs, random_state=args.seed).fit(
        np.concatenate([X, d["X_pool"][:200]]), np.concatenate([y, d["y_pool"][:200]]))


def run_attacks(url: str, model: Any, digits: dict[str, np.ndarray], refs: Any, args: argparse.Namespace,
                rows: list[AttackRow]) -> None:
    from mlpentest.attacks.evasion import HopSkipJump
    from mlpentest.attacks.extraction import Retraining
    from mlpentest.attacks.membership import RMIA, LiRA, collect_signals
    from mlpentest.defenses import LabelsOnly

    d = digits
    X, y, truth = candidates(d)

    def membership(target: Any) -> tuple[Any, dict[str, Any]]:
        signals = collect_signals(target, X, y, is_member=truth, references=refs)
        return signals, {a.attack: a for a in (LiRA().run(signals), RMIA().run(signals))}

    def twice(label: str, attack: Callable[[Any], Any]) -> tuple[Any, Any, float, float, Any]:
        progress(f"attacks: {label}, in-process")
        t = time.perf_counter()
        local = attack(wrap(model))
        t_local = time.perf_counter() - t
        progress(f"attacks: {label}, over HTTP")
        remote_model = wrap(url)
        t = time.perf_counter()
        remote = attack(remote_model)
        t_http = time.perf_counter() - t
        remote_model.close()
        return local, remote, t_local, t_http, remote_model

    (sig_a, res_a), (sig_b, res_b), t_a, t_b, rm = twice("collect_signals + LiRA + RMIA", membership)
    same = np.array_equal(sig_a.target_proba, sig_b.target_proba) and all(
        res_a[k].auc == res_b[k].auc and res_a[k].tpr_at_1pct_fpr == res_b[k].tpr_at_1pct_fpr for k in res_a)
    aucs = ", ".join(f"{k} AUC {v.auc:.3f}" for k, v in res_b.items())
    rows.append(AttackRow("collect_signals + LiRA + RMIA",
                          f"400 candidates + 200 population, {args.refs} refs",
                          rm.queries, rm.requests - 1, t_a, t_b, t_b / t_a, bool(same), aucs))

    kw = {"strategy": "adaptive", "budget": args.retrain_budget, "rounds": max(2, args.retrain_budget // 50),
          "random_state": args.seed}
    a, b, t_a, t_b, rm = twice("Retraining (labels only)", lambda m: Retraining(LabelsOnly(m), **kw).run(
        d["X_pool"], X_test=d["X_test"]))
    same = a.queries == b.queries and a.fidelity == b.fidelity and np.array_equal(
        a.stolen.predict(d["X_test"]), b.stolen.predict(d["X_test"]))
    rows.append(AttackRow("Retraining (labels only)",
                          f"adaptive, budget {kw['budget']}, {kw['rounds']} rounds",
                          rm.queries, rm.requests - 1, t_a, t_b, t_b / t_a, bool(same),
                          f"fidelity {b.fidelity:.3f}"))

    Xe, ye = d["X_test"][:args.hsj_points], d["y_test"][:args.hsj_points]
    kw = {"max_iter": args.hsj_iter, "max_evals": 200, "init_evals": 50, "random_state": args.seed}
    a, b, t_a, t_b, rm = twice("HopSkipJump (labels only)",
                               lambda m: HopSkipJump(LabelsOnly(m), **kw).run(Xe, ye))
    same = np.array_equal(a.x_adv, b.x_adv) and a.queries == b.queries
    rows.append(AttackRow("HopSkipJump (labels only)",
                          f"{args.hsj_points} points, {args.hsj_iter} iterations",
                          rm.queries, rm.requests - 1, t_a, t_b, t_b / t_a, bool(same),
                          f"success {b.success_rate:.2f}"))


# ---------------------------------------------------------------------- report
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated of {', '.join(SECTIONS)}")
    p.add_argument("--batches", default="1,16,128,1024", help="samples per request (default 1,16,128,1024)")
    p.add_argument("--profile-batches", default="1,128", help="batch sizes profiled (default 1,128)")
    p.add_argument("--cell-seconds", type=float, default=2.0,
                   help="seconds each throughput cell runs at least (default 2)")
    p.add_argument("--repeat-seconds", type=float, default=0.3,
                   help="seconds each profiled step is repeated for its median (default 0.3)")
    p.add_argument("--min-requests", type=int, default=10, help="requests per cell at least (default 10)")
    p.add_argument("--fmnist-train", type=int, default=5000,
                   help="Fashion-MNIST images the 784-feature target trains on (default 5000)")
    p.add_argument("--fmnist-iter", type=int, default=30, help="its training epochs (default 30)")
    p.add_argument("--refs", type=int, default=8, help="reference models of LiRA/RMIA (default 8)")
    p.add_argument("--retrain-budget", type=int, default=400, help="Retraining's queries (default 400)")
    p.add_argument("--hsj-points", type=int, default=8, help="HopSkipJump's points (default 8)")
    p.add_argument("--hsj-iter", type=int, default=6, help="HopSkipJump's iterations (default 6)")
    p.add_argument("--quick", action="store_true",
                   help=f"{QUICK['cell_seconds']} s per cell, {QUICK['refs']} refs, HopSkipJump on "
                   f"{QUICK['hsj_points']} points (under a minute)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads, this process and the server (default 1)")
    p.add_argument("--json", metavar="PATH", help="also save the setup and rows as JSON")
    args = p.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        p.error(f"--sections: unknown {unknown}; choose from {', '.join(SECTIONS)}")
    try:
        args.batches = [int(b) for b in args.batches.split(",")]
        args.profile_batches = [int(b) for b in str(args.profile_batches).split(",")]
    except ValueError:
        p.error("--batches / --profile-batches: expected comma-separated integers")
    if not all(1 <= b <= 1024 for b in args.batches + args.profile_batches):
        p.error("--batches / --profile-batches: each between 1 and 1024 (the server's --max-batch)")
    return args


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _REPEAT["seconds"] = args.repeat_seconds
    load_start, uptime_start = os.getloadavg()[0], uptime()
    import fastapi
    import httpx
    import uvicorn

    versions = common.versions("not used")
    versions.pop("art")
    versions |= {"fastapi": fastapi.__version__, "uvicorn": uvicorn.__version__, "httpx": httpx.__version__}
    through: list[ThroughputRow] = []
    prof: list[ProfileRow] = []
    attacks: list[AttackRow] = []
    starts: dict[str, float] = {}
    with common.limit_threads(args.threads), warnings.catch_warnings(), \
            tempfile.TemporaryDirectory(prefix="mlpentest-bench-serve-") as tmp:
        warnings.simplefilter("ignore")  # MLP convergence warnings: the recipes stop early on purpose
        digits = digits_data(args.seed)
        jobs = []
        for target in targets(args, Path(tmp), digits):
            wanted = [s for s in SECTIONS
                      if s in args.sections and (s != "attacks" or target.name == "digits")]
            if wanted:
                jobs.append((target, wanted))
        with contextlib.ExitStack() as stack:
            progress("starting " + ", ".join(f"mlpentest serve {t.path.name}" for t, _ in jobs))
            servers = [stack.enter_context(Server(t.path, args.threads)) for t, _ in jobs]
            refs = None
            if "attacks" in args.sections:  # untimed work while the servers boot
                progress(f"training {args.refs} reference models for the attacks (once, not timed)")
                refs = reference_models(digits, args)
            for server, (target, wanted) in zip(servers, jobs, strict=True):
                url = server.wait()
                starts[target.name] = server.start_seconds
                warm_up(url, target.X_query)
                if "throughput" in wanted:
                    run_throughput(target, url, server.proc.pid, args, through)
                if "profile" in wanted:
                    run_profile(target, url, server.proc.pid, args, prof)
                if "attacks" in wanted:
                    run_attacks(url, target.model, digits, refs, args, attacks)
    setup = {"sections": args.sections, "batches": args.batches, "profile_batches": args.profile_batches,
             "cell_seconds": args.cell_seconds,
             "repeat_seconds": args.repeat_seconds, "min_requests": args.min_requests,
             "fmnist_train": args.fmnist_train,
             "fmnist_iter": args.fmnist_iter, "refs": args.refs, "seed": args.seed,
             "server_start_seconds": starts, "server_stack": server_stack(args.threads),
             "uptime_start": uptime_start, "uptime_end": uptime(),
             "wall_seconds": time.perf_counter() - _T0,
             **common.machine(args.threads, load_start), "versions": versions}
    print(report(setup, through, prof, attacks))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"setup": setup, "throughput": [asdict(r) for r in through],
                       "profile": [asdict(r) for r in prof], "attacks": [asdict(r) for r in attacks]},
                      fh, indent=2)
    return 0


def _yes(v: bool | None) -> str:
    return "-" if v is None else "yes" if v else "NO"


def report(setup: dict[str, Any], through: list[ThroughputRow], prof: list[ProfileRow],
           attacks: list[AttackRow]) -> str:
    s = setup
    out = [
        f"serve benchmark: mlpentest serve (subprocess, loopback) vs in-process; seed {s['seed']}; "
        f"{s['wall_seconds']:.0f} s in all",
        f"machine: {s['cpu_count']} CPUs ({s['machine']}), threads per process: {s['threads']}",
        f"uptime at start: {s['uptime_start']}",
        f"uptime at end:   {s['uptime_end']}",
        "server start (Popen to URL printed; both servers boot at once): "
        + ", ".join(f"{k} {v:.1f} s" for k, v in s["server_start_seconds"].items())
        + f"; uvicorn's {s['server_stack']}",
        "versions: " + ", ".join(f"{k} {x}" for k, x in s["versions"].items()),
        "",
    ]
    if through:
        head = ("model", "client", "batch", "requests", "req/s", "samples/s", "p50 ms", "p95 ms",
                "client CPU", "server CPU", "run queue", "x in-process", "identical")
        body = [(r.model, r.client, cell(r.batch, "d"), cell(r.requests, "d"), cell(r.requests_per_s, ".0f"),
                 cell(r.samples_per_s, ".0f"), cell(r.p50_ms, ".2f"), cell(r.p95_ms, ".2f"),
                 cell(r.client_cpu_ms, ".2f"), cell(r.server_cpu_ms, ".2f"), cell(r.runq_ms, ".2f"),
                 cell(r.ratio, ".1f"), _yes(r.identical)) for r in through]
        out += ["throughput (predict_proba; latency per request, client side; CPU and run-queue ms per "
                "request)",
                aligned(head, body, left={0, 1}), ""]
    if prof:
        head = ("model", "batch", "step", "value", "unit", "share")
        body = [(r.model, cell(r.batch, "d"), r.step, cell(r.value, ".1f" if r.unit == "kB" else ".3f"),
                 r.unit, cell(r.share, ".0%")) for r in prof]
        out += ["profile of one request (steps: median CPU time, timed apart in this process with the "
                "server's code)",
                aligned(head, body, left={0, 2, 4}), ""]
    if attacks:
        head = ("attack", "setting", "samples sent", "requests", "in-process s", "HTTP s", "ratio",
                "identical", "result")
        body = [(r.attack, r.setting, cell(r.samples_sent, "d"), cell(r.requests, "d"),
                 cell(r.inprocess_s, ".2f"), cell(r.http_s, ".2f"), cell(r.ratio, ".1f"), _yes(r.identical),
                 r.result) for r in attacks]
        out += ["attacks in-process vs over HTTP (digits MLP target; same data, settings and seeds)",
                aligned(head, body, left={0, 1, 7, 8}), ""]
    notes = [
        "x in-process: time per sample over the in-process wrap(model)'s, same model and batch. identical: "
        "the answers (or the attack's results: signals and AUCs; queries, fidelity and the stolen copy's "
        "labels; adversarial points and queries) are bit-identical to in-process ones. client / server "
        "CPU: each process's CPU time per request (all threads, the scheduler's accounting); run queue: "
        "the time both spent runnable but waiting for a CPU (what the machine's load costs). profile: "
        "the steps are CPU times, so the load does not inflate them; each side's CPU per request less "
        "its steps is the HTTP machinery's; the mean round trip less both sides' CPU is waiting (the "
        "model row counted once, its sub-row inside it); \"what if\" rows time an alternative the "
        "server does not implement. samples sent / requests: what the "
        "HTTP client sent to /predict (its GET /info excluded); Retraining's samples include the "
        "victim's labels of X_test, which a remote victim answers too. The machine is shared: compare "
        "rows of one run, and read the load above.",
    ]
    for note in notes:
        out += textwrap.wrap(note, 110, subsequent_indent="  ")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
