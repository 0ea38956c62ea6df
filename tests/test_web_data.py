"""get_web_data: NEMO_Nowcast's download helper, against a real HTTP server on loopback."""

from __future__ import annotations

import http.server
import logging
import threading

import pytest

from nowcast.errors import WorkerError
from nowcast.worker import get_web_data


@pytest.fixture
def server():
    """An HTTP server that fails its first ``fail`` requests with 503."""

    class Handler(http.server.BaseHTTPRequestHandler):
        fail = 0
        requests = 0

        def do_GET(self):
            Handler.requests += 1
            if Handler.requests <= Handler.fail:
                self.send_error(503)
                return
            body = b"forcing data " * 1000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.handler = Handler
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/file.nc"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_returns_the_content_or_writes_the_file(server, tmp_path):
    assert get_web_data(server.url, "test") == b"forcing data " * 1000
    target = tmp_path / "file.nc"
    assert get_web_data(server.url, "test", filepath=target, chunk_size=100) is None
    assert target.read_bytes() == b"forcing data " * 1000


def test_retries_with_growing_waits_then_succeeds(server, caplog):
    server.handler.fail = 2
    caplog.set_level(logging.DEBUG, "test")
    data = get_web_data(server.url, "test", wait_exponential_multiplier=0.01)
    assert data.startswith(b"forcing data") and server.handler.requests == 3
    waits = [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting")]
    assert waits == ["waiting 0.01 seconds until retry 1", "waiting 0.0001 seconds until retry 2"]


def test_gives_up_with_worker_error(server, caplog):
    server.handler.fail = 1000
    with pytest.raises(WorkerError):
        get_web_data(
            server.url,
            "test",
            wait_exponential_multiplier=2,
            wait_retry_max=0.01,
            wait_exponential_max=2.045,
        )
    # the waits count from 2 (the first wait's nominal length) and grow by the time
    # actually waited, capped at 0.01 s: 2.01, ..., 2.05 > 2.045 after 5 retries
    assert server.handler.requests == 6
    assert f"giving up; download from {server.url} failed 6 times" in caplog.text
