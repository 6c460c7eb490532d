"""A local Label Studio server: installed in its own venv on first use, started on 127.0.0.1.

By default it runs as Label Studio recommends for production: PostgreSQL (a private cluster under
the data folder, see postgres.py) behind uWSGI worker processes, two per core as in Label Studio's
own deploy/uwsgi.ini. `database: sqlite` keeps Label Studio's single-process development server on
SQLite as a light mode for one laptop: it locks up and stores replayed requests twice under load.

The admin token, the admin password and the database password come from the environment or are
generated once and kept in the data folder (mode 0600); they reach the server through its
environment only and are never printed in full.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medcurate.annotators import postgres
from medcurate.annotators.config import LabelStudioConfig

log = logging.getLogger("medcurate.labelstudio")

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_FILE = "server.json"
LOG_FILE = "server.log"
STATS_SOCKET = "uwsgi-stats.sock"
WSGI_MODULE = "medcurate_ls_wsgi"
# Patches that spare Label Studio database work whose outcome is known (ls_tuning.py), copied
# beside the WSGI module: uWSGI runs Label Studio's interpreter, which cannot import medcurate.
TUNING_MODULE = "medcurate_ls_tuning"
# Label Studio's WSGI application as uWSGI runs it here: persistent database connections (by
# default Django opens, and authenticates, a new PostgreSQL connection for every request), and no
# work for a client that has already gone.
WSGI_TEXT = '''"""Written by medcurate at every start of the review server; edits are overwritten."""

import gc
import os
import socket

import medcurate_ls_tuning
import uwsgi
from core.wsgi import application as label_studio  # loads Label Studio's production settings
from django.db import connections

medcurate_ls_tuning.apply()

for alias in connections:
    connections.settings[alias]["CONN_MAX_AGE"] = 300
    connections.settings[alias]["CONN_HEALTH_CHECKS"] = True
# Loaded once in the master, then forked: no worker may inherit the master's database connection.
connections.close_all()
# What is loaded now (Django, Label Studio: some 300,000 objects) lives as long as the workers:
# the cyclic garbage collector skips it instead of walking it again in every full collection,
# and the forked workers keep sharing its memory pages with the master.
gc.collect()
gc.freeze()


def client_gone() -> bool:
    """Whether the client closed its connection while the request waited for a worker.

    The request has been read; what is left on the socket is either nothing yet (the client
    waits for its answer) or the end of the stream (it gave up, e.g. a timed-out browser).
    """
    with socket.socket(fileno=os.dup(uwsgi.connection_fd())) as sock:
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:  # reset by the client
            return True


def application(environ, start_response):
    """Label Studio, except for requests nobody waits for any more: those are dropped unserved.

    Under overload a request can wait in the accept queue longer than its client does; serving
    it anyway would spend a worker on an answer nobody reads (and store an annotation its
    reviewer was told had failed). nginx answers such requests with 499 the same way.
    """
    if client_gone():
        uwsgi.metric_inc("abandoned")
        start_response("499 Client Closed Request", [("Content-Length", "0")])
        return [b""]
    return label_studio(environ, start_response)
'''
# The uWSGI metric `WSGI_TEXT` counts those dropped requests under.
ABANDONED_METRIC = "abandoned"
# Connections that may wait for a worker: enough for every reviewer of a large team to be queued
# (first come, first served) instead of refused, which makes clients retry their handshake after
# 1, 3, 7... s. A long queue costs nothing when the server keeps up; when it does not, requests
# whose client gave up while queued are dropped unserved (`client_gone`), so the workers still
# spend their time on requests that someone waits for. Capped by the kernel's somaxconn.
LISTEN_BACKLOG = 1024


class ServerError(RuntimeError):
    """Label Studio could not be installed, started or reached; the message says what to do."""


@dataclass(frozen=True)
class ServerState:
    pid: int
    port: int
    url: str
    data_dir: str
    database: str = "sqlite"
    workers: int = 1
    stats_socket: str | None = None


def mask(secret: str) -> str:
    """What a log or report may show of a secret: its first four characters and its length."""
    return f"{secret[:4]}…({len(secret)} chars)"


def _venv_dir(config: LabelStudioConfig) -> Path:
    venv = Path(config.venv)
    return venv if venv.is_absolute() else REPO_ROOT / venv


def data_dir(config: LabelStudioConfig) -> Path:
    return Path(config.data_dir).resolve()


def _secret_file(config: LabelStudioConfig, name: str, make: Callable[[], str]) -> str:
    """A secret kept in the data folder, created on first use, readable only by its owner."""
    path = data_dir(config) / name
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def admin_token(config: LabelStudioConfig) -> str:
    """The 40-hex admin API token: from `config.token_env`, else generated once for this data folder."""
    token = os.environ.get(config.token_env) or _secret_file(
        config, ".admin_token", lambda: secrets.token_hex(20)
    )
    if len(token) != 40 or any(c not in "0123456789abcdef" for c in token.lower()):
        raise ServerError(f"{config.token_env} must be 40 hex characters")
    return token


def admin_password(config: LabelStudioConfig) -> str:
    return os.environ.get(config.password_env) or _secret_file(
        config, ".admin_password", lambda: secrets.token_urlsafe(18)
    )


def database_password(config: LabelStudioConfig) -> str:
    """The review database's password, generated once for this data folder."""
    return _secret_file(config, ".db_password", lambda: secrets.token_urlsafe(24))


def cluster(config: LabelStudioConfig) -> postgres.Cluster:
    return postgres.Cluster(root=data_dir(config) / "postgres", password=database_password(config))


def ensure_installed(config: LabelStudioConfig) -> Path:
    """Label Studio's executable, installing it (and uWSGI) into its own venv first if needed."""
    venv = _venv_dir(config)
    executable = venv / "bin" / "label-studio"
    wanted = []
    if not executable.exists():
        wanted.append(config.version)
    if config.database == "postgresql" and not (venv / "bin" / "uwsgi").exists():
        wanted.append(config.wsgi_server)
    if not wanted:
        return executable
    log.info("installing %s into %s (about a minute, once)", " ".join(wanted), venv)
    try:
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *wanted],
            check=True,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.CalledProcessError as error:
        raise ServerError(f"installing Label Studio failed (exit {error.returncode})") from None
    if not executable.exists():
        raise ServerError(f"{executable} missing after install")
    return executable


def worker_count(config: LabelStudioConfig) -> int:
    """uWSGI processes: as configured, else two per core (Label Studio's deploy/uwsgi.ini)."""
    return config.workers or 2 * (os.cpu_count() or 1)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def read_state(config: LabelStudioConfig) -> ServerState | None:
    path = data_dir(config) / STATE_FILE
    if not path.exists():
        return None
    return ServerState(**json.loads(path.read_text()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status(config: LabelStudioConfig) -> ServerState | None:
    """The running server's state, or None when none answers."""
    state = read_state(config)
    if state is None or not _alive(state.pid) or not healthy(state.url):
        return None
    return state


def _server_env(config: LabelStudioConfig, root: Path) -> dict[str, str]:
    hidden = {config.token_env, config.password_env}
    env = {key: value for key, value in os.environ.items() if key not in hidden}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(root),
        DJANGO_DB="sqlite",
        LABEL_STUDIO_USERNAME=config.username,
        LABEL_STUDIO_PASSWORD=admin_password(config),
        LABEL_STUDIO_USER_TOKEN=admin_token(config),
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LATEST_VERSION_CHECK="false",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        COLLECT_ANALYTICS="false",
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
    )
    if config.local_files_root:
        env["LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED"] = "true"
        env["LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"] = str(Path(config.local_files_root).resolve())
    if config.database == "postgresql":
        env.update(cluster(config).django_env())
    return env


def _package_dir(config: LabelStudioConfig) -> Path:
    """The installed label_studio package: uWSGI loads its core.wsgi from there."""
    found = sorted(_venv_dir(config).glob("lib/python*/site-packages/label_studio/core/wsgi.py"))
    if not found:
        raise ServerError(f"label_studio package not found in {_venv_dir(config)}")
    return found[-1].parents[1].resolve()


def _listen_backlog() -> int:
    try:
        limit = int(Path("/proc/sys/net/core/somaxconn").read_text())
    except (OSError, ValueError):
        limit = 128
    return min(LISTEN_BACKLOG, limit)


def stats_socket(config: LabelStudioConfig) -> Path:
    return postgres.unix_socket_path(data_dir(config) / STATS_SOCKET)


def _uwsgi_command(config: LabelStudioConfig, port: int) -> list[str]:
    """uWSGI as Label Studio's deploy/uwsgi.ini runs it, speaking HTTP itself on 127.0.0.1 only.

    The application is loaded once in the master and forked (not `lazy-apps`): starting takes one
    load instead of one per worker, which on two cores is most of a restart.

    Static files go through Label Studio's own views (as under its development server), which
    hand them to uWSGI's sendfile; no separate web server is needed on one machine.
    """
    package = _package_dir(config)
    wrapper = data_dir(config) / "wsgi"
    wrapper.mkdir(exist_ok=True)
    (wrapper / f"{WSGI_MODULE}.py").write_text(WSGI_TEXT)
    shutil.copyfile(Path(__file__).with_name("ls_tuning.py"), wrapper / f"{TUNING_MODULE}.py")
    options = {
        "http-socket": f"{config.host}:{port}",
        "chdir": package,
        "pythonpath": package,
        "module": f"{WSGI_MODULE}:application",
        "processes": worker_count(config),
        "threads": 1,
        "listen": _listen_backlog(),
        "metric": f"name={ABANDONED_METRIC},type=counter",
        "stats": stats_socket(config),
        "harakiri": 120,  # a request stuck this long is killed and its worker replaced
        "buffer-size": 65535,
        "post-buffering": 4096,
        "max-requests": 5000,
        "reload-on-rss": 2048,
        "worker-reload-mercy": 10,  # stop: a worker gets this long to finish its request
        "reload-mercy": 10,
        # A worker answers one request per connection: say so, or pooling clients (httpx, the
        # SDK) reuse a connection the worker has closed and get "connection reset by peer".
        "add-header": "Connection: close",
    }
    flags = [
        "master", "die-on-term", "need-app", "thunder-lock", "enable-threads",
        "single-interpreter", "vacuum", "enable-metrics", "disable-logging", "log-5xx", "ignore-sigpipe",
        "ignore-write-errors", "disable-write-exception",
    ]  # fmt: skip
    command = [str(_venv_dir(config) / "bin" / "uwsgi"), "--pythonpath", str(wrapper)]
    for key, value in options.items():
        command += [f"--{key}", str(value)]
    return command + [f"--{flag}" for flag in flags]


def _prepare_postgres(config: LabelStudioConfig, env: dict[str, str], server_log: Any) -> None:
    """Start the cluster, then migrate and create the admin (what `label-studio start` does first)."""
    try:
        if postgres.start(cluster(config)):
            log.info("created the review database cluster under %s", cluster(config).root)
    except postgres.PostgresError as error:
        raise ServerError(str(error)) from None
    command = [str(_venv_dir(config) / "bin" / "label-studio"), "init", "--quiet", "--no-browser"]
    init = subprocess.run(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=server_log,
        stderr=subprocess.STDOUT,
        timeout=config.start_timeout_s,
    )
    if init.returncode != 0:
        raise ServerError(f"Label Studio migrations failed (exit {init.returncode}); see its server.log")


def start(config: LabelStudioConfig) -> ServerState:
    """Start (or find already running) the server; returns once it answers its health check."""
    running = status(config)
    if running is not None:
        return running
    executable = ensure_installed(config)
    root = data_dir(config)
    root.mkdir(parents=True, exist_ok=True)
    port = config.port or free_port(config.host)
    # Label Studio silently moves to another port when its own is busy: refuse instead.
    if not port_free(config.host, port):
        raise ServerError(f"port {port} on {config.host} is in use; set review.label_studio.port")
    url = f"http://{config.host}:{port}"
    env = _server_env(config, root)
    with open(root / LOG_FILE, "ab") as server_log:
        if config.database == "postgresql":
            _prepare_postgres(config, env, server_log)
            # Label Studio's production settings, as its Dockerfile and deploy/uwsgi.ini set them
            # (pyuwsgi's --env cannot: Python has read its environment before uWSGI parses options).
            env = {**env, "DJANGO_SETTINGS_MODULE": "core.settings.label_studio", "APP_WEBSERVER": "uwsgi"}
            command, workers, stats = _uwsgi_command(config, port), worker_count(config), stats_socket(config)
        else:
            command = [str(executable), "start", "--no-browser", "--internal-host", config.host]
            command, workers, stats = [*command, "--port", str(port)], 1, None
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    state = ServerState(
        pid=process.pid,
        port=port,
        url=url,
        data_dir=str(root),
        database=config.database,
        workers=workers,
        stats_socket=str(stats) if stats else None,
    )
    (root / STATE_FILE).write_text(json.dumps(asdict(state)))
    deadline = time.monotonic() + config.start_timeout_s
    while not healthy(url):
        if process.poll() is not None:
            raise ServerError(f"Label Studio exited with {process.returncode}; see {root / LOG_FILE}")
        if time.monotonic() > deadline:
            stop(config)
            raise ServerError(f"Label Studio did not answer within {config.start_timeout_s:.0f}s")
        time.sleep(1)
    log.info(
        "Label Studio up at %s on %s, %d worker(s) (user %s, token %s)",
        url,
        config.database,
        workers,
        config.username,
        mask(admin_token(config)),
    )
    return state


def stop(config: LabelStudioConfig, timeout_s: float = 20) -> bool:
    """Stop the server this data folder's state names, then its database; True if one was running."""
    try:
        return _stop_server(config, timeout_s)
    finally:
        if config.database == "postgresql" and postgres.initialised(cluster(config)):
            try:
                postgres.stop(cluster(config))
            except postgres.PostgresError as error:
                raise ServerError(str(error)) from None


def _stop_server(config: LabelStudioConfig, timeout_s: float) -> bool:
    state = read_state(config)
    if state is None:
        return False
    was_running = _alive(state.pid)
    if was_running:
        os.killpg(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(state.pid) and time.monotonic() < deadline:
            _reap(state.pid)
            time.sleep(0.2)
        if _alive(state.pid):
            os.killpg(state.pid, signal.SIGKILL)
            _reap(state.pid)
    (data_dir(config) / STATE_FILE).unlink(missing_ok=True)
    return was_running


def _reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie that looks alive."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _uwsgi_stats(path: str, timeout: float = 2.0) -> dict[str, Any]:
    """uWSGI's stats server: one JSON document per connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return json.loads(b"".join(chunks))


def _workers_report(state: ServerState) -> tuple[dict[str, Any], dict[str, Any]]:
    """Workers (busy, idle, requests, errors) and the accept queue, from uWSGI's stats socket."""
    if state.stats_socket is None:
        return {"server": "django development server", "processes": 1}, {}
    try:
        stats = _uwsgi_stats(state.stats_socket)
    except (OSError, ValueError) as error:
        return {"server": "uwsgi", "error": f"stats unavailable: {error}"}, {}
    workers = stats.get("workers", [])
    statuses = [w.get("status", "") for w in workers]
    served = [w for w in workers if w.get("requests")]
    sockets = stats.get("sockets", [])
    return (
        {
            "server": f"uwsgi {stats.get('version', '')}".strip(),
            "processes": len(workers),
            "busy": statuses.count("busy"),
            "idle": statuses.count("idle"),
            "other": len(statuses) - statuses.count("busy") - statuses.count("idle"),
            "requests": sum(w.get("requests", 0) for w in workers),
            "exceptions": sum(w.get("exceptions", 0) for w in workers),
            "harakiri": sum(w.get("harakiri_count", 0) for w in workers),
            "respawns": sum(max(w.get("respawn_count", 1) - 1, 0) for w in workers),
            "avg_response_ms": round(sum(w.get("avg_rt", 0) for w in served) / len(served) / 1000, 1)
            if served
            else None,
        },
        {
            "waiting": stats.get("listen_queue", 0),
            "refused": stats.get("listen_queue_errors", 0),
            "abandoned": stats.get("metrics", {}).get(ABANDONED_METRIC, {}).get("value", 0),
            "capacity": max((s.get("max_queue", 0) for s in sockets), default=None),
        },
    )


def report(config: LabelStudioConfig) -> dict[str, Any]:
    """What `labelstudio status` prints: the server, its database, its workers and its accept queue."""
    state = status(config)
    if config.database == "postgresql":
        database = postgres.health(cluster(config)) if postgres.initialised(cluster(config)) else {}
    else:
        sqlite = data_dir(config) / "label_studio.sqlite3"
        database = (
            {"engine": "sqlite", "size_mb": round(sqlite.stat().st_size / 2**20, 1)}
            if sqlite.exists()
            else {}
        )
    if state is None:
        return {"running": False, "database": database or {"engine": config.database, "running": False}}
    workers, queue = _workers_report(state)
    return {
        "running": True,
        "url": state.url,
        "pid": state.pid,
        "data_dir": state.data_dir,
        "database": database,
        "workers": workers,
        "queue": queue,
    }


def backup(config: LabelStudioConfig, out: str | Path) -> Path:
    """A `pg_dump` (custom format, mode 0600) of the review database; the server keeps running."""
    if config.database != "postgresql":
        raise ServerError("backup needs database: postgresql (for sqlite, copy label_studio.sqlite3)")
    try:
        if not postgres.running(cluster(config)):
            raise ServerError("the review database is not running: medcurate labelstudio start")
        return postgres.dump(cluster(config), Path(out))
    except postgres.PostgresError as error:
        raise ServerError(str(error)) from None


def restore(config: LabelStudioConfig, dump_file: str | Path) -> ServerState:
    """Replace the review database with a backup: the web server stops meanwhile, then starts again."""
    if config.database != "postgresql":
        raise ServerError("restore needs database: postgresql")
    if not Path(dump_file).is_file():
        raise ServerError(f"no backup at {dump_file}")
    _stop_server(config, 20)
    try:
        postgres.start(cluster(config))
        postgres.restore(cluster(config), Path(dump_file))
    except postgres.PostgresError as error:
        raise ServerError(str(error)) from None
    return start(config)
