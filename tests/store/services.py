"""Throw-away PostgreSQL and Redis servers on 127.0.0.1 for the store tests.

Each server runs from a temporary directory on a free port and is stopped at
the end of the session. A missing server binary skips the tests that need it,
unless ``MACNSS_REQUIRE_SERVICES=1`` (CI), which turns the skip into a failure.

* PostgreSQL: ``initdb`` and ``pg_ctl`` from ``$MACNSS_PG_BIN``, else the
  newest ``/usr/lib/postgresql/*/bin``, else ``$PATH`` (Debian: ``postgresql``).
  PostgreSQL refuses to run as root, so as root the cluster belongs to the
  ``postgres`` user and commands run through ``runuser``. The test cluster
  runs with ``fsync=off``: it is thrown away, and durability is not what the
  contract tests check.
* Redis: ``redis-server`` from ``$PATH`` (Debian: ``redis-server``), with
  persistence off.
* PgBouncer (:func:`pgbouncer_server`): in front of such a PostgreSQL, in the
  pooling mode a test asks for.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["pgbouncer_server", "postgres_server", "redis_server", "require_services", "unavailable"]


def require_services() -> bool:
    """Whether a missing server must fail the run instead of skipping."""
    return os.environ.get("MACNSS_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail under ``MACNSS_REQUIRE_SERVICES=1``."""
    if require_services():
        pytest.fail(f"{reason} (MACNSS_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pg_bin() -> Path | None:
    candidates = [os.environ.get("MACNSS_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version_key(path: str) -> int:
    name = Path(path).parent.name
    return int(name) if name.isdigit() else 0


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a PostgreSQL cluster; yield its libpq connection string."""
    bindir = _pg_bin()
    if bindir is None:
        unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
        raise AssertionError("unreachable")
    prefix: list[str] = []
    datadir = Path(tempfile.mkdtemp(prefix="macnss-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(datadir)
            unavailable("running as root and there is no 'postgres' user to own the cluster")
            raise AssertionError("unreachable") from None
        os.chown(datadir, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -k {datadir} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(datadir / "data"), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(datadir / "data"), "-o", options,
             "-l", str(datadir / "log"), "-w", "-t", "60", "start"],
            check=True, capture_output=True, timeout=90,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log = datadir / "log"
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(datadir, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc}\n{getattr(exc, 'stderr', '')}\n{detail}")
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(datadir / "data"), "-m", "immediate",
             "-w", "stop"],
            check=False, capture_output=True, timeout=60,
        )  # fmt: skip
        shutil.rmtree(datadir, ignore_errors=True)


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Stop a server this module started (and only such a one): politely, then for sure."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextlib.contextmanager
def redis_server(*options: str) -> Iterator[str]:
    """Start a Redis server (with extra command-line ``options``); yield its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server not found")
        raise AssertionError("unreachable")
    workdir = Path(tempfile.mkdtemp(prefix="macnss-redis-"))
    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--protected-mode", "yes", *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    # A server with requirepass answers -NOAUTH: it is up too.
                    if conn.recv(16).startswith((b"+PONG", b"-NOAUTH")):
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("could not start redis-server")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def pgbouncer_server(
    postgres: str, *, pool_mode: str = "transaction", pool_size: int = 20, **settings: str
) -> Iterator[str]:
    """Start a PgBouncer in front of the test PostgreSQL ``postgres``; yield its conninfo.

    The binary is ``$MACNSS_PGBOUNCER``, else ``pgbouncer`` on ``$PATH``, else
    ``/usr/sbin/pgbouncer`` (Debian: ``pgbouncer``).

    It listens on 127.0.0.1 only (no Unix socket), on a free port, pools every
    database of that server for any user (``auth_type=trust``: the test cluster
    trusts loopback too) in ``pool_mode``, with at most ``pool_size`` server
    connections per database and user, and any other ``settings`` of its
    ``[pgbouncer]`` section. ``postgres`` may use its console
    (``dbname=pgbouncer``). PgBouncer refuses to run as root: as root it runs
    as ``postgres``. Only the process started here is stopped.
    """
    # Debian installs it in /usr/sbin, which a user's PATH may lack.
    wanted = os.environ.get("MACNSS_PGBOUNCER")
    found = [wanted] if wanted else [shutil.which("pgbouncer"), "/usr/sbin/pgbouncer"]
    binary = next((b for b in found if b and Path(b).is_file()), None)
    if binary is None:
        unavailable("pgbouncer not found (Debian: apt-get install pgbouncer)")
        raise AssertionError("unreachable")
    # The simple key=value string postgres_server yields.
    target = dict(part.split("=", 1) for part in postgres.split())
    workdir = Path(tempfile.mkdtemp(prefix="macnss-pgbouncer-"))
    uid = gid = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(workdir)
            unavailable("running as root and there is no 'postgres' user to run pgbouncer")
            raise AssertionError("unreachable") from None
        uid, gid = owner.pw_uid, owner.pw_gid
    port = _free_port()
    (workdir / "users.txt").write_text('"postgres" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={target['host']} port={target['port']}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {workdir / 'users.txt'}\n"
        f"pool_mode = {pool_mode}\ndefault_pool_size = {pool_size}\n"
        "max_client_conn = 500\nserver_login_retry = 1\nadmin_users = postgres\n"
        f"logfile = {workdir / 'log'}\n"
        + "".join(f"{name} = {value}\n" for name, value in settings.items())
    )
    if uid is not None and gid is not None:
        for path in [workdir, *workdir.iterdir()]:
            os.chown(path, uid, gid)
    server = subprocess.Popen(
        [binary, "-q", str(workdir / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        user=uid, group=gid, extra_groups=None if uid is None else [],
    )  # fmt: skip
    conninfo = f"host=127.0.0.1 port={port} user={target.get('user', 'postgres')} dbname=postgres"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log = workdir / "log"
                detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                pytest.fail(f"could not start pgbouncer\n{detail}")
            time.sleep(0.05)
        yield conninfo
    finally:
        _stop(server)
        shutil.rmtree(workdir, ignore_errors=True)
