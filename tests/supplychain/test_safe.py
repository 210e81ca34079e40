"""Safe formats: models round-trip through skops and safetensors; pickles are refused unless trusted and
clean, and a malicious one is refused even then. Formats are found by content, never by file name.

The malicious pickles here would write a marker file if anything unpickled them; every test that builds
one asserts the marker was never written.
"""

import io
import os
import pickle
import zipfile

import joblib
import numpy as np
import pytest
import skops.io as sio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC

from mlpentest import datasets
from mlpentest.errors import InvalidInputError, InvalidParameterError, UnsafeArtifactError
from mlpentest.supplychain import safe

torch = pytest.importorskip("torch")


class _Payload:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


class OwnScaler(StandardScaler):
    """A user's own estimator class: not on any allowlist, trusted only when the caller says so."""


@pytest.fixture(scope="module")
def digits():
    data = datasets.load("digits")
    return data.X[:400], data.y[:400], data.X[400:500]


MODELS = {
    "pipeline": lambda: make_pipeline(StandardScaler(), PCA(n_components=10, random_state=0),
                                      LogisticRegression(max_iter=300)),
    "random forest": lambda: RandomForestClassifier(n_estimators=10, random_state=0),
    "hist gradient boosting": lambda: HistGradientBoostingClassifier(max_iter=10, random_state=0),
    "mlp": lambda: MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0),
    "svc": lambda: SVC(random_state=0),
}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", MODELS)
def test_sklearn_models_round_trip_through_skops_unchanged(digits, tmp_path, name):
    X, y, X_test = digits
    model = MODELS[name]().fit(X, y)
    path = safe.save(model, tmp_path / "model.bin")  # the name says nothing about the format
    assert safe.detect_format(path) == "skops"
    with zipfile.ZipFile(path) as archive:  # a skops archive: no pickle anywhere inside
        assert "schema.json" in archive.namelist()
        assert not any(n.endswith(".pkl") for n in archive.namelist())
    loaded = safe.load(path)
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    scores = "decision_function" if name == "svc" else "predict_proba"
    np.testing.assert_array_equal(getattr(loaded, scores)(X_test), getattr(model, scores)(X_test))


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))


def test_torch_weights_round_trip_through_safetensors(digits, tmp_path):
    X_test = torch.as_tensor(digits[2], dtype=torch.float32)
    net = _net()
    path = safe.save(net, tmp_path / "weights.pt")
    assert safe.detect_format(path) == "safetensors"
    state = safe.load(path, framework="pt")
    assert set(state) == set(net.state_dict())
    for key, value in net.state_dict().items():
        assert torch.equal(state[key], value)
    as_numpy = safe.load(path)
    np.testing.assert_array_equal(as_numpy["0.weight"], net[0].weight.detach().numpy())
    fresh = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    assert not torch.equal(fresh(X_test), net(X_test))
    assert safe.load_state_dict(fresh, path) is fresh
    assert torch.equal(fresh(X_test), net(X_test))
    wrong = torch.nn.Linear(64, 10)
    with pytest.raises(InvalidInputError, match="do not fit the module"):
        safe.load_state_dict(wrong, path)


def test_dicts_of_arrays_are_stored_as_data(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"w": rng.normal(size=(3, 4)), "labels": np.arange(5, dtype=np.int16)}
    path = safe.save(arrays, tmp_path / "arrays")
    assert safe.detect_format(path) == "safetensors"
    back = safe.load(path)
    assert back.keys() == arrays.keys()
    for key in arrays:
        np.testing.assert_array_equal(back[key], arrays[key])
        assert back[key].dtype == arrays[key].dtype
    # strings: safetensors lacks the dtype, .npz without pickle holds it
    named = {"names": np.array(["cat", "dog"]), "w": arrays["w"]}
    path = safe.save(named, tmp_path / "named")
    assert safe.detect_format(path) == "npz"
    np.testing.assert_array_equal(safe.load(path)["names"], named["names"])
    with pytest.raises(InvalidParameterError, match="'o'.*hold Python objects"):
        safe.save({"o": np.array([{"a": 1}], dtype=object)}, tmp_path / "objects")
    assert not (tmp_path / "objects").exists()


def test_a_skops_file_asking_for_an_untrusted_type_is_refused(digits, tmp_path):
    X, y, _ = digits
    evil = safe.save(FunctionTransformer(func=os.system), tmp_path / "evil.skops")
    with pytest.raises(UnsafeArtifactError, match=r"not trusted: posix\.system|not trusted: nt\.system"):
        safe.load(evil)
    own = safe.save(OwnScaler().fit(X), tmp_path / "own.skops")
    name = f"{OwnScaler.__module__}.OwnScaler"
    with pytest.raises(UnsafeArtifactError, match=f"not trusted: {name}") as info:
        safe.load(own)
    assert info.value.path == str(own)
    for trusted in ([OwnScaler], [name]):  # the class itself, or its name
        np.testing.assert_allclose(safe.load(own, trusted=trusted).transform(X[:5]), OwnScaler().fit(X)
                                   .transform(X[:5]))


def _malicious_joblib(tmp_path, marker):
    model = LogisticRegression(max_iter=300).fit(np.eye(4), [0, 1, 0, 1])
    path = tmp_path / "model.joblib"
    joblib.dump({"model": model, "hook": _Payload(marker)}, path)
    return path


def test_pickles_need_trust_and_a_clean_scan(digits, tmp_path):
    X, y, X_test = digits
    model = LogisticRegression(max_iter=300).fit(X, y)
    clean = tmp_path / "clean.joblib"
    joblib.dump(model, clean)
    with pytest.raises(UnsafeArtifactError, match="pickle can run code; the scan found nothing.*trust=True"
                                                  ".*safe.convert") as info:
        safe.load(clean)
    assert info.value.findings == ()
    np.testing.assert_array_equal(safe.load(clean, trust=True).predict_proba(X_test),
                                  model.predict_proba(X_test))

    marker = tmp_path / "marker"
    evil = _malicious_joblib(tmp_path, marker)
    for trust in (False, True):
        with pytest.raises(UnsafeArtifactError, match="found code.*exec.*trust=True does not") as info:
            safe.load(evil, trust=trust)
        assert any("exec" in f.target for f in info.value.findings)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(_Payload(marker), protocol=0))
    with pytest.raises(UnsafeArtifactError, match="the scan found code"):
        safe.load(plain, trust=True)
    assert not marker.exists()


def test_torch_pickles_follow_the_same_rules(tmp_path):
    marker = tmp_path / "marker"
    state = _net().state_dict()
    for legacy in (False, True):
        path = tmp_path / f"state-{legacy}.pt"
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
        assert safe.detect_format(path) == ("torch-legacy" if legacy else "torch-zip")
        with pytest.raises(UnsafeArtifactError, match="pickle can run code"):
            safe.load(path)
        loaded = safe.load(path, trust=True)
        assert all(torch.equal(loaded[k], v) for k, v in state.items())
        evil = tmp_path / f"evil-{legacy}.pt"
        torch.save({**state, "hook": _Payload(marker)}, evil, _use_new_zipfile_serialization=not legacy)
        with pytest.raises(UnsafeArtifactError, match="the scan found code"):
            safe.load(evil, trust=True)
    assert not marker.exists()


def test_numpy_object_arrays_are_pickles(tmp_path):
    marker = tmp_path / "marker"
    plain = tmp_path / "plain.npy"
    np.save(plain, np.arange(6.0))
    np.testing.assert_array_equal(safe.load(plain), np.arange(6.0))  # data: no trust needed
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(UnsafeArtifactError, match="pickle can run code"):
        safe.load(objects)
    assert list(safe.load(objects, trust=True)) == [1, "a"]
    evil = tmp_path / "evil.npz"
    np.savez(evil, w=np.ones(3), hook=np.array([_Payload(marker)], dtype=object))
    with pytest.raises(UnsafeArtifactError, match="the scan found code"):
        safe.load(evil, trust=True)
    assert not marker.exists()


def test_the_format_is_read_from_the_content_not_the_name(digits, tmp_path):
    X, y, X_test = digits
    model = LogisticRegression(max_iter=300).fit(X, y)
    disguised_skops = tmp_path / "model.pkl"
    disguised_skops.write_bytes(sio.dumps(model))
    np.testing.assert_array_equal(safe.load(disguised_skops).predict(X_test), model.predict(X_test))
    marker = tmp_path / "marker"
    disguised_pickle = tmp_path / "model.safetensors"
    disguised_pickle.write_bytes(pickle.dumps(_Payload(marker)))
    assert safe.detect_format(disguised_pickle) == "pickle"
    with pytest.raises(UnsafeArtifactError):
        safe.load(disguised_pickle, trust=True)
    disguised_skops_pickle = tmp_path / "model.skops"
    disguised_skops_pickle.write_bytes(pickle.dumps(model, protocol=2))
    with pytest.raises(UnsafeArtifactError, match="pickle can run code"):
        safe.load(disguised_skops_pickle)
    assert not marker.exists()
    assert safe.detect_format(pickle.dumps([1, 2], protocol=0)) == "pickle"
    assert safe.detect_format(b"hello world") == "unknown"
    text = tmp_path / "notes.txt"
    text.write_text("hello world")
    with pytest.raises(InvalidInputError, match="not a model file"):
        safe.load(text)


def test_convert_makes_a_trusted_pickle_safe(digits, tmp_path):
    X, y, X_test = digits
    model = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    src = tmp_path / "zoo.joblib"
    joblib.dump(model, src)
    with pytest.raises(UnsafeArtifactError, match="pickle can run code"):
        safe.convert(src, tmp_path / "zoo.skops")
    dst = safe.convert(src, tmp_path / "zoo.skops", trust=True)
    assert safe.detect_format(dst) == "skops"
    np.testing.assert_array_equal(safe.load(dst).predict_proba(X_test), model.predict_proba(X_test))
    net = _net()
    torch.save(net.state_dict(), tmp_path / "net.pt")
    weights = safe.convert(tmp_path / "net.pt", tmp_path / "net.safetensors", trust=True)
    fresh = safe.load_state_dict(torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(),
                                                     torch.nn.Linear(16, 10)), weights)
    X_t = torch.as_tensor(X_test, dtype=torch.float32)
    assert torch.equal(fresh(X_t), net(X_t))
    marker = tmp_path / "marker"
    with pytest.raises(UnsafeArtifactError, match="the scan found code"):
        safe.convert(_malicious_joblib(tmp_path, marker), tmp_path / "out.skops", trust=True)
    assert not marker.exists() and not (tmp_path / "out.skops").exists()


def test_bad_arguments_raise_typed_errors(tmp_path):
    good = safe.save({"a": np.ones(2)}, tmp_path / "a")
    with pytest.raises(InvalidParameterError, match="path: .*missing.* does not exist"):
        safe.load(tmp_path / "missing")
    with pytest.raises(InvalidParameterError, match="path: .* is a directory"):
        safe.load(tmp_path)
    with pytest.raises(InvalidParameterError, match="path: expected a file path, got int"):
        safe.load(3)
    with pytest.raises(InvalidParameterError, match="trusted: expected a list of type names, got str"):
        safe.load(good, trusted="sklearn.Thing")
    with pytest.raises(InvalidParameterError, match="trust: expected True or False"):
        safe.load(good, trust="yes")
    with pytest.raises(InvalidParameterError, match="framework: expected 'numpy' or 'pt'"):
        safe.load(good, framework="tf")
    with pytest.raises(InvalidParameterError, match="obj: a function .* is code, not a model"):
        safe.save(lambda x: x, tmp_path / "f")
    with pytest.raises(InvalidParameterError, match="format: expected None"):
        safe.save({"a": np.ones(2)}, tmp_path / "b", format="pickle")
    with pytest.raises(InvalidParameterError, match="module: expected a torch.nn.Module"):
        safe.load_state_dict(object(), good)
    with pytest.raises(InvalidParameterError, match="data: expected bytes"):
        safe.loads("text")
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(good.read_bytes()[:-4])
    with pytest.raises(InvalidInputError, match="not a readable safetensors file"):
        safe.load(damaged)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("schema.json", "{not json")
    with pytest.raises(InvalidInputError, match="not a readable skops file"):
        safe.loads(buffer.getvalue())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=512),
    st.sampled_from([b"\x80\x04", b"PK\x03\x04", b"\x93NUMPY", b"(lp0\n", b"\x10" + bytes(7) + b"{"])
    .flatmap(lambda head: st.binary(max_size=256).map(lambda tail: head + tail)),
))
def test_arbitrary_bytes_get_a_typed_refusal_never_a_crash(data):
    """Without trust=True nothing is ever unpickled, so fuzzing in-process is safe."""
    try:
        safe.loads(data)
    except (InvalidInputError, UnsafeArtifactError):
        pass
    assert safe.detect_format(data) in safe.FORMATS
