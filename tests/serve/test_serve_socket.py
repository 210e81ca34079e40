"""The server's listening socket: connectable as soon as its URL is announced, and answers not held back by
Nagle's algorithm (without TCP_NODELAY every answer, headers then body, waited ~40 ms for a delayed ACK)."""

import socket
import threading
import time

import pytest

from mlpentest.serve import _server

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


def test_the_url_accepts_connections_before_the_server_loop_runs(digits):
    server, sock, url = _server(digits.model, None, "127.0.0.1", 0, None, "error")
    try:
        host, port = url.removeprefix("http://").split(":")
        # the CLI prints the URL at this point; a client connecting at once waits in the backlog
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    finally:
        sock.close()


def test_answers_go_out_with_tcp_nodelay(digits):
    server, sock, url = _server(digits.model, None, "127.0.0.1", 0, None, "error")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started
        with httpx.Client(base_url=url, timeout=10) as client:
            r = client.post("/predict", json={"inputs": digits.X_test[:1].tolist()})
            assert r.status_code == 200, r.text
            connections = list(server.server_state.connections)
            assert connections
            for protocol in connections:
                conn = protocol.transport.get_extra_info("socket")
                assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
