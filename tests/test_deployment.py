"""The Procfile's web process, run as a deployment runs it (through a shell, on a real
gunicorn bound to 127.0.0.1 only): production is its default, it refuses to start without a
SECRET_KEY, and a few clients trickling a request body do not take the site down.

Each test is bounded in time; gunicorn and its workers are always stopped.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 45
SECRET = "deployment-test-secret-" + "k" * 40
#: Connections that trickle a body: more than the sync workers the Procfile used to run
#: (the reported outage took four), fewer than its threads now.
SLOW_CLIENTS = 6
#: A normal request must be answered within this while the slow clients hold on.
PROMPT_SECONDS = 5


def procfile_command(process: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise AssertionError(f"the Procfile has no {process} process")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Web:
    def __init__(self, process: subprocess.Popen, port: int, log: Path):
        self.process, self.port, self.log = process, port, log

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def get(self, path: str, timeout: float = 5) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            return response
        finally:
            conn.close()


@contextmanager
def procfile_web(tmp_path: Path, **settings: str):
    """The Procfile's `web` command with PORT and the given settings; nothing else of this
    process's configuration leaks in (no SECRET_KEY or ARMSLENGTH_ENV unless given)."""
    port = free_port()
    command = procfile_command("web").replace("0.0.0.0", "127.0.0.1")  # loopback only
    env = {k: v for k, v in os.environ.items()
           if k not in {"SECRET_KEY", "ARMSLENGTH_ENV", "DATABASE_URL", "TESTING", "WEB_CONCURRENCY",
                        "GUNICORN_THREADS", "GUNICORN_CMD_ARGS"}}
    env.update({
        "PORT": str(port),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}",
        "ORG_TIMEZONE": "UTC",
        "GUNICORN_CMD_ARGS": "--graceful-timeout 2",
        # Production requires the row-seal key (app.ledger.seal_key).
        "AUDIT_SEAL_KEY": "procfile-test-seal-key-" + "s" * 20,
        **settings,
    })
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own Procfile line, run as a platform would
            ["/bin/sh", "-c", command], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        yield Web(process, port, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def wait_until_serving(web: Web) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert web.process.poll() is None, f"gunicorn exited:\n{web.log_tail()}"
        try:
            if web.get("/login").status == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"gunicorn did not answer:\n{web.log_tail()}"
        time.sleep(0.2)


def test_the_procfile_web_process_refuses_to_start_without_a_secret_key(tmp_path):
    with procfile_web(tmp_path, WEB_CONCURRENCY="2") as web:
        try:
            web.process.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"gunicorn kept running without SECRET_KEY:\n{web.log_tail()}") \
                from None
        assert web.process.returncode != 0
        assert "SECRET_KEY must be set" in web.log_tail()


def test_the_procfile_web_process_runs_in_production_mode(tmp_path):
    with procfile_web(tmp_path, WEB_CONCURRENCY="2", SECRET_KEY=SECRET) as web:
        wait_until_serving(web)
        response = web.get("/login")
        cookie = response.getheader("Set-Cookie") or ""
        assert "session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
        assert response.getheader("Strict-Transport-Security") == "max-age=31536000"


def _trickle(port: int, stop: threading.Event, opened: threading.Semaphore) -> None:
    """A client on a slow link: headers promise a body, which comes a byte a second."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100000\r\n\r\n")
        opened.release()
        while not stop.wait(1):
            try:
                sock.sendall(b"a")
            except OSError:
                return


def test_slow_clients_do_not_take_the_site_down(tmp_path):
    with procfile_web(tmp_path, WEB_CONCURRENCY="2", SECRET_KEY=SECRET) as web:
        wait_until_serving(web)
        stop = threading.Event()
        opened = threading.Semaphore(0)
        clients = [threading.Thread(target=_trickle, args=(web.port, stop, opened), daemon=True)
                   for _ in range(SLOW_CLIENTS)]
        for client in clients:
            client.start()
        try:
            for _ in clients:
                assert opened.acquire(timeout=10), "a slow client could not connect"
            time.sleep(1.5)  # the server has taken them all up and is waiting for their bodies
            for _ in range(3):
                started = time.monotonic()
                try:
                    response = web.get("/login", timeout=PROMPT_SECONDS)
                except TimeoutError:
                    raise AssertionError(
                        f"a normal request got no answer within {PROMPT_SECONDS} s while "
                        f"{SLOW_CLIENTS} clients trickled their bodies") from None
                assert response.status == 200
                assert time.monotonic() - started < PROMPT_SECONDS
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=5)


def test_a_mistyped_environment_name_is_refused_not_run_as_development(tmp_path):
    from app import create_app
    from app.config import ConfigError

    try:
        create_app({"ARMSLENGTH_ENV": "prod", "SECRET_KEY": SECRET,
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    except ConfigError as error:
        assert "ARMSLENGTH_ENV must be one of: development, production" in str(error)
    else:
        raise AssertionError("ARMSLENGTH_ENV=prod was accepted")


def test_a_jobs_folder_under_the_public_static_folder_is_refused(tmp_path):
    """Uploads and exports under app/static would be served to anyone (review finding 9)."""
    from pathlib import Path

    import pytest

    from app import create_app
    from app.config import ConfigError

    static = Path(__file__).resolve().parent.parent / "app" / "static" / "jobs"
    with pytest.raises(ConfigError, match="JOBS_DIR must not be under app/static"):
        create_app({"JOBS_DIR": str(static),
                    "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}"})
    assert not static.exists()
