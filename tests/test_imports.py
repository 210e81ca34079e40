import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_core_never_imports_torch_or_dask():
    out = _run(
        """
        import sys
        import mlpentest, mlpentest.cli, mlpentest.datasets, mlpentest.metrics, mlpentest.report
        import mlpentest.models, mlpentest.kernels, mlpentest.defenses, mlpentest.parallel, mlpentest.serve
        import mlpentest.attacks.membership, mlpentest.attacks.evasion
        import mlpentest.experiments.shokri2017, mlpentest.experiments.biggio2013, mlpentest.experiments.demo
        from sklearn.linear_model import LogisticRegression
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        m = mlpentest.models.wrap(LogisticRegression(max_iter=200).fit(X / 16, y))
        m.predict_proba(X[:3] / 16); m.class_gradient(X[:3] / 16, label=1)
        heavy = {"torch", "dask", "distributed", "fastapi", "uvicorn", "httpx", "starlette"}
        print(sorted(k for k in sys.modules if k.split(".")[0] in heavy))
        """
    )
    assert out == "[]"


def test_torch_model_imports_torch_only_when_used():
    pytest.importorskip("torch")
    out = _run(
        """
        import sys
        import mlpentest.models
        assert "torch" not in sys.modules
        import torch
        net = torch.nn.Sequential(torch.nn.Linear(4, 3))
        m = mlpentest.models.wrap(net, input_shape=(4,))
        print(m.predict_proba(torch.zeros(2, 4).numpy()).shape)
        """
    )
    assert out == "(2, 3)"


def test_an_installed_but_broken_extra_is_named_as_such():
    # fickling 0.1.12 imports typing_extensions without declaring it: `make demo` (only the tamper extra)
    # said "fickling is not installed" although it was; the message now tells the two apart
    pytest.importorskip("fickling")
    out = _run(
        """
        import sys
        sys.modules["fickling.fickle"] = None   # fickling is there, a module it needs is not importable
        from mlpentest.errors import OptionalDependencyError
        from mlpentest.supplychain.tamper import Payload
        try:
            Payload.marker("/tmp/never-written").opcodes()
        except OptionalDependencyError as exc:
            print(exc)
        """
    )
    assert out.startswith("building a tampering payload needs 'fickling', which is installed but does not")
    assert "pip install --force-reinstall 'mlpentest[tamper]'" in out
    from mlpentest.errors import OptionalDependencyError

    missing = OptionalDependencyError("no-such-package-xyz", "x", "y", error=ImportError("no"))
    assert "which is not installed; install it with: pip install 'mlpentest[x]'" in str(missing)
