"""The scanner: every container, every import/call trick, benign real models, caps and verdicts.

Malicious files are built with ``__reduce__`` classes and ``pickle.dumps`` or raw opcodes, and are never
loaded — except in the one test that shows, in a subprocess inside tmp_path, that torch really runs a
zip whose flag bits make :mod:`zipfile` refuse it.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
import zlib

import joblib
import numpy as np
import pytest
import scipy.sparse as sp

from mlpentest.errors import InvalidParameterError
from mlpentest.supplychain.allowlist import judge
from mlpentest.supplychain.scan import SEVERITIES, Finding, ScanResult, scan, scan_bytes, scan_paths


class Evil:
    """Unpickling this runs ``os.system("true")`` (never unpickled here)."""

    def __reduce__(self):
        return (os.system, ("true",))


def _targets(result: ScanResult) -> set[str]:
    return {f.target for f in result.findings}


def _assert_os_system(result: ScanResult) -> None:
    assert result.verdict == "suspicious", result
    assert result.exit_code == 1
    hits = [f for f in result.findings if f.target in ("posix.system", "nt.system", "os.system")]
    assert hits, result.findings
    assert all(f.severity == "critical" for f in hits)


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _unicode(text: str) -> bytes:
    data = text.encode()
    return b"\x8c" + bytes([len(data)]) + data


# -- plain pickles and opcode tricks -------------------------------------------------------------------
@pytest.mark.parametrize("protocol", range(6))
def test_os_system_is_found_in_every_protocol_with_offset_and_opcode(protocol: int) -> None:
    data = pickle.dumps({"weights": [0.5, 1.5], "x": Evil()}, protocol=protocol)
    result = scan_bytes(data, "p.pkl")
    _assert_os_system(result)
    imp = next(f for f in result.findings if f.opcode in ("GLOBAL", "STACK_GLOBAL"))
    call = next(f for f in result.findings if f.opcode == "REDUCE")
    assert imp.opcode == ("GLOBAL" if protocol < 4 else "STACK_GLOBAL")
    # the offset points at that opcode's byte in the file
    assert data[imp.offset:imp.offset + 1] == (b"c" if protocol < 4 else b"\x93")
    assert data[call.offset:call.offset + 1] == b"R" and call.offset > imp.offset
    assert imp.member == "" and "posix.system" in result.imports or "nt.system" in result.imports
    assert result.formats == ("pickle",)


def test_stack_global_from_memoised_strings_is_resolved() -> None:
    # "os" and "system" are memoised, popped, then fetched back with BINGET before STACK_GLOBAL
    data = (b"\x80\x04" + _unicode("os") + b"\x94" + b"0" + _unicode("system") + b"\x94" + b"0"
            + b"h\x00h\x01\x93" + _unicode("true") + b"\x85R.")
    result = scan_bytes(data)
    assert [(f.opcode, f.target, f.severity) for f in result.findings] == [
        ("STACK_GLOBAL", "os.system", "critical"), ("REDUCE", "os.system", "critical")]
    assert result.findings[0].offset == data.index(b"\x93")


def test_reduce_of_a_memoised_callable_is_attributed_to_its_import() -> None:
    data = (b"\x80\x02" + _global("subprocess", "check_output") + b"q\x000" + b"h\x00"
            + b"(X\x04\x00\x00\x00truet" + b"R.")
    result = scan_bytes(data)
    calls = [f for f in result.findings if f.opcode == "REDUCE"]
    assert calls and calls[0].target == "subprocess.check_output" and calls[0].severity == "critical"
    assert calls[0].offset == len(data) - 2
    assert "imported at byte 2" in calls[0].reason


def test_import_from_computed_strings_is_critical_and_unresolved() -> None:
    # builtins.str (allowed) builds "os"; STACK_GLOBAL then imports from a value only known at load time
    data = (b"\x80\x04" + _unicode("builtins") + _unicode("str") + b"\x93" + _unicode("os") + b"\x85R"
            + _unicode("system") + b"\x93" + _unicode("true") + b"\x85R.")
    result = scan_bytes(data)
    computed = [f for f in result.findings if f.opcode == "STACK_GLOBAL"]
    assert len(computed) == 1 and computed[0].target == "?" and computed[0].severity == "critical"
    assert "computed" in computed[0].reason
    assert result.verdict == "suspicious"


def test_getattr_and_import_chain_is_critical() -> None:
    data = (b"\x80\x02" + _global("builtins", "getattr") + _global("builtins", "__import__")
            + b"X\x02\x00\x00\x00os\x85R" + b"X\x06\x00\x00\x00system\x86R" + b"X\x04\x00\x00\x00true\x85R.")
    result = scan_bytes(data)
    assert {"builtins.getattr", "builtins.__import__"} <= _targets(result)
    assert all(f.severity == "critical" for f in result.findings if f.target != "?")
    # calling the result of getattr(...) is a call of a computed object
    assert any(f.target == "?" and f.opcode == "REDUCE" for f in result.findings)


def test_inst_obj_newobj_and_python2_names() -> None:
    inst = b"(S'true'\n" + b"ios\nsystem\n."
    assert {(f.opcode, f.target) for f in scan_bytes(inst).findings} == {("INST", "os.system")}
    obj = b"(" + _global("os", "system") + b"S'true'\no."
    assert ("OBJ", "os.system") in {(f.opcode, f.target) for f in scan_bytes(obj).findings}
    newobj = b"\x80\x02" + _global("subprocess", "Popen") + b"]\x85\x81."
    assert ("NEWOBJ", "subprocess.Popen") in {(f.opcode, f.target) for f in scan_bytes(newobj).findings}
    # Python 3 renames __builtin__ to builtins: the scanner judges the name that would run
    py2 = b"(" + _global("__builtin__", "eval") + b"S'1+1'\no."
    result = scan_bytes(py2)
    assert "builtins.eval" in _targets(result) and result.findings[0].severity == "critical"


def test_extension_codes_and_build_on_an_import_are_reported() -> None:
    ext = scan_bytes(b"\x80\x02\x82\x01)R.")
    assert [f.opcode for f in ext.findings][:1] == ["EXT1"] and ext.findings[0].severity == "high"
    build = scan_bytes(b"\x80\x02" + _global("numpy", "ndarray") + b"N}\x86b.")
    assert [(f.opcode, f.target) for f in build.findings] == [("BUILD", "numpy.ndarray")]


@pytest.mark.parametrize("module,name", [
    ("posix", "system"), ("nt", "system"), ("subprocess", "run"), ("builtins", "eval"), ("builtins", "exec"),
    ("builtins", "compile"), ("runpy", "run_path"), ("runpy", "_run_code"), ("timeit", "timeit"),
    ("cProfile", "run"), ("profile", "run"), ("pdb", "run"), ("bdb", "Bdb"), ("trace", "Trace"),
    ("code", "InteractiveInterpreter"), ("importlib", "import_module"), ("pty", "spawn"),
    ("operator", "methodcaller"), ("operator", "attrgetter"), ("pickle", "loads"),
    ("marshal", "loads"), ("types", "FunctionType"), ("numpy", "load"), ("numpy.testing", "assert_"),
    ("torch", "load"), ("torch.storage", "_load_from_bytes"), ("torch.jit", "load"), ("joblib", "load"),
    ("ctypes", "CDLL"), ("webbrowser", "open"), ("shutil", "rmtree"), ("sklearn.base", "os"),
    ("sklearn", "base.os.system"), ("numpy", "__builtins__"),
])
def test_code_running_names_are_never_allowed(module: str, name: str) -> None:
    verdict = judge(f"{module}.{name}")
    assert verdict is not None and verdict[0] in ("high", "critical")
    data = b"(" + _global(module, name) + b"S'1+1'\no."
    result = scan_bytes(data)
    assert result.verdict == "suspicious"
    assert f"{module}.{name}" in _targets(result)


def test_less_obvious_code_runners_are_critical() -> None:
    for target in ("timeit.timeit", "cProfile.runctx", "pdb.run", "runpy.run_module", "code.interact",
                   "builtins.getattr", "torch.storage._load_from_bytes", "numpy.load"):
        assert judge(target)[0] == "critical", target


def test_sklearn_classes_allowed_but_sklearn_test_helpers_are_not() -> None:
    assert judge("sklearn.ensemble._forest.RandomForestClassifier") is None
    assert judge("sklearn.utils._testing.TempMemmap") is not None
    assert judge("sklearn.externals.array_api_compat.Thing") is not None
    assert judge("torch.nn.modules.linear.Linear") is None
    assert judge("torch.fx.graph_module.reduce_graph_module") is not None
    assert judge("torch.nn.modules.module.register_module_forward_hook") is not None


@pytest.mark.parametrize(
    ("module", "qualname"),
    [("sklearn.base", "inspect.Signature"), ("torch.nn.modules.module", "torch.jit.ScriptModule"),
     ("sklearn.utils.validation", "np.testing.TestCase"), ("numpy.lib._npyio_impl", "os.system")],
)
def test_attribute_chains_through_other_modules_are_not_allowed(module: str, qualname: str) -> None:
    # protocol 4 resolves dotted names with getattr: an allowed class name at the end of a chain that
    # passes through another module must not inherit the allowed package's trust
    data = b"\x80\x04" + _unicode(module) + _unicode(qualname) + b"\x93)R."
    result = scan_bytes(data)
    assert result.verdict == "suspicious"
    assert {f.opcode for f in result.findings} >= {"STACK_GLOBAL", "REDUCE"}


def test_nested_classes_inside_allowed_modules_stay_allowed() -> None:
    data = b"\x80\x04" + _unicode("sklearn.tree._classes") + _unicode("DecisionTreeClassifier") + b"\x93)R."
    assert scan_bytes(data).verdict == "clean"
    data = b"\x80\x04" + _unicode("sklearn.base") + _unicode("BaseEstimator.Inner") + b"\x93)R."
    assert scan_bytes(data).verdict == "clean"


# -- joblib --------------------------------------------------------------------------------------------
def test_joblib_with_arrays_before_and_after_the_payload(tmp_path) -> None:
    rng = np.random.default_rng(0)
    payload = {"before": rng.normal(size=(50, 40)), "x": Evil(), "after": rng.integers(0, 9, size=(30, 3)),
               "strings": np.array(["ab", "cd"]), "empty": np.zeros((0, 4))}
    joblib.dump(payload, tmp_path / "m.joblib")
    result = scan(tmp_path / "m.joblib")
    _assert_os_system(result)
    assert "joblib" in result.formats
    benign = dict(payload, x=3)
    joblib.dump(benign, tmp_path / "b.joblib")
    clean = scan(tmp_path / "b.joblib")
    assert clean.verdict == "clean", clean
    assert "joblib.numpy_pickle.NumpyArrayWrapper" in clean.imports


def test_joblib_object_array_holds_a_nested_pickle(tmp_path) -> None:
    joblib.dump({"a": np.arange(4.0), "o": np.array([1, Evil()], dtype=object), "z": np.ones(3)},
                tmp_path / "o.joblib")
    _assert_os_system(scan(tmp_path / "o.joblib"))


@pytest.mark.parametrize("compress", ["zlib", "gzip", "bz2", "xz", "lzma"])
def test_compressed_joblib(tmp_path, compress: str) -> None:
    arrays = {"w": np.linspace(0, 1, 500).reshape(50, 10)}
    joblib.dump(dict(arrays, x=Evil()), tmp_path / "bad", compress=(compress, 3))
    joblib.dump(arrays, tmp_path / "good", compress=(compress, 3))
    bad, good = scan(tmp_path / "bad"), scan(tmp_path / "good")
    _assert_os_system(bad)
    assert compress in bad.formats and "joblib" in bad.formats
    assert good.verdict == "clean", good


# -- torch ---------------------------------------------------------------------------------------------
torch = pytest.importorskip("torch")


class Net(torch.nn.Module):
    """A user's own model class: torch.save of the whole module imports it by name."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)


def _torch_bytes(obj, *, zip_format: bool = True) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=zip_format)
    return buf.getvalue()


@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_payload_in_both_formats(zip_format: bool) -> None:
    obj = {"state_dict": torch.nn.Linear(4, 2).state_dict(), "x": Evil()}
    data = _torch_bytes(obj, zip_format=zip_format)
    result = scan_bytes(data)
    _assert_os_system(result)
    assert ("torch-zip" if zip_format else "torch-legacy") in result.formats
    if zip_format:
        assert all(f.member.endswith("/data.pkl") for f in result.findings)


@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_benign_state_dicts_modules_and_optimizers(zip_format: bool) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 10))
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 1, 28, 28)).sum().backward()
    opt.step()
    objects = [model.state_dict(), model, opt.state_dict(), torch.nn.LSTM(4, 8), torch.nn.Embedding(10, 3),
               torch.nn.TransformerEncoderLayer(8, 2, 16),
               {"epoch": 3, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "size": torch.Size([2])}]
    for obj in objects:
        result = scan_bytes(_torch_bytes(obj, zip_format=zip_format))
        assert result.verdict == "clean", (type(obj).__name__, result)


def test_allow_turns_a_user_class_clean() -> None:
    data = _torch_bytes(Net())
    result = scan_bytes(data)
    assert result.verdict == "suspicious"
    assert {f.severity for f in result.findings} == {"high"}
    assert f"{__name__}.Net" in _targets(result)
    assert scan_bytes(data, allow=[f"{__name__}.Net"]).verdict == "clean"
    assert scan_bytes(data, allow=[f"{__name__}.*"]).verdict == "clean"
    # a user entry never widens to other modules
    assert scan_bytes(_torch_bytes({"x": Evil()}), allow=[f"{__name__}.*"]).verdict == "suspicious"


def _set_zip_flags(data: bytes, flag_bits: int) -> bytes:
    """Set general-purpose flag bits in every local and central header of a zip (sizes unchanged)."""
    out = bytearray(data)
    for sig, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = out.find(sig)
        while pos >= 0:
            (flags,) = struct.unpack_from("<H", out, pos + at)
            struct.pack_into("<H", out, pos + at, flags | flag_bits)
            pos = out.find(sig, pos + 4)
    return bytes(out)


def _mangle_local_header(data: bytes, member_suffix: bytes) -> bytes:
    """Change a member's name in its local header only, and its CRC everywhere: zipfile refuses both."""
    out = bytearray(data)
    pos = out.find(b"PK\x03\x04")
    while pos >= 0:
        nlen = struct.unpack_from("<H", out, pos + 26)[0]
        name = bytes(out[pos + 30:pos + 30 + nlen])
        if name.endswith(member_suffix):
            out[pos + 30:pos + 30 + nlen] = name.upper()
            struct.pack_into("<I", out, pos + 14, 0xDEADBEEF)
        pos = out.find(b"PK\x03\x04", pos + 4)
    pos = out.find(b"PK\x01\x02")
    while pos >= 0:
        nlen = struct.unpack_from("<H", out, pos + 28)[0]
        if bytes(out[pos + 46:pos + 46 + nlen]).endswith(member_suffix):
            struct.pack_into("<I", out, pos + 16, 0xDEADBEEF)
        pos = out.find(b"PK\x01\x02", pos + 4)
    return bytes(out)


def test_zip_that_zipfile_refuses_is_scanned_and_torch_really_loads_it(tmp_path) -> None:
    marker = tmp_path / "marker"

    class Touch:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "model.pt"
    path.write_bytes(_mangle_local_header(_torch_bytes({"w": torch.ones(2), "t": Touch()}), b"data.pkl"))
    with pytest.raises(zipfile.BadZipFile), zipfile.ZipFile(path) as zf:
        zf.read("archive/data.pkl")
    result = scan(path)
    assert result.verdict == "suspicious" and "io.open" in _targets(result)
    assert not result.errors
    # the attack is real: torch reads the member anyway and runs the payload (subprocess, in tmp_path)
    code = f"import torch; torch.load({str(path)!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120, capture_output=True)
    assert marker.exists()


def test_zip_with_encrypted_and_unusual_flag_bits_is_still_scanned() -> None:
    flagged = _set_zip_flags(_torch_bytes({"w": torch.ones(2), "x": Evil()}), 0x1 | 0x40)
    with pytest.raises((RuntimeError, NotImplementedError)), zipfile.ZipFile(io.BytesIO(flagged)) as zf:
        zf.read(zf.namelist()[0])
    result = scan_bytes(flagged)
    _assert_os_system(result)
    assert "zip-encrypted-flag" in result.formats


# -- numpy, skops, safetensors -------------------------------------------------------------------------
def test_npy_object_array_and_npz(tmp_path) -> None:
    np.save(tmp_path / "o.npy", np.array([1, Evil()], dtype=object), allow_pickle=True)
    _assert_os_system(scan(tmp_path / "o.npy"))
    np.save(tmp_path / "f.npy", np.arange(1000.0).reshape(10, 100))
    clean = scan(tmp_path / "f.npy")
    assert clean.verdict == "clean" and clean.formats == ("npy",)
    np.savez_compressed(tmp_path / "m.npz", a=np.arange(3), o=np.array([Evil()], dtype=object))
    result = scan(tmp_path / "m.npz")
    _assert_os_system(result)
    assert {f.member for f in result.findings} == {"o.npy"} and "npz" in result.formats
    np.savez(tmp_path / "ok.npz", a=np.arange(3), b=np.array(["x", "y"]))
    assert scan(tmp_path / "ok.npz").verdict == "clean"


def test_npy_with_truncated_data_or_bad_header_is_unreadable() -> None:
    buf = io.BytesIO()
    np.save(buf, np.arange(100))
    assert scan_bytes(buf.getvalue()[:-8]).verdict == "unreadable"
    header = b"{'descr': __import__('os').system('true'), 'fortran_order': False, 'shape': (1,), }"
    bad = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    assert scan_bytes(bad).verdict == "unreadable"


def test_skops_schema_naming_a_bad_function() -> None:
    skops_io = pytest.importorskip("skops.io")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X = np.random.default_rng(0).random((20, 3))
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()).fit(X, [0, 1] * 10)
    data = skops_io.dumps(model)
    good = scan_bytes(data)
    assert good.verdict == "clean" and "skops" in good.formats, good
    assert "sklearn.pipeline.Pipeline" in good.imports
    bad = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename == "schema.json":
                content = content.replace(b'"__class__": "log1p",\n', b'"__class__": "system",\n', 1)
                content = content.replace(b'"__module__": "numpy",\n', b'"__module__": "posix",\n', 1)
            dst.writestr(info, content)
    result = scan_bytes(bad.getvalue())
    assert result.verdict == "suspicious"
    finding = next(f for f in result.findings if f.target == "posix.system")
    assert finding.member == "schema.json" and finding.offset == -1 and finding.severity == "critical"


def test_safetensors_valid_and_invalid() -> None:
    st = pytest.importorskip("safetensors.torch")
    data = st.save({"w": torch.ones(3, 2), "b": torch.zeros(2)}, metadata={"format": "pt"})
    result = scan_bytes(data)
    assert result.verdict == "clean" and result.formats == ("safetensors",)
    n = int.from_bytes(data[:8], "little")
    header = data[8:8 + n].replace(b'"data_offsets":[0,', b'"data_offsets":[4,', 1)
    broken = scan_bytes(data[:8] + header + data[8 + n:])
    assert broken.verdict == "unreadable" and "safetensors" in broken.errors[0]
    assert scan_bytes(data[:-4]).verdict == "unreadable"


# -- archives: zip/tar, nesting, misleading names --------------------------------------------------------
def _zip(members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, content in members:
            zf.writestr(name, content)
    return buf.getvalue()


def test_zip_members_with_misleading_and_duplicate_names() -> None:
    evil = pickle.dumps(Evil())
    with pytest.warns(UserWarning, match="Duplicate name"):
        data = _zip([("README.md", b"# a model\n"), ("weights.png", evil), ("config.json", b'{"a": 1}'),
                     ("weights.png", pickle.dumps([1, 2])), ("../../etc/x\x00.txt", evil)])
    result = scan_bytes(data)
    _assert_os_system(result)
    # zipfile cut the name at the NUL when writing; the name is shown as stored, never used as a path
    assert {f.member for f in result.findings} == {"weights.png", "../../etc/x"}
    assert {"zip", "text", "json", "pickle"} <= set(result.formats)


def test_zip_with_unusual_flags_and_stored_members_still_scanned() -> None:
    stored = _zip([("a/data.pkl", pickle.dumps(Evil()))], zipfile.ZIP_STORED)
    data = _set_zip_flags(stored, 0x1 | 0x40 | 0x2000)
    _assert_os_system(scan_bytes(data))
    # a deflated member with the encrypted bit that really is not deflate cannot be read: unreadable.
    # Fixed bytes, not os.urandom: about 1 random string in 170 happens to inflate to something. The first
    # byte 0x07 starts a final block of the reserved type 3, which no inflater accepts (RFC 1951, 3.2.3).
    garbled = _zip([("a.pkl", b"\x07" + bytes(range(1, 64)))], zipfile.ZIP_STORED)
    garbled = garbled.replace(b"PK\x03\x04\x14\x00\x00\x00\x00\x00", b"PK\x03\x04\x14\x00\x01\x00\x08\x00", 1)
    garbled = garbled.replace(b"PK\x01\x02\x14\x03\x14\x00\x00\x00\x00\x00",
                              b"PK\x01\x02\x14\x03\x14\x00\x01\x00\x08\x00", 1)
    assert scan_bytes(garbled).verdict == "unreadable"


def test_zip_with_prepended_data_and_no_central_directory() -> None:
    evil = pickle.dumps(Evil())
    # data before the archive (self-extracting style) shifts every offset: members are still found
    prefixed = b"#!/bin/sh\nexit 0\n" + _zip([("pad.bin", b"\x00" * 10), ("m.pkl", evil)])
    result = scan_bytes(prefixed)
    _assert_os_system(result)
    assert {f.member for f in result.findings} == {"m.pkl"}
    no_cd = _zip([("m.pkl", evil)], zipfile.ZIP_STORED)
    _assert_os_system(scan_bytes(no_cd[: no_cd.index(b"PK\x01\x02")]))


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_tar_archives(tmp_path, mode: str) -> None:
    inner = _zip([("model/data.pkl", pickle.dumps(Evil(), protocol=2))])
    path = tmp_path / "a.tar"
    with tarfile.open(path, mode) as tar:
        for name, content in (("ok.pkl", pickle.dumps([1.0])), ("nested.zip", inner)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    result = scan(path)
    _assert_os_system(result)
    assert {f.member for f in result.findings} == {"nested.zip!model/data.pkl"}
    assert {"tar", "zip"} <= set(result.formats)


def test_gzip_bz2_xz_wrapping_a_pickle() -> None:
    evil = pickle.dumps(Evil())
    for compress in (gzip.compress, bz2.compress, lzma.compress, zlib.compress):
        _assert_os_system(scan_bytes(compress(evil)))


# -- robustness: caps, bombs, malformed input ---------------------------------------------------------
def test_garbage_empty_truncated_text_and_exit_codes(tmp_path) -> None:
    rng = np.random.default_rng(1)
    garbage = scan_bytes(b"\xff" + rng.bytes(2000))
    assert garbage.verdict == "unreadable" and garbage.exit_code == 2 and garbage.errors
    assert scan_bytes(b"").verdict == "unreadable"
    truncated = scan_bytes(pickle.dumps({"a": list(range(100))}, protocol=4)[:-30])
    assert truncated.verdict == "unreadable" and "ends" in truncated.errors[0]
    text = scan_bytes(b"This model was trained on digits.\n")
    assert text.verdict == "clean" and text.exit_code == 0 and text.formats == ("text",)
    # a finding wins over unreadable: a truncated malicious pickle is suspicious
    assert scan_bytes(pickle.dumps([Evil(), list(range(50))])[:-20]).verdict == "suspicious"
    missing = scan(tmp_path / "nope.pkl")
    assert missing.verdict == "unreadable" and "cannot read" in missing.errors[0]


def test_deeply_nested_pickle_gets_a_verdict_fast() -> None:
    depth = 200_000
    data = b"\x80\x02" + b"(" * depth + b"]" + b"l" * depth + b"."
    start = time.perf_counter()
    result = scan_bytes(data)
    assert result.verdict == "clean" and time.perf_counter() - start < 10
    unbalanced = scan_bytes(b"\x80\x02" + b"(" * depth + b".")
    assert unbalanced.verdict == "unreadable"


def test_huge_declared_lengths_do_not_allocate() -> None:
    data = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"xx"
    result = scan_bytes(data)
    assert result.verdict == "unreadable" and "ends early" in result.errors[0]


def _deflate_bomb(uncompressed: int) -> bytes:
    """A pickle holding ``uncompressed`` zero bytes (BINBYTES8), deflated in a zip: tiny file, huge ratio."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = [comp.compress(b"\x80\x04\x8e" + struct.pack("<Q", uncompressed))]
    chunk = b"\x00" * (1 << 20)
    for _ in range(uncompressed >> 20):
        body.append(comp.compress(chunk))
    body.append(comp.compress(b"."))
    body.append(comp.flush())
    raw = b"".join(body)
    name = b"bomb.pkl"
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, len(raw), 0xFFFFFFFF, len(name), 0)
    central = struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, 0, len(raw), 0xFFFFFFFF,
                          len(name), 0, 0, 0, 0, 0, 0)
    cd_offset = len(local) + len(name) + len(raw)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(name), cd_offset, 0)
    return local + name + raw + central + name + eocd


def test_zip_bomb_is_bounded_by_max_bytes() -> None:
    bomb = _deflate_bomb(512 << 20)
    assert len(bomb) < 1 << 20  # a ratio above 500
    start = time.perf_counter()
    result = scan_bytes(bomb, max_bytes=32 << 20)
    assert result.verdict == "unreadable" and "max_bytes" in " ".join(result.errors)
    assert result.bytes_scanned <= (32 << 20) + (2 << 20)
    assert time.perf_counter() - start < 10


def test_nesting_bomb_is_bounded_by_max_depth() -> None:
    data = pickle.dumps([1])
    for _ in range(12):
        data = gzip.compress(data)
    result = scan_bytes(data, max_depth=6)
    assert result.verdict == "unreadable" and "max_depth" in result.errors[0]
    assert scan_bytes(data, max_depth=13).verdict == "clean"
    zipped = pickle.dumps(Evil())
    for i in range(8):
        zipped = _zip([(f"level{i}.zip", zipped)])
    deep = scan_bytes(zipped, max_depth=4)
    assert deep.verdict == "unreadable"


# -- benign real models --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sklearn_models() -> list:
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    models = [
        Pipeline([("scale", StandardScaler()), ("pca", PCA(10, random_state=0)),
                  ("clf", LogisticRegression(max_iter=300))]),
        RandomForestClassifier(n_estimators=10, random_state=0),
        GradientBoostingClassifier(n_estimators=5, random_state=0),
        HistGradientBoostingClassifier(max_iter=5, random_state=0),
        MLPClassifier((16,), max_iter=30, random_state=0),
        SVC(probability=True, random_state=0), KNeighborsClassifier(), DecisionTreeClassifier(random_state=0),
        ColumnTransformer([("num", StandardScaler(), [0, 1, 2]),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), [3])]),
    ]
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [m.fit(X, y) for m in models]


def test_benign_sklearn_models_are_clean_in_pickle_and_joblib(tmp_path, sklearn_models) -> None:
    for i, model in enumerate(sklearn_models):
        for protocol in (2, 4, 5):
            result = scan_bytes(pickle.dumps(model, protocol=protocol), f"{i}.p{protocol}")
            assert result.verdict == "clean", (type(model).__name__, protocol, result.findings, result.errors)
        joblib.dump(model, tmp_path / f"{i}.joblib")
        joblib.dump(model, tmp_path / f"{i}.joblib.gz", compress=("gzip", 3))
    results = scan_paths(tmp_path)
    assert len(results) == 2 * len(sklearn_models)
    assert [r.verdict for r in results] == ["clean"] * len(results), [r for r in results
                                                                      if r.verdict != "clean"]
    assert [r.path for r in results] == sorted(r.path for r in results)


def test_benign_numpy_and_scipy_objects_are_clean() -> None:
    dtypes = ("i1", "u4", "f2", "f8", "c16", "?", "U3", "S2", "M8[ns]", ">i8")
    objects = [np.arange(10).astype(dt) for dt in dtypes]
    objects += [np.zeros(3, dtype=[("a", "f4"), ("b", "i8", (2,))]), np.array([1, "a", None], dtype=object),
                np.float64(2.5), np.random.default_rng(0), np.random.RandomState(1),
                np.ma.masked_array([1, 2], [0, 1]), sp.csr_matrix(np.eye(3)), sp.coo_array(np.eye(2)),
                sp.lil_matrix((2, 2)), sp.dok_matrix(np.eye(2))]
    for obj in objects:
        for protocol in (2, 5):
            result = scan_bytes(pickle.dumps(obj, protocol=protocol))
            assert result.verdict == "clean", (obj, result)
        buf = io.BytesIO()
        joblib.dump(obj, buf)
        assert scan_bytes(buf.getvalue()).verdict == "clean", obj


# -- API -----------------------------------------------------------------------------------------------
def test_result_and_finding_are_json_safe_data() -> None:
    import json

    result = scan_bytes(pickle.dumps(Evil()), "x.pkl")
    as_dict = json.loads(json.dumps(result.to_dict()))
    assert as_dict["verdict"] == "suspicious" and as_dict["exit_code"] == 1 and as_dict["path"] == "x.pkl"
    assert set(as_dict["findings"][0]) == {"member", "offset", "opcode", "target", "severity", "reason"}
    assert all(isinstance(f, Finding) and f.severity in SEVERITIES for f in result.findings)
    assert result.bytes_scanned >= len(pickle.dumps(Evil())) and result.wall_seconds >= 0


def test_bad_arguments_raise_typed_errors(tmp_path) -> None:
    with pytest.raises(InvalidParameterError, match="directory"):
        scan(tmp_path)
    with pytest.raises(InvalidParameterError, match="allow"):
        scan_bytes(b"x", allow="os.*")
    with pytest.raises(InvalidParameterError, match="allow"):
        scan_bytes(b"x", allow=["nodot"])
    with pytest.raises(InvalidParameterError, match="max_bytes"):
        scan_bytes(b"x", max_bytes=0)
    with pytest.raises(InvalidParameterError, match="max_depth"):
        scan_bytes(b"x", max_depth=-1)
    with pytest.raises(InvalidParameterError, match="data"):
        scan_bytes("not bytes")  # type: ignore[arg-type]


def test_importing_the_scanner_does_not_import_torch() -> None:
    code = ("import sys, mlpentest.supplychain.scan as s; s.scan_bytes(b'\\x80\\x04N.'); "
            "print('torch' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]


# -- red-team regressions: polyglots, numpy dtype states, re-exports, monkeypatching, bombs ---------------
def _p0_payload(cmd: str = "true") -> bytes:
    """Protocol-0 ``posix.system(cmd)`` without STOP."""
    return b"cposix\nsystem\n(S'" + cmd.encode() + b"'\ntR"


def _u4(text: str) -> bytes:
    data = text.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def _tar_header_pickle(cmd: str = "true") -> bytes:
    """A valid ustar archive whose header (the name field on) is a whole pickle: pickle.load runs it."""
    p = b"\x80\x02" + _p0_payload(cmd) + b"."
    h = bytearray(512)
    h[:len(p)] = p
    h[100:108], h[108:116], h[116:124] = b"0000644\0", b"0000000\0", b"0000000\0"
    h[124:136], h[136:148], h[156:157] = b"00000000000\0", b"00000000000\0", b"0"
    h[257:263], h[263:265] = b"ustar\0", b"00"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h) + b"\0" * 1024


def test_b1_tar_header_hiding_a_pickle_is_walked_as_pickle_too() -> None:
    from mlpentest.supplychain.safe import detect_format

    data = _tar_header_pickle()
    assert tarfile.open(fileobj=io.BytesIO(data)).getmembers()  # a real tar
    assert pickle.DEFAULT_PROTOCOL and data[:2] == b"\x80\x02"
    result = scan_bytes(data)
    _assert_os_system(result)
    assert {"tar", "pickle-polyglot"} <= set(result.formats)
    _assert_os_system(scan_bytes(gzip.compress(data)))  # nested, non-seekable: the front is walked too
    assert detect_format(data) == "pickle"  # safe.load scans it as the pickle it is (and refuses it)


def test_b1_benign_tars_with_opcode_like_names_stay_clean() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, body in (("config.json", b'{"a": 1}\n'), ("cls\nx", b"plain text\n"),
                           ("Vocab.txt", b"a\nb\n"), ("model.pkl", pickle.dumps({"w": [1.0, 2.0]}))):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    result = scan_bytes(buf.getvalue())
    assert result.verdict == "clean", (result.findings, result.errors)


def _st_pickle_polyglot(header: dict | None, data: bytes, first: bytes = b"S'\0\0\0\0\0\0") -> bytes:
    import json

    n = int.from_bytes(first, "little")
    text = json.dumps(header if header is not None else {}).encode()
    assert len(text) <= n
    return first + text.ljust(n, b" ") + data


def test_b2_pickle_swallowing_a_safetensors_header_is_flagged() -> None:
    from mlpentest.supplychain.safe import detect_format

    # the red team's file: an empty header, then the pickle's tail in the "data"
    data = _st_pickle_polyglot(None, b"'\n0" + _p0_payload() + b".")
    _assert_os_system(scan_bytes(data))
    # a strictly valid safetensors file (one U8 tensor covering the data) that is also a pickle
    tail = b"'\n0" + _p0_payload() + b"."
    header = {"t": {"dtype": "U8", "shape": [len(tail)], "data_offsets": [0, len(tail)]}}
    strict = _st_pickle_polyglot(header, tail)
    result = scan_bytes(strict)
    _assert_os_system(result)
    assert "safetensors" in result.formats and not result.errors
    assert detect_format(strict) == "pickle"
    # a header longer than the walker's line window, inside gzip (the stream is spooled to be walked)
    long_first = b"S'\x01\0\0\0\0\0"
    big = _st_pickle_polyglot(None, b"'\n0" + _p0_payload() + b".", first=long_first)
    assert int.from_bytes(long_first, "little") > 1 << 16
    _assert_os_system(scan_bytes(big))
    _assert_os_system(scan_bytes(gzip.compress(big)))


def test_b2_safetensors_must_cover_its_data_exactly() -> None:
    from safetensors.numpy import save

    good = save({"a": np.arange(6, dtype=np.float32), "b": np.ones((2, 2))})
    assert scan_bytes(good).verdict == "clean"
    trailing = scan_bytes(good + b"\0" * 16)  # bytes no tensor owns: where a pickle could hide
    assert trailing.verdict == "unreadable" and "data end" in " ".join(trailing.errors)


def _joblib_wrapper(descr: bytes, count: int, state: bytes = b"") -> bytes:
    return (b"\x80\x04cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(" + _u4("subclass")
            + b"cnumpy\nndarray\n" + _u4("shape") + b"K" + bytes([count]) + b"\x85" + _u4("order") + _u4("C")
            + _u4("dtype")
            + b"cnumpy\ndtype\n" + _u4(descr.decode()) + b"\x89\x88\x87R" + state + _u4("allow_mmap")
            + b"\x88ub")


@pytest.mark.parametrize(("descr", "itemsize"), [("float64", 8), ("complex128", 16), ("int8", 1)])
def test_b3_joblib_array_length_comes_from_numpy_not_from_digits(descr: str, itemsize: int) -> None:
    count = 16
    payload = _p0_payload() + b"0"
    head = _joblib_wrapper(descr.encode(), count)
    # joblib reads count*itemsize bytes, then unpickles the rest: the payload must be walked
    data = head + b"\0" * (count * itemsize) + payload + b"N" * 200 + b"."
    _assert_os_system(scan_bytes(data))
    benign = head + b"\0" * (count * itemsize) + b"."
    assert scan_bytes(benign).verdict == "clean"


def test_b3_object_dtype_spelled_with_byte_order_holds_a_pickle() -> None:
    count = 16
    inner = b"\x80\x04" + _p0_payload() + b"0N."
    data = _joblib_wrapper(b"|O8", count) + inner + b"."
    _assert_os_system(scan_bytes(data))


def test_b3_joblib_state_elsize_that_numpy_ignores_is_flagged() -> None:
    # BUILD state claiming 16-byte items for float64: numpy keeps 8, the scanner must not skip 16
    state = b"(K\x03" + _u4("<") + b"NNNJ\x10\x00\x00\x00J\x08\x00\x00\x00K\x00tb"
    data = _joblib_wrapper(b"f8", 2, state) + b"\0" * 16 + _p0_payload() + b"0" + b"N" * 30 + b"."
    result = scan_bytes(data)
    assert result.verdict == "suspicious"
    assert "numpy.dtype" in _targets(result) or "posix.system" in _targets(result)


def test_b5_dtype_state_clearing_object_flags_is_flagged() -> None:
    dt = (b"cnumpy\ndtype\n" + _u4("O8") + b"\x89\x88\x87R(K\x03" + _u4("|")
          + b"NNNJ\x08\x00\x00\x00J\x08\x00\x00\x00K\x00tb")
    arr = b"cnumpy._core.numeric\n_frombuffer\n(C\x08" + b"A" * 8 + dt + b"K\x01\x85" + _u4("C") + b"tR"
    data = b"\x80\x04cbuiltins\nlist\n(" + arr + b"tR."
    result = scan_bytes(data)
    assert result.verdict == "suspicious"
    assert any(f.target == "numpy.dtype" and f.opcode == "BUILD" for f in result.findings)
    # the real states numpy writes stay clean (object, unicode, structured, datetime dtypes)
    tree_dtype = np.dtype([("a", "<i8"), ("b", "<f8"), ("c", "u1")], align=False)
    for obj in (np.array([1, "x", None], dtype=object), np.array(["ab", "c"]), np.zeros(3, tree_dtype),
                np.zeros(2, np.dtype([("x", "<f4", (2,))])), np.array(["2020-01-01"], dtype="M8[ns]")):
        for protocol in (2, 5):
            clean = scan_bytes(pickle.dumps(obj, protocol=protocol))
            assert clean.verdict == "clean", (obj.dtype, clean.findings)


@pytest.mark.parametrize("target", [
    "sklearn.callback._transport.Client", "sklearn.callback._transport.Listener",
    "sklearn.callback._progressbar.Thread", "sklearn.metrics.pairwise.np", "sklearn.metrics.pairwise.partial",
    "sklearn.metrics._classification.warnings", "sklearn.feature_selection._univariate_selection.stats",
    "torch.nn.modules.linear.F", "sklearn.tree._tree.NODE_DTYPE", "sklearn.utils.discovery.Path",
    "sklearn.tree._export.StringIO", "sklearn.utils.validation.Parameter", "torch._utils._set_obj_state",
    "sklearn.somewhere.Popen", "sklearn.base.Thread",
])
def test_b4_b6_re_exports_and_module_objects_are_not_allowed(target: str) -> None:
    assert judge(target) is not None
    module, name = target.rsplit(".", 1)
    result = scan_bytes(b"\x80\x02" + _global(module, name) + b")R.")
    assert result.verdict == "suspicious" and target in _targets(result)


def test_b4_metric_functions_by_exact_name_stay_allowed() -> None:
    for target in ("sklearn.metrics._regression.r2_score", "sklearn.feature_selection._univariate_selection"
                   ".f_classif", "sklearn.metrics.pairwise.rbf_kernel", "sklearn.svm._classes.SVC"):
        assert judge(target) is None, target


def test_b6_monkeypatching_through_set_obj_state_build_and_setitem_is_flagged() -> None:
    patch = (b"\x80\x04\x8c\x0ctorch._utils\x8c\x0e_set_obj_state\x93\x8c\x18sklearn.metrics.pairwise"
             b"\x8c\x02np\x93}\x8c\x04load\x8c\x08builtins\x8c\x03str\x93s\x86R.")
    assert scan_bytes(patch).verdict == "suspicious"
    # BUILD on a class computed by builtins.type, and SETITEM into an imported object
    build_type = (b"\x80\x02cbuiltins\ntype\ncsklearn.base\nBaseEstimator\n)\x81\x85R}" + _unicode("x")
                  + b"Nsb.")
    assert "builtins.type" in _targets(scan_bytes(build_type))
    setitem = b"\x80\x02ccollections\nOrderedDict\n" + _unicode("k") + b"Ns."
    assert scan_bytes(setitem).verdict == "suspicious"
    # pickle's own spelling of type(None) stays clean
    assert scan_bytes(pickle.dumps(type(None), protocol=2)).verdict == "clean"


def test_names_with_nul_or_odd_characters_are_never_allowed() -> None:
    # CPython's GLOBAL resolves "os\0x" to os: a name with a NUL must not pass as anything allowed
    for module in (b"os\0x", b"sklearn.base\0", b"sklearn.base x"):
        data = b"c" + module + b"\nBaseEstimator\n)R."
        assert scan_bytes(data).verdict == "suspicious", module


def test_a_string_line_longer_than_the_line_window_is_skipped_not_fatal() -> None:
    data = b"S'" + b"a" * (200 << 10) + b"'\n0" + _p0_payload() + b"."
    _assert_os_system(scan_bytes(data))


def _zip_shared_member(n_entries: int, body: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = comp.compress(body) + comp.flush()
    name, crc = b"a.pkl", zlib.crc32(body)
    local = b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 8, 0, 0, crc, len(packed), len(body),
                                         len(name), 0)
    central = b"".join(b"PK\x01\x02" + struct.pack("<HHHHHHIIIHHHHHII", 20, 20, 0, 8, 0, 0, crc, len(packed),
                                                   len(body), len(name), 0, 0, 0, 0, 0, 0) + name
                       for _ in range(n_entries))
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, n_entries, n_entries, len(central),
                                      len(local) + len(name) + len(packed), 0)
    return local + name + packed + central + end


def test_zip_entries_sharing_one_member_are_read_once_and_work_is_bounded() -> None:
    evil = _zip_shared_member(50, pickle.dumps(Evil(), protocol=2))
    result = scan_bytes(evil)
    _assert_os_system(result)
    assert len([f for f in result.findings if f.opcode == "REDUCE"]) == 1
    bomb = _zip_shared_member(3, b"\x80\x04" + b"N0" * 4_000_000 + b"N.")
    assert len(bomb) < 20_000
    start = time.perf_counter()
    result = scan_bytes(bomb)
    assert result.verdict == "unreadable" and "work cap" in " ".join(result.errors)
    assert time.perf_counter() - start < 15


def test_decompression_ratio_and_json_caps_make_bombs_unreadable_fast() -> None:
    raw = b"\x80\x04\x8e" + (8 << 30).to_bytes(8, "little")
    comp = bz2.BZ2Compressor(9)
    parts = [comp.compress(raw)] + [comp.compress(b"\0" * (1 << 24)) for _ in range(24)] + [comp.flush()]
    data = b"".join(parts)
    start = time.perf_counter()
    result = scan_bytes(data)
    assert result.verdict == "unreadable" and "decompression cap" in result.errors[0]
    assert time.perf_counter() - start < 15
    big_json = gzip.compress(b"[" + b"0," * (9 << 20) + b"0]", 1)
    result = scan_bytes(big_json)
    assert result.verdict == "unreadable"


def test_zip64_record_with_impossible_offsets_gets_a_verdict_not_an_internal_error() -> None:
    body = _zip([("a.pkl", pickle.dumps(Evil(), protocol=2))], zipfile.ZIP_STORED)
    at = body.rfind(b"PK\x05\x06")
    z64 = b"PK\x06\x06" + struct.pack("<QHHIIQQQQ", 44, 45, 45, 0, 0, 1, 1, 1 << 62, (1 << 63) + 5)
    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, at, 1)
    data = body[:at] + z64 + locator + body[at:]
    result = scan_bytes(data)
    assert not any("internal error" in e for e in result.errors), result.errors
    _assert_os_system(result)


def test_partial_is_allowed_only_around_an_allowed_function() -> None:
    import functools

    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    X[:, 4] = rng.integers(0, 4, 120)
    # stores functools.partial(check_array, ...): a benign scikit-learn file must stay clean
    model = HistGradientBoostingRegressor(categorical_features=[4], max_iter=3).fit(X, rng.normal(size=120))
    assert scan_bytes(pickle.dumps(model, protocol=4)).verdict == "clean"

    result = scan_bytes(pickle.dumps(functools.partial(os.system, "true"), protocol=4))
    assert result.verdict == "suspicious"
    critical = {f.target for f in result.findings if f.severity == "critical"}
    assert critical >= {"posix.system", "functools.partial"}
    # the REDUCE wraps an allowed function, but the BUILD state swaps in a computed callable
    data = (b"\x80\x04" + _unicode("functools") + _unicode("partial") + b"\x93"
            + _unicode("sklearn.utils.validation") + _unicode("check_array") + b"\x93\x85R"
            + b"(" + _unicode("builtins") + _unicode("str") + b"\x93)R)}Nt" + b"b.")
    result = scan_bytes(data)
    assert result.verdict == "suspicious"
    assert any(f.target == "functools.partial" and f.opcode == "BUILD" for f in result.findings)


# -- second red-team round: calls routed through allowed helpers --------------------------------------
def _u4(text: str) -> bytes:
    data = text.encode()
    return b"X" + len(data).to_bytes(4, "little") + data


def test_dtype_state_trick_through_copyreg_newobj_is_found() -> None:
    # copyreg.__newobj__(numpy.dtype, 'O8', ...) is numpy.dtype(...): its BUILD state is checked the same way
    dtype = (b"ccopyreg\n__newobj__\n(cnumpy\ndtype\n" + _u4("O8") + b"\x89\x88tR"
             b"(K\x03" + _u4("|") + b"NNNJ\x08\0\0\0J\x08\0\0\0K\x00tb")
    data = (b"\x80\x04cbuiltins\nlist\n(cnumpy._core.numeric\n_frombuffer\n(C\x08AAAAAAAA"
            + dtype + b"K\x01\x85" + _u4("C") + b"tRtR.")
    result = scan_bytes(data)
    assert result.verdict == "suspicious"
    assert any(f.target == "numpy.dtype" and f.opcode == "BUILD" for f in result.findings)


def test_rebuild_from_type_only_as_torch_writes_it() -> None:
    # type(Identity()) patched through _rebuild_from_type_v2's state: every later Identity runs relu
    patch = (b"\x80\x04ctorch._tensor\n_rebuild_from_type_v2\n(cbuiltins\ntype\ncbuiltins\ntype\n"
             b"ctorch.nn.modules.linear\nIdentity\n)\x81\x85}" + _u4("forward") + b"ctorch\nrelu\nstR.")
    result = scan_bytes(patch)
    assert result.verdict == "suspicious"
    assert any(f.target == "torch._tensor._rebuild_from_type_v2" and f.severity == "critical"
               for f in result.findings)


def test_torch_tensor_with_attributes_and_allowed_subclass_stay_clean() -> None:
    torch = pytest.importorskip("torch")
    tensor = torch.ones(3)
    tensor.note = "calibrated"  # saved through _rebuild_from_type_v2 with a state
    assert scan_bytes(_torch_bytes({"t": tensor})).verdict == "clean"
    assert scan_bytes(_torch_bytes({"t": tensor}, zip_format=False)).verdict == "clean"


def _skops_with(root: dict, files: dict[str, bytes]) -> bytes:
    import json

    schema = dict(root, protocol=2, _skops_version="0.16.0")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        archive.writestr("schema.json", json.dumps(schema))
    return out.getvalue()


def test_skops_schema_calling_pickle_machinery_is_flagged() -> None:
    import itertools
    import json

    ids = itertools.count(1000)

    def node(cls: str, module: str, loader: str, **kw: object) -> dict:
        return {"__class__": cls, "__module__": module, "__loader__": loader, **kw, "__id__": next(ids)}

    def tup(*items: dict) -> dict:
        return node("tuple", "builtins", "TupleNode", content=list(items))

    def js(value: object) -> dict:
        return node("str", "builtins", "JsonNode", content=json.dumps(value), is_json=True)

    dtype = node("_rebuild_from_type_v2", "torch._tensor", "ConstructorFromReduceNode", content=tup(
        node("__newobj__", "copyreg", "FunctionNode"), node("ObjectDType", "numpy.dtypes", "TypeNode"),
        tup(node("dtype", "numpy", "TypeNode"), js("O8"), js(False), js(True)),
        tup(js(3), js("|"), js(None), js(None), js(None), js(8), js(8), js(0))))
    array = node("_frombuffer", "numpy._core.numeric", "ConstructorFromReduceNode", content=tup(
        node("bytes", "builtins", "BytesNode", file="a.bin"), dtype, tup(js(1)), js("C")))
    data = _skops_with(node("list", "builtins", "ConstructorFromReduceNode", content=tup(array)),
                       {"a.bin": b"A" * 8})
    result = scan_bytes(data)
    assert result.verdict == "suspicious"
    assert {"copyreg.__newobj__", "numpy._core.numeric._frombuffer",
            "torch._tensor._rebuild_from_type_v2"} <= {f.target for f in result.findings}

    from mlpentest.errors import UnsafeArtifactError
    from mlpentest.supplychain import safe

    with pytest.raises(UnsafeArtifactError, match="_rebuild_from_type_v2"):
        safe.loads(data)
