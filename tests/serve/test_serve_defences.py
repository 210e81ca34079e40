"""Server-side defences of `mlpentest serve`, each on a real server (uvicorn on 127.0.0.1, in a thread):
API keys (401/403), rate limits and budgets (429), PRADA (403), output restrictions, the KServe v2 route,
and what the HTTP client makes of each refusal."""

import os
import subprocess
import sys
import time

import joblib
import numpy as np
import pytest

from mlpentest.attacks.extraction import Retraining
from mlpentest.defenses import LabelsOnly
from mlpentest.errors import (
    CapabilityError,
    InvalidParameterError,
    QueryBudgetExceeded,
    RemoteModelError,
    UnsafeArtifactError,
    UnsupportedModelError,
)
from mlpentest.models import wrap
from mlpentest.serve import ApiKeys, ServeConfig, load_api_keys, load_model, running
from mlpentest.supplychain import safe, tamper

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

ALICE, OPS = "alice-key-0123456789abcdef", "ops-key-0123456789abcdef"


def _predict(url, X, **headers):
    return httpx.post(f"{url}/predict", json={"inputs": np.asarray(X).tolist()}, headers=headers, timeout=10)


def test_api_keys_401_and_403(digits, tmp_path):
    keyfile = tmp_path / "keys"
    keyfile.write_text(f"# clients\nalice {ALICE}\nops {OPS} admin\n")
    keyfile.chmod(0o644)
    with pytest.raises(InvalidParameterError, match="chmod 600"):
        load_api_keys(keyfile)
    keyfile.chmod(0o600)
    config = ServeConfig(api_keys=load_api_keys(keyfile))
    with running(digits.model, config) as url:
        r = _predict(url, digits.X_test[:2])
        assert r.status_code == 401 and r.json()["code"] == "missing_api_key"
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert (
            _predict(url, digits.X_test[:2], authorization="Bearer wrong-key-000000000000").status_code == 401
        )
        r = _predict(url, digits.X_test[:2], authorization=f"Bearer {ALICE}")
        assert r.status_code == 200 and r.json()["labels"] == digits.model.predict(digits.X_test[:2]).tolist()
        assert httpx.get(f"{url}/metrics", headers={"x-api-key": ALICE}).status_code == 403
        metrics = httpx.get(f"{url}/metrics", headers={"x-api-key": OPS})
        assert metrics.status_code == 200 and 'mlpentest_queries_total{client="alice"} 2' in metrics.text
        assert httpx.get(f"{url}/v2/health/live").status_code == 200  # probes need no key
        with pytest.raises(RemoteModelError, match="401"):
            wrap(url, api_key="wrong-key-000000000000")
        remote = wrap(url, api_key=ALICE)
        assert remote.predict(digits.X_test[:3]).tolist() == digits.model.predict(digits.X_test[:3]).tolist()


def test_rate_limit_answers_429_with_retry_after_and_the_client_waits(digits):
    with running(digits.model, ServeConfig(rate_limit=4.0, burst=1)) as url:
        assert _predict(url, digits.X_test[:1]).status_code == 200
        r = _predict(url, digits.X_test[:1])
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1 and 0 < r.json()["retry_after"] <= 0.25
        remote = wrap(url, retries=10)
        start = time.monotonic()
        labels = [remote.predict(digits.X_test[i : i + 1])[0] for i in range(4)]
        assert time.monotonic() - start >= 0.5  # 4 requests at 4 per second, after the /info call
        assert labels == digits.model.predict(digits.X_test[:4]).tolist()
        with pytest.raises(RemoteModelError, match="429"):
            impatient = wrap(url, retries=0)
            impatient.predict(digits.X_test[:1])
            impatient.predict(digits.X_test[:1])


def test_query_budget_becomes_the_clients_budget_and_attacks_stop_cleanly(digits):
    with running(digits.model, ServeConfig(query_budget=150)) as url:
        remote = wrap(url)
        assert remote.query_budget == 150
        remote.predict(digits.X_test[:100])
        with pytest.raises(QueryBudgetExceeded):
            remote.predict(digits.X_test[:100])  # refused by the client before sending
        r = _predict(url, digits.X_test[:100])  # a second client on the same address shares the budget
        assert r.status_code == 429 and r.json()["code"] == "query_budget_exhausted"
        assert "retry-after" not in r.headers and r.json()["queries_used"] == 100
        # (no X_test: scoring the copy would ask the server too, and its budget is spent)
        result = Retraining(LabelsOnly(wrap(url)), budget=400, random_state=0).run(digits.X_pool)
        assert result.budget_exhausted and result.queries <= 50


def test_held_out_scoring_the_servers_budget_refuses_is_named_before_or_noted_after(digits):
    # scoring on X_test asks the victim too, under the same key: a served budget counts it
    from sklearn.linear_model import LogisticRegression

    from mlpentest.attacks.extraction import EquationSolving

    victim = LogisticRegression(max_iter=500).fit(digits.X_train, digits.y_train)
    with running(victim, ServeConfig(query_budget=100)) as url:
        with pytest.raises(QueryBudgetExceeded) as info:  # before the attack spends anything
            Retraining(wrap(url), budget=50, random_state=0).run(digits.X_pool, X_test=digits.X_test[:200])
        assert "X_test: the victim refused to label the 200 held-out points" in "".join(info.value.__notes__)
        assert wrap(url).query_budget == 100
        # equation solving scores at the end: the copy it paid for is kept, the refusal is a note
        result = EquationSolving(wrap(url), random_state=0).run(X_test=digits.X_test[:200])
        assert result.queries == 65 and not result.budget_exhausted and np.isnan(result.fidelity)
        assert any(note.startswith("not scored on X_test") for note in result.notes)
        np.testing.assert_array_equal(result.stolen.predict(digits.X_test), victim.predict(digits.X_test))


def test_an_evaluator_key_keeps_scoring_off_the_attackers_budget(digits):
    from sklearn.linear_model import LogisticRegression

    evaluator = "eval-key-0123456789abcdef"
    victim = LogisticRegression(max_iter=500).fit(digits.X_train, digits.y_train)
    keys = ApiKeys.from_mapping({ALICE: "alice", evaluator: "evaluator", OPS: ("ops", "admin")})
    with running(victim, ServeConfig(api_keys=keys, query_budget=100)) as url:
        remote = wrap(url, api_key=ALICE, evaluator_key=evaluator)
        # 80 attack queries + 100 held-out points would not fit alice's 100; each client has its own
        result = Retraining(remote, budget=80, rounds=2, random_state=0).run(
            digits.X_pool, X_test=digits.X_test[:100])
        assert result.queries == remote.queries == 80 and not result.budget_exhausted
        assert result.fidelity > 0.8
        metrics = httpx.get(f"{url}/metrics", headers={"x-api-key": OPS}).text
        assert 'mlpentest_queries_total{client="alice"} 80' in metrics
        assert 'mlpentest_queries_total{client="evaluator"} 100' in metrics
        with pytest.raises(InvalidParameterError, match="^evaluator_key"):
            wrap(url, api_key=ALICE, evaluator_key="")


def test_prada_refuses_an_extraction_stream_and_serves_a_benign_one(digits):
    config = ServeConfig(
        prada_delta=0.9, api_keys=ApiKeys.from_mapping({ALICE: "alice", OPS: ("ops", "admin")})
    )
    with running(digits.model, config) as url:
        benign = wrap(url, api_key=OPS)
        for start in range(0, 400, 50):  # natural digits in arrival order
            benign.predict(digits.X_test[start : start + 50])
        attacker = LabelsOnly(wrap(url, api_key=ALICE))
        # Tramèr et al.'s line search between synthesised points: PRADA's W falls to 0.76 by query 108
        result = Retraining(attacker, strategy="line-search", budget=800, random_state=0).run()
        assert result.budget_exhausted and result.queries < 800
        r = _predict(url, digits.X_test[:1], authorization=f"Bearer {ALICE}")
        assert (
            r.status_code == 403
            and r.json()["code"] == "extraction_detected"
            and r.json()["flagged_at"] >= 100
        )
        assert _predict(url, digits.X_test[:1], authorization=f"Bearer {OPS}").status_code == 200
        metrics = httpx.get(f"{url}/metrics", headers={"x-api-key": OPS}).text
        assert "mlpentest_extraction_flagged_clients 1" in metrics


def test_output_restrictions(digits):
    X = digits.X_test[:20]
    labels = digits.model.predict(X)
    with running(digits.model, ServeConfig(output="labels")) as url:
        remote = wrap(url)
        assert not remote.has_proba and remote.predict(X).tolist() == labels.tolist()
        with pytest.raises(CapabilityError):
            remote.predict_proba(X)
        r = httpx.post(f"{url}/predict", json={"inputs": X.tolist(), "output": "proba"})
        assert r.status_code == 422 and r.json()["field"] == "output"
        assert "probabilities" not in _predict(url, X).json()
    with running(digits.model, ServeConfig(top_k=1, decimals=2)) as url:
        P = wrap(url).predict_proba(X)
        np.testing.assert_array_equal(P, np.eye(10)[np.searchsorted(np.arange(10), labels)])
    with running(digits.model, ServeConfig(decimals=1)) as url:
        P = wrap(url).predict_proba(X)
        assert np.allclose(P * 10, np.round(P * 10)) and np.allclose(P.sum(axis=1), 1)
    with running(digits.model, ServeConfig(noise=0.05, random_state=0)) as url:
        remote = wrap(url)
        P1, P2 = remote.predict_proba(X), remote.predict_proba(X)
        assert not np.array_equal(P1, P2) and np.allclose(P1.sum(axis=1), 1)
        assert np.abs(P1 - digits.model.predict_proba(X)).max() > 0.01
        assert remote.predict(X).tolist() == labels.tolist()  # noise never changes a label


def test_open_inference_protocol(digits):
    X = digits.X_test[:3]
    with running(digits.model, ServeConfig(name="digits-mlp")) as url:
        meta = httpx.get(f"{url}/v2/models/digits-mlp").json()
        assert meta["inputs"][0]["shape"] == [-1, 64] and {o["name"] for o in meta["outputs"]} == {
            "probabilities",
            "labels",
        }
        tensor = {"name": "input-0", "shape": [3, 64], "datatype": "FP32", "data": X.ravel().tolist()}
        r = httpx.post(f"{url}/v2/models/digits-mlp/infer", json={"id": "q1", "inputs": [tensor]})
        body = r.json()
        assert r.status_code == 200 and body["id"] == "q1" and body["model_name"] == "digits-mlp"
        out = {o["name"]: o for o in body["outputs"]}
        assert (
            out["labels"]["data"] == digits.model.predict(X).tolist() and out["labels"]["datatype"] == "INT64"
        )
        np.testing.assert_array_equal(
            np.reshape(out["probabilities"]["data"], out["probabilities"]["shape"]),
            digits.model.predict_proba(X),
        )
        nested = dict(tensor, data=X.tolist())
        r = httpx.post(
            f"{url}/v2/models/digits-mlp/infer", json={"inputs": [nested], "outputs": [{"name": "labels"}]}
        )
        assert [o["name"] for o in r.json()["outputs"]] == ["labels"]
        for change, field in [
            ({"datatype": "BOOL"}, "inputs[0].datatype"),
            ({"shape": [3, 63]}, "inputs[0].shape"),
            ({"shape": [4, 64]}, "inputs[0].data"),
            ({"data": "abc"}, "inputs[0].data"),
        ]:
            r = httpx.post(f"{url}/v2/models/digits-mlp/infer", json={"inputs": [dict(tensor, **change)]})
            assert r.status_code == 422 and r.json()["field"] == field, (change, r.text)
        assert httpx.post(f"{url}/v2/models/other/infer", json={"inputs": [tensor]}).status_code == 404
        assert httpx.get(f"{url}/v2/health/ready").json() == {"ready": True}


def test_a_model_fault_is_a_500_and_the_server_keeps_serving():
    def flaky(X):
        if (X[:, 0] > 0.5).any():
            raise ValueError("model fault")
        return np.tile([0.25, 0.75], (len(X), 1))

    with running(flaky, input_shape=(2,)) as url:
        r = _predict(url, [[0.9, 0.0]])
        assert r.status_code == 500 and r.json() == {
            "error": "internal error; the request was not answered",
            "code": "internal",
        }
        assert _predict(url, [[0.1, 0.0]]).json()["probabilities"] == [[0.25, 0.75]]


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"noise": float("nan")}, "noise"),
        ({"rate_limit": float("inf")}, "rate_limit"),
        ({"burst": 3}, "burst"),
        ({"output": "labels", "decimals": 2}, "output"),
        ({"name": "a/b"}, "name"),
        ({"max_batch": 0}, "max_batch"),
        ({"prada_delta": 1.5}, "prada_delta"),
        ({"output": "logits"}, "output"),
    ],
)
def test_bad_settings_are_refused_naming_them(kw, name):
    with pytest.raises(InvalidParameterError, match=name):
        ServeConfig(**kw)


def test_model_files_load_only_through_the_safe_loaders(digits, tmp_path):
    joblib.dump(digits.model, tmp_path / "mlp.joblib")
    with pytest.raises(UnsafeArtifactError, match="trust"):
        load_model(tmp_path / "mlp.joblib")
    assert (
        load_model(tmp_path / "mlp.joblib", trust=True).predict(digits.X_test[:5]).tolist()
        == digits.model.predict(digits.X_test[:5]).tolist()
    )
    marker = tmp_path / "pwned"
    tamper.tamper(tmp_path / "mlp.joblib", tamper.Payload.marker(marker), out=tmp_path / "evil.joblib")
    with pytest.raises(UnsafeArtifactError, match="scan found code"):
        load_model(tmp_path / "evil.joblib", trust=True)
    safe.save({"w": np.zeros(3)}, tmp_path / "weights.safetensors")
    with pytest.raises(UnsupportedModelError, match="no model to serve"):
        load_model(tmp_path / "weights.safetensors")
    # the command line refuses the tampered file before listening, and the payload never ran
    proc = subprocess.run(
        [sys.executable, "-m", "mlpentest", "serve", str(tmp_path / "evil.joblib"), "--trust", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )
    assert proc.returncode == 1 and "scan found code" in proc.stderr and not marker.exists()
