"""Reference/shadow models: membership bookkeeping, caching, parallel and Dask backends."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlpentest import datasets
from mlpentest.attacks.membership import LiRA, ReferenceModels, collect_signals
from mlpentest.errors import InvalidInputError, InvalidParameterError


@pytest.fixture(scope="module")
def digits_pools():
    return datasets.load("digits").split({"members": 200, "nonmembers": 200, "pool": 600}, random_state=0)


def _lr():
    return LogisticRegression(C=100.0, max_iter=300)


def test_balanced_scheme_puts_every_record_in_half_the_models(digits_pools):
    pool = digits_pools["pool"]
    refs = ReferenceModels(_lr(), n_models=6, random_state=0).fit(pool.X, pool.y)
    assert refs.membership_.shape == (600, 6)
    np.testing.assert_array_equal(refs.membership_.sum(axis=1), 3)
    assert refs.predict_proba(pool.X[:5]).shape == (5, 6, 10)


def test_fixed_train_size(digits_pools):
    pool = digits_pools["pool"]
    refs = ReferenceModels(_lr(), n_models=3, train_size=150, random_state=0).fit(pool.X, pool.y)
    np.testing.assert_array_equal(refs.membership_.sum(axis=0), 150)
    refs_frac = ReferenceModels(_lr(), n_models=3, train_size=0.25, random_state=0).fit(pool.X, pool.y)
    np.testing.assert_array_equal(refs_frac.membership_.sum(axis=0), 150)


def test_same_seed_same_models_whatever_the_worker_count(digits_pools):
    pool = digits_pools["pool"]
    a = ReferenceModels(_lr(), n_models=4, random_state=3).fit(pool.X, pool.y)
    b = ReferenceModels(_lr(), n_models=4, random_state=3, n_jobs=2).fit(pool.X, pool.y)
    np.testing.assert_array_equal(a.membership_, b.membership_)
    np.testing.assert_allclose(a.predict_proba(pool.X[:20]), b.predict_proba(pool.X[:20]))
    c = ReferenceModels(_lr(), n_models=4, random_state=4).fit(pool.X, pool.y)
    assert not np.array_equal(a.membership_, c.membership_)


def test_membership_of_finds_pool_records(digits_pools):
    pool, non = digits_pools["pool"], digits_pools["nonmembers"]
    refs = ReferenceModels(_lr(), n_models=2, random_state=0).fit(pool.X, pool.y)
    found, membership = refs.membership_of(np.vstack([pool.X[[5, 9]], non.X[:1]]))
    np.testing.assert_array_equal(found, [True, True, False])
    np.testing.assert_array_equal(membership[:2], refs.membership_[[5, 9]])
    assert not membership[2].any()


def _counting_trainer(log_path):
    def train(X, y, seed):
        with open(log_path, "a") as log:
            log.write(f"{seed}\n")
        return LogisticRegression(C=10.0, max_iter=300, random_state=seed).fit(X, y)

    return train


def test_disk_cache_trains_each_model_once(digits_pools, tmp_path):
    pool = digits_pools["pool"]
    log = tmp_path / "calls.txt"
    trainer = _counting_trainer(log)
    kw = dict(n_models=4, random_state=0, cache_dir=str(tmp_path / "cache"))
    first = ReferenceModels(trainer, **kw).fit(pool.X, pool.y)
    assert len(log.read_text().split()) == 4
    second = ReferenceModels(trainer, **kw).fit(pool.X, pool.y)
    assert len(log.read_text().split()) == 4  # nothing retrained: loaded from the cache
    np.testing.assert_array_equal(first.predict_proba(pool.X[:10]), second.predict_proba(pool.X[:10]))
    ReferenceModels(trainer, **{**kw, "random_state": 1}).fit(pool.X, pool.y)
    assert len(log.read_text().split()) == 8  # other subsets: trained anew


def test_dask_backend_gives_the_same_scores_as_local(digits_pools):
    distributed = pytest.importorskip("distributed")
    mem, non, pool = digits_pools["members"], digits_pools["nonmembers"], digits_pools["pool"]
    target = _lr().fit(mem.X, mem.y)
    X = np.vstack([mem.X, non.X])
    y = np.r_[mem.y, non.y]
    is_member = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    X_pool, y_pool = np.vstack([X, pool.X]), np.r_[y, pool.y]
    local = ReferenceModels(_lr(), n_models=4, random_state=0).fit(X_pool, y_pool)
    with distributed.LocalCluster(
        host="127.0.0.1", n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = ReferenceModels(
            _lr(), n_models=4, random_state=0, backend="dask", scheduler=cluster.scheduler_address
        ).fit(X_pool, y_pool)
    scores_local = LiRA().run(collect_signals(target, X, y, is_member=is_member, references=local))
    scores_remote = LiRA().run(collect_signals(target, X, y, is_member=is_member, references=remote))
    np.testing.assert_allclose(scores_local.scores, scores_remote.scores)
    assert scores_local.auc == scores_remote.auc


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_models": 3}, "even number"),
        ({"n_models": 0}, "n_models"),
        ({"train_size": 1.5}, "train_size"),
        ({"train_size": 10_000}, "train_size"),
        ({"backend": "spark"}, "backend"),
    ],
)
def test_bad_parameters_are_named(digits_pools, kwargs, match):
    pool = digits_pools["pool"]
    with pytest.raises(InvalidParameterError, match=match):
        ReferenceModels(_lr(), **{"n_models": 2, **kwargs}).fit(pool.X, pool.y)


def test_bad_trainer_and_unfitted_use():
    with pytest.raises(InvalidParameterError, match="trainer"):
        ReferenceModels("svm", n_models=2).fit(np.zeros((10, 2)), np.arange(10) % 2)
    with pytest.raises(InvalidInputError, match="fit"):
        ReferenceModels(_lr()).predict_proba(np.zeros((2, 64)))
    with pytest.raises(InvalidParameterError, match="scheduler"):
        ReferenceModels(_lr(), n_models=2, scheduler="tcp://127.0.0.1:1").fit(
            np.random.default_rng(0).random((20, 3)), np.arange(20) % 2
        )
