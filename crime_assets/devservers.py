"""Real servers for end-to-end tests and benchmarks: a local PostgreSQL cluster and the Dagster webserver
and daemon (in the package so that benchmarks need not import the test package).

Every server is started in its own process group, on a free loopback port, in a temporary folder, and
stopped by its PID (then its group, so the code servers and run workers it spawned go with it).
Nothing here is shared between tests unless a fixture says so.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]  # the checkout: its dagster.yaml and workspace.yaml

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # Without these Chromium keeps dialling Google's hosts, which this closed network refuses.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium_path() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


# --------------------------------------------------------------------------------------------------
# Processes


@dataclass
class Service:
    """A process started in its own group; ``stop`` ends it and everything it started."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def assert_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        pid = self.process.pid
        for sig, wait_s in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pid, sig)  # the group whose leader is our child: pgid == its pid
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait_s)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; give the rest of its group (code servers, run workers) a moment.
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline and _group_alive(pid):
                time.sleep(0.1)
            if not _group_alive(pid):
                break


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def start_service(name: str, args: list[str], cwd: Path, env: Mapping[str, str], log_dir: Path) -> Service:
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - the child owns it for its lifetime
    # `env --default-signal` undoes the SIGINT/SIGTERM "ignore" a non-interactive shell may hand down,
    # so the Dagster processes honour the stop signal.
    process = subprocess.Popen(
        ["env", "--default-signal=INT,TERM", *args], cwd=cwd, env=dict(env),
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    log.close()
    return Service(name, process, log_path)


# --------------------------------------------------------------------------------------------------
# Dagster


def fresh_dagster_home(root: Path, instance_yaml: Path = REPO / "dagster.yaml") -> Path:
    """A DAGSTER_HOME holding a copy of ``instance_yaml``; processes run with it as their working
    directory, so the relative storage folders of the config (``.dagster_home/``) land in it."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(instance_yaml, home / "dagster.yaml")
    return home


def dagster_env(home: Path, data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "CRIME_"))}
    return env | {"DAGSTER_HOME": str(home), "CRIME_DATA_DIR": str(data_dir),
                  "PYTHONUNBUFFERED": "1"} | dict(extra or {})


def dagster_bin(name: str) -> str:
    """The console script next to this interpreter, so the servers use the test's environment."""
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


@dataclass
class DagsterServices:
    home: Path
    env: dict[str, str]
    port: int | None = None
    services: list[Service] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: Mapping | None = None, timeout: float = 30.0) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                 timeout=timeout)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def check_alive(self) -> None:
        for service in self.services:
            service.assert_running()

    def logs(self) -> str:
        return "\n".join(f"--- {s.name} ({s.log_path})\n{s.log_tail()}" for s in self.services)

    def wait_for(self, what: str, predicate, timeout: float, interval: float = 1.0):
        """Poll ``predicate`` until it returns something truthy; fail with the servers' logs otherwise."""
        deadline, last_error = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                value = predicate()
                if value:
                    return value
            except (requests.RequestException, RuntimeError, KeyError, TypeError) as error:
                last_error = error
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})\n"
                           f"{self.logs()}")

    def location_loaded(self) -> bool:
        data = self.graphql("""{ workspaceOrError { __typename ... on Workspace { locationEntries {
            name locationOrLoadError { __typename ... on PythonError { message } } } } } }""")
        entries = data["workspaceOrError"]["locationEntries"]
        errors = [e["locationOrLoadError"] for e in entries
                  if e["locationOrLoadError"] and e["locationOrLoadError"]["__typename"] == "PythonError"]
        if errors:
            raise AssertionError(f"the code location failed to load: {errors[0]['message']}")
        return bool(entries) and all(e["locationOrLoadError"] and
                                     e["locationOrLoadError"]["__typename"] == "RepositoryLocation"
                                     for e in entries)

    def daemons_healthy(self, required: tuple[str, ...]) -> bool:
        data = self.graphql("""{ instance { daemonHealth { allDaemonStatuses {
            daemonType healthy required } } } }""")
        healthy = {d["daemonType"] for d in data["instance"]["daemonHealth"]["allDaemonStatuses"] if d["healthy"]}
        return set(required) <= healthy

    def stop(self) -> None:
        # Side by side: each takes several seconds to wind down its daemon threads and code servers.
        threads = [threading.Thread(target=service.stop) for service in self.services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


@contextmanager
def dagster_services(
    home: Path, env: Mapping[str, str], workspace: Path = REPO / "workspace.yaml",
    webserver: bool = True, daemon: bool = True, timeout: float = 120.0,
    daemons_required: tuple[str, ...] = ("BACKFILL", "QUEUED_RUN_COORDINATOR"),
) -> Iterator[DagsterServices]:
    """`dagster-webserver` and/or `dagster-daemon run` for the instance in ``home`` (also their working
    directory), loading ``workspace``. With the webserver: ready once the code location has loaded and,
    with the daemon too, once the daemons in ``daemons_required`` report healthy."""
    services = DagsterServices(home=home, env=dict(env))
    # Beside DAGSTER_HOME, not in it: Dagster clears files it finds in $DAGSTER_HOME/logs.
    log_dir = home.parent / f"{home.name}-process-logs"
    log_dir.mkdir(exist_ok=True)
    # Create the storage once, before two processes race to create it ("more than one head" in
    # alembic_version); production does the same with a migration step before starting the services.
    migrate = subprocess.run([dagster_bin("dagster"), "instance", "migrate"], cwd=home, env=dict(env),
                             capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if migrate.returncode:
        raise RuntimeError(f"dagster instance migrate failed:\n{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}")
    try:
        if daemon:
            services.services.append(start_service(
                "dagster-daemon", [dagster_bin("dagster-daemon"), "run", "-w", str(workspace)], home, env, log_dir))
        if webserver:
            services.port = free_port()
            services.services.append(start_service(
                "dagster-webserver", [dagster_bin("dagster-webserver"), "-h", "127.0.0.1", "-p", str(services.port),
                                      "-w", str(workspace)], home, env, log_dir))
            services.wait_for("the webserver to load the code location", services.location_loaded, timeout)
            if daemon:
                services.wait_for(f"daemons {', '.join(daemons_required)} to be healthy",
                                  lambda: services.daemons_healthy(daemons_required), timeout)
        yield services
    finally:
        services.stop()


# --------------------------------------------------------------------------------------------------
# PostgreSQL


POSTGRES_HOW = "apt-get install postgresql (Debian's package; .ci/run installs it)"


def postgres_bindir() -> Path | None:
    """Debian keeps the server programs in /usr/lib/postgresql/<version>/bin, outside PATH."""
    found = shutil.which("pg_ctl")
    if found and Path(found).resolve().with_name("initdb").exists():
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    db_name: str
    username: str
    password: str
    data_dir: Path

    def dagster_env(self) -> dict[str, str]:
        """The variables deploy/dagster.prod.yaml reads its connection (and its secret) from."""
        return {"DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_DB": self.db_name,
                "DAGSTER_PG_USERNAME": self.username, "DAGSTER_PG_PASSWORD": self.password}

    def ducklake_env(self, data_path: Path) -> dict[str, str]:
        """The settings of the DuckLake warehouse with its catalog in this server and its files in ``data_path``."""
        return {"CRIME_WAREHOUSE": "ducklake", "CRIME_DUCKLAKE_DATA_PATH": str(data_path),
                "CRIME_DUCKLAKE_CATALOG": f"host={self.host} port={self.port} dbname={self.db_name} user={self.username}",
                "CRIME_DUCKLAKE_PASSWORD": self.password}

    def connect(self):
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, dbname=self.db_name, user=self.username,
                                password=self.password, connect_timeout=10)


@contextmanager
def postgres_server(db_name: str = "dagster", username: str = "dagster") -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<free port>, password authentication only.

    The server refuses to run as root, so as root the cluster belongs to the ``postgres`` user
    (created by Debian's package) and its programs run through ``runuser``.
    """
    bindir = postgres_bindir()
    if bindir is None:
        raise RuntimeError(f"postgresql not installed: {POSTGRES_HOW}")
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root but there is no 'postgres' user to own the cluster") from None
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="crime-assets-pg-"))
    data_dir, superuser_password = root / "data", secrets.token_urlsafe(16)
    password = secrets.token_urlsafe(16)
    pwfile = root / "superuser.pw"
    pwfile.write_text(superuser_password + "\n")
    if as_user:
        os.chown(root, owner.pw_uid, owner.pw_gid)
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    port = free_port()

    def run(*args: str, timeout: float = 90.0) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    started = False
    try:
        run(str(bindir / "initdb"), "-D", str(data_dir), "-U", "postgres", f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
        options = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        run(str(bindir / "pg_ctl"), "-D", str(data_dir), "-l", str(root / "server.log"), "-o", options,
            "-w", "-t", "60", "start")
        started = True
        import psycopg2

        admin = psycopg2.connect(host="127.0.0.1", port=port, dbname="postgres", user="postgres",
                                 password=superuser_password, connect_timeout=10)
        admin.autocommit = True
        with admin.cursor() as cur:
            # The application role is no superuser: what Dagster needs is to own its database.
            cur.execute(f"CREATE ROLE {username} LOGIN PASSWORD %s", (password,))
            cur.execute(f"CREATE DATABASE {db_name} OWNER {username}")
        admin.close()
        yield Postgres("127.0.0.1", port, db_name, username, password, data_dir)
    finally:
        if started:
            try:
                run(str(bindir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "-t", "30", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                run(str(bindir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
