"""The scanner against the corpus: every malicious file flagged, every benign file clean; and the corpus
itself checked: its malicious files really run their payload when loaded (in a subprocess, in a temp
dir, the payload only writing a marker file), and scanning never does."""

from __future__ import annotations

import json
import pickletools
import struct
import subprocess
import sys
import textwrap
import time
import zipfile
from collections import Counter

import pytest

from mlpentest.errors import InvalidParameterError
from mlpentest.supplychain.corpus import CorpusEntry, build_corpus, entry_names
from mlpentest.supplychain.scan import scan

NAMES = entry_names()

# For plain imports the finding must name the import itself.
EXPECTED_TARGET = {
    "os_system_p0.pkl": "os.system", "posix_system_p2.pkl": "posix.system", "nt_system.pkl": "nt.system",
    "subprocess_popen.pkl": "subprocess.Popen", "builtins_exec.pkl": "builtins.exec",
    "inst_p0.pkl": "posix.system", "obj_p1.pkl": "builtins.exec", "timeit_timeit.pkl": "timeit.timeit",
    "runpy_run_code.pkl": "runpy._run_code", "cprofile_run.pkl": "cProfile.run",
    "memo_strings.pkl": "posix.system", "memo_callable.pkl": "posix.system",
}

LOADER = textwrap.dedent(
    """
    import json, sys
    for loader, path in json.loads(sys.argv[1]):
        try:
            if loader == "pickle":
                import pickle
                with open(path, "rb") as fh:
                    pickle.load(fh)
            elif loader == "joblib":
                import joblib
                joblib.load(path)
            elif loader == "torch":
                import torch
                torch.load(path, weights_only=False)
            elif loader == "numpy":
                import numpy
                loaded = numpy.load(path, allow_pickle=True)
                for key in getattr(loaded, "files", []):
                    loaded[key]
        except Exception as exc:  # a payload may break the load after it ran: the marker says
            print("load error", path, type(exc).__name__, exc, file=sys.stderr)
    """
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, CorpusEntry]:
    root = tmp_path_factory.mktemp("corpus")
    entries = build_corpus(root / "files", random_state=0, marker=root / "markers")
    return {e.path.name: e for e in entries}


def test_plan_matches_the_files_written(corpus):
    assert list(corpus) == NAMES
    assert all(e.path.is_file() and e.path.stat().st_size > 0 for e in corpus.values())
    counts = Counter(e.malicious for e in corpus.values())
    assert counts[True] >= 40 and counts[False] >= 40
    malicious_kinds = {e.kind for e in corpus.values() if e.malicious}
    assert {"pickle", "joblib", "npy", "npz", "zip", "tar", "skops"} <= malicious_kinds
    if "torch_payload.pt" in corpus:
        assert {"torch-zip", "torch-legacy"} <= malicious_kinds


@pytest.mark.parametrize("name", NAMES)
def test_scan_verdict(corpus, name):
    entry = corpus[name]
    result = scan(entry.path)
    if entry.malicious:
        assert result.verdict == "suspicious", (entry.description, result.errors)
        assert result.exit_code == 1
        assert any(f.severity in ("high", "critical") for f in result.findings), result.findings
        if name in EXPECTED_TARGET:
            assert EXPECTED_TARGET[name] in {f.target for f in result.findings}, result.findings
    else:
        details = [(f.member, f.opcode, f.target, f.reason) for f in result.findings]
        assert result.verdict == "clean", (entry.description, details, result.errors)
        assert result.exit_code == 0
        assert result.findings == ()


def test_scanning_never_runs_a_payload(corpus):
    marked = [e for e in corpus.values() if e.marker is not None]
    assert len(marked) >= 30
    for entry in marked:
        scan(entry.path)
    time.sleep(0.2)  # a payload that started a process would have written its marker by now
    assert [e.path.name for e in marked if e.marker.exists()] == []


def test_malicious_files_run_their_payload_when_loaded(corpus, tmp_path):
    """Each payload that runs code writes its marker when its file is loaded the way a victim would."""
    marked = [e for e in corpus.values() if e.marker is not None]
    for entry in marked:
        entry.marker.unlink(missing_ok=True)
    jobs = [(e.loader, str(e.path)) for e in marked]
    done = subprocess.run([sys.executable, "-c", LOADER, json.dumps(jobs)], cwd=tmp_path,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    deadline = time.monotonic() + 10  # Popen, asyncio: the child process writes a little later
    while time.monotonic() < deadline and not all(e.marker.exists() for e in marked):
        time.sleep(0.1)
    missing = [e.path.name for e in marked if not e.marker.exists()]
    assert missing == [], done.stderr[-2000:]
    for entry in marked:
        entry.marker.unlink()


def test_malicious_pickles_are_well_formed_and_name_their_import(corpus):
    for entry in corpus.values():
        if not entry.malicious or entry.kind != "pickle":
            continue
        data = entry.path.read_bytes()
        ops = [op.name for op, _, _ in pickletools.genops(data)]  # parses, never executes
        assert ops[-1] == "STOP", entry.path.name
        assert {"REDUCE", "INST", "OBJ"} & set(ops), entry.path.name
    assert b"cnt\nsystem\n" in corpus["nt_system.pkl"].path.read_bytes()
    assert b"c__builtin__\neval\n" in corpus["builtin_eval_py2.pkl"].path.read_bytes()
    # the computed STACK_GLOBAL never holds the name "system" as one string
    assert b"system" not in corpus["stack_global_add.pkl"].path.read_bytes()


def test_zip_header_tricks_are_what_they_claim(corpus):
    if "torch_zip_name_mismatch.pt" not in corpus:
        pytest.skip("torch not installed")
    mismatch = zipfile.ZipFile(corpus["torch_zip_name_mismatch.pt"].path)
    data_pkl = next(n for n in mismatch.namelist() if n.endswith("/data.pkl"))
    with pytest.raises(zipfile.BadZipFile, match="differ"):
        mismatch.read(data_pkl)
    raw = corpus["torch_zip_flag_bits.pt"].path.read_bytes()
    first_local = raw.index(b"PK\x03\x04")
    assert struct.unpack_from("<H", raw, first_local + 6)[0] & 0x1  # "encrypted" in the local header
    flags = {i.flag_bits for i in zipfile.ZipFile(corpus["torch_zip_flag_bits.pt"].path).infolist()}
    assert all(f & 0x6 == 0x6 and not f & 0x1 for f in flags)


def test_skops_files_name_the_dangerous_function(corpus):
    for name, pair in (("skops_builtins_eval.skops", ("builtins", "eval")),
                       ("skops_os_system.skops", ("os", "system"))):
        schema = zipfile.ZipFile(corpus[name].path).read("schema.json").decode()
        assert json.dumps(pair[1]) in schema and json.dumps(pair[0]) in schema
        assert '"log1p"' not in schema


def test_build_is_deterministic_and_validates(corpus, tmp_path):
    """Same seed, same bytes (skops and torch files embed ids of their own; marker payloads differ)."""
    again = build_corpus(tmp_path / "again", random_state=0, include_torch=False)
    assert not any(e.kind.startswith("torch") for e in again)
    stable = [e for e in again
              if e.kind != "skops" and corpus[e.path.name].marker is None]
    assert len(stable) > 60
    different = [e.path.name for e in stable if e.path.read_bytes() != corpus[e.path.name].path.read_bytes()]
    assert different == []
    with pytest.raises(InvalidParameterError, match="random_state"):
        build_corpus(tmp_path / "x", random_state="0")
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidParameterError, match="directory"):
        build_corpus(tmp_path / "file")
