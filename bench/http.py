"""The JSON API under gunicorn, loaded by wrk over loopback for a bounded time."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from app.ledger.seal_key import DEVELOPMENT_KEY

ROOT = Path(__file__).resolve().parent.parent

_LUA_COMMON = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout))
end
"""

_LUA_GIFTS = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local donors = {%(donors)s}
local i = 0
request = function()
  i = i + 1
  local d = donors[(i %% #donors) + 1]
  return wrk.format(nil, "/api/v1/gifts", nil, string.format(
    '{"donor_id": %%d, "amount": "50.00", "currency": "USD", "received_on": "%(day)s", "method": "card"}', d))
end
"""

_LUA_GET = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer %(token)s"
"""


@dataclass
class HttpResult:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, database_url: str, workers: int):
        self.port = _free_port()
        env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "bench-" + "y" * 40,
               "ORG_TIMEZONE": "UTC",
               # Production (app.wsgi) requires a row-seal key; the generated ledger's
               # donors were sealed with the development key (bench/generate.py).
               "AUDIT_SEAL_KEY": DEVELOPMENT_KEY.decode()}
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.proc = subprocess.Popen(
            [str(gunicorn), "--workers", str(workers), "--bind", f"127.0.0.1:{self.port}",
             "--log-level", "warning", "app.wsgi:app"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.base + "/api/v1/openapi.json", timeout=2)  # noqa: S310
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start: "
                                       + self.proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.2)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _wrk(name: str, url: str, script: str, seconds: int, connections: int,
         threads: int) -> HttpResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script + _LUA_COMMON)
        path = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
             "--timeout", "10s", "-s", path, url],
            capture_output=True, text=True, timeout=seconds + 60, check=True,
        ).stdout
    finally:
        os.unlink(path)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    n, duration_us, p50, p95, p99, worst, status, sock = map(int, line.split()[1:])
    return HttpResult(name, n, duration_us / 1e6, p50 / 1000, p95 / 1000, p99 / 1000,
                      worst / 1000, status, sock)


def run(database_url: str, token: str, donors: list[int], day: str, *, seconds: int,
        workers: int, connections: int, threads: int) -> list[HttpResult]:
    server = Gunicorn(database_url, workers)
    try:
        values = {"token": token, "donors": ", ".join(map(str, donors)), "day": day}
        results = [
            _wrk("GET /api/v1/compliance/summary", f"{server.base}/api/v1/compliance/summary",
                 _LUA_GET % values, seconds, connections, threads),
            _wrk("POST /api/v1/gifts", f"{server.base}/api/v1/gifts", _LUA_GIFTS % values,
                 seconds, connections, threads),
        ]
    finally:
        server.stop()
    return results
