"""Hardening of mlpentest.datasets: bounded reads, verified downloads, typed errors, random input.

No test touches the network (``urlopen`` is replaced by a function that fails the test); downloads are
served from bytes built here, or from Debian's Fashion-MNIST files with their original gzip header.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import struct
import tarfile
import time
import tracemalloc
import urllib.request
import zlib
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpentest import datasets
from mlpentest.datasets import Dataset, disjoint_split, load, read_cifar10_binary, read_idx, write_idx
from mlpentest.datasets import download as download_module
from mlpentest.datasets import fetch as fetch_module
from mlpentest.datasets.fetch import DownloadFailed, Release
from mlpentest.errors import DatasetError, InvalidInputError, InvalidParameterError, MlpentestError

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")
STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_DIGITS = load("digits")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("MLPENTEST_DATA", str(tmp_path_factory.mktemp("env-data")))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setattr(download_module, "_SYSTEM_DIRS", {})

    def no_network(url, *args, **kwargs):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def peak_mib(call) -> tuple[object, float, float]:
    """Run ``call``; return its result (or the exception it raised), traced peak MiB and seconds."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = call()
    except Exception as exc:  # noqa: BLE001 - the caller inspects it
        result = exc
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, peak, seconds


def gzip_idx(path: Path, header: bytes, zeros: int) -> Path:
    """A gzip file: ``header`` then ``zeros`` zero bytes, compressed without holding them in memory."""
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    with path.open("wb") as out:
        out.write(co.compress(header))
        block = bytes(1 << 20)
        for start in range(0, zeros, len(block)):
            out.write(co.compress(block[: min(len(block), zeros - start)]))
        out.write(co.flush())
    return path


def idx_header(code: int, dims: tuple[int, ...]) -> bytes:
    return struct.pack(f">BBBB{len(dims)}I", 0, 0, code, len(dims), *dims)


# ------------------------------------------------------------------------------- decompression bombs
def test_a_tiny_gzip_declaring_a_huge_array_is_refused_before_allocating(tmp_path):
    path = gzip_idx(tmp_path / "bomb.gz", idx_header(0x0E, (2**32 - 1,) * 3), 0)
    error, peak, seconds = peak_mib(lambda: read_idx(path))
    assert isinstance(error, DatasetError) and error.path == str(path)
    assert "more than the limit of 4294967296 bytes (max_bytes)" in str(error)
    assert str((2**32 - 1) ** 3 * 8) in str(error)
    assert peak < 1 and seconds < 1


@pytest.mark.parametrize(
    ("dims", "zeros", "fault"),
    [
        ((3 * 2**30,), 32 * 2**20, "data truncated (after gzip decompression): shape (3221225472,)"),
        ((1000,), 1000 + 32 * 2**20, "more than 16777216 trailing bytes (after gzip decompression)"),
    ],
    ids=["declares-3GiB-holds-32MiB", "32MiB-trailing"],
)
def test_a_gzip_bomb_under_the_limit_costs_no_more_than_a_chunk(tmp_path, dims, zeros, fault):
    path = gzip_idx(tmp_path / "bomb.gz", idx_header(0x08, dims), zeros)
    assert path.stat().st_size < 64 * 2**10
    error, peak, seconds = peak_mib(lambda: read_idx(path))
    assert isinstance(error, DatasetError) and fault in str(error), error
    assert peak < 8 and seconds < 2


def test_a_valid_file_reads_with_one_copy_of_its_data(tmp_path):
    arr = np.tile(np.arange(2**10, dtype=np.int32), (2**12, 1))  # 16 MiB, quick to compress
    write_idx(tmp_path / "a.gz", arr)
    result, peak, _ = peak_mib(lambda: read_idx(tmp_path / "a.gz"))
    np.testing.assert_array_equal(result, arr)
    assert peak < 1.5 * arr.nbytes / 2**20  # the array and a few 1 MiB chunks (it used to be 2.8x)


def test_max_bytes_is_the_documented_limit_and_can_be_changed(tmp_path):
    write_idx(tmp_path / "a.gz", np.zeros((5, 4), np.int16))  # 40 data bytes
    assert read_idx(tmp_path / "a.gz", max_bytes=40).shape == (5, 4)
    with pytest.raises(DatasetError, match=r"40 bytes, more than the limit of 39 bytes \(max_bytes\)"):
        read_idx(tmp_path / "a.gz", max_bytes=39)
    assert datasets.DEFAULT_MAX_BYTES == 4 * 2**30 and "4 GiB" in read_idx.__doc__
    for bad in (0, -1, 1.5, "10", None, True):
        with pytest.raises(InvalidParameterError, match="max_bytes"):
            read_idx(tmp_path / "a.gz", max_bytes=bad)


def test_cifar10_reader_checks_the_size_before_reading(tmp_path):
    path = tmp_path / "data_batch_1.bin"
    with path.open("wb") as out:
        out.truncate(3073 * 10_000 + 7)  # sparse: 30 MB on paper, nothing on disk
    error, peak, _ = peak_mib(lambda: read_cifar10_binary(path))
    assert isinstance(error, DatasetError) and "10000 full records and 7 bytes left over" in str(error)
    assert peak < 1
    with pytest.raises(DatasetError, match=r"30730007 bytes, more than the limit of 3073 bytes"):
        read_cifar10_binary(path, max_bytes=3073)


def test_class_names_file_is_read_only_when_small(tmp_path):
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        datasets.write_cifar10_binary(tmp_path / name, np.zeros((1, 32, 32, 3), np.uint8), [3])
    (tmp_path / "batches.meta.txt").write_bytes(b"x\n" * 40_000)
    with pytest.raises(DatasetError, match="80000 bytes, more than the 65536 bytes") as info:
        load("cifar10", data_dir=tmp_path, download=False)
    assert info.value.path == str(tmp_path / "batches.meta.txt")


# ------------------------------------------------------------------------------------------ downloads
class Server:
    """Serves ``files`` by URL basename; ``final_url`` plays a redirect's destination."""

    def __init__(self, files: dict[str, bytes], final_url: str | None = None):
        self.files, self.final_url, self.requested = files, final_url, []

    def __call__(self, url, timeout=None):
        self.requested.append(url)
        response = io.BytesIO(self.files[url.rsplit("/", 1)[-1]])
        response.url = self.final_url or url
        return response


def trust(monkeypatch, name: str, files: dict[str, bytes]) -> None:
    releases = {f: Release(len(b), hashlib.sha256(b).hexdigest()) for f, b in files.items()}
    monkeypatch.setitem(download_module._RELEASES, name, releases)


def mnist_release(tmp_path: Path, n: int = 5) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    for stem in STEMS:
        shape = (n, 28, 28) if "images" in stem else (n,)
        write_idx(tmp_path / "release" / (stem + ".gz"), rng.integers(0, 10, shape, dtype=np.uint8))
    return {p.name: p.read_bytes() for p in (tmp_path / "release").iterdir()}


def upstream_fashion(stem: str) -> bytes:
    """Zalando's original file from Debian's copy, which only lost the gzip header's name and mtime."""
    debian = (REAL_FASHION / (stem + ".gz")).read_bytes()
    assert debian[:4] == b"\x1f\x8b\x08\x00", "Debian's file carries no name field"
    # 2017-08-31: found by trying mtimes until the MD5 matched the one in Zalando's README
    mtime = 1504176606 if stem.startswith("train") else 1504176627
    return b"\x1f\x8b\x08\x08" + struct.pack("<I", mtime) + b"\x00\x03" + stem.encode() + b"\0" + debian[10:]


@pytest.mark.skipif(not REAL_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_the_official_fashion_mnist_files_are_accepted_and_debians_copies_are_not(monkeypatch):
    readme_md5 = {"train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                  "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
                  "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
                  "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310"}  # fmt: skip
    official = {stem + ".gz": upstream_fashion(stem) for stem in STEMS}
    for stem in STEMS:  # the bytes served are Zalando's: their MD5s are those of its README
        assert hashlib.md5(official[stem + ".gz"]).hexdigest() == readme_md5[stem]
    server = Server({name: (REAL_FASHION / name).read_bytes() for name in official})
    monkeypatch.setattr(urllib.request, "urlopen", server)
    with pytest.raises(DatasetError, match="SHA-256 mismatch: expected 3aede38d") as info:
        load("fashion-mnist")
    cache = Path(datasets.download._cache_dir("fashion-mnist"))
    assert str(cache / "train-images-idx3-ubyte.gz") in str(info.value) and not any(cache.glob("*"))
    server.files, server.requested = official, []
    ds = load("fashion-mnist")
    assert ds.n_samples == 70000 and ds.n_official_train == 60000
    assert all(u.startswith("https://fashion-mnist.s3.eu-central-1.amazonaws.com/") for u in server.requested)


def test_a_download_with_the_wrong_digest_is_refused_and_not_kept(tmp_path, monkeypatch):
    files = mnist_release(tmp_path)
    monkeypatch.setattr(urllib.request, "urlopen", Server(files))
    with pytest.raises(DatasetError) as info:
        load("mnist")
    message, cache = str(info.value), datasets.download._cache_dir("mnist")
    actual = hashlib.sha256(files["train-images-idx3-ubyte.gz"]).hexdigest()
    expected = download_module._RELEASES["mnist"]["train-images-idx3-ubyte.gz"].sha256
    assert (
        f"{cache / 'train-images-idx3-ubyte.gz'}: SHA-256 mismatch: expected {expected}, got {actual}"
        in message
    )
    assert message.count("SHA-256 mismatch") == 2, "both mirrors are tried"
    assert not any(cache.glob("*")), "the bad file is not kept"
    trust(monkeypatch, "mnist", files)
    assert load("mnist").n_samples == 10


def test_a_download_larger_than_the_official_file_is_cut_off(tmp_path, monkeypatch):
    served = bytes(3 * 2**20)
    dest = tmp_path / "f.gz"
    monkeypatch.setattr(urllib.request, "urlopen", Server({"f.gz": served}))
    with pytest.raises(DownloadFailed, match="exceeds the 1000 bytes of the official file"):
        fetch_module.fetch(("https://a/f.gz",), dest, release=Release(1000, "0" * 64), check=lambda p: None)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("url", ["http://a/f.gz", "ftp://a/f.gz", "file:///etc/passwd"])
def test_only_https_is_fetched(tmp_path, monkeypatch, url):
    server = Server({"f.gz": b"x"})
    monkeypatch.setattr(urllib.request, "urlopen", server)
    release = Release(1, hashlib.sha256(b"x").hexdigest())
    with pytest.raises(DownloadFailed, match="https only"):
        fetch_module.fetch((url,), tmp_path / "f.gz", release=release, check=lambda p: None)
    assert server.requested == []
    server.final_url = "http://downgraded/f.gz"
    with pytest.raises(DownloadFailed, match="redirected to http://downgraded/f.gz, which is not https"):
        fetch_module.fetch(("https://a/f.gz",), tmp_path / "f.gz", release=release, check=lambda p: None)
    assert not any(tmp_path.iterdir())


def test_every_url_in_the_datasets_package_is_https():
    urls = [u for bases in download_module._IDX_URLS.values() for u in bases] + [download_module._CIFAR10_URL]
    assert urls and all(u.startswith("https://") for u in urls)
    package = Path(datasets.__file__).parent
    found = [m for p in package.glob("*.py") for m in re.findall(r"\b[a-z]+://[^\s\"')]+", p.read_text())]
    assert found and all(u.startswith("https://") for u in found), [u for u in found if "https" not in u]
    for name, files in download_module._RELEASES.items():
        assert files and all(
            re.fullmatch(r"[0-9a-f]{64}", r.sha256) and r.size > 0 for r in files.values()
        ), name


def test_a_cached_file_with_the_wrong_digest_is_fetched_again(tmp_path, monkeypatch):
    files = mnist_release(tmp_path)
    trust(monkeypatch, "mnist", files)
    cache = datasets.download._cache_dir("mnist")
    cache.mkdir(parents=True)
    (cache / "train-labels-idx1-ubyte.gz").write_bytes(files["train-labels-idx1-ubyte.gz"])
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the file")
    server = Server(files)
    monkeypatch.setattr(urllib.request, "urlopen", server)
    assert load("mnist").n_samples == 10
    assert sorted(u.rsplit("/", 1)[1] for u in server.requested) == sorted(
        ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    )


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("limits", "members", "fault"),
    [
        ({"MAX_TAR_MEMBERS": 3}, {f"m{i}": b"x" for i in range(5)}, "more than 3 members"),
        ({"MAX_MEMBER_BYTES": 1000}, {"ok": b"x", "big": bytes(1001)}, "member 'big' declares 1001 bytes"),
        (
            {"MAX_UNPACKED_BYTES": 20_000},
            {f"m{i}": bytes(4000) for i in range(6)},
            "unpacks to more than 20000",
        ),
        ({"MAX_UNPACKED_BYTES": 20_000}, {"a" * 50_000: b"x"}, "unpacks to more than 20000"),  # a pax header
    ],
    ids=["members", "member-size", "total-size", "pax-header"],
)
def test_extraction_limits(monkeypatch, limits, members, fault):
    for name, value in limits.items():
        monkeypatch.setattr(fetch_module, name, value)
    archive = _tar(members)
    trust(monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": archive})
    monkeypatch.setattr(urllib.request, "urlopen", Server({"cifar-10-binary.tar.gz": archive}))
    with pytest.raises(DatasetError, match=fault) as info:
        load("cifar10")
    cache = datasets.download._cache_dir("cifar10")
    # a header record too large is caught by the download's format check already, the rest on extraction
    blamed = "cifar10" if "a" * 50_000 in members else str(cache / "cifar-10-binary.tar.gz")
    assert info.value.path == blamed
    assert not any(cache.glob("*")), "nothing is extracted, and the archive is discarded"


# -------------------------------------------------------------------------------------- typed errors
@pytest.mark.parametrize("bad", [None, 3, b"/tmp/x", "a\0b", 1.5, ["a"]])
def test_paths_that_are_not_paths(tmp_path, bad):
    for call in (
        lambda: read_idx(bad),
        lambda: read_cifar10_binary(bad),
        lambda: write_idx(bad, np.zeros(3, np.uint8)),
        lambda: datasets.write_cifar10_binary(bad, np.zeros((1, 32, 32, 3), np.uint8), [1]),
    ):
        with pytest.raises(InvalidParameterError, match="^path: "):
            call()
    if bad is None:  # no data_dir is a valid choice
        return
    for call in (lambda: load("mnist", data_dir=bad), lambda: datasets.available(data_dir=bad)):
        with pytest.raises(InvalidParameterError, match="^data_dir: "):
            call()


def test_load_arguments(tmp_path):
    for name in (None, 3, ["mnist"]):
        with pytest.raises(InvalidParameterError, match="^name: "):
            load(name)
    for download in ("no", None, 1):
        with pytest.raises(InvalidParameterError, match="^download: "):
            load("digits", download=download)


@pytest.mark.parametrize(("n_train", "n_test"), [(0, 0), (0, 3), (3, 0)])
def test_an_idx_set_without_samples(tmp_path, n_train, n_test):
    for stem in STEMS:
        n = n_train if stem.startswith("train") else n_test
        write_idx(tmp_path / (stem + ".gz"), np.zeros((n, 28, 28) if "images" in stem else (n,), np.uint8))
    with pytest.raises(DatasetError, match=r"holds no images \(shape \(0, 28, 28\)\)") as info:
        load("mnist", data_dir=tmp_path, download=False)
    assert info.value.path == str(
        tmp_path / (("train" if n_train == 0 else "t10k") + "-images-idx3-ubyte.gz")
    )


def test_split_and_dataset_arguments():
    ds = load("digits")
    for sizes in ({"a": float("nan")}, {"a": float("inf")}, {"a": -0.5}, {"a": -3}, {"a": "5"}, {"a": None}):
        with pytest.raises(InvalidParameterError, match=r"^sizes\['a'\]: "):
            ds.split(sizes, random_state=0)
    for random_state in ("abc", -1, 1.5, 2**32, np.random.default_rng(0)):
        with pytest.raises(InvalidParameterError, match="^random_state: "):
            ds.split({"a": 5}, random_state=random_state)
    with pytest.raises(InvalidParameterError, match="^stratify: "):
        ds.split({"a": 5}, stratify="no")
    with pytest.raises(InvalidParameterError, match="^y_or_n: "):
        disjoint_split(2**31, {"a": 1})
    with pytest.raises(InvalidInputError, match="^y_or_n: labels must be comparable"):
        disjoint_split(np.array([1, "a", 2], dtype=object), {"a": 1})
    fields = {"name": "t", "X": np.zeros((2, 4)), "y": [0, 1], "class_names": ("a", "b"), "source": "s"}
    for shape in (None, ("2", "2"), (-2, -2), (4.0,), ()):
        with pytest.raises(InvalidInputError, match="^image_shape: "):
            Dataset(**fields, image_shape=shape)
    with pytest.raises(InvalidInputError, match="^class_names: "):
        Dataset(**{**fields, "class_names": None}, image_shape=(2, 2))


# ------------------------------------------------------------------------------------ property tests
FUZZ = settings(
    max_examples=60,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
dims = st.lists(st.one_of(st.integers(0, 8), st.integers(0, 2**32 - 1)), min_size=0, max_size=70)
ITEMSIZE = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}
idx_files = st.one_of(
    st.builds(  # a valid file: random values of a small declared shape
        lambda code, d, seed: (
            idx_header(code, tuple(d)) + np.random.default_rng(seed).bytes(int(np.prod(d)) * ITEMSIZE[code])
        ),
        st.sampled_from(sorted(ITEMSIZE)),
        st.lists(st.integers(0, 6), min_size=1, max_size=4),
        st.integers(0, 2**32 - 1),
    ),
    st.binary(max_size=600),
    st.builds(
        lambda code, d, payload, ndim: (
            struct.pack(">BBBB", 0, 0, code, ndim if ndim is not None else len(d))
            + b"".join(struct.pack(">I", x) for x in d)
            + payload
        ),
        st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]),
        dims,
        st.binary(max_size=600),
        st.one_of(st.none(), st.integers(0, 255)),
    ),
)


def _within_bounds(call) -> object:
    result, peak, _ = peak_mib(call)
    assert peak < 16, f"{peak:.1f} MiB traced"
    if isinstance(result, Exception):
        assert isinstance(result, MlpentestError), repr(result)
    return result


@FUZZ
@given(content=idx_files, compress=st.booleans(), cut=st.one_of(st.none(), st.integers(0, 700)))
def test_read_idx_on_random_bytes(tmp_path_factory, content, compress, cut):
    data = gzip.compress(content, mtime=0) if compress else content
    path = tmp_path_factory.getbasetemp() / "fuzz-idx"
    path.write_bytes(data[:cut] if cut is not None else data)
    result = _within_bounds(lambda: read_idx(path))
    if isinstance(result, np.ndarray):
        raw = gzip.decompress(path.read_bytes()) if compress else path.read_bytes()
        assert result.dtype.isnative and result.nbytes == len(raw) - 4 - 4 * result.ndim
        stored = np.frombuffer(raw[4 + 4 * result.ndim :], result.dtype.newbyteorder(">"))
        np.testing.assert_array_equal(result.ravel(), stored)


@FUZZ
@given(content=st.one_of(st.binary(max_size=7000), st.integers(0, 3).map(lambda n: bytes(3073 * n))))
def test_read_cifar10_binary_on_random_bytes(tmp_path_factory, content):
    path = tmp_path_factory.getbasetemp() / "fuzz-cifar"
    path.write_bytes(content)
    result = _within_bounds(lambda: read_cifar10_binary(path))
    if isinstance(result, tuple):
        X, y = result
        assert X.shape == (len(content) // 3073, 32, 32, 3) and y.max(initial=0) <= 9


good_size = st.one_of(st.integers(1, 60), st.floats(0.01, 0.6))
anything = st.one_of(
    st.integers(-3, 400), st.floats(allow_nan=True, allow_infinity=True), st.none(), st.text(max_size=3),
    st.booleans(), st.integers(2**31, 2**70), st.complex_numbers(max_magnitude=2),
)  # fmt: skip


GOOD_SPLIT = {
    "y_or_n": st.one_of(
        st.integers(1, 400), st.lists(st.integers(0, 3), min_size=1, max_size=300).map(np.array)
    ),
    "sizes": st.dictionaries(st.text(max_size=3), good_size, min_size=1, max_size=4),
    "random_state": st.integers(0, 2**32 - 1),
    "stratify": st.booleans(),
}
BAD_SPLIT = {
    "y_or_n": st.one_of(anything, st.lists(anything, max_size=5).map(lambda v: np.array(v, dtype=object))),
    "sizes": st.one_of(
        anything, st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), anything, max_size=4)
    ),
    "random_state": st.one_of(st.integers(-5, 2**70), st.text(max_size=3), st.floats(), st.booleans()),
    "stratify": st.one_of(st.none(), st.text(max_size=2), st.integers(0, 2)),
}


@st.composite
def split_arguments(draw):
    """Valid arguments, of which none, one or two are then replaced by random values of any kind."""
    args = {key: draw(strategy) for key, strategy in GOOD_SPLIT.items()}
    for key in draw(st.sets(st.sampled_from(sorted(BAD_SPLIT)), max_size=2)):
        args[key] = draw(BAD_SPLIT[key])
    return args


@FUZZ
@given(args=split_arguments())
def test_split_on_random_arguments(args):
    result = _within_bounds(lambda: disjoint_split(**args))
    if isinstance(result, dict):
        y_or_n = args["y_or_n"]
        n = y_or_n if isinstance(y_or_n, int) else len(y_or_n)
        picked = np.concatenate(list(result.values()))
        assert len(np.unique(picked)) == len(picked) and picked.max() < n
        assert list(result) == list(args["sizes"]) and all(len(p) >= 1 for p in result.values())


@FUZZ
@given(
    sizes=st.dictionaries(st.text(max_size=3), st.one_of(good_size, anything), max_size=4),
    random_state=st.integers(-2, 2**33),
)
def test_dataset_split_on_random_sizes(sizes, random_state):
    ds = _DIGITS.subset(np.arange(200))
    result = _within_bounds(lambda: ds.split(sizes, random_state=random_state))
    if isinstance(result, dict):
        assert sum(p.n_samples for p in result.values()) <= ds.n_samples
