"""The signed model cache: a planted, tampered, truncated, renamed or foreign entry is never unpickled.

Tried as an attacker who can write to the cache directory but not read the user's key: every file
planted there is reported (CacheIntegrityWarning) and the model retrained, and the code in a planted
pickle never runs (it would write a marker file). Entries hold skops (scikit-learn) or safetensors
(torch weights) where those formats can; entries of the previous, pickled format are never loaded.
"""

import functools
import hashlib
import hmac
import io
import os
import pickle
import stat
import zipfile

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlpentest import datasets
from mlpentest.attacks.membership import ReferenceModels
from mlpentest.cache import LEGACY_MAGIC, MAGIC, SUFFIX, CacheIntegrityWarning, ModelCache, load_key
from mlpentest.errors import InvalidParameterError
from mlpentest.fingerprint import Unkeyable, fingerprint


class _Payload:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


@pytest.fixture(scope="module")
def pool():
    data = datasets.load("digits")
    return data.X[:300], data.y[:300]


def _counting(log):
    def train(X, y, seed):
        with open(log, "a") as fh:
            fh.write("x")
        return LogisticRegression(max_iter=300, random_state=seed).fit(X, y)

    return train


def _fit(trainer, pool, cache_dir):
    return ReferenceModels(trainer, n_models=2, random_state=0, cache_dir=str(cache_dir)).fit(*pool)


@pytest.mark.parametrize("forge", ["raw pickle", "forged signature", "kind switched", "truncated", "renamed",
                                   "other key"])
def test_a_planted_or_damaged_entry_is_never_loaded(pool, tmp_path, forge):
    cache_dir, log, marker = tmp_path / "cache", tmp_path / "calls", tmp_path / "marker"
    trainer = _counting(log)
    first = _fit(trainer, pool, cache_dir)
    entries = sorted(cache_dir.iterdir())
    assert len(entries) == 2 and log.read_text() == "xx"
    target = entries[0]
    evil = pickle.dumps(_Payload(marker))
    if forge == "raw pickle":
        target.write_bytes(evil)
    elif forge == "forged signature":  # a header that looks valid, in front of a pickle
        target.write_bytes(MAGIC + b"pickle " + b"0" * 64 + b"\n" + evil)
    elif forge == "kind switched":  # the entry's own signature, its kind changed to pickle
        header, _, _ = target.read_bytes().partition(b"\n" + b"PK")
        target.write_bytes(header.replace(b"skops ", b"pickle ", 1) + b"\n" + evil)
    elif forge == "truncated":
        target.write_bytes(target.read_bytes()[:-100])
    elif forge == "renamed":  # a valid entry of this user, moved to another recipe's name
        target.write_bytes(entries[1].read_bytes())
    else:  # a valid entry signed with someone else's key
        other = ModelCache(tmp_path / "other", key_file=tmp_path / "other.key")
        digest = target.name.removeprefix("model-").removesuffix(SUFFIX)
        target.write_bytes(other.put(digest, _Payload(marker)).read_bytes())
    with pytest.warns(CacheIntegrityWarning, match=f"{target.name}.*ignored and the model retrained"):
        second = _fit(trainer, pool, cache_dir)
    assert not marker.exists()  # the planted code never ran
    assert log.read_text() == "xxx"  # exactly the damaged model was retrained
    np.testing.assert_allclose(first.predict_proba(pool[0][:5]), second.predict_proba(pool[0][:5]))
    _fit(trainer, pool, cache_dir)  # the rewritten entry is valid again: nothing retrained, no warning
    assert log.read_text() == "xxx"


def test_entries_and_key_are_private_to_the_user(pool, tmp_path):
    _fit(LogisticRegression(max_iter=300), pool, tmp_path / "cache")
    for entry in (tmp_path / "cache").iterdir():
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.environ["MLPENTEST_CACHE_KEY"]).st_mode) == 0o600


def test_an_unsafe_key_is_refused(tmp_path):
    key = tmp_path / "shared.key"
    load_key(key)
    key.chmod(0o644)
    with pytest.raises(InvalidParameterError, match="open to other users.*chmod go-rwx"):
        load_key(key)
    with pytest.raises(InvalidParameterError, match="lies inside the cache directory"):
        ModelCache(tmp_path / "cache", key_file=tmp_path / "cache" / "cache.key")
    (tmp_path / "short.key").write_bytes(b"abc")
    (tmp_path / "short.key").chmod(0o600)
    with pytest.raises(InvalidParameterError, match="holds 3 bytes"):
        load_key(tmp_path / "short.key")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_an_unwritable_cache_fails_before_any_training(pool, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    log = tmp_path / "calls"
    with pytest.raises(InvalidParameterError, match="^cache_dir: .* cannot be created or written"):
        _fit(_counting(log), pool, locked / "cache")
    assert not log.exists()


def test_a_cache_dir_that_is_a_file_fails_before_any_training(pool, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    log = tmp_path / "calls"
    with pytest.raises(InvalidParameterError, match="^cache_dir: .* cannot be created or written"):
        _fit(_counting(log), pool, tmp_path / "file" / "cache")
    assert not log.exists()


# ---------------------------------------------------------------------------- keys
def _train(X, y, seed, C=1.0):
    return LogisticRegression(C=C, max_iter=300, random_state=seed).fit(X, y)


def _closure(C):
    def train(X, y, seed):
        return LogisticRegression(C=C, max_iter=300, random_state=seed).fit(X, y)

    return train


SETTING = {"C": 1.0}


def _reads_a_global(X, y, seed):
    return LogisticRegression(C=SETTING["C"], max_iter=300, random_state=seed).fit(X, y)


def test_every_part_of_a_recipe_is_in_its_key(monkeypatch):
    pairs = [
        (functools.partial(_train, C=1e4), functools.partial(_train, C=1e-4)),
        (_closure(1e4), _closure(1e-4)),
        (lambda X, y, s, C=1e4: _train(X, y, s, C), lambda X, y, s, C=1e-4: _train(X, y, s, C)),
        (LogisticRegression(C=1e4), LogisticRegression(C=1e-4)),
    ]
    for a, b in pairs:
        assert fingerprint(a) != fingerprint(b)
        assert fingerprint(a) == fingerprint(a)
    before = fingerprint(_reads_a_global)
    monkeypatch.setitem(SETTING, "C", 1e4)
    assert fingerprint(_reads_a_global) != before


def test_the_cache_misses_when_a_partial_argument_changes(pool, tmp_path):
    """The reported fault: asked for C=1e4, got the cached C=1e-4 models."""
    weak = _fit(functools.partial(_train, C=1e-4), pool, tmp_path / "cache")
    strong = _fit(functools.partial(_train, C=1e4), pool, tmp_path / "cache")
    assert strong.models_[0].estimator.C == 1e4 and weak.models_[0].estimator.C == 1e-4
    assert len(list((tmp_path / "cache").iterdir())) == 4


def test_a_recipe_that_cannot_be_keyed_is_refused_saying_so(pool, tmp_path, monkeypatch):
    import mlpentest.attacks.membership.references as references

    def unkeyable(obj):
        raise Unkeyable("trainer.closure[0]: a Frob cannot be fingerprinted")

    monkeypatch.setattr(references, "fingerprint", unkeyable)
    with pytest.raises(InvalidParameterError, match="^cache_dir: the trainer cannot be keyed.*=None"):
        _fit(_train, pool, tmp_path / "cache")
    with pytest.raises(Unkeyable, match="nested deeper than"):
        nested: list = []
        for _ in range(100):
            nested = [nested]
        fingerprint(nested)


# ---------------------------------------------------------------------------- formats
def _entry(path):
    """(kind, payload) of a cache entry."""
    blob = path.read_bytes()
    assert blob.startswith(MAGIC)
    line, _, payload = blob[len(MAGIC):].partition(b"\n")
    return line.split(b" ")[0].decode(), payload


def test_a_cached_sklearn_model_is_stored_as_skops_and_loads_back_identically(pool, tmp_path):
    from mlpentest.supplychain.safe import detect_format

    log = tmp_path / "calls"
    first = _fit(_counting(log), pool, tmp_path / "cache")
    entries = sorted((tmp_path / "cache").iterdir())
    for entry in entries:
        kind, payload = _entry(entry)
        assert kind == "skops" and detect_format(payload) == "skops"
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:  # no pickle inside the skops archive
            assert not any(name.endswith((".pkl", ".pickle")) for name in archive.namelist())
    second = _fit(_counting(log), pool, tmp_path / "cache")
    assert log.read_text() == "xx"  # the second run loaded both models from the cache
    for a, b in zip(first.models_, second.models_, strict=True):
        np.testing.assert_array_equal(a.estimator.coef_, b.estimator.coef_)
    np.testing.assert_array_equal(first.predict_proba(pool[0]), second.predict_proba(pool[0]))


def test_a_cached_torch_cnn_is_stored_as_safetensors_weights(pool, tmp_path):
    pytest.importorskip("torch")
    from mlpentest.experiments.nets import CNNTrainer
    from mlpentest.supplychain.safe import detect_format

    X, y = pool
    trainer = CNNTrainer((8, 8), 10, epochs=1, min_steps=4, batch_size=64)
    refs = ReferenceModels(trainer, n_models=2, random_state=0, cache_dir=str(tmp_path / "cache")).fit(X, y)
    entries = sorted((tmp_path / "cache").iterdir())
    assert len(entries) == 2
    for entry in entries:
        kind, payload = _entry(entry)
        assert kind == "safetensors" and detect_format(payload) == "safetensors"
    written = [entry.stat().st_mtime_ns for entry in entries]
    again = ReferenceModels(trainer, n_models=2, random_state=0, cache_dir=str(tmp_path / "cache")).fit(X, y)
    assert [entry.stat().st_mtime_ns for entry in entries] == written  # loaded, not retrained and rewritten
    np.testing.assert_array_equal(refs.predict_proba(X[:20]), again.predict_proba(X[:20]))
    # without a way to rebuild the network, a torch model of a local class is not cached at all
    plain = ModelCache(tmp_path / "plain")
    with pytest.warns(UserWarning, match="cannot be stored.*rebuild"):
        assert plain.put("abc", refs.models_[0]) is None
    assert plain.get("abc") is None
    # and a cache given weights but no rebuild() refuses them rather than guessing
    with pytest.warns(CacheIntegrityWarning, match="no rebuild"):
        assert ModelCache(tmp_path / "cache").get(entries[0].name[6:-len(SUFFIX)]) is None


def test_entries_of_the_previous_format_are_never_loaded(pool, tmp_path):
    cache_dir, log, marker = tmp_path / "cache", tmp_path / "calls", tmp_path / "marker"
    first = _fit(_counting(log), pool, cache_dir)
    key = load_key()
    for entry in sorted(cache_dir.iterdir()):
        digest = entry.name.removeprefix("model-").removesuffix(SUFFIX)
        buffer = io.BytesIO()
        joblib.dump(_Payload(marker), buffer)
        payload = buffer.getvalue()
        # signed exactly as the previous version did, with this user's own key: still never unpickled
        mac = hmac.new(key, digest.encode() + b"\0" + payload, hashlib.sha256).hexdigest().encode()
        entry.unlink()
        (cache_dir / f"model-{digest}.joblib").write_bytes(LEGACY_MAGIC + mac + b"\n" + payload)
    with pytest.warns(CacheIntegrityWarning, match=r"\.joblib is in the previous cache format") as caught:
        second = _fit(_counting(log), pool, cache_dir)
    assert len([w for w in caught if w.category is CacheIntegrityWarning]) == 2
    assert not marker.exists() and log.read_text() == "xxxx"  # both retrained
    np.testing.assert_array_equal(first.predict_proba(pool[0]), second.predict_proba(pool[0]))
    assert sorted(p.suffix for p in cache_dir.iterdir()) == [SUFFIX, SUFFIX]  # the old files are replaced
    # an old-format file at the new name is refused too
    target = sorted(cache_dir.iterdir())[0]
    target.write_bytes(LEGACY_MAGIC + b"0" * 64 + b"\n" + pickle.dumps(_Payload(marker)))
    with pytest.warns(CacheIntegrityWarning, match="not a signed mlpentest cache entry of the previous"):
        _fit(_counting(log), pool, cache_dir)
    assert not marker.exists()
