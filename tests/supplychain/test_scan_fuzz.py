"""Hypothesis fuzzing of the scanner: random bytes, mutated and truncated real files, random opcode
sequences. Every input gets a ScanResult with a valid verdict, quickly, and never an exception."""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import zipfile

import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpentest.supplychain.scan import SEVERITIES, ScanResult, scan_bytes

FUZZ = settings(max_examples=120, deadline=2000, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def _seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    obj = {"w": rng.normal(size=(8, 4)), "names": ["a", "b"], "n": 3, "o": np.array([1, "x"], dtype=object)}
    seeds = [pickle.dumps(obj, protocol=p) for p in range(6)]
    seeds.append(pickle.dumps({"x": Evil(), "w": [1.5]}, protocol=4))
    for compress in (0, 3):
        buf = io.BytesIO()
        joblib.dump({"w": rng.normal(size=(6, 3)), "x": Evil()}, buf, compress=compress)
        seeds.append(buf.getvalue())
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        zf.writestr("archive/version", "3\n")
    seeds.append(zbuf.getvalue())
    npy = io.BytesIO()
    np.save(npy, np.arange(12.0).reshape(3, 4))
    seeds.append(npy.getvalue())
    return seeds


SEEDS = _seeds()
OPCODES = [op.code.encode("latin-1") for op in pickletools.opcodes]


def _check(result: ScanResult) -> None:
    assert isinstance(result, ScanResult)
    assert result.verdict in ("clean", "suspicious", "unreadable")
    assert result.exit_code == {"clean": 0, "suspicious": 1, "unreadable": 2}[result.verdict]
    assert all(f.severity in SEVERITIES for f in result.findings)
    assert not any("internal error" in e for e in result.errors), result.errors
    if any(f.severity != "low" for f in result.findings):
        assert result.verdict == "suspicious"
    result.to_dict()


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    _check(scan_bytes(data, max_bytes=1 << 24))


@FUZZ
@given(st.sampled_from(range(len(SEEDS))), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                                                    max_size=8), st.integers(0, 1 << 16), st.booleans())
def test_mutated_and_truncated_real_files(index: int, flips: list, cut: int, truncate: bool) -> None:
    data = bytearray(SEEDS[index])
    for pos, value in flips:
        data[pos % len(data)] = value
    if truncate:
        data = data[: cut % (len(data) + 1)]
    _check(scan_bytes(bytes(data), max_bytes=1 << 24))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(OPCODES), st.binary(max_size=9)), max_size=60), st.booleans())
def test_random_opcode_sequences(ops: list, proto: bool) -> None:
    data = (b"\x80\x04" if proto else b"") + b"".join(code + arg for code, arg in ops) + b"."
    _check(scan_bytes(data, max_bytes=1 << 24))


@pytest.mark.parametrize("seed", range(len(SEEDS)))
def test_every_prefix_of_a_small_seed_gets_a_verdict(seed: int) -> None:
    data = SEEDS[seed][:600]
    for end in range(0, len(data), 7):
        _check(scan_bytes(data[:end], max_bytes=1 << 24))
