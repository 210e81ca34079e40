"""Signed manifests: sign then verify, and every way a directory or its manifest can be altered."""

from __future__ import annotations

import json
import os
import stat

import pytest

from mlpentest.errors import InvalidInputError, InvalidParameterError, ManifestError
from mlpentest.supplychain.manifest import (
    MANIFEST_NAME,
    Manifest,
    VerifyResult,
    generate_key,
    sign,
    verify,
)


@pytest.fixture
def keys(tmp_path):
    keydir = tmp_path / "keys"
    kid = generate_key(keydir / "signer.pem", keydir / "signer.pub")
    return keydir / "signer.pem", keydir / "signer.pub", kid


@pytest.fixture
def model_dir(tmp_path):
    root = tmp_path / "model"
    (root / "weights").mkdir(parents=True)
    (root / "config.json").write_text('{"layers": 3}\n')
    (root / "weights" / "model.safetensors").write_bytes(bytes(range(256)) * 40)
    (root / "weights" / "head.bin").write_bytes(b"\x00" * 3000 + b"head")
    (root / "README.md").write_text("a model\n")
    return root


def test_sign_then_verify_ok(model_dir, keys):
    private, public, kid = keys
    manifest = sign(model_dir, private)
    assert isinstance(manifest, Manifest)
    assert manifest.key_id == kid and len(kid) == 64
    names = [f[0] for f in manifest.files]
    assert names == ["README.md", "config.json", "weights/head.bin", "weights/model.safetensors"]
    assert (model_dir / MANIFEST_NAME).is_file() and MANIFEST_NAME not in names
    sizes = dict((f[0], f[2]) for f in manifest.files)
    assert sizes["weights/model.safetensors"] == 10240
    result = verify(model_dir, public)
    assert isinstance(result, VerifyResult) and result.ok
    assert result.checked == tuple(names)
    assert result.modified == result.missing == result.added == () and not result.bad_signature
    assert json.loads(json.dumps(result.to_dict()))["ok"] is True
    assert json.loads(json.dumps(manifest.to_dict()))["key_id"] == kid


def test_one_changed_byte_is_named_modified(model_dir, keys):
    private, public, _ = keys
    sign(model_dir, private)
    target = model_dir / "weights" / "model.safetensors"
    data = bytearray(target.read_bytes())
    data[5000] ^= 0x01
    target.write_bytes(bytes(data))
    with pytest.raises(ManifestError) as err:
        verify(model_dir, public)
    assert err.value.modified == ("weights/model.safetensors",)
    assert err.value.missing == err.value.added == () and not err.value.bad_signature
    assert "modified: weights/model.safetensors" in str(err.value)
    result = verify(model_dir, public, raise_on_failure=False)
    assert not result.ok and result.modified == ("weights/model.safetensors",)
    assert "weights/model.safetensors" not in result.checked and len(result.checked) == 3


def test_deleted_and_added_files_are_named(model_dir, keys):
    private, public, _ = keys
    sign(model_dir, private)
    (model_dir / "weights" / "head.bin").unlink()
    (model_dir / "weights" / "extra.pkl").write_bytes(b"\x80\x04N.")
    (model_dir / "README.md").write_text("a model!\n")
    with pytest.raises(ManifestError) as err:
        verify(model_dir, public)
    assert err.value.missing == ("weights/head.bin",)
    assert err.value.added == ("weights/extra.pkl",)
    assert err.value.modified == ("README.md",)
    message = str(err.value)
    assert "missing: weights/head.bin" in message and "added: weights/extra.pkl" in message


def test_edited_manifest_is_a_bad_signature(model_dir, keys):
    private, public, _ = keys
    sign(model_dir, private)
    # the attacker swaps the model and edits the recorded hash to match
    (model_dir / "config.json").write_text('{"layers": 4}\n')
    path = model_dir / MANIFEST_NAME
    document = json.loads(path.read_text())
    import hashlib

    document["signed"]["files"]["config.json"]["sha256"] = hashlib.sha256(b'{"layers": 4}\n').hexdigest()
    document["signed"]["files"]["config.json"]["size"] = 14
    path.write_text(json.dumps(document))
    with pytest.raises(ManifestError) as err:
        verify(model_dir, public)
    assert err.value.bad_signature and "signature does not verify" in str(err.value)
    assert err.value.modified == ()  # an unverified manifest is not trusted to list anything


@pytest.mark.parametrize("damage", ["truncate", "garbage", "signature", "delete", "directory"])
def test_broken_or_missing_manifest_is_refused(model_dir, keys, damage):
    private, public, _ = keys
    sign(model_dir, private)
    path = model_dir / MANIFEST_NAME
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\xff\xfe not json")
    elif damage == "signature":
        document = json.loads(raw)
        sig = bytearray(document["signature"].encode())
        sig[3] = ord("A") if sig[3] != ord("A") else ord("B")
        document["signature"] = sig.decode()
        path.write_text(json.dumps(document))
    elif damage == "delete":
        path.unlink()
    else:
        path.unlink()
        path.mkdir()
    with pytest.raises(ManifestError) as err:
        verify(model_dir, public)
    assert err.value.bad_signature is (damage != "delete")
    if damage == "delete":
        assert "no manifest" in str(err.value)
    result = verify(model_dir, public, raise_on_failure=False)
    assert not result.ok and result.checked == ()


def test_another_key_is_a_bad_signature(model_dir, keys, tmp_path):
    private, _public, _ = keys
    sign(model_dir, private)
    generate_key(tmp_path / "other.pem", tmp_path / "other.pub")
    with pytest.raises(ManifestError) as err:
        verify(model_dir, tmp_path / "other.pub")
    assert err.value.bad_signature and "signer key" in str(err.value)
    # re-signed by the other key but checked with the real one: refused as well
    sign(model_dir, tmp_path / "other.pem")
    assert verify(model_dir, tmp_path / "other.pub").ok
    assert verify(model_dir, keys[1], raise_on_failure=False).bad_signature


def test_forged_key_id_still_fails_the_signature(model_dir, keys, tmp_path):
    private, public, kid = keys
    generate_key(tmp_path / "other.pem", tmp_path / "other.pub")
    sign(model_dir, tmp_path / "other.pem")
    path = model_dir / MANIFEST_NAME
    document = json.loads(path.read_text())
    document["signed"]["key_id"] = kid  # claims the real signer
    path.write_text(json.dumps(document))
    result = verify(model_dir, public, raise_on_failure=False)
    assert result.bad_signature and not result.ok


@pytest.mark.skipif(os.name != "posix", reason="symlinks need POSIX")
def test_symlinks_are_recorded_and_escaping_ones_refused(model_dir, keys, tmp_path):
    private, public, _ = keys
    os.symlink("weights/head.bin", model_dir / "head-link.bin")
    os.symlink("weights", model_dir / "w")
    manifest = sign(model_dir, private)
    assert dict(manifest.symlinks) == {"head-link.bin": "weights/head.bin", "w": "weights"}
    assert "w/head.bin" not in [f[0] for f in manifest.files]  # links are not followed
    assert verify(model_dir, public).ok
    # re-pointing a link is a modification
    (model_dir / "head-link.bin").unlink()
    os.symlink("weights/model.safetensors", model_dir / "head-link.bin")
    with pytest.raises(ManifestError) as err:
        verify(model_dir, public)
    assert err.value.modified == ("head-link.bin",)
    # a link that leaves the directory is refused when signing ...
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"unsigned")
    os.symlink(outside, model_dir / "escape.bin")
    with pytest.raises(InvalidInputError, match="escape.bin"):
        sign(model_dir, private)
    # ... and named (added) when it appears after signing
    (model_dir / "escape.bin").unlink()
    sign(model_dir, private)
    os.symlink("../outside.bin", model_dir / "escape.bin")
    result = verify(model_dir, public, raise_on_failure=False)
    assert result.added == ("escape.bin",)
    # a file replaced by a link to an identical copy outside is still a modification
    (model_dir / "escape.bin").unlink()
    (tmp_path / "copy.md").write_bytes((model_dir / "README.md").read_bytes())
    (model_dir / "README.md").unlink()
    os.symlink(tmp_path / "copy.md", model_dir / "README.md")
    assert verify(model_dir, public, raise_on_failure=False).modified == ("README.md",)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs need POSIX")
def test_special_files_refused_when_signing_and_never_opened_when_verifying(model_dir, keys):
    private, public, _ = keys
    sign(model_dir, private)
    os.mkfifo(model_dir / "pipe")
    result = verify(model_dir, public, raise_on_failure=False)  # would hang if it opened the FIFO
    assert result.added == ("pipe",)
    with pytest.raises(InvalidInputError, match="pipe"):
        sign(model_dir, private)


def test_key_generation_is_private_and_never_overwrites(keys, tmp_path):
    private, public, _ = keys
    if os.name == "posix":
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in private.read_bytes() and b"BEGIN PUBLIC KEY" in public.read_bytes()
    before = private.read_bytes()
    with pytest.raises(InvalidParameterError, match="private_path"):
        generate_key(private, tmp_path / "new.pub")
    with pytest.raises(InvalidParameterError, match="public_path"):
        generate_key(tmp_path / "new.pem", public)
    assert private.read_bytes() == before and not (tmp_path / "new.pem").exists()


def test_encrypted_private_key(model_dir, tmp_path):
    generate_key(tmp_path / "enc.pem", tmp_path / "enc.pub", password=b"correct horse")
    assert b"ENCRYPTED" in (tmp_path / "enc.pem").read_bytes()
    with pytest.raises(InvalidParameterError, match="password"):
        sign(model_dir, tmp_path / "enc.pem")
    with pytest.raises(InvalidParameterError, match="private_key_path"):
        sign(model_dir, tmp_path / "enc.pem", password=b"wrong")
    sign(model_dir, tmp_path / "enc.pem", password=b"correct horse")
    assert verify(model_dir, tmp_path / "enc.pub").ok


def test_bad_key_files_raise_typed_errors(model_dir, keys, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private, public, _ = keys
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    garbage.chmod(0o600)
    with pytest.raises(InvalidParameterError, match="private_key_path"):
        sign(model_dir, garbage)
    with pytest.raises(InvalidParameterError, match="private_key_path"):
        sign(model_dir, tmp_path / "absent.pem")
    with pytest.raises(InvalidParameterError, match="public_key_path"):
        verify(model_dir, garbage)
    with pytest.raises(InvalidParameterError, match="public_key_path"):
        verify(model_dir, private)  # a private key where the public one belongs
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem = tmp_path / "ec.pem"
    ec_pem.write_bytes(ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    ec_pem.chmod(0o600)
    with pytest.raises(InvalidParameterError, match="not ed25519"):
        sign(model_dir, ec_pem)
    ec_pub = tmp_path / "ec.pub"
    ec_pub.write_bytes(ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(InvalidParameterError, match="not ed25519"):
        verify(model_dir, ec_pub)
    if os.name == "posix":
        private.chmod(0o644)
        with pytest.raises(InvalidParameterError, match="open to other users"):
            sign(model_dir, private)
    assert not (model_dir / MANIFEST_NAME).exists()


def test_bad_arguments(model_dir, keys, tmp_path):
    private, public, _ = keys
    with pytest.raises(InvalidParameterError, match="directory"):
        sign(tmp_path / "absent", private)
    with pytest.raises(InvalidParameterError, match="directory"):
        verify(model_dir / "README.md", public)
    with pytest.raises(InvalidParameterError, match="manifest_name"):
        sign(model_dir, private, manifest_name="../elsewhere.json")
    inside = model_dir / "signer.pem"
    inside.write_bytes(private.read_bytes())
    inside.chmod(0o600)
    with pytest.raises(InvalidParameterError, match="inside"):
        sign(model_dir, inside)


def test_custom_manifest_name_and_ignore(model_dir, keys):
    private, public, _ = keys
    (model_dir / "model.sig").write_text("another tool's signature")
    manifest = sign(model_dir, private, manifest_name="SIGNED.json", ignore=("model.sig",))
    assert manifest.path.endswith("SIGNED.json")
    (model_dir / "model.sig").write_text("re-signed by the other tool")
    assert verify(model_dir, public, manifest_name="SIGNED.json", ignore=("model.sig",)).ok
    result = verify(model_dir, public, manifest_name="SIGNED.json", raise_on_failure=False)
    assert result.added == ("model.sig",)  # not listed when signed: extra without ignore
    assert not verify(model_dir, public, raise_on_failure=False).ok  # default name: no manifest
