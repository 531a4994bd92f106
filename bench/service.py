"""The HTTP service under load, side by side with the library called directly.

Run: ``.venv/bin/python bench/service.py [--seconds 10] [--clients 32]`` (4 s per
path in 2 windows by default, ``--long`` for 12 s in 3); exits 1 when HTTP
throughput is below half the direct path's or any login failed.

Setup, all on 127.0.0.1: one PostgreSQL server that the bench starts itself
(as the store tests do), an HTTP "SMS gateway" in this process that keeps
every message (``HttpSmsGateway`` posts to it), and 4 uvicorn server
processes running :func:`macnss_auth.web.create_app` on that PostgreSQL.

Work: ``--clients`` concurrent clients (4 processes x 8 threads), each doing
logins back to back, alternating TOTP and SMS; a login is ``begin`` then
``verify`` (for SMS, the client fetches its code from the gateway between
the two, as a phone would receive it). The same clients then do the same
logins through the library directly (``Policy.begin`` / ``Policy.verify`` in
4 processes with the same store, gateway and policy), so the two rows differ
only by HTTP: parsing, JSON, the thread pool and the token signature.

TOTP enrollments use a 1-second period so that every subject can log in again
each second (a code is accepted once per time step); the work per
verification is the same as at 30 seconds.

Both paths share 2 CPU cores with PostgreSQL, the gateway and each other, so
the figures are for comparing the rows, not for sizing a server. The paths
run in alternating windows (``--rounds``), so that other work on the machine
slows both alike, and the CPU time each path's processes used per login is
printed too: it does not depend on what else the machine is doing.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pyotp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from macnss_auth import AssuranceLevel, Policy  # noqa: E402
from macnss_auth.audit import MemoryAuditLog  # noqa: E402
from macnss_auth.clock import SystemClock  # noqa: E402
from macnss_auth.delivery.http_sms import HttpSmsGateway  # noqa: E402
from macnss_auth.otp import SMSCodeAuthenticator, TotpAuthenticator  # noqa: E402
from macnss_auth.otp.enrollment import OtpParameters  # noqa: E402
from macnss_auth.otp.oob import InlineDispatcher, ResendPolicy  # noqa: E402
from macnss_auth.secret import Secret  # noqa: E402
from macnss_auth.store import Keyring  # noqa: E402
from macnss_auth.store.postgres import PostgresStore  # noqa: E402
from macnss_auth.throttle import ThrottlePolicy  # noqa: E402

__all__ = [
    "Gateway",
    "Library",
    "build_app",
    "build_policy",
    "main",
    "server_processes",
    "totp_secret",
]

KEY = bytes(range(32))
PEPPER = Secret(bytes(range(32, 64)))
PERIOD = 1
ISSUER = "http://127.0.0.1"
AUDIENCE = "bench"
SERVERS = 4
WORKERS = 4


def totp_secret(subject: str) -> str:
    """Every subject's TOTP secret, derived from its name (clients compute codes from it)."""
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415

    return base64.b32encode(hashlib.sha256(subject.encode()).digest()[:20]).decode()


def phone(n: int) -> str:
    return f"+2126{n:08d}"


# The gateway ------------------------------------------------------------------------------


class Gateway:
    """An HTTP SMS gateway on 127.0.0.1 that keeps every message, by destination.

    ``POST /sms`` (JSON ``{"to": ..., "text": ...}``) stores a message;
    ``GET /code?to=...&n=...`` waits until the destination has more than
    ``n`` messages and returns the code in message ``n``; ``GET /count?to=...``
    says how many there are.
    """

    def __init__(self) -> None:
        self.messages: dict[str, list[str]] = {}
        self.changed = threading.Condition()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                del args

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                code = re.search(r"(?<!\d)\d{6}(?!\d)", body["text"])
                with gateway.changed:
                    gateway.messages.setdefault(body["to"], []).append(
                        code.group(0) if code else ""
                    )
                    gateway.changed.notify_all()
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                if urlsplit(self.path).path == "/count":
                    data = str(gateway.count(query["to"][0])).encode()
                    self.send_response(200)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                to, n = query["to"][0], int(query["n"][0])
                with gateway.changed:
                    ready = gateway.changed.wait_for(
                        lambda: len(gateway.messages.get(to, [])) > n, timeout=30
                    )
                    code = gateway.messages[to][n] if ready else ""
                data = code.encode()
                self.send_response(200 if ready else 504)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Gateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, to: str) -> int:
        with self.changed:
            return len(self.messages.get(to, []))


# The service ------------------------------------------------------------------------------


class Library(NamedTuple):
    """What :func:`build_policy` builds; close ``store`` when done."""

    policy: Policy
    totp: TotpAuthenticator
    sms: SMSCodeAuthenticator
    store: PostgresStore


def build_policy(
    database: str,
    gateway: str,
    *,
    throttle: ThrottlePolicy | None = None,
    policy_throttle: ThrottlePolicy | None = None,
) -> Library:
    """The policy both paths use: TOTP and SMS on PostgreSQL, SMS through the gateway."""
    store = PostgresStore(database, keyring=Keyring({"k1": KEY}, primary="k1"))
    audit = MemoryAuditLog()
    totp = TotpAuthenticator(
        store=store, audit=audit, throttle_policy=throttle, issuer="bench",
        parameters=OtpParameters(period=PERIOD),
    )  # fmt: skip
    sms = SMSCodeAuthenticator(
        channel=HttpSmsGateway(gateway + "/sms", body={"to": "${to}", "text": "${text}"}),
        store=store, audit=audit, pepper=PEPPER, throttle=throttle,
        resend=ResendPolicy(cooldown=0, daily_per_subject=10**6, daily_per_destination=10**6,
                            hourly_per_prefix=None),
        # Inline: the code is at the gateway when begin returns, on both paths alike.
        dispatcher=InlineDispatcher(),
    )  # fmt: skip
    policy = Policy(
        authenticators=[(totp, AssuranceLevel.SUBSTANTIAL), (sms, AssuranceLevel.LOW)],
        store=store,
        clock=SystemClock(),
        throttle_policy=policy_throttle or ThrottlePolicy(free_failures=99, lockout_after=100),
    )
    return Library(policy, totp, sms, store)


def build_app(
    database: str, gateway: str, keys: str, throttle: ThrottlePolicy | None = None
) -> Any:
    """The ASGI app a server process runs."""
    from macnss_auth.web import AssertionIssuer, SigningKeys, create_app  # noqa: PLC0415

    policy = build_policy(database, gateway, throttle=throttle).policy
    issuer = AssertionIssuer(issuer=ISSUER, keys=SigningKeys.load(keys), audiences=[AUDIENCE])
    return create_app(policy=policy, assertions=issuer, login_page=False)


def _serve(argv: list[str]) -> None:
    """``bench/service.py --serve PORT DATABASE GATEWAY KEYS [THROTTLE-JSON]``."""
    import uvicorn  # noqa: PLC0415

    port, database, gateway, keys = argv[:4]
    throttle = ThrottlePolicy(**json.loads(argv[4])) if len(argv) > 4 else None
    app = build_app(database, gateway, keys, throttle)
    # MACNSS_BENCH_UVICORN="LOOP,HTTP" picks uvicorn's implementations (default: auto,auto,
    # which means uvloop and httptools when installed, else asyncio and h11).
    loop, _, http = os.environ.get("MACNSS_BENCH_UVICORN", "auto,auto").partition(",")
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning", access_log=False,
                proxy_headers=False, server_header=False, loop=loop,
                http=http or "auto")  # fmt: skip


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def server_processes(
    database: str, gateway: str, workdir: Path, *, count: int = SERVERS,
    throttle: ThrottlePolicy | None = None, pids: list[int] | None = None,
) -> Iterator[list[str]]:  # fmt: skip
    """Start ``count`` uvicorn processes on one database; yield their URLs (``pids`` filled)."""
    from macnss_auth.web import SigningKeys  # noqa: PLC0415

    keys = workdir / "keys"
    if not keys.exists():
        SigningKeys.generate().save(keys)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    extra = [json.dumps(_throttle_fields(throttle))] if throttle else []
    processes, urls = [], []
    for _ in range(count):
        port = _free_port()
        command = [sys.executable, str(Path(__file__)), "--serve", str(port), database, gateway,
                   str(keys), *extra]  # fmt: skip
        processes.append(subprocess.Popen(command, env=env))  # noqa: S603 (this very script)
        if pids is not None:
            pids.append(processes[-1].pid)
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        for url, process in zip(urls, processes, strict=True):
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server {url} did not start")
                time.sleep(0.1)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _throttle_fields(policy: ThrottlePolicy) -> dict[str, Any]:
    import attrs  # noqa: PLC0415

    return attrs.asdict(policy)


# Clients ----------------------------------------------------------------------------------


class _Totp:
    """A client's TOTP subjects: each accepts one code per time step."""

    def __init__(self, subjects: list[str]) -> None:
        self.subjects = subjects
        self.last = dict.fromkeys(subjects, -1)
        self.apps = {s: pyotp.TOTP(totp_secret(s), interval=PERIOD) for s in subjects}
        self.turn = 0

    def next(self) -> tuple[str, str]:
        while True:
            now = int(time.time()) // PERIOD
            for _ in range(len(self.subjects)):
                subject = self.subjects[self.turn % len(self.subjects)]
                self.turn += 1
                step = max(now, self.last[subject] + 1)
                if step <= now + 1:
                    self.last[subject] = step
                    return subject, self.apps[subject].at(step * PERIOD)
            time.sleep(0.01)


class _Connection:
    """A keep-alive HTTP/1.1 connection (http.client: the cheapest client in CPU).

    The clients share the machine with the servers, so their own cost is kept
    low; a phone's HTTP stack does not run on the server.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"content-type": "application/json"} if body is not None else {}
        self._connection.request(method, path, body=body, headers=headers)
        response = self._connection.getresponse()
        return response.status, response.read()

    def get(self, path: str) -> str:
        return self._request("GET", path)[1].decode()

    def post(self, path: str, body: dict[str, str]) -> tuple[int, Any]:
        status, data = self._request("POST", path, json.dumps(body).encode())
        return status, json.loads(data)

    def close(self) -> None:
        self._connection.close()


def _client_loop(
    totp_login: Callable[[str, str], None],
    sms_login: Callable[[str], None],
    *,
    totp: _Totp,
    sms_subject: str,
    until: float,
    errors: list[int],
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"totp": [], "sms": []}
    turn = 0
    while time.monotonic() < until:
        started = time.perf_counter()
        method = "totp" if turn % 2 == 0 else "sms"
        turn += 1
        try:
            if method == "totp":
                subject, code = totp.next()
                started = time.perf_counter()
                totp_login(subject, code)
            else:
                sms_login(sms_subject)
        except Exception:  # noqa: BLE001 (counted and reported: a bench must not stop)
            errors[0] += 1
            continue
        times[method].append(time.perf_counter() - started)
    return times


def _worker(  # noqa: PLR0917 (a multiprocessing target takes positional arguments)
    mode: str, index: int, threads: int, urls: list[str], database: str, gateway: str,
    seconds: float, queue: Any, barrier: Any,
) -> None:  # fmt: skip
    """One client process: ``threads`` clients over HTTP (``mode="http"``) or the library."""
    results: list[dict[str, list[float]]] = []
    library = build_policy(database, gateway) if mode == "direct" else None
    policy = library.policy if library is not None else None
    # Every process measures the same window, after all have imported and connected.
    barrier.wait(timeout=120)
    until_start = time.monotonic()
    cpu_start = time.process_time()
    errors = [0]

    def run(thread: int) -> None:
        number = index * threads + thread
        totp = _Totp([f"totp-{number}-{k}" for k in range(20)])
        sms_subject, sms_phone = f"sms-{number}", phone(number)
        gate = _Connection(gateway)
        seen = [int(gate.get(f"/count?to={quote(sms_phone)}"))]
        api = _Connection(urls[number % len(urls)] if urls else gateway)

        def code_for(subject_phone: str, n: int) -> str:
            return gate.get(f"/code?to={quote(subject_phone)}&n={n}")

        def totp_login(subject: str, code: str) -> None:
            if policy is not None:
                challenge = policy.begin(subject, "totp")
                policy.verify(challenge.id, code)
                return
            _, begun = api.post("/v1/challenges", {"subject": subject, "method": "totp"})
            status, answer = api.post(f"/v1/challenges/{begun['id']}/verify", {"code": code})
            if status != 200:
                raise RuntimeError(answer)

        def sms_login(subject: str) -> None:
            if policy is not None:
                challenge = policy.begin(subject, "sms")
                code = code_for(sms_phone, seen[0])
                seen[0] += 1
                policy.verify(challenge.id, code)
                return
            _, begun = api.post("/v1/challenges", {"subject": subject, "method": "sms"})
            code = code_for(sms_phone, seen[0])
            seen[0] += 1
            status, answer = api.post(f"/v1/challenges/{begun['id']}/verify", {"code": code})
            if status != 200:
                raise RuntimeError(answer)

        results.append(
            _client_loop(
                totp_login,
                sms_login,
                totp=totp,
                sms_subject=sms_subject,
                until=until_start + seconds,
                errors=errors,
            )
        )
        api.close()
        gate.close()

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.append({"errors": [float(errors[0])], "cpu": [time.process_time() - cpu_start]})
    if library is not None:
        library.store.close()
    queue.put(results)


def _enroll(database: str, gateway: Gateway, clients: int) -> None:
    library = build_policy(database, gateway.url)
    totp, sms = library.totp, library.sms
    for number in range(clients):
        for k in range(20):
            subject = f"totp-{number}-{k}"
            totp.enroll(subject, secret=totp_secret(subject))
            app = pyotp.TOTP(totp_secret(subject), interval=PERIOD)
            totp.confirm(subject, app.at(int(time.time()) - PERIOD))
        enrolling = sms.enroll(f"sms-{number}", phone(number))
        sms.confirm(enrolling, gateway.messages[phone(number)][-1])
    library.store.close()


def _summary(name: str, runs: list[list[dict[str, list[float]]]], seconds: float) -> list[str]:
    rows = []
    for method in ("totp", "sms"):
        times = sorted(t for run in runs for client in run for t in client.get(method, []))
        if not times:
            continue
        p50 = statistics.median(times) * 1000
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
        rows.append(
            f"| {name} | {method} | {len(times) / seconds:8.1f} | "
            f"{2 * len(times) / seconds:8.1f} | {p50:6.1f} | {p99:6.1f} |"
        )
    return rows


def _run(mode: str, urls: list[str], database: str, gateway: str, *, clients: int,
         seconds: float) -> list[list[dict[str, list[float]]]]:  # fmt: skip
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    barrier = context.Barrier(WORKERS)
    threads = clients // WORKERS
    processes = [
        context.Process(target=_worker,
                        args=(mode, i, threads, urls, database, gateway, seconds, queue, barrier))
        for i in range(WORKERS)
    ]  # fmt: skip
    for process in processes:
        process.start()
    results = [queue.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join()
    return results


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes so far (Linux /proc), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def _pause() -> None:
    # A new run's clients start at the next time steps: the last run may have used up to now + 1.
    time.sleep(2.5 * PERIOD)


def main() -> int:
    """Run the comparison; return 1 when HTTP is below the floor or a login failed."""
    if sys.argv[1:2] == ["--serve"]:
        _serve(sys.argv[2:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per path, in all")
    parser.add_argument("--long", action="store_true", help="12 s per path in 3 windows")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternate HTTP and direct windows, so that other load on the "
                        "machine hits both paths alike")  # fmt: skip
    args = parser.parse_args()
    if args.long:
        args.seconds, args.rounds = 12.0, 3
    from tests.store.services import postgres_server  # noqa: PLC0415 (the tests' throw-away PG)

    window = args.seconds / args.rounds
    http_runs: list[list[dict[str, list[float]]]] = []
    direct_runs: list[list[dict[str, list[float]]]] = []
    with postgres_server() as conninfo, Gateway() as gateway, \
            tempfile.TemporaryDirectory() as work:  # fmt: skip
        port = re.search(r"port=(\d+)", conninfo)
        assert port is not None  # noqa: S101
        database = f"postgresql://postgres@127.0.0.1:{port.group(1)}/postgres"
        _enroll(database, gateway, args.clients)
        pids: list[int] = []
        server_cpu = 0.0
        with server_processes(database, gateway.url, Path(work), pids=pids) as urls:
            pairs = (("http", http_runs), ("direct", direct_runs)) * (args.rounds + 1)
            for turn, (mode, runs) in enumerate(pairs):
                _pause()
                before = _cpu_seconds(pids)
                found = _run(mode, urls if mode == "http" else [], database, gateway.url,
                             clients=args.clients, seconds=window)  # fmt: skip
                if turn >= 2:  # the first pair warms up
                    runs.extend(found)
                    if mode == "http":
                        server_cpu += _cpu_seconds(pids) - before
    print(f"{args.clients} clients, {SERVERS} uvicorn processes vs {WORKERS} library processes, "
          f"one PostgreSQL, {args.seconds:.0f} s per path in {args.rounds} alternating windows; "
          "a login is begin + verify")  # fmt: skip
    print("| path | method | logins/s | requests/s | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for row in _summary("HTTP", http_runs, args.seconds) + _summary(
        "direct", direct_runs, args.seconds
    ):
        print(row)
    total, errors = {}, {}
    for name, runs in (("http", http_runs), ("direct", direct_runs)):
        total[name] = sum(len(c.get(m, [])) for run in runs for c in run for m in ("totp", "sms"))
        errors[name] = int(sum(sum(c.get("errors", [])) for run in runs for c in run))
    print(f"errors: HTTP {errors['http']}, direct {errors['direct']}")
    cpu = {
        name: sum(sum(c.get("cpu", [])) for run in runs for c in run)
        for name, runs in (("http", http_runs), ("direct", direct_runs))
    }
    cpu["http"] += server_cpu
    per_login = {name: 1000 * cpu[name] / max(1, total[name]) for name in cpu}
    servers = 1000 * server_cpu / max(1, total["http"])
    print(f"CPU per login (clients + servers; PostgreSQL and the gateway not counted): "
          f"HTTP {per_login['http']:.1f} ms (servers {servers:.1f} ms), "
          f"direct {per_login['direct']:.1f} ms")  # fmt: skip
    ratio = total["http"] / max(1, total["direct"])
    ok = ratio >= HTTP_FLOOR and not errors["http"] and not errors["direct"]
    print(f"HTTP throughput / direct throughput: {ratio:.2f} "
          f"(floor {HTTP_FLOOR:.2f}, no errors): {'ok' if ok else 'MISSED'}")  # fmt: skip
    return 0 if ok else 1


#: HTTP must keep at least half the direct path's throughput (goal: within 2x), error-free.
HTTP_FLOOR = 0.5


if __name__ == "__main__":
    raise SystemExit(main())
