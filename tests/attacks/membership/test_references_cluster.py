"""Reference models on a real Dask cluster: `dask scheduler` and `dask worker` processes on 127.0.0.1.

The cluster is started as a user would start it (subprocesses on free ports, the default nanny), waited
for with bounded timeouts and always killed, whatever the tests do.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from mlpentest import datasets
from mlpentest.attacks.membership import LiRA, ReferenceModels, collect_signals
from mlpentest.errors import InvalidParameterError
from mlpentest.parallel import _fit_one, iter_parallel

distributed = pytest.importorskip("distributed")

START_TIMEOUT = 90  # seconds for the scheduler and both workers to come up on a busy machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(procs):
    for proc in reversed(procs):  # each was started in its own session: its group holds its children
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The scheduler's address, with 2 single-threaded workers (each under a nanny) attached."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = tmp_path_factory.mktemp("dask-logs")
    dask = [sys.executable, "-m", "dask"]
    commands = [
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        [*dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--host", "127.0.0.1",
         "--no-dashboard"],
    ]
    procs = []
    try:
        for i, command in enumerate(commands):
            with open(logs / f"{i}.log", "wb") as log:
                procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True))
        with distributed.Client(address, timeout=f"{START_TIMEOUT}s", set_as_default=False) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT)
        yield address
    finally:
        _stop(procs)


@pytest.fixture(scope="module")
def digits_pools():
    return datasets.load("digits").split({"members": 200, "nonmembers": 200, "pool": 600}, random_state=0)


def _lr():
    return LogisticRegression(C=100.0, max_iter=300)


def test_real_cluster_gives_the_same_scores_as_local(cluster, digits_pools):
    mem, non, pool = digits_pools["members"], digits_pools["nonmembers"], digits_pools["pool"]
    target = _lr().fit(mem.X, mem.y)
    X = np.vstack([mem.X, non.X])
    y = np.r_[mem.y, non.y]
    is_member = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    X_pool, y_pool = np.vstack([X, pool.X]), np.r_[y, pool.y]
    local = ReferenceModels(_lr(), n_models=4, random_state=0).fit(X_pool, y_pool)
    remote = ReferenceModels(_lr(), n_models=4, random_state=0, backend="dask", scheduler=cluster,
                             progress=True).fit(X_pool, y_pool)
    np.testing.assert_array_equal(local.membership_, remote.membership_)
    scores_local = LiRA().run(collect_signals(target, X, y, is_member=is_member, references=local))
    scores_remote = LiRA().run(collect_signals(target, X, y, is_member=is_member, references=remote))
    np.testing.assert_allclose(scores_local.scores, scores_remote.scores)
    assert scores_local.auc == scores_remote.auc > 0.6


def _mlp_jobs(n):
    rng = np.random.RandomState(0)
    recipe = MLPClassifier(hidden_layer_sizes=(32,), max_iter=60)
    return [(recipe, np.sort(rng.choice(600, 300, replace=False)), seed) for seed in range(n)]


def _check_like_local(results, jobs, pool):
    assert sorted(results) == list(range(len(jobs)))
    for i, (_, rows, seed) in enumerate(jobs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            expected = MLPClassifier(hidden_layer_sizes=(32,), max_iter=60, random_state=seed).fit(
                pool.X[rows], pool.y[rows])
        np.testing.assert_allclose(results[i].predict_proba(pool.X[:20]), expected.predict_proba(pool.X[:20]))


def _wait_for_new_workers(client, old_pids):
    """Until the nannies have replaced every killed worker process (bounded)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        pids = set(client.run(os.getpid).values())
        if len(pids) == 2 and not pids & set(old_pids):
            return
        time.sleep(0.5)
    raise AssertionError(f"workers not replaced within {START_TIMEOUT} s")


@pytest.mark.slow  # a worker process restarts (seconds on a free machine)
@pytest.mark.parametrize("kill", ["one busy worker", "every worker"])
def test_jobs_lost_with_their_workers_are_run_again(cluster, digits_pools, kill):
    # One worker: the scheduler reruns its job on the other, which holds a copy of the pool. Every
    # worker: the scattered pool is gone too; mlpentest scatters it again and resubmits the jobs.
    pool = digits_pools["pool"]
    jobs = _mlp_jobs(6)
    with distributed.Client(cluster, set_as_default=False) as client:
        pids = client.run(os.getpid)
        results = {}
        victims = None
        for i, model in iter_parallel(_fit_one, jobs, shared=(pool.X, pool.y), backend="dask",
                                      scheduler=cluster, retries=1):
            results[i] = model
            if victims is None:  # after the first model: SIGKILL, as an out-of-memory kill would
                busy = [w for w, keys in client.processing().items() if keys]
                assert busy, "no job left running to lose"
                victims = [pids[busy[0]]] if kill == "one busy worker" else list(pids.values())
                for pid in victims:
                    os.kill(pid, signal.SIGKILL)
        _wait_for_new_workers(client, victims)
    _check_like_local(results, jobs, pool)


def test_closing_the_iterator_early_cancels_the_rest(cluster, digits_pools):
    pool = digits_pools["pool"]
    jobs = _mlp_jobs(8)
    results = iter_parallel(_fit_one, jobs, shared=(pool.X, pool.y), backend="dask", scheduler=cluster)
    next(results)
    results.close()
    with distributed.Client(cluster, set_as_default=False) as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            left = client.run_on_scheduler(lambda dask_scheduler: [k for k in dask_scheduler.tasks
                                                                   if "mlpentest" in str(k)])
            if not left:
                break
            time.sleep(0.2)
        assert not left


def test_an_unreachable_scheduler_is_named():
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), pytest.raises(
        InvalidParameterError, match="scheduler: cannot connect"
    ):
        ReferenceModels(_lr(), n_models=2, backend="dask", scheduler=f"tcp://127.0.0.1:{_free_port()}").fit(
            np.random.default_rng(0).random((40, 3)), np.arange(40) % 2
        )


def test_the_sweep_and_the_shokri_reproduction_train_on_the_cluster(cluster, digits_pools, tmp_path):
    import json

    from mlpentest.cli import main
    from mlpentest.defenses import Mitigation, privacy_utility_sweep

    mem, non, pool = digits_pools["members"], digits_pools["nonmembers"], digits_pools["pool"]
    data = {"X_members": mem.X, "y_members": mem.y, "X_nonmembers": non.X, "y_nonmembers": non.y,
            "X_population": pool.X[:200], "y_population": pool.y[:200]}
    mitigations = [Mitigation("C=100", _lr()), Mitigation("C=0.01", LogisticRegression(C=0.01, max_iter=300))]
    local = privacy_utility_sweep(mitigations, **data, n_references=4, random_state=0)
    remote = privacy_utility_sweep(mitigations, **data, n_references=4, random_state=0, backend="dask",
                                   scheduler=cluster)
    assert [r.auc for r in remote.rows] == [r.auc for r in local.rows]
    # the command line: the seed's protocol with its shadow models on the cluster, as it runs locally
    runs = {}
    for where, extra in (("local", []), ("cluster", ["--scheduler", cluster])):
        main(["reproduce", "shokri2017-seed", "--quick", "--sizes", "100", "--shadows", "2", "--quiet",
              "--out", str(tmp_path / where), *extra])
        runs[where] = _without_times(json.loads((tmp_path / where / "results.json").read_text())["results"])
    assert runs["cluster"] == runs["local"]


def _without_times(doc):
    if isinstance(doc, dict):
        return {k: _without_times(v) for k, v in doc.items() if k != "wall_seconds"}
    if isinstance(doc, list):
        return [_without_times(v) for v in doc]
    return doc
