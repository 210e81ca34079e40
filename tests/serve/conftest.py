"""Shared fixtures of the serve tests: a real digits model and a real `mlpentest serve` subprocess."""

import os
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier


@dataclass
class Digits:
    X_train: np.ndarray
    y_train: np.ndarray
    X_out: np.ndarray
    y_out: np.ndarray
    X_pool: np.ndarray
    y_pool: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    model: MLPClassifier


def mlp() -> MLPClassifier:
    """The target's recipe (the attacker's reference models use it too): overfits 400 digits."""
    return MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-6, max_iter=300, random_state=0)


@pytest.fixture(scope="session")
def digits() -> Digits:
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float64)
    order = np.random.RandomState(0).permutation(len(X))
    X, y = X[order], y[order]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = mlp().fit(X[:400], y[:400])
    return Digits(X[:400], y[:400], X[400:800], y[400:800], X[800:1400], y[800:1400], X[1400:], y[1400:],
                  model)


def start_server(args: list[str], timeout: float = 60.0) -> tuple[subprocess.Popen, str]:
    """Run ``mlpentest serve ARGS --port 0 --quiet`` and return the process and the URL it printed."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "mlpentest", "serve", *args, "--port", "0", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not line or not line[0].startswith("http://"):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"the server did not start: {line} {err[-2000:]}")
    return proc, line[0].strip()


def stop_server(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=15)
    return err


@pytest.fixture(scope="session")
def mlp_recipe():
    return mlp


@pytest.fixture(scope="session")
def server_process():
    """``(start_server, stop_server)`` for tests that run `mlpentest serve` in a subprocess."""
    return start_server, stop_server
