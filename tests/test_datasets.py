"""Tests of mlpentest.datasets: strict parsers, loaders on synthetic files, disjoint splits.

No test touches the network: an autouse fixture replaces ``urlopen`` with a function that fails the
test, and the download tests install their own fake that serves bytes built here.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import struct
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mlpentest import datasets
from mlpentest.datasets import (
    CIFAR10_CLASSES,
    DIGIT_CLASSES,
    FASHION_MNIST_CLASSES,
    Dataset,
    available,
    disjoint_split,
    load,
    read_cifar10_binary,
    read_idx,
    write_cifar10_binary,
    write_idx,
)
from mlpentest.datasets.fetch import Release
from mlpentest.errors import DatasetError, InvalidInputError, InvalidParameterError

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")
IDX_STEMS = (
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path_factory):
    """Empty MLPENTEST_DATA and cache, no system directories, and no network."""
    monkeypatch.setenv("MLPENTEST_DATA", str(tmp_path_factory.mktemp("env-data")))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setattr(datasets.download, "_SYSTEM_DIRS", {})

    def no_network(url, *args, **kwargs):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def _cache(name: str) -> Path:
    return Path(os.environ["XDG_CACHE_HOME"]) / "mlpentest" / name


def write_mnist_like(directory: Path, *, n_train=20, n_test=10, gz=True, seed=0) -> dict[str, np.ndarray]:
    """Four IDX files laid out like the MNIST release, with random pixels and labels."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for stem, arr in arrays.items():
        write_idx(directory / (stem + (".gz" if gz else "")), arr)
    return arrays


def write_cifar_like(directory: Path, *, per_batch=3, meta: str | None = None, seed=0):
    """The six CIFAR-10 binary batch files (and optionally batches.meta.txt) in ``directory``."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    X = rng.integers(0, 256, (6 * per_batch, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 6 * per_batch)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for b, name in enumerate(names):
        part = slice(b * per_batch, (b + 1) * per_batch)
        write_cifar10_binary(directory / name, X[part], y[part])
    if meta is not None:
        (directory / "batches.meta.txt").write_text(meta)
    return X, y


def idx_bytes(code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(f">BBBB{len(dims)}I", 0, 0, code, len(dims), *dims) + payload


def expect_dataset_error(path: Path, fault: str, call):
    with pytest.raises(DatasetError) as info:
        call()
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert fault in str(info.value), str(info.value)
    return info.value


# ------------------------------------------------------------------------------------------ read_idx
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    rng = np.random.default_rng(1)
    arr = (rng.normal(size=(4, 3, 2)) * 50).astype(dtype)
    write_idx(tmp_path / name, arr)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, arr)
    assert (tmp_path / name).read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\x00\x00")


def test_idx_compression_is_recognised_by_magic_not_name(tmp_path):
    arr = np.arange(12, dtype=np.int32)
    write_idx(tmp_path / "gzipped-without-suffix", arr, compress=True)
    write_idx(tmp_path / "plain.gz", arr, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "gzipped-without-suffix"), arr)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), arr)
    assert not list(tmp_path.glob("*.part")), "atomic writes leave no temporary files"


GOOD = idx_bytes(0x08, (3,), b"\x01\x02\x03")


@pytest.mark.parametrize(
    ("content", "fault"),
    [
        (b"", "empty file"),
        (b"\x01\x02\x08\x01" + b"\x00" * 8, "bad magic number: expected 00 00 <type> <ndim>, found 01 02 08"),
        (idx_bytes(0x07, (3,), b"abc"), "unknown IDX type code 0x07"),
        (idx_bytes(0x0A, (3,), b"abc"), "unknown IDX type code 0x0A"),
        (b"\x00\x00", "header truncated: the 4-byte magic number is cut at 2 bytes"),
        (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x05", "header truncated: 3 dimension(s) need a 16-byte header"),
        (b"\x00\x00\x08\x00", "header declares 0 dimensions"),
        (idx_bytes(0x08, (3,), b"\x01\x02"), "data truncated: shape (3,) of uint8 needs 3 bytes, got 2"),
        (idx_bytes(0x0C, (2, 2), b"\x00" * 15), "shape (2, 2) of int32 needs 16 bytes, got 15"),
        (GOOD + b"\x00\x00", "2 trailing bytes after the 3 data bytes"),
        (b"\x1f\x8b" + b"not really gzip", "corrupted gzip stream"),
        (gzip.compress(GOOD)[:-6], "corrupted gzip stream"),
        (gzip.compress(b""), "empty file (the gzip stream decompresses to 0 bytes)"),
        (gzip.compress(GOOD[:-1]), "data truncated (after gzip decompression)"),
        (gzip.compress(b"\x08\x03\x00\x00"), "bad magic number (after gzip decompression)"),
    ],
    ids=[
        "empty", "magic", "type-07", "type-0A", "short-magic", "short-header", "ndim-0", "short-data",
        "short-int32", "trailing", "bad-gzip", "cut-gzip", "empty-gzip", "gz-short-data", "gz-magic",
    ],
)  # fmt: skip
def test_read_idx_rejects_corrupted_files(tmp_path, content, fault):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    expect_dataset_error(path, fault, lambda: read_idx(path))


def test_read_idx_missing_file(tmp_path):
    path = tmp_path / "nothing-here"
    expect_dataset_error(path, "file not found", lambda: read_idx(path))


def test_write_idx_rejects_types_idx_cannot_hold(tmp_path):
    with pytest.raises(InvalidInputError, match="IDX has no type for dtype int64"):
        write_idx(tmp_path / "x", np.arange(3, dtype=np.int64))
    with pytest.raises(InvalidInputError, match="array"):
        write_idx(tmp_path / "x", np.float32(1.0))
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------------- CIFAR-10 binary
def test_cifar10_binary_round_trip_and_layout(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    y = np.array([0, 9, 3, 3, 1])
    write_cifar10_binary(tmp_path / "b.bin", X, y)
    X2, y2 = read_cifar10_binary(tmp_path / "b.bin")
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    assert X2.dtype == np.uint8 and y2.dtype == np.int64

    # a record built by hand: label, then the red, green and blue planes, each row-major
    planes = np.arange(3 * 1024, dtype=np.int64).reshape(3, 32, 32) % 251
    record = bytes([7]) + planes.astype(np.uint8).tobytes()
    (tmp_path / "hand.bin").write_bytes(record)
    X3, y3 = read_cifar10_binary(tmp_path / "hand.bin")
    assert y3.tolist() == [7]
    assert X3[0, 2, 5, 0] == planes[0, 2, 5] and X3[0, 2, 5, 1] == planes[1, 2, 5]
    assert X3[0, 31, 0, 2] == planes[2, 31, 0]


@pytest.mark.parametrize(
    ("content", "fault"),
    [
        (b"", "empty file"),
        (b"\x00" * (2 * 3073 - 5), "truncated: 6141 bytes is not a whole number of 3073-byte records"),
        (b"\x00" * 100, "(0 full records and 100 bytes left over)"),
        (b"\x01" + b"\x00" * 3072 + b"\x0c" + b"\x00" * 3072, "label 12 at record 1 is out of range 0..9"),
    ],
    ids=["empty", "truncated", "too-short", "label-12"],
)
def test_read_cifar10_binary_rejects_corrupted_files(tmp_path, content, fault):
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(content)
    expect_dataset_error(path, fault, lambda: read_cifar10_binary(path))


def test_write_cifar10_binary_checks_its_input(tmp_path):
    with pytest.raises(InvalidInputError, match="X: expected uint8 images"):
        write_cifar10_binary(tmp_path / "b.bin", np.zeros((2, 32, 32, 3), dtype=np.float32), [0, 1])
    with pytest.raises(InvalidInputError, match="y: expected integer labels in 0..9"):
        write_cifar10_binary(tmp_path / "b.bin", np.zeros((2, 32, 32, 3), dtype=np.uint8), [0, 10])


# --------------------------------------------------------------------------------- load: IDX sets
@pytest.mark.parametrize(
    ("name", "classes"), [("fashion-mnist", FASHION_MNIST_CLASSES), ("mnist", DIGIT_CLASSES)]
)
@pytest.mark.parametrize("gz", [True, False])
def test_load_idx_dataset_from_data_dir(tmp_path, name, classes, gz):
    arrays = write_mnist_like(tmp_path, gz=gz)
    ds = load(name, data_dir=tmp_path, download=False)
    assert ds.name == name and ds.class_names == classes and ds.n_classes == 10
    assert ds.X.shape == (30, 784) and ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert ds.X.min() >= 0.0 and ds.X.max() <= 1.0
    assert ds.n_official_train == 20 and ds.image_shape == (28, 28) and ds.source == str(tmp_path)
    images = np.concatenate([arrays["train-images-idx3-ubyte"], arrays["t10k-images-idx3-ubyte"]])
    np.testing.assert_allclose(ds.images(), images / 255.0, atol=1e-7)
    labels = np.concatenate([arrays["train-labels-idx1-ubyte"], arrays["t10k-labels-idx1-ubyte"]])
    np.testing.assert_array_equal(ds.y, labels)


def test_load_search_order(tmp_path):
    env = Path(os.environ["MLPENTEST_DATA"])
    write_mnist_like(env / "mnist", n_train=7, n_test=3)
    assert load("mnist", download=False).n_samples == 10  # $MLPENTEST_DATA/<name>
    write_mnist_like(tmp_path / "root" / "mnist", n_train=5, n_test=2)
    assert load("mnist", data_dir=tmp_path / "root", download=False).n_samples == 7  # data_dir/<name>
    write_mnist_like(tmp_path / "root", n_train=4, n_test=1, gz=False)
    assert load("mnist", data_dir=tmp_path / "root", download=False).n_samples == 5  # data_dir itself


def test_load_accepts_dotted_file_names_and_name_variants(tmp_path):
    arrays = write_mnist_like(tmp_path / "src")
    for stem, arr in arrays.items():
        write_idx(tmp_path / stem.replace("-idx", ".idx"), arr)
    assert load("Fashion_MNIST", data_dir=tmp_path, download=False).n_samples == 30


def test_load_missing_files_lists_the_places_searched(tmp_path, monkeypatch):
    system = tmp_path / "usr-share"
    monkeypatch.setattr(datasets.download, "_SYSTEM_DIRS", {"fashion-mnist": (system,)})
    with pytest.raises(DatasetError) as info:
        load("fashion-mnist", data_dir=tmp_path / "mine", download=False)
    message = str(info.value)
    assert info.value.path == "fashion-mnist" and "not found" in message
    for place in (
        tmp_path / "mine",
        tmp_path / "mine" / "fashion-mnist",
        Path(os.environ["MLPENTEST_DATA"]) / "fashion-mnist",
        system,
        _cache("fashion-mnist"),
    ):
        assert str(place) in message
    assert "apt-get install -y dataset-fashion-mnist" in message

    with pytest.raises(DatasetError, match="ossci-datasets") as info:
        load("mnist", download=False)
    assert "apt-get" not in str(info.value)


def test_load_reports_incomplete_directories(tmp_path):
    write_mnist_like(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]"):
        load("mnist", data_dir=tmp_path, download=False)


def test_load_skips_an_incomplete_directory_with_a_warning(tmp_path, caplog):
    write_mnist_like(tmp_path / "partial")
    (tmp_path / "partial" / "train-images-idx3-ubyte.gz").unlink()
    write_mnist_like(Path(os.environ["MLPENTEST_DATA"]) / "mnist", n_train=3, n_test=2)
    with caplog.at_level("WARNING", logger="mlpentest.datasets"):
        assert load("mnist", data_dir=tmp_path / "partial", download=False).n_samples == 5
    assert "lacks train-images-idx3-ubyte[.gz]" in caplog.text


def test_download_cifar10_archive_without_the_batches(monkeypatch):
    server = FakeServer({"cifar-10-binary.tar.gz": _tarball({"cifar-10-batches-bin/readme.html": b"hi"})})
    trust(monkeypatch, "cifar10", server.files)
    monkeypatch.setattr(urllib.request, "urlopen", server)
    with pytest.raises(DatasetError, match="the archive lacks data_batch_1.bin"):
        load("cifar10")
    assert not (_cache("cifar10") / "cifar-10-binary.tar.gz").exists()


def _replace_idx(directory: Path, stem: str, array) -> None:
    write_idx(directory / (stem + ".gz"), array)


@pytest.mark.parametrize(
    ("stem", "array", "fault"),
    [
        ("train-labels-idx1-ubyte", np.zeros(19, np.uint8), "holds 20 images but the labels file"),
        ("t10k-images-idx3-ubyte", np.zeros((10, 784), np.uint8), "expected 3 dimensions, found 2"),
        ("train-labels-idx1-ubyte", np.zeros((20, 1), np.uint8), "expected 1 dimension, found 2"),
        ("t10k-labels-idx1-ubyte", np.array([1, 2, 10, 3, 4, 5, 6, 7, 8, 9], np.uint8), "label 10 at index"),
        ("train-labels-idx1-ubyte", np.full(20, -1, np.int8), "label -1 at index 0 is out of range 0..9"),
        ("train-images-idx3-ubyte", np.zeros((20, 10, 10), np.uint8), "expected 28x28 images, found 10x10"),
        ("train-images-idx3-ubyte", np.zeros((20, 28, 28), np.float32), "expected unsigned-byte pixels"),
        ("t10k-labels-idx1-ubyte", np.zeros(10, np.float32), "expected integer labels, found float32"),
    ],
    ids=["count", "images-ndim", "labels-ndim", "label-10", "label-neg", "image-size", "float-pixels",
         "float-labels"],
)  # fmt: skip
def test_load_rejects_inconsistent_idx_files(tmp_path, stem, array, fault):
    write_mnist_like(tmp_path)
    _replace_idx(tmp_path, stem, array)
    blamed = "train-images-idx3-ubyte" if fault.startswith("holds") else stem
    with pytest.raises(DatasetError) as info:
        load("mnist", data_dir=tmp_path, download=False)
    assert fault in str(info.value)
    assert info.value.path == str(tmp_path / (blamed + ".gz"))
    if fault.startswith("holds"):  # a count mismatch names both files
        assert str(tmp_path / "train-labels-idx1-ubyte.gz") in str(info.value)


def test_load_corrupted_file_names_it(tmp_path):
    write_mnist_like(tmp_path)
    bad = tmp_path / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-20])
    expect_dataset_error(
        bad, "corrupted gzip stream", lambda: load("mnist", data_dir=tmp_path, download=False)
    )


def test_load_unknown_name():
    with pytest.raises(InvalidParameterError, match="valid names: digits, fashion-mnist, mnist, cifar10"):
        load("imagenet")
    with pytest.raises(InvalidParameterError, match="name"):
        load(3)  # type: ignore[arg-type]


def test_load_digits():
    ds = load("digits")
    assert ds.X.shape == (1797, 64) and ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert ds.class_names == DIGIT_CLASSES and ds.image_shape == (8, 8) and ds.source == "scikit-learn"
    assert ds.images().shape == (1797, 8, 8) and ds.n_official_train is None
    assert load().name == "digits"


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_load_real_fashion_mnist():
    ds = load("fashion-mnist", data_dir=REAL_FASHION, download=False)
    assert ds.X.shape == (70000, 784) and ds.X.dtype == np.float32
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0
    assert ds.n_classes == 10 and ds.n_official_train == 60000
    assert np.bincount(ds.y).tolist() == [7000] * 10


# --------------------------------------------------------------------------------- load: CIFAR-10
def test_load_cifar10(tmp_path):
    names = "\n".join(f"class-{i}" for i in range(10)) + "\n\n"
    X, y = write_cifar_like(tmp_path / "cifar-10-batches-bin", meta=names)
    ds = load("cifar10", data_dir=tmp_path, download=False)
    assert ds.X.shape == (18, 3072) and ds.X.dtype == np.float32 and ds.image_shape == (32, 32, 3)
    assert ds.n_official_train == 15 and ds.class_names == tuple(f"class-{i}" for i in range(10))
    np.testing.assert_allclose(ds.images(), X / 255.0, atol=1e-7)
    np.testing.assert_array_equal(ds.y, y)
    assert ds.source == str(tmp_path / "cifar-10-batches-bin")


def test_load_cifar10_default_names_and_bad_meta(tmp_path):
    write_cifar_like(tmp_path)
    assert load("cifar10", data_dir=tmp_path, download=False).class_names == CIFAR10_CLASSES
    (tmp_path / "batches.meta.txt").write_text("cat\ndog\n")
    expect_dataset_error(
        tmp_path / "batches.meta.txt",
        "expected 10 class names (one per line), found 2",
        lambda: load("cifar-10", data_dir=tmp_path, download=False),
    )


def test_load_cifar10_truncated_batch(tmp_path):
    write_cifar_like(tmp_path)
    bad = tmp_path / "data_batch_3.bin"
    bad.write_bytes(bad.read_bytes()[:-1])
    expect_dataset_error(bad, "truncated", lambda: load("cifar10", data_dir=tmp_path, download=False))


# ---------------------------------------------------------------------------------------- downloads
def trust(monkeypatch, name: str, files: dict[str, bytes]) -> None:
    """Make ``files`` the official release of ``name``: the size and SHA-256 a download must have."""
    releases = {f: Release(len(b), hashlib.sha256(b).hexdigest()) for f, b in files.items()}
    monkeypatch.setitem(datasets.download._RELEASES, name, releases)


class FakeServer:
    """Serves ``files`` by URL basename; URLs containing a string in ``down`` fail like a dead host."""

    def __init__(self, files: dict[str, bytes], down: tuple[str, ...] = ()):
        self.files, self.down, self.requested = files, down, []

    def __call__(self, url, timeout=None):
        self.requested.append(url)
        if any(d in url for d in self.down):
            raise urllib.error.URLError("Name or service not known")
        return io.BytesIO(self.files[url.rsplit("/", 1)[-1]])


def _idx_release(tmp_path: Path) -> dict[str, bytes]:
    write_mnist_like(tmp_path / "release")
    return {p.name: p.read_bytes() for p in (tmp_path / "release").iterdir()}


def test_download_mnist_falls_back_to_the_next_mirror(tmp_path, monkeypatch):
    server = FakeServer(_idx_release(tmp_path), down=("ossci-datasets",))
    trust(monkeypatch, "mnist", server.files)
    monkeypatch.setattr(urllib.request, "urlopen", server)
    ds = load("mnist")
    assert ds.n_samples == 30 and ds.source == str(_cache("mnist"))
    assert len(server.requested) == 8 and all(u.startswith("https://") for u in server.requested)
    assert sorted(p.name for p in _cache("mnist").iterdir()) == sorted(s + ".gz" for s in IDX_STEMS)
    monkeypatch.setattr(urllib.request, "urlopen", FakeServer({}, down=("",)))
    assert load("mnist").n_samples == 30  # from the cache, without a request
    assert [i for i in available() if i.name == "mnist"][0].found


def test_download_failure_explains_how_to_get_the_data(monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", FakeServer({}, down=("",)))
    with pytest.raises(DatasetError) as info:
        load("fashion-mnist")
    message = str(info.value)
    assert "download failed" in message and "Name or service not known" in message
    assert "https://fashion-mnist.s3.eu-central-1" in message and str(_cache("fashion-mnist")) in message
    assert "apt-get install -y dataset-fashion-mnist" in message and "download=True" not in message
    assert not any(_cache("fashion-mnist").glob("*")), "no partial file is left behind"


def test_download_rejects_a_page_that_is_not_the_data(tmp_path, monkeypatch):
    files = dict.fromkeys((s + ".gz" for s in IDX_STEMS), b"<html>Moved</html>")
    monkeypatch.setattr(urllib.request, "urlopen", FakeServer(files))
    trust(monkeypatch, "mnist", files)  # even with the right digest, the format check still applies
    with pytest.raises(DatasetError, match="bad magic number"):
        load("mnist")
    assert not any(_cache("mnist").glob("*"))


def _tarball(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink is not None:
            info = tarfile.TarInfo(symlink)
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
    return buf.getvalue()


def test_download_cifar10_extracts_the_binary_tarball(tmp_path, monkeypatch):
    X, _ = write_cifar_like(tmp_path / "release", meta="\n".join(CIFAR10_CLASSES))
    members = {f"cifar-10-batches-bin/{p.name}": p.read_bytes() for p in (tmp_path / "release").iterdir()}
    server = FakeServer({"cifar-10-binary.tar.gz": _tarball(members)})
    trust(monkeypatch, "cifar10", server.files)
    monkeypatch.setattr(urllib.request, "urlopen", server)
    ds = load("cifar10")
    assert server.requested == ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]
    np.testing.assert_allclose(ds.images(), X / 255.0, atol=1e-7)
    assert not (_cache("cifar10") / "cifar-10-binary.tar.gz").exists()


@pytest.mark.parametrize(
    ("members", "symlink", "fault"),
    [
        ({"../evil.bin": b"x"}, None, "unsafe member path '../evil.bin'"),
        ({"cifar-10-batches-bin/../../evil.bin": b"x"}, None, "unsafe member path"),
        ({"/tmp/evil.bin": b"x"}, None, "unsafe member path '/tmp/evil.bin'"),
        ({"ok.txt": b"x"}, "cifar-10-batches-bin/link", "is a link or special file"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink"],
)
def test_extraction_refuses_unsafe_archives(tmp_path, monkeypatch, members, symlink, fault):
    server = FakeServer({"cifar-10-binary.tar.gz": _tarball(members, symlink=symlink)})
    trust(monkeypatch, "cifar10", server.files)  # extraction checks hold even for a trusted archive
    monkeypatch.setattr(urllib.request, "urlopen", server)
    with pytest.raises(DatasetError, match=fault) as info:
        load("cifar10")
    assert info.value.path == str(_cache("cifar10") / "cifar-10-binary.tar.gz")
    assert not (_cache("cifar10").parent / "evil.bin").exists() and not Path("/tmp/evil.bin").exists()
    assert not (_cache("cifar10") / "ok.txt").exists(), "nothing is extracted from an unsafe archive"
    assert not (_cache("cifar10") / "cifar-10-binary.tar.gz").exists(), "the bad archive is discarded"


# -------------------------------------------------------------------------------------- available()
def test_available_only_checks_that_files_exist(tmp_path):
    env = Path(os.environ["MLPENTEST_DATA"])
    (env / "fashion-mnist").mkdir()
    for stem in IDX_STEMS:
        (env / "fashion-mnist" / (stem + ".gz")).write_bytes(b"")  # empty: would fail to parse
    (env / "cifar10").mkdir()
    (env / "cifar10" / "data_batch_1.bin").write_bytes(b"")
    infos = {i.name: i for i in available()}
    assert list(infos) == ["digits", "fashion-mnist", "mnist", "cifar10"]
    assert infos["digits"].found and infos["digits"].n_samples == 1797
    fashion = infos["fashion-mnist"]
    assert fashion.found and fashion.location == str(env / "fashion-mnist") and fashion.n_samples == 70000
    mnist = infos["mnist"]
    assert not mnist.found and mnist.location is None and mnist.n_samples == 70000
    assert mnist.searched == (str(env / "mnist"), str(_cache("mnist")))
    cifar = infos["cifar10"]
    assert not cifar.found and cifar.n_samples == 60000 and "lacks data_batch_2.bin" in cifar.note

    write_mnist_like(tmp_path / "mnist")
    mnist = {i.name: i for i in available(data_dir=tmp_path)}["mnist"]
    assert mnist.found and mnist.location == str(tmp_path / "mnist")
    assert mnist.searched == (str(tmp_path), str(tmp_path / "mnist"))


# ---------------------------------------------------------------------------------- disjoint_split
def _check_pools(pools, sizes, n):
    seen = np.concatenate(list(pools.values()))
    assert len(np.unique(seen)) == len(seen), "pools overlap"
    assert seen.min() >= 0 and seen.max() < n
    assert {k: len(v) for k, v in pools.items()} == sizes
    assert list(pools) == list(sizes)


def _check_stratified(pools, y):
    classes, counts = np.unique(y, return_counts=True)
    for idx in pools.values():
        got = np.array([(y[idx] == c).sum() for c in classes])
        ideal = len(idx) * counts / len(y)
        assert np.all(np.abs(got - ideal) < 1), (got, ideal)


def test_split_disjoint_exact_and_stratified():
    y = np.repeat(np.arange(4), [50, 30, 15, 5])
    sizes = {"target_train": 37, "target_test": 23, "shadow": 31}
    pools = disjoint_split(y, sizes, random_state=0)
    _check_pools(pools, sizes, 100)
    _check_stratified(pools, y)


def test_split_is_deterministic_per_seed():
    y = np.arange(200) % 3
    sizes = {"a": 50, "b": 60}
    one, two = disjoint_split(y, sizes, random_state=7), disjoint_split(y, sizes, random_state=7)
    other = disjoint_split(y, sizes, random_state=8)
    for k in sizes:
        np.testing.assert_array_equal(one[k], two[k])
    assert any(not np.array_equal(np.sort(one[k]), np.sort(other[k])) for k in sizes)


def test_split_needing_a_reassignment_stays_within_one_sample():
    # the greedy largest-remainder pass gets stuck here; the augmenting path must repair it
    y = np.repeat(np.arange(4), [3, 2, 3, 2])
    sizes = {"a": 5, "b": 3, "c": 2}
    pools = disjoint_split(y, sizes, random_state=0)
    _check_pools(pools, sizes, 10)
    _check_stratified(pools, y)


def test_split_fractions():
    pools = disjoint_split(5, {"train": 0.5, "test": 0.5}, random_state=0)
    assert sorted(len(v) for v in pools.values()) == [2, 3]
    assert sorted(np.concatenate(list(pools.values()))) == list(range(5))
    pools = disjoint_split(np.arange(100) % 2, {"a": 0.25, "b": 10, "c": 1.0 - 0.25 - 0.1}, random_state=0)
    assert {k: len(v) for k, v in pools.items()} == {"a": 25, "b": 10, "c": 65}


def test_split_int_n_and_no_stratification():
    pools = disjoint_split(10, {"a": 4, "b": 6}, random_state=0)
    _check_pools(pools, {"a": 4, "b": 6}, 10)
    y = np.array([0] * 8 + [1] * 2)
    unstratified = [disjoint_split(y, {"a": 5}, random_state=s, stratify=False)["a"] for s in range(30)]
    assert {int((y[idx] == 1).sum()) for idx in unstratified} != {1}


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"a": 60, "b": 50}, re.escape("need 110 samples in total (a=60, b=50) but only 100 are available")),
        ({"a": 0}, "a count must be at least 1"),
        ({"a": -3}, "a count must be at least 1"),
        ({"a": "10"}, "expected an int count or a float fraction, got str"),
        ({"a": True}, "expected an int count or a float fraction, got bool"),
        ({"a": 1.5}, r"must lie in \(0, 1\], got 1.5"),
        ({"a": 0.0}, r"must lie in \(0, 1\]"),
        ({"a": float("nan")}, r"must lie in \(0, 1\]"),
        ({"a": 0.001}, "is 0 samples"),
        ({}, "non-empty mapping"),
        ([("a", 3)], "non-empty mapping"),
        ({1: 3}, "pool names must be strings"),
    ],
)
def test_split_rejects_bad_sizes(sizes, message):
    with pytest.raises(InvalidParameterError, match=message) as info:
        disjoint_split(np.arange(100) % 3, sizes)
    assert "sizes" in str(info.value)


def test_split_rejects_bad_labels():
    with pytest.raises(InvalidInputError, match="y_or_n"):
        disjoint_split(np.zeros((3, 2)), {"a": 1})
    with pytest.raises(InvalidParameterError, match="y_or_n"):
        disjoint_split(0, {"a": 1})


@settings(max_examples=60, deadline=None)
@given(
    class_counts=st.lists(st.integers(1, 12), min_size=1, max_size=6),
    pool_fracs=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=5),
    seed=st.integers(0, 2**31 - 1),
)
def test_split_property(class_counts, pool_fracs, seed):
    y = np.repeat(np.arange(len(class_counts)), class_counts)
    n = len(y)
    scale = max(1.0, sum(pool_fracs))
    sizes = {f"p{i}": max(1, int(f / scale * n)) for i, f in enumerate(pool_fracs)}
    assume(sum(sizes.values()) <= n)
    pools = disjoint_split(y, sizes, random_state=seed)
    _check_pools(pools, sizes, n)
    _check_stratified(pools, y)


# ----------------------------------------------------------------------------------------- Dataset
def _toy(n=40, n_official_train=30) -> Dataset:
    X = np.tile((np.arange(n) / n)[:, None], (1, 4)).astype(np.float32)  # row i encodes i
    return Dataset("toy", X, np.arange(n) % 4, ("w", "x", "y", "z"), (2, 2), "here", n_official_train)


def test_dataset_basics():
    ds = _toy()
    assert (ds.n_samples, ds.n_features, ds.n_classes) == (40, 4, 4)
    assert ds.images().shape == (40, 2, 2) and ds.y.dtype == np.int64
    text = repr(ds)
    assert text.startswith("Dataset(name='toy', n_samples=40") and "array" not in text and len(text) < 200


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"X": np.full((2, 4), 1.5)}, r"X: values must lie in \[0.0, 1.0\]"),
        ({"y": np.array([0, 4])}, "y: class indices must lie in 0..3"),
        ({"y": np.array([0.0, 1.0])}, "y: expected integer class indices"),
        ({"image_shape": (3, 2)}, "image_shape"),
        ({"class_names": ("a", "a", "b", "c")}, "class_names"),
    ],
)
def test_dataset_validates_its_fields(change, message):
    fields = {"name": "t", "X": np.zeros((2, 4)), "y": np.array([0, 1]), "class_names": ("a", "b", "c", "d"),
              "image_shape": (2, 2), "source": "s"}  # fmt: skip
    fields.update(change)
    with pytest.raises(InvalidInputError, match=message):
        Dataset(**fields)


def test_subset():
    ds = _toy()
    sub = ds.subset([5, 1, 1])
    np.testing.assert_allclose(sub.X[:, 0] * 40, [5, 1, 1])
    assert sub.y.tolist() == [1, 1, 1] and sub.n_official_train is None and sub.class_names == ds.class_names
    mask = ds.y == 2
    assert ds.subset(mask).n_samples == 10
    for bad in ([40], [-1], [], [0.5], mask[:5], [[1, 2]]):
        with pytest.raises(InvalidInputError, match="indices"):
            ds.subset(bad)


def test_pair():
    ds = _toy()
    for a, b in (("x", "z"), (1, 3), ("x", 3)):
        two = ds.pair(a, b)
        assert two.class_names == ("x", "z") and two.n_classes == 2 and two.name == "toy (x vs z)"
        assert two.n_samples == 20 and two.n_official_train == 15
        ids = np.rint(two.X[:, 0] * 40).astype(int)
        np.testing.assert_array_equal(two.y, (ids % 4 == 3).astype(int))
    assert ds.pair("z", "x").y[0] == 1  # order of the arguments decides the labels
    with pytest.raises(InvalidParameterError, match="b: must differ from a"):
        ds.pair("x", 1)
    with pytest.raises(InvalidParameterError, match="unknown class 'cat'"):
        ds.pair("cat", "x")
    with pytest.raises(InvalidParameterError, match=r"class index must lie in 0..3"):
        ds.pair(0, 4)
    with pytest.raises(InvalidInputError, match="has no samples"):
        ds.subset(ds.y < 2).pair("w", "z")


def test_dataset_split():
    ds = _toy()
    pools = ds.split({"train": 12, "test": 0.25, "shadow": 8}, random_state=3)
    assert {k: v.n_samples for k, v in pools.items()} == {"train": 12, "test": 10, "shadow": 8}
    ids = [set(np.rint(p.X[:, 0] * 40).astype(int)) for p in pools.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert np.bincount(pools["train"].y, minlength=4).tolist() == [3, 3, 3, 3]
    again = ds.split({"train": 12, "test": 0.25, "shadow": 8}, random_state=3)
    np.testing.assert_array_equal(again["shadow"].X, pools["shadow"].X)
