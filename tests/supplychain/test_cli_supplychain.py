"""`mlpentest scan / tamper / keygen / sign / verify` end to end on a real scikit-learn model file."""

import json
import subprocess
import sys

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mlpentest.cli import main


@pytest.fixture()
def model_file(tmp_path):
    X, y = load_iris(return_X_y=True)
    path = tmp_path / "zoo" / "model.joblib"
    path.parent.mkdir()
    joblib.dump(LogisticRegression(max_iter=500).fit(X, y), path)
    return path


def test_scan_exit_codes_and_json(model_file, tmp_path, capsys):
    tampered = tmp_path / "evil.bin"  # a misleading name: found by content
    assert main(["tamper", str(model_file), "--marker", str(tmp_path / "pwned"), "--out", str(tampered)]) == 0
    assert not (tmp_path / "pwned").exists()
    capsys.readouterr()

    assert main(["scan", str(model_file)]) == 0
    assert "CLEAN" in capsys.readouterr().out
    assert main(["scan", str(model_file), str(tampered)]) == 1
    out = capsys.readouterr().out
    assert "SUSPICIOUS" in out and "builtins.exec" in out
    (tmp_path / "garbage.pkl").write_bytes(b"\x80\x05\x95garbage")
    assert main(["scan", str(model_file), str(tmp_path / "garbage.pkl")]) == 2
    capsys.readouterr()

    assert main(["scan", "--json", str(tmp_path)]) == 1  # a directory: every file in it
    results = {r["path"].rsplit("/", 1)[-1]: r for r in json.loads(capsys.readouterr().out)}
    assert results["evil.bin"]["verdict"] == "suspicious"
    assert results["model.joblib"]["verdict"] == "clean"
    assert results["garbage.pkl"]["verdict"] == "unreadable"
    assert not (tmp_path / "pwned").exists()  # scanning never loads


def test_tampered_model_runs_its_payload_only_when_loaded(model_file, tmp_path, capsys):
    out = tmp_path / "tampered.joblib"
    assert main(["tamper", str(model_file), "--marker", "pwned", "--out", str(out)]) == 0
    code = ("import joblib, sys; m = joblib.load(sys.argv[1]); "
            "print(m.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]).tolist())")
    done = subprocess.run([sys.executable, "-c", code, str(out)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 2]"
    assert (tmp_path / "pwned").exists()


def test_sign_and_verify_name_the_tampered_file(model_file, tmp_path, capsys):
    priv, pub = tmp_path / "signer.pem", tmp_path / "signer.pub"
    assert main(["keygen", str(priv), str(pub)]) == 0
    assert main(["keygen", str(priv), str(pub)]) == 1  # never overwrites a key
    zoo = model_file.parent
    assert main(["sign", str(zoo), "--key", str(priv)]) == 0
    assert main(["verify", str(zoo), "--key", str(pub)]) == 0
    capsys.readouterr()

    assert main(["tamper", str(model_file), "--marker", "pwned", "--out", str(model_file)]) == 0
    (zoo / "extra.txt").write_text("added")
    assert main(["verify", str(zoo), "--key", str(pub)]) == 1
    err = capsys.readouterr().err
    assert "modified: model.joblib" in err and "added: extra.txt" in err

    assert main(["verify", str(zoo), "--key", str(priv)]) == 1  # a private key is not a public key
    assert "error" in capsys.readouterr().err.lower()


def test_convert_needs_trust_and_refuses_a_tampered_model(model_file, tmp_path, capsys):
    dst = tmp_path / "model.skops"
    assert main(["convert", str(model_file), str(dst)]) == 1
    assert "trust" in capsys.readouterr().err
    assert not dst.exists()
    assert main(["convert", str(model_file), str(dst), "--trust"]) == 0
    from mlpentest.supplychain import safe

    X, _ = load_iris(return_X_y=True)
    assert (safe.load(dst).predict(X) == joblib.load(model_file).predict(X)).all()  # our own file

    evil = tmp_path / "evil.joblib"
    assert main(["tamper", str(model_file), "--marker", str(tmp_path / "pwned"), "--out", str(evil)]) == 0
    assert main(["convert", str(evil), str(tmp_path / "evil.skops"), "--trust"]) == 1
    assert "builtins.exec" in capsys.readouterr().err
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "evil.skops").exists()
