"""mlpentest.parallel: order, shared data sent once, lost local workers, checks, the worker allocator."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlpentest import datasets
from mlpentest._worker_alloc import _glibc
from mlpentest.errors import InvalidInputError, InvalidParameterError
from mlpentest.parallel import fit_on_subsets, iter_parallel, parallel_map
from mlpentest.training import fit_trainer


@pytest.fixture(scope="module")
def digits():
    data = datasets.load("digits")
    return data.X[:600], data.y[:600]


def _square(x):
    return x * x


def _describe_shared(shared, item):
    X, y = shared
    return type(X).__name__, isinstance(X, np.memmap) or isinstance(getattr(X, "base", None), np.memmap), item


@pytest.mark.parametrize("backend, n_jobs", [("sequential", None), ("threading", 2), ("loky", 2)])
def test_parallel_map_keeps_the_order_of_items(backend, n_jobs):
    assert parallel_map(_square, range(12), backend=backend, n_jobs=n_jobs) == [i * i for i in range(12)]


def test_iter_parallel_yields_every_index_once():
    pairs = list(iter_parallel(_square, [3, 1, 2], n_jobs=2))
    assert sorted(pairs) == [(0, 9), (1, 1), (2, 4)]


def test_shared_pool_reaches_local_workers_as_a_memory_map(fashion):
    # 2000 Fashion-MNIST images = 6.3 MB: over joblib's 1 MB threshold, so the workers must map the one
    # file written for the call instead of unpickling a copy per job
    X, y = fashion.X[:2000], fashion.y[:2000]
    out = list(iter_parallel(_describe_shared, range(4), shared=(X, y), n_jobs=2))
    assert sorted(item for _, (_, _, item) in out) == [0, 1, 2, 3]
    assert all(mapped for _, (_, mapped, _) in out)


def test_fit_on_subsets_matches_fitting_each_subset_here(digits):
    X, y = digits
    rng = np.random.RandomState(0)
    subsets = [np.sort(rng.choice(600, 300, replace=False)) for _ in range(3)]
    masks = np.zeros((600, 3), dtype=bool)
    for j, s in enumerate(subsets):
        masks[s, j] = True
    recipe = LogisticRegression(C=10.0, max_iter=200)
    expected = [fit_trainer(recipe, X[s], y[s], seed).predict_proba(X[:20]) for seed, s in enumerate(subsets)]
    for how in (subsets, masks, [masks[:, j] for j in range(3)]):
        models = fit_on_subsets(recipe, X, y, how, [0, 1, 2], n_jobs=2)
        for model, proba in zip(models, expected, strict=True):
            np.testing.assert_allclose(model.predict_proba(X[:20]), proba)
    # one recipe per subset
    recipes = [LogisticRegression(C=c, max_iter=200) for c in (0.01, 1.0, 100.0)]
    models = fit_on_subsets(recipes, X, y, subsets, [0, 1, 2])
    assert [m.C for m in models] == [0.01, 1.0, 100.0]
    assert not np.allclose(models[0].coef_, models[2].coef_)


def _fails(X, y, seed):
    raise ValueError(f"recipe failed on seed {seed}")


def test_a_trainers_own_error_is_raised_not_retried(digits):
    X, y = digits
    with pytest.raises(ValueError, match="recipe failed"):
        fit_on_subsets(_fails, X, y, [np.arange(100)], [5], n_jobs=2, retries=3)


def _dies_once(flag_dir, X, y, seed):
    """Kill this worker process (as an out-of-memory kill would) the first time it trains seed 2."""
    flag = os.path.join(flag_dir, "seen")
    if seed == 2 and not os.path.exists(flag):
        open(flag, "w").close()
        os._exit(1)
    return LogisticRegression(max_iter=200, random_state=seed).fit(X, y)


def test_jobs_of_a_dead_local_worker_are_run_again(digits, tmp_path):
    from functools import partial

    X, y = digits
    subsets = [np.arange(0, 300), np.arange(300, 600)]
    # (with retries=0 the same run raises joblib's TerminatedWorkerError; not tested: every worker death
    # costs a restart of the process pool, seconds on a busy machine)
    models = fit_on_subsets(partial(_dies_once, str(tmp_path)), X, y, subsets, [1, 2], n_jobs=2, retries=1)
    assert (tmp_path / "seen").exists()  # the job did die once
    for model, rows, seed in zip(models, subsets, [1, 2], strict=True):
        expected = LogisticRegression(max_iter=200, random_state=seed).fit(X[rows], y[rows])
        np.testing.assert_allclose(model.coef_, expected.coef_)


@pytest.mark.parametrize(
    "subsets, match",
    [
        ([np.array([0, 700])], r"subsets\[0\]: indices must lie in \[0, 599\]"),
        ([np.zeros(10, dtype=bool)], r"subsets\[0\]: a boolean mask needs shape \(600,\)"),
        ([np.zeros(600, dtype=bool)], r"subsets\[0\]: selects no record"),
        ([np.array([], dtype=int)], r"subsets\[0\]: selects no record"),
        ([np.ones((3, 2), dtype=int)], r"subsets\[0\]: expected 1-D integer indices"),
        ([np.array([0.5, 1.5])], r"subsets\[0\]: expected 1-D integer indices"),
        (np.ones((10, 2), dtype=bool), r"subsets: a membership matrix needs 600 rows"),
    ],
)
def test_bad_subsets_are_named(digits, subsets, match):
    X, y = digits
    with pytest.raises(InvalidInputError, match=match):
        fit_on_subsets(LogisticRegression(), X, y, subsets, [0] * len(subsets))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"seeds": [0, 1]}, "seeds: expected one per subset"),
        ({"trainer": [LogisticRegression()] * 2}, "trainer: expected one recipe per subset"),
        ({"trainer": "svm"}, "trainer"),
        ({"backend": "spark"}, "backend"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"n_jobs": 2.5}, "n_jobs"),
        ({"retries": -1}, "retries"),
        ({"scheduler": "tcp://127.0.0.1:8786"}, "scheduler: only used with backend='dask'"),
        ({"backend": "dask", "scheduler": 8786}, "scheduler: expected an address"),
        ({"backend": "dask", "scheduler": "8786"}, "scheduler: expected an address"),  # deep in Dask before
        ({"backend": "dask", "scheduler": "tcp://127.0.0.1:99999"}, "scheduler: expected an address"),
        ({"backend": "dask", "scheduler": "http://127.0.0.1:8786"}, "scheduler: expected an address"),
    ],
)
def test_bad_settings_are_named(digits, kwargs, match):
    X, y = digits
    args = {"trainer": LogisticRegression(), "seeds": [0], **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        fit_on_subsets(args.pop("trainer"), X, y, [np.arange(10)], args.pop("seeds"), **args)


def test_bad_pools_are_named(digits):
    X, y = digits
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(InvalidInputError, match="X: contains NaN"):
        fit_on_subsets(LogisticRegression(), bad, y, [np.arange(10)], [0])
    with pytest.raises(InvalidInputError, match="y: expected 600 labels"):
        fit_on_subsets(LogisticRegression(), X, y[:-1], [np.arange(10)], [0])


def test_bad_settings_are_caught_before_iterating():
    with pytest.raises(InvalidParameterError, match="backend"):
        iter_parallel(_square, [1], backend="mpi")


@pytest.mark.skipif(_glibc() is None, reason="glibc's allocator only")
def test_task_allocator_undoes_a_fixed_trim_threshold_while_a_task_runs():
    # With MALLOC_TRIM_THRESHOLD_ set (Dask's nanny does), glibc serves every block over 128 KiB with its
    # own mmap (counted in mallinfo2().hblks); inside task_allocator() it must come from the heap, and
    # after it, the worker's own setting must be back.
    code = textwrap.dedent("""
        import ctypes
        import numpy as np
        from mlpentest._worker_alloc import _glibc, task_allocator

        class Info(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in
                        ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                         "fordblks", "keepcost")]

        libc = _glibc()
        libc.mallinfo2.restype = Info

        def mmapped_while_held():
            before = libc.mallinfo2().hblks
            block = np.ones(1 << 18)  # 2 MiB
            during = libc.mallinfo2().hblks
            del block
            return during - before

        print(mmapped_while_held())
        with task_allocator() as changed:
            print(int(changed), mmapped_while_held())
            with task_allocator():
                pass
            print(mmapped_while_held())
        print(mmapped_while_held())
    """)
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    if "mallinfo2" in result.stderr:
        pytest.skip("glibc older than 2.33 (no mallinfo2)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1", "0", "0", "1"]
    # without the variable, the allocator is left alone
    env.pop("MALLOC_TRIM_THRESHOLD_")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.split()[1] == "0"
