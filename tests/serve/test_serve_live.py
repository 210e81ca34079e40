"""A real `mlpentest serve` process on 127.0.0.1: black-box attacks through HTTP give the in-process
results, and malformed, huge, slow and concurrent requests never stop it from answering correctly."""

import json
import socket
import threading
import time

import numpy as np
import pytest

from mlpentest.attacks.evasion import HopSkipJump
from mlpentest.attacks.extraction import Retraining
from mlpentest.attacks.membership import RMIA, LiRA, ReferenceModels, ThresholdAttack, collect_signals
from mlpentest.defenses import LabelsOnly
from mlpentest.models import wrap
from mlpentest.supplychain import safe

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def live(digits, tmp_path_factory, server_process):
    start_server, stop_server = server_process
    path = tmp_path_factory.mktemp("served") / "mlp.skops"
    safe.save(digits.model, path)
    proc, url = start_server([str(path), "--max-batch", "256", "--max-body-mb", "1", "--body-timeout", "1"])
    try:
        yield url
    finally:
        err = stop_server(proc)
        assert "Traceback" not in err, err[-3000:]


def _remote(url, **kw):
    return wrap(url, **kw)


def test_info_describes_the_model(live, digits):
    remote = _remote(live)
    assert remote.n_classes == 10 and remote.input_shape == (64,) and remote.has_proba
    assert remote.classes_.tolist() == list(range(10))
    assert remote.batch_size == 256


def test_answers_are_bit_identical_to_the_model(live, digits):
    remote = _remote(live)
    X = digits.X_test[:300]  # more than max_batch: the client splits the call into two requests
    before = remote.requests
    np.testing.assert_array_equal(remote.predict_proba(X), digits.model.predict_proba(X))
    np.testing.assert_array_equal(remote.predict(X), digits.model.predict(X))
    assert remote.requests - before == 4 and remote.queries == 600


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_membership_inference_through_http_matches_in_process(live, digits, mlp_recipe):
    X = np.concatenate([digits.X_train[:200], digits.X_out[:200]])
    y = np.concatenate([digits.y_train[:200], digits.y_out[:200]])
    # the attacker's own reference models, on data it holds (the candidates among it: online attacks)
    refs = ReferenceModels(mlp_recipe(), n_models=4, random_state=0).fit(
        np.concatenate([X, digits.X_pool[:200]]), np.concatenate([y, digits.y_pool[:200]]))
    truth = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    local = collect_signals(digits.model, X, y, is_member=truth, references=refs)
    remote = collect_signals(_remote(live), X, y, is_member=truth, references=refs)
    np.testing.assert_array_equal(remote.target_proba, local.target_proba)
    aucs = {}
    for attack in (ThresholdAttack(metric="loss"), LiRA(), RMIA()):
        a, b = attack.run(local), attack.run(remote)
        assert a.auc == b.auc and a.tpr_at_1pct_fpr == b.tpr_at_1pct_fpr
        aucs[a.attack] = b.auc
    print(aucs)
    assert max(aucs.values()) > 0.6, aucs  # the overfit MLP leaks through the API


def test_extraction_through_http_matches_in_process(live, digits):
    kw = {"strategy": "adaptive", "budget": 120, "rounds": 4, "random_state": 0}
    local = Retraining(LabelsOnly(digits.model), **kw).run(digits.X_pool, X_test=digits.X_test)
    remote = Retraining(LabelsOnly(_remote(live)), **kw).run(digits.X_pool, X_test=digits.X_test)
    assert remote.queries == local.queries == 120
    assert remote.fidelity == local.fidelity > 0.8
    np.testing.assert_array_equal(remote.stolen.predict(digits.X_test), local.stolen.predict(digits.X_test))


def test_label_only_evasion_through_http_matches_in_process(live, digits):
    X, y = digits.X_test[:4], digits.y_test[:4]
    kw = {"max_iter": 4, "max_evals": 200, "init_evals": 50, "random_state": 0}
    local = HopSkipJump(LabelsOnly(digits.model), **kw).run(X, y)
    remote = HopSkipJump(LabelsOnly(_remote(live)), **kw).run(X, y)
    np.testing.assert_array_equal(remote.x_adv, local.x_adv)
    assert remote.success_rate == local.success_rate >= 0.75


def _post(url, body: bytes, **headers):
    return httpx.post(f"{url}/predict", content=body, headers={"content-type": "application/json", **headers},
                      timeout=10)


def _still_correct(url, digits, i=0):
    r = httpx.post(f"{url}/predict", json={"inputs": digits.X_test[i : i + 2].tolist()}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["labels"] == digits.model.predict(digits.X_test[i : i + 2]).tolist()


@pytest.mark.parametrize(
    "body, status, field",
    [
        (b"{not json", 400, None),
        (b"", 400, None),
        (b"\xff\xfe", 400, None),
        (b"[1, 2]", 422, "body"),
        (b'{"inputs": [[1, 2, 3]]}', 422, "inputs[0]"),
        (b'{"inputs": [[' + b"0.5, " * 63 + b'NaN]]}', 422, "inputs[0][63]"),
        (b'{"inputs": [[' + b"0.5, " * 63 + b'Infinity]]}', 422, "inputs[0][63]"),
        (b'{"inputs": [[' + b"0.5, " * 63 + b'"x"]]}', 422, "inputs[0][63]"),
        (b'{"inputs": [[' + b"0.5, " * 63 + b"true]]}", 422, "inputs[0][63]"),
        (b'{"inputs": [[' + b"0.5, " * 63 + b"null]]}", 422, "inputs[0][63]"),
        (b'{"inputs": [[' + b"0.5, " * 63 + b"1e999]]}", 422, "inputs[0][63]"),
        (b'{"inputs": [' + b"[" * 50_000 + b"]" * 50_000 + b"]}", 400, None),
        (b'{"inputs": []}', 422, "inputs"),
        (b'{"inputs": 3}', 422, "inputs"),
        (b'{"inputs": [[0.5]], "extra": 1}', 422, "extra"),
        (b'{"inputs": [[0.5]], "output": "logits"}', 422, "output"),
    ],
)
def test_malformed_requests_get_a_json_error_naming_the_field(live, digits, body, status, field):
    r = _post(live, body)
    assert r.status_code == status, r.text
    error = r.json()
    assert error["error"] and error["code"]
    assert error.get("field") == field
    _still_correct(live, digits)


def test_oversized_bodies_and_batches_are_refused(live, digits):
    r = _post(live, json.dumps({"inputs": [[0.5] * 64] * 300}).encode())  # over max_batch (256)
    assert r.status_code == 413 and r.json()["code"] == "batch_too_large" and r.json()["max_batch"] == 256
    r = _post(live, b'{"inputs": [[' + b"0.123456789, " * 120_000 + b"0]]}")  # 1.6 MB > 1 MiB
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"

    def chunks():  # no Content-Length: the size is counted as the body streams in
        for _ in range(40):
            yield b" " * 50_000

    r = httpx.post(f"{live}/predict", content=chunks(), timeout=10)
    assert r.status_code == 413
    _still_correct(live, digits)


def _raw(url: str, data: bytes, *, pause: float = 0.0, rest: bytes = b"") -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(data)
        if pause:
            time.sleep(pause)
            try:
                s.sendall(rest)
            except OSError:
                pass
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
    return b"".join(chunks)


def test_slow_and_garbage_requests_do_not_stop_the_server(live, digits):
    body = json.dumps({"inputs": digits.X_test[:1].tolist()}).encode()
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    # a body that trickles in slower than --body-timeout (1 s): 408, and other clients are served meanwhile
    done = {}
    slow = threading.Thread(target=lambda: done.setdefault("r", _raw(live, head + body[:10], pause=2.5,
                                                                     rest=body[10:])))
    slow.start()
    time.sleep(0.3)
    _still_correct(live, digits, 3)
    slow.join(20)
    assert b" 408 " in done["r"].split(b"\r\n")[0], done["r"][:200]
    # not HTTP at all; a 1 MB header line; a request cut off mid-header
    assert _raw(live, b"\x00\x01garbage\r\n\r\n")[:12] in (b"HTTP/1.1 400", b"")
    big = b"GET /info HTTP/1.1\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    assert _raw(live, big)[:9] in (b"HTTP/1.1 ", b"")
    assert _raw(live, b"POST /predict HTTP/1.1\r\nContent-Le")[:9] in (b"HTTP/1.1 ", b"")
    _still_correct(live, digits, 5)


def test_concurrent_clients_get_their_own_correct_answers(live, digits):
    errors, expected = [], digits.model.predict(digits.X_test)

    def client(k):
        try:
            remote = _remote(live)
            for j in range(6):
                rows = slice((k * 6 + j) * 5, (k * 6 + j) * 5 + 5)
                if not np.array_equal(remote.predict(digits.X_test[rows]), expected[rows]):
                    errors.append((k, j))
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    _still_correct(live, digits)


def test_metrics_count_what_happened(live, digits):
    _post(live, b"{bad")
    text = httpx.get(f"{live}/metrics", timeout=10).text
    assert 'mlpentest_requests_total{endpoint="/predict",status="200"}' in text
    assert 'mlpentest_rejections_total{reason="invalid_json"}' in text
    assert "mlpentest_request_duration_seconds_bucket" in text
    assert int(text.split('mlpentest_queries_total{client="ip:127.0.0.1"} ')[1].split()[0]) > 100


def test_keys_budget_and_rate_limit_of_a_served_process(digits, tmp_path, server_process):
    """The command line's defences on a real `mlpentest serve` process: 401, 403, 429 with Retry-After."""
    start_server, stop_server = server_process
    path = tmp_path / "mlp.skops"
    safe.save(digits.model, path)
    keys = tmp_path / "keys"
    keys.write_text("alice alice-key-0123456789abcdef\nops ops-key-0123456789abcdef admin\n")
    keys.chmod(0o600)
    args = ["--api-keys", str(keys), "--query-budget", "40", "--rate-limit", "0.5", "--burst", "1"]
    proc, url = start_server([str(path), *args])
    try:
        alice = {"authorization": "Bearer alice-key-0123456789abcdef"}
        assert _post(url, json.dumps({"inputs": digits.X_test[:1].tolist()}).encode()).status_code == 401
        assert httpx.get(f"{url}/metrics", headers=alice, timeout=10).status_code == 403
        body = json.dumps({"inputs": digits.X_test[:30].tolist()}).encode()
        assert _post(url, body, **alice).status_code == 200
        r = _post(url, body, **alice)  # the bucket holds 1 request, refilled every 2 seconds
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 2
        time.sleep(2.1)
        r = _post(url, body, **alice)  # 30 + 30 > 40: the budget refuses, without Retry-After
        assert r.status_code == 429 and r.json()["code"] == "query_budget_exhausted"
        assert "retry-after" not in r.headers
        metrics = httpx.get(f"{url}/metrics", headers={"x-api-key": "ops-key-0123456789abcdef"}, timeout=10)
        assert 'mlpentest_queries_total{client="alice"} 30' in metrics.text
    finally:
        stop_server(proc)
