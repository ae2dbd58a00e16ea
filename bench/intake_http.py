"""Gift intake over HTTP against the same server's cheapest authenticated request.

    .venv/bin/python -m bench.intake_http            # 8, 16, 32 clients; 20 s each after 5 s warm-up
    .venv/bin/python -m bench.intake_http --quick    # 16 clients; 6 s each after 2 s warm-up

For each database (PostgreSQL at --pg-url, and a SQLite file) it copies a generated ledger
(10,000 gifts, built once and cached in --data-dir), starts gunicorn exactly as the
Procfile's `web` line says (workers, worker class, threads; --workers, --threads and
--worker-class override them),
and at each client count drives, alternately and with the same wrk settings:

- the ceiling: GET /api/v1/organizations?limit=1 (authentication, one small read, JSON);
- intake: POST /api/v1/gifts for 1,000 donors, dated 1 to 30 days back.

It prints requests/s, p50/p95/p99, the server's CPU per request (gunicorn's workers plus
the database: PostgreSQL's backends serving this database, read from /proc; on SQLite the
database runs inside the workers) and intake / ceiling. After the runs it checks that the
gift rows added equal the 201 responses counted by wrk, and that the audit chain is intact.
wrk (a Debian package) is installed with apt-get if it is missing.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from app.ledger.seal_key import DEVELOPMENT_KEY

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CLK_TCK = os.sysconf("SC_CLK_TCK")

#: Per-thread counts of statuses, summed over wrk's threads in done().
_LUA_COMMON = """
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) created = 0; other = 0 end
response = function(status, headers, body)
  if status == 201 or status == 200 then created = created + 1 else other = other + 1 end
end
done = function(summary, latency, requests)
  local ok, bad = 0, 0
  for _, t in ipairs(threads) do ok = ok + t:get("created"); bad = bad + t:get("other") end
  io.write(string.format("RESULT %d %d %d %d %d %d %d %d %d\\n", summary.requests,
    summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, ok, bad, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout))
end
"""

_LUA_INTAKE = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local donors = {%(donors)s}
local days = {%(days)s}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, "/api/v1/gifts", nil, string.format(
    '{"donor_id": %%d, "amount": "%%d.00", "currency": "USD", "received_on": "%%s", "method": "card"}',
    donors[(i %% #donors) + 1], 20 + (i %% 80), days[(i %% #days) + 1]))
end
"""

_LUA_CEILING = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer %(token)s"
"""


@dataclass
class Run:
    endpoint: str
    clients: int
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    ok: int
    refused: int
    socket_errors: int
    app_cpu_s: float
    db_cpu_s: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def cpu_ms(self) -> tuple[float, float]:
        n = max(self.requests, 1)
        return 1000 * self.app_cpu_s / n, 1000 * self.db_cpu_s / n


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    print("wrk is missing: apt-get install -y wrk", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], check=True)


def procfile_web() -> list[str]:
    """The Procfile's web command, as arguments, with its ${VAR:-default}s filled in."""
    line = next(x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("web:"))
    command = line.split(":", 1)[1]
    command = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m[1], m[2]), command)
    return shlex.split(command)


def _option(args: list[str], name: str, value: str | None) -> list[str]:
    if value is None:
        return args
    if name in args:
        args = list(args)
        args[args.index(name) + 1] = value
        return args
    return [*args[:1], name, value, *args[1:]]


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its threads; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


class Server:
    """gunicorn as the Procfile runs it, on a free port, against one database."""

    def __init__(self, database_url: str, workers: str | None, threads: str | None,
                 app_dir: Path = ROOT, worker_class: str | None = None):
        args = procfile_web()
        args = _option(args, "--worker-class", worker_class)
        if "--worker-class" in args and args[args.index("--worker-class") + 1] != "gthread":
            # --threads is gthread's; the other classes would ignore it or warn.
            args = [*args[:args.index("--threads")], *args[args.index("--threads") + 2:]] \
                if "--threads" in args else args
            threads = None
        args = _option(args, "--workers", workers)
        args = _option(args, "--threads", threads)
        self.port = _free_port()
        args = _option(args, "--bind", f"127.0.0.1:{self.port}")
        # The Procfile logs each request to stdout; here to a file, whose 201s on
        # POST /api/v1/gifts are what the server answered (wrk drops the answers still in
        # flight when a run ends: it counts fewer).
        self.access_log = Path(tempfile.mkstemp(suffix=".log")[1])
        args = _option(args, "--access-logfile", str(self.access_log)) + ["--log-level",
                                                                          "warning"]
        self.command = " ".join(args).replace(str(self.access_log), "FILE")
        gunicorn = Path(sys.executable).with_name("gunicorn")
        env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "bench-" + "y" * 40,
               "ORG_TIMEZONE": "UTC", "PYTHONPATH": str(app_dir),
               # Production (app.wsgi) requires a row-seal key; the generated ledger's
               # donors were sealed with the development key (bench/generate.py).
               "AUDIT_SEAL_KEY": DEVELOPMENT_KEY.decode()}
        self.proc = subprocess.Popen([str(gunicorn), *args[1:]], cwd=app_dir, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(self.base + "/api/v1/openapi.json", timeout=2)  # noqa: S310
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start: "
                                       + self.proc.stderr.read().decode()[-2000:]) from None
                time.sleep(0.2)

    def cpu(self) -> float:
        return sum(_proc_cpu(p) for p in [self.proc.pid, *_children(self.proc.pid)])

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def gifts_created(self) -> int:
        """201 answers to POST /api/v1/gifts in the access log (after stop(): all written)."""
        with self.access_log.open() as log:
            return sum(1 for line in log if '"POST /api/v1/gifts ' in line
                       and re.search(r'" 201 ', line))


class DatabaseCpu:
    """CPU of PostgreSQL's backends connected to one database (0 for SQLite)."""

    def __init__(self, url: str):
        self.engine = create_engine(url) if url.startswith("postgresql") else None
        self.seen: dict[int, float] = {}

    def sample(self) -> float:
        if self.engine is None:
            return 0.0
        with self.engine.connect() as conn:
            pids = conn.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")).scalars().all()
        for pid in pids:
            self.seen[pid] = _proc_cpu(pid) or self.seen.get(pid, 0.0)
        # A backend that has ended keeps its last reading: its CPU was spent.
        return sum(self.seen.values())

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url: str, script: str, seconds: float, clients: int) -> tuple:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script + _LUA_COMMON)
        path = f.name
    try:
        out = subprocess.run(
            ["wrk", "-t", str(min(2, clients)), "-c", str(clients), "-d", f"{seconds}s",
             "--timeout", "10s", "-s", path, url],
            capture_output=True, text=True, timeout=seconds + 120, check=True).stdout
    finally:
        os.unlink(path)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return tuple(map(int, line.split()[1:]))


def measure(server: Server, db_cpu: DatabaseCpu, endpoint: str, url: str, script: str,
            seconds: float, clients: int) -> Run:
    app0, db0 = server.cpu(), db_cpu.sample()
    n, duration, p50, p95, p99, _worst, ok, bad, sock = wrk(url, script, seconds, clients)
    app1, db1 = server.cpu(), db_cpu.sample()
    return Run(endpoint, clients, n, duration / 1e6, p50 / 1000, p95 / 1000, p99 / 1000, ok,
               bad, sock, app1 - app0, db1 - db0)


def gift_rows(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM gift")).scalar_one()
    finally:
        engine.dispose()


def chain_ok(target) -> bool:
    from app.ledger.audit import verify_chain
    from bench.db import app_for

    app = app_for(target)
    st = app.extensions["armslength"]
    try:
        with st.sessions() as session:
            return verify_chain(session).ok
    finally:
        st.engine.dispose()


def bench_backend(dbs, backend: str, args, log) -> tuple[list[Run], dict]:
    from bench.db import ACTOR  # noqa: F401 - bench.db sets up the app's models
    from bench.generate import LedgerSpec
    from bench.measure import cast_of
    from policies import load_policy

    today = date.today()
    source = dbs.target(backend, "intake_l10k")
    meta = dbs.ensure_ledger(source, LedgerSpec(10_000, today), load_policy(), log)
    cast = cast_of(source, today)
    target = dbs.clone(source, "intake_http")
    values = {"token": meta["token"], "donors": ", ".join(map(str, cast.people[:1000])),
              "days": ", ".join(f'"{(today - timedelta(days=d)).isoformat()}"'
                                for d in range(1, 31))}
    intake_script, ceiling_script = _LUA_INTAKE % values, _LUA_CEILING % values
    runs: list[Run] = []
    before = gift_rows(target.url)
    received = 0
    server = Server(target.url, args.workers, args.threads, args.app_dir, args.worker_class)
    db_cpu = DatabaseCpu(target.url)
    info = {"command": server.command, "donors": len(cast.people[:1000]),
            "app": _describe(args.app_dir)}
    try:
        gifts_url = f"{server.base}/api/v1/gifts"
        ceiling_url = f"{server.base}/api/v1/organizations?limit=1"
        for clients in args.clients:
            log(f"  {backend}: {clients} clients")
            received += wrk(gifts_url, intake_script, args.warmup, clients)[6]
            wrk(ceiling_url, ceiling_script, args.warmup, clients)
            ceiling = measure(server, db_cpu, "ceiling", ceiling_url, ceiling_script,
                              args.seconds, clients)
            intake = measure(server, db_cpu, "intake", gifts_url, intake_script,
                             args.seconds, clients)
            received += intake.ok
            runs += [ceiling, intake]
    finally:
        server.stop()
        db_cpu.close()
    info["gift_rows_added"] = gift_rows(target.url) - before
    info["created_201"] = server.gifts_created()
    info["received_201"] = received
    server.access_log.unlink()
    info["audit_chain_ok"] = chain_ok(target)
    dbs.drop(target)
    return runs, info


def _describe(app_dir: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(app_dir), "log", "-1", "--format=%h %s"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = "?"
    return f"{app_dir} at {head[:60]}"


def report(results: dict, args) -> list[str]:
    lines = [
        "# Gift intake over HTTP", "",
        f"Command: `python -m bench.intake_http {' '.join(args.argv)}`", "",
        f"- {os.cpu_count()} CPUs; load average at start {args.load_at_start}; "
        f"at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- {args.seconds:g} s per run after {args.warmup:g} s warm-up; wrk 2 threads; "
        "the same machine runs wrk, gunicorn and the database", "",
    ]
    for backend, (runs, info) in results.items():
        lines += [f"## {backend}", "", f"`{info['command']}` (app code: {info['app']})", "",
                  "| clients | endpoint | req/s | p50 ms | p95 ms | p99 ms | non-2xx / socket "
                  "errors | CPU ms/req app + db | intake / ceiling |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for ceiling, intake in zip(runs[::2], runs[1::2], strict=True):
            for run in (ceiling, intake):
                app_ms, db_ms = run.cpu_ms()
                ratio = f"**{intake.rate / ceiling.rate:.2f}**" if run is intake else ""
                lines.append(
                    f"| {run.clients} | {run.endpoint} | {run.rate:,.0f} | {run.p50_ms:.1f} | "
                    f"{run.p95_ms:.1f} | {run.p99_ms:.1f} | {run.refused} / "
                    f"{run.socket_errors} | {app_ms:.2f} + {db_ms:.2f} | {ratio} |")
        same = info["gift_rows_added"] == info["created_201"]
        lines += ["", f"- gift rows added {info['gift_rows_added']:,}; 201 responses "
                      f"{info['created_201']:,} (server's access log): "
                      f"{'equal' if same else 'DIFFERENT'}; wrk received {info['received_201']:,} "
                      "of them (the rest were in flight when a run ended)",
                  f"- audit chain {'intact' if info['audit_chain_ok'] else 'BROKEN'}", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.intake_http", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="16 clients only, 6 s runs after 2 s warm-up")
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG))
    parser.add_argument("--data-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "armslength-bench")
    parser.add_argument("--clients", default=None, help="comma-separated (default 8,16,32)")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--warmup", type=float, default=None)
    parser.add_argument("--workers", default=None, help="override the Procfile's workers")
    parser.add_argument("--threads", default=None, help="override the Procfile's threads")
    parser.add_argument("--worker-class", default=None,
                        help="override the Procfile's worker class (sync drops --threads)")
    parser.add_argument("--app-dir", type=Path, default=ROOT,
                        help="serve the app from another checkout of the same schema (a "
                             "worktree of an earlier commit), to compare it side by side")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    args.argv = argv
    args.clients = [int(c) for c in (args.clients or ("16" if args.quick else "8,16,32"))
                    .split(",")]
    args.seconds = args.seconds or (6 if args.quick else 20)
    args.warmup = args.warmup or (2 if args.quick else 5)
    args.load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())

    from bench.db import Databases

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    ensure_wrk()
    dbs = Databases(args.data_dir, args.pg_url)
    results = {}
    for backend in [b for b in args.backends.split(",") if b]:
        label = "PostgreSQL" if backend == "postgresql" else "SQLite"
        results[label] = bench_backend(dbs, backend, args, log)
    text_out = "\n".join(report(results, args))
    print(text_out)
    if args.output:
        args.output.write_text(text_out + "\n")
    bad = any(info["gift_rows_added"] != info["created_201"] or not info["audit_chain_ok"]
              for _, info in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
