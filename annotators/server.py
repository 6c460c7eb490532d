"""A local Label Studio server: installed in its own venv on first use, started on 127.0.0.1.

The admin token comes from the environment (or is generated once and kept in the data folder,
mode 0600); it is passed to the server through its environment only and never printed in full.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
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

from medcurate.annotators.config import LabelStudioConfig

log = logging.getLogger("medcurate.labelstudio")

REPO_ROOT = Path(__file__).resolve().parents[1]
STATE_FILE = "server.json"
LOG_FILE = "server.log"


class ServerError(RuntimeError):
    """Label Studio could not be installed, started or reached; the message says what to do."""


@dataclass(frozen=True)
class ServerState:
    pid: int
    port: int
    url: str
    data_dir: str


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


def ensure_installed(config: LabelStudioConfig) -> Path:
    """Label Studio's executable, installing it into its own venv first if needed (about a minute)."""
    venv = _venv_dir(config)
    executable = venv / "bin" / "label-studio"
    if executable.exists():
        return executable
    log.info("installing %s into %s (about a minute, once)", config.version, venv)
    try:
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", config.version],
            check=True,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.CalledProcessError as error:
        raise ServerError(f"installing Label Studio failed (exit {error.returncode})") from None
    if not executable.exists():
        raise ServerError(f"{executable} missing after install")
    return executable


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
    env = {key: value for key, value in os.environ.items() if key != config.token_env}
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
    return env


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
    command = [str(executable), "start", "--no-browser", "--internal-host", config.host, "--port", str(port)]
    with open(root / LOG_FILE, "ab") as server_log:
        process = subprocess.Popen(
            command,
            env=_server_env(config, root),
            stdin=subprocess.DEVNULL,
            stdout=server_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    state = ServerState(pid=process.pid, port=port, url=url, data_dir=str(root))
    (root / STATE_FILE).write_text(json.dumps(asdict(state)))
    deadline = time.monotonic() + config.start_timeout_s
    while not healthy(url):
        if process.poll() is not None:
            raise ServerError(f"Label Studio exited with {process.returncode}; see {root / LOG_FILE}")
        if time.monotonic() > deadline:
            stop(config)
            raise ServerError(f"Label Studio did not answer within {config.start_timeout_s:.0f}s")
        time.sleep(1)
    log.info("Label Studio up at %s (user %s, token %s)", url, config.username, mask(admin_token(config)))
    return state


def stop(config: LabelStudioConfig, timeout_s: float = 20) -> bool:
    """Stop the server this data folder's state names; True if one was running."""
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
