"""The model-zoo tampering attack on real models, and the three defences that stop it.

Each model (scikit-learn Pipeline and RandomForest fitted on digits, saved with joblib plain and
compressed and with pickle; a torch net saved with torch.save, full and as a state_dict, zip and legacy)
is tampered with a marker payload. The tampered files are loaded only in one subprocess whose cwd is a
pytest temporary folder: the marker appears only then, the predictions are identical to the original's,
``torch.load(weights_only=True)`` refuses the file, ``scan`` flags it and ``verify`` refuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import pickletools
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlpentest.errors import InvalidInputError, InvalidParameterError, ManifestError
from mlpentest.supplychain.tamper import Payload, TamperResult, detect_format, tamper

torch = pytest.importorskip("torch")

# name -> (how the victim loads it, expected format, expected compression)
MODELS = {
    "pipe.joblib": ("joblib", "joblib", ""),
    "pipe_zlib.joblib": ("joblib", "joblib", "zlib"),
    "pipe_gzip.joblib": ("joblib", "joblib", "gzip"),
    "pipe_xz.joblib": ("joblib", "joblib", "xz"),
    "forest.joblib": ("joblib", "joblib", ""),
    "pipe_p0.pkl": ("pickle", "pickle", ""),
    "pipe_p2.pkl": ("pickle", "pickle", ""),
    "forest_p5.pkl": ("pickle", "pickle", ""),
    "net.pt": ("torch-module", "torch-zip", ""),
    "net_state.pt": ("torch-state", "torch-zip", ""),
    "net_legacy.pt": ("torch-state", "torch-legacy", ""),
}

LOADER = textwrap.dedent("""
    import json, os, pickle, sys
    import joblib, numpy as np, torch
    jobs = json.loads(sys.argv[1])
    X = np.load("inputs.npy")

    def net():
        return torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))

    def predict(how, path, weights_only=False):
        if how == "joblib":
            return joblib.load(path).predict(X).tolist()
        if how == "pickle":
            with open(path, "rb") as fh:
                return pickle.load(fh).predict(X).tolist()
        obj = torch.load(path, weights_only=weights_only)
        if how == "torch-state":
            model = net()
            model.load_state_dict(obj)
            obj = model
        with torch.no_grad():
            return obj(torch.as_tensor(X, dtype=torch.float32)).tolist()

    out = {}
    for name, how, original, tampered, marker in jobs:
        row = out[name] = {}
        row["original"] = predict(how, original)
        row["marker_after_original"] = os.path.exists(marker)
        if how.startswith("torch"):
            try:
                predict(how, tampered, weights_only=True)
                row["weights_only"] = "loaded"
            except pickle.UnpicklingError as exc:
                row["weights_only"] = "refused: " + str(exc)
            row["marker_after_weights_only"] = os.path.exists(marker)
        row["tampered"] = predict(how, tampered)
        row["marker_after_tampered"] = os.path.exists(marker)
        if name == "net_state.pt":  # torch's 64-byte member alignment survives: mmap loading works
            state = torch.load(tampered, mmap=True, weights_only=False)
            row["mmap"] = state["0.weight"].sum().item() == torch.load(original)["0.weight"].sum().item()
        if how == "joblib" and name == "pipe.joblib":
            # joblib's 16-byte array alignment survives the splice: memory-mapped arrays stay aligned
            mapped = joblib.load(tampered, mmap_mode="r")
            row["mmap"] = mapped.predict(X).tolist()
            row["mmap_aligned"] = bool(mapped[-1].coef_.ctypes.data % 16 == 0)
    print(json.dumps(out))
""")


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Original models in ``zoo/``, their tampered copies in ``tampered/`` and expected predictions."""
    root = tmp_path_factory.mktemp("tamper")
    zoo_dir, bad_dir = root / "zoo", root / "tampered"
    zoo_dir.mkdir()
    bad_dir.mkdir()
    X, y = load_digits(return_X_y=True)
    X_test = X[1500:1530]
    np.save(root / "inputs.npy", X_test)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X[:800], y[:800])
    forest = RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0).fit(X[:800], y[:800])
    net = _net()
    joblib.dump(pipe, zoo_dir / "pipe.joblib")
    joblib.dump(pipe, zoo_dir / "pipe_zlib.joblib", compress=3)
    joblib.dump(pipe, zoo_dir / "pipe_gzip.joblib", compress=("gzip", 3))
    joblib.dump(pipe, zoo_dir / "pipe_xz.joblib", compress=("xz", 3))
    joblib.dump(forest, zoo_dir / "forest.joblib")
    (zoo_dir / "pipe_p0.pkl").write_bytes(pickle.dumps(pipe, protocol=0))
    (zoo_dir / "pipe_p2.pkl").write_bytes(pickle.dumps(pipe, protocol=2))
    (zoo_dir / "forest_p5.pkl").write_bytes(pickle.dumps(forest, protocol=5))
    torch.save(net, zoo_dir / "net.pt")
    torch.save(net.state_dict(), zoo_dir / "net_state.pt")
    torch.save(net.state_dict(), zoo_dir / "net_legacy.pt", _use_new_zipfile_serialization=False)
    with torch.no_grad():
        logits = net(torch.as_tensor(X_test, dtype=torch.float32)).tolist()
    expected = {"pipe": pipe.predict(X_test).tolist(), "forest": forest.predict(X_test).tolist(),
                "net": logits}
    originals = {name: hashlib.sha256((zoo_dir / name).read_bytes()).hexdigest() for name in MODELS}
    results = {name: tamper(zoo_dir / name, Payload.marker(root / f"pwned_{name}"), out=bad_dir / name)
               for name in MODELS}
    return {"root": root, "zoo": zoo_dir, "bad": bad_dir, "expected": expected, "results": results,
            "originals": originals}


@pytest.fixture(scope="module")
def loaded(zoo: dict) -> dict:
    """Load every original and tampered model in ONE subprocess (cwd: the temporary folder)."""
    root = zoo["root"]
    for name in MODELS:  # tampering wrote no marker: the payload has not run yet
        assert not (root / f"pwned_{name}").exists()
    jobs = [[name, how, str(zoo["zoo"] / name), str(zoo["bad"] / name), str(root / f"pwned_{name}")]
            for name, (how, _fmt, _comp) in MODELS.items()]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", LOADER, json.dumps(jobs)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(MODELS))
def test_tampered_model_runs_payload_on_load_and_predicts_as_before(zoo, loaded, name):
    row = loaded[name]
    expected = zoo["expected"][name.split("_")[0].split(".")[0]]
    assert row["original"] == expected
    assert row["tampered"] == expected  # the victim sees the same model, exactly
    assert row["marker_after_original"] is False
    assert row["marker_after_tampered"] is True  # ... and the attacker's code ran
    marker = zoo["root"] / f"pwned_{name}"
    assert "tampered model file ran" in marker.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", [n for n in MODELS if MODELS[n][0].startswith("torch")])
def test_torch_weights_only_refuses_tampered_file(loaded, name):
    row = loaded[name]
    assert row["weights_only"].startswith("refused"), row["weights_only"]
    assert "GLOBAL exec" in row["weights_only"]  # torch names the import it refused
    assert row["marker_after_weights_only"] is False


def test_torch_zip_loads_memory_mapped(loaded):
    assert loaded["net_state.pt"]["mmap"] is True


def test_joblib_alignment_kept_for_memory_mapping(zoo, loaded):
    row = loaded["pipe.joblib"]
    assert row["mmap"] == zoo["expected"]["pipe"]
    assert row["mmap_aligned"] is True
    assert zoo["results"]["pipe.joblib"].bytes_added % 16 == 0


@pytest.mark.parametrize("name", list(MODELS))
def test_result_describes_the_tampered_file(zoo, name):
    result = zoo["results"][name]
    _how, fmt, compression = MODELS[name]
    assert isinstance(result, TamperResult)
    assert (result.format, result.compression) == (fmt, compression)
    assert result.path == str(zoo["bad"] / name)
    assert result.target == "builtins.exec"
    assert result.bytes_added > 0
    # the original is untouched; the recorded hashes are the files' real hashes
    assert hashlib.sha256((zoo["zoo"] / name).read_bytes()).hexdigest() == zoo["originals"][name]
    assert result.original_sha256 == zoo["originals"][name]
    assert result.tampered_sha256 == hashlib.sha256(Path(result.path).read_bytes()).hexdigest()
    assert result.tampered_sha256 != result.original_sha256
    assert json.loads(json.dumps(result.to_dict()))["format"] == fmt
    if compression:  # written back with the same compressor, so joblib still recognises it
        assert detect_format(Path(result.path).read_bytes()[:16]) == ("joblib", compression)


@pytest.mark.parametrize("name", list(MODELS))
def test_scan_flags_tampered_and_passes_original(zoo, name):
    from mlpentest.supplychain.scan import scan

    clean = scan(zoo["zoo"] / name)
    assert clean.verdict == "clean", [f.to_dict() for f in clean.findings]
    flagged = scan(zoo["bad"] / name)
    assert flagged.verdict == "suspicious"
    assert flagged.exit_code == 1
    assert any(f.target == "builtins.exec" and f.severity in ("high", "critical") for f in flagged.findings)


def test_scanning_runs_no_payload(tmp_path):
    from mlpentest.supplychain.scan import scan

    model = LogisticRegression(max_iter=200).fit(*load_digits(return_X_y=True))
    joblib.dump(model, tmp_path / "m.joblib")
    marker = tmp_path / "pwned"
    result = tamper(tmp_path / "m.joblib", Payload.marker(marker))
    assert scan(result.path).verdict == "suspicious"
    assert not marker.exists()


def test_signed_manifest_refuses_the_tampered_zoo(zoo, tmp_path):
    from mlpentest.supplychain import manifest

    zoo_copy = tmp_path / "zoo"
    shutil.copytree(zoo["zoo"], zoo_copy)
    manifest.generate_key(tmp_path / "key.pem", tmp_path / "key.pub")
    manifest.sign(zoo_copy, tmp_path / "key.pem")
    assert manifest.verify(zoo_copy, tmp_path / "key.pub").ok
    # the attacker replaces the published file in place (out= the input, explicitly)
    result = tamper(zoo_copy / "forest.joblib", Payload.marker(tmp_path / "pwned"),
                    out=zoo_copy / "forest.joblib")
    assert result.original_sha256 != result.tampered_sha256
    with pytest.raises(ManifestError) as err:
        manifest.verify(zoo_copy, tmp_path / "key.pub")
    assert err.value.modified == ("forest.joblib",)
    assert err.value.missing == () and err.value.added == ()
    assert "forest.joblib" in str(err.value)


def test_torch_zip_other_members_identical_stored_and_aligned(zoo):
    original, tampered = zoo["zoo"] / "net.pt", zoo["bad"] / "net.pt"
    with zipfile.ZipFile(original) as a, zipfile.ZipFile(tampered) as b:
        assert [i.filename for i in a.infolist()] == [i.filename for i in b.infolist()]
        assert zoo["results"]["net.pt"].member == "net/data.pkl"
        raw = tampered.read_bytes()
        for info in b.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            name_len = int.from_bytes(raw[info.header_offset + 26: info.header_offset + 28], "little")
            extra_len = int.from_bytes(raw[info.header_offset + 28: info.header_offset + 30], "little")
            assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0, info.filename
            if info.filename != "net/data.pkl":
                assert a.read(info.filename) == b.read(info.filename)
        old, new = a.read("net/data.pkl"), b.read("net/data.pkl")
    added = zoo["results"]["net.pt"].bytes_added
    assert len(new) == len(old) + added and new[:2] == old[:2] == b"\x80\x02" and new[2 + added:] == old[2:]


def test_default_output_beside_input_and_input_unchanged(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    before = path.read_bytes()
    result = tamper(path, Payload.marker(tmp_path / "pwned"))
    assert result.path == str(tmp_path / "model.tampered.pkl")
    assert path.read_bytes() == before
    assert result.format == "pickle"
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(Path(result.path).read_bytes())]
    assert ops[0][0] == "PROTO" and ops[1] == ("GLOBAL", "builtins exec")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("payload,global_arg", [
    (Payload.python("print('hello')"), "builtins exec"),
    (Payload.command(["echo", "tampered"]), "subprocess call"),
    (Payload.marker("relative/marker.txt"), "builtins exec"),
])
def test_payload_opcodes_parse_and_keep_alignment(payload, global_arg):
    for align in (1, 16, 64):
        code = payload.opcodes(align=align)
        assert len(code) % align == 0
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(code + pickle.STOP)]
        assert ops[0] == ("GLOBAL", global_arg)
        assert [name for name, _ in ops].count("REDUCE") == 1
        assert ops[-2][0] == "POP"
    assert payload.to_dict()["target"] == global_arg.replace(" ", ".")
    if payload.kind == "command":
        strings = [arg for op, arg, _ in pickletools.genops(code + pickle.STOP) if isinstance(arg, str)]
        assert "echo" in strings and "tampered" in strings
        assert "LIST" in [op.name for op, _arg, _pos in pickletools.genops(code + pickle.STOP)]
    hash(payload)  # a frozen value: usable as a dict key


def test_payload_arguments_are_validated():
    with pytest.raises(InvalidParameterError, match="code"):
        Payload.python("def broken(:")
    with pytest.raises(InvalidParameterError, match="argv"):
        Payload.command("rm -rf /")
    with pytest.raises(InvalidParameterError, match="argv"):
        Payload.command([])
    with pytest.raises(InvalidParameterError, match="path"):
        Payload.marker("")
    with pytest.raises(InvalidParameterError, match="path"):
        Payload.marker("a\x00b")


def test_unsupported_or_broken_files_raise_typed_errors(tmp_path, zoo):
    text = tmp_path / "notes.txt"
    text.write_text("just some text\n")
    with pytest.raises(InvalidInputError, match="model_file"):
        tamper(text, Payload.marker(tmp_path / "m"))
    truncated = tmp_path / "cut.pkl"
    truncated.write_bytes((zoo["zoo"] / "pipe_p2.pkl").read_bytes()[:300])
    with pytest.raises(InvalidInputError, match="truncated"):
        tamper(truncated, Payload.marker(tmp_path / "m"))
    plain_zip = tmp_path / "data.zip"
    with zipfile.ZipFile(plain_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(InvalidInputError, match="torch"):
        tamper(plain_zip, Payload.marker(tmp_path / "m"))
    corrupt = tmp_path / "bad.joblib"
    corrupt.write_bytes(b"\x1f\x8b" + bytes(range(200)))
    with pytest.raises(InvalidInputError, match="gzip"):
        tamper(corrupt, Payload.marker(tmp_path / "m"))
    with pytest.raises(InvalidInputError, match="model_file"):
        tamper(tmp_path / "absent.pkl", Payload.marker(tmp_path / "m"))
    with pytest.raises(InvalidParameterError, match="fmt"):
        tamper(zoo["zoo"] / "net.pt", Payload.marker(tmp_path / "m"), out=tmp_path / "x.pt", fmt="joblib")
    with pytest.raises(InvalidParameterError, match="fmt"):
        tamper(zoo["zoo"] / "pipe_p2.pkl", Payload.marker(tmp_path / "m"), out=tmp_path / "x", fmt="onnx")
    with pytest.raises(InvalidParameterError, match="payload"):
        tamper(zoo["zoo"] / "pipe_p2.pkl", "exec('1+1')", out=tmp_path / "x")
    assert not list(tmp_path.glob("x*")) and not (tmp_path / "m").exists()


def test_fmt_within_pickle_family_is_accepted(zoo, tmp_path):
    result = tamper(zoo["zoo"] / "pipe_p2.pkl", Payload.marker(tmp_path / "m"), out=tmp_path / "x.pkl",
                    fmt="joblib")
    assert result.format == "joblib" and result.bytes_added % 16 == 0
