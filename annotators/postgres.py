"""Label Studio's own PostgreSQL cluster, kept under the review data folder and run by this project.

Debian's `postgresql` package provides the binaries; the cluster listens on a Unix socket in its
own folder only (no TCP), its password is generated once (file mode 0600) and reaches programs
through their environment, never their command line. PostgreSQL refuses to run as root, so when
medcurate runs as root the cluster belongs to, and runs as, the unprivileged `postgres` user.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PORT = 5432  # only names the socket file: the cluster listens on no TCP port
DB_NAME = "labelstudio"
DB_USER = "labelstudio"
SERVICE_USERS = ("postgres", "nobody")
SOCKET_PATH_MAX = 100  # sockaddr_un holds 107 bytes; leave room for ".s.PGSQL.5432"


def unix_socket_path(preferred: Path, reserve: int = 0) -> Path:
    """`preferred`, unless it is too long for a Unix socket address: then a short stand-in in /tmp."""
    if len(str(preferred)) + reserve <= SOCKET_PATH_MAX:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"medcurate-{digest}-{preferred.name}"


class PostgresError(RuntimeError):
    """The cluster could not be created, started, reached or dumped; the message says what to do."""


@dataclass(frozen=True)
class Cluster:
    root: Path  # <data_dir>/postgres
    password: str

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        return unix_socket_path(self.root / "run", reserve=len(f"/.s.PGSQL.{PORT}"))

    def django_env(self) -> dict[str, str]:
        """What Label Studio's settings read to reach this cluster (DJANGO_DB=postgresql)."""
        return {
            "DJANGO_DB": "postgresql",
            "POSTGRE_NAME": DB_NAME,
            "POSTGRE_USER": DB_USER,
            "POSTGRE_PASSWORD": self.password,
            "POSTGRE_HOST": str(self.socket_dir),
            "POSTGRE_PORT": str(PORT),
        }


def bindir() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them off PATH)."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise PostgresError(
        "PostgreSQL is not installed: apt-get install postgresql "
        "(or set review.label_studio.database=sqlite for a light single-user server)"
    )


def service_user() -> pwd.struct_passwd | None:
    """The unprivileged account the cluster runs as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresError("running as root but no unprivileged 'postgres' or 'nobody' user exists")


def _as_service(user: pwd.struct_passwd | None) -> dict[str, Any]:
    """subprocess arguments that drop root to the service user (nothing when not root)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _check_reachable(path: Path, user: pwd.struct_passwd) -> None:
    """The service user must be able to enter every parent folder of the cluster."""
    for parent in [path, *path.parents]:
        info = parent.stat()
        if info.st_uid == user.pw_uid:
            continue
        if not info.st_mode & stat.S_IXOTH:
            raise PostgresError(
                f"PostgreSQL runs as user {user.pw_name!r} (it refuses root) and cannot enter {parent}: "
                "choose a review.label_studio.data_dir whose parent folders others may enter (chmod o+x)"
            )


def _give(path: Path, user: pwd.struct_passwd | None) -> None:
    """Hand a file or folder we made to the service user (when there is one)."""
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


def _own_dir(path: Path, user: pwd.struct_passwd | None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    _give(path, user)


def _run(
    cluster: Cluster, args: list[str], *, password: bool = False, check: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run one PostgreSQL program as the service user; its output is captured, never echoed."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    if password:
        env["PGPASSWORD"] = cluster.password
    result = subprocess.run(
        [str(bindir() / args[0]), *args[1:]],
        env=env,
        cwd=cluster.root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        **_as_service(service_user()),
        **kwargs,
    )
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise PostgresError(f"{args[0]} failed (exit {result.returncode}): {' / '.join(detail)}")
    return result


def _psql_args(cluster: Cluster) -> list[str]:
    return ["-h", str(cluster.socket_dir), "-p", str(PORT), "-U", DB_USER]


def initialised(cluster: Cluster) -> bool:
    return (cluster.pgdata / "PG_VERSION").exists()


def _init(cluster: Cluster) -> None:
    """initdb with password (scram) auth on the local socket and every TCP connection refused."""
    user = service_user()
    _own_dir(cluster.root, user)
    if user is not None:
        _check_reachable(cluster.root, user)
    pwfile = cluster.root / ".initdb-password"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(cluster.password + "\n")
    _give(pwfile, user)
    try:
        _run(
            cluster,
            [
                "initdb",
                "-D",
                str(cluster.pgdata),
                "-U",
                DB_USER,
                f"--pwfile={pwfile}",
                "--auth-local=scram-sha-256",
                "--auth-host=reject",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ],
        )
    finally:
        pwfile.unlink(missing_ok=True)
    socket_dir = cluster.socket_dir
    settings = {
        "listen_addresses": "''",
        "unix_socket_directories": f"'{socket_dir}'",
        "unix_socket_permissions": "0700",
        "port": str(PORT),
        "max_connections": "200",
        "shared_buffers": "'128MB'",
        "log_min_messages": "warning",
    }
    with open(cluster.pgdata / "postgresql.conf", "a") as conf:
        conf.write("\n# medcurate: a private cluster for Label Studio, Unix socket only\n")
        conf.writelines(f"{key} = {value}\n" for key, value in settings.items())


def running(cluster: Cluster) -> bool:
    if not initialised(cluster):
        return False
    return _run(cluster, ["pg_ctl", "status", "-D", str(cluster.pgdata)], check=False).returncode == 0


def start(cluster: Cluster) -> bool:
    """Create the cluster and its database on first use, start it; True if it was created now."""
    created = not initialised(cluster)
    if created:
        _init(cluster)
    user = service_user()
    _own_dir(cluster.socket_dir, user)
    if not running(cluster):
        _run(
            cluster,
            ["pg_ctl", "start", "-D", str(cluster.pgdata), "-l", str(cluster.log_file), "-w", "-t", "60"],
            start_new_session=True,
        )
    if created:
        _run(cluster, ["createdb", *_psql_args(cluster), DB_NAME], password=True)
    return created


def stop(cluster: Cluster) -> bool:
    """Stop the cluster (fast shutdown: open transactions roll back); True if it was running."""
    if not running(cluster):
        return False
    _run(cluster, ["pg_ctl", "stop", "-D", str(cluster.pgdata), "-m", "fast", "-w", "-t", "60"])
    return True


def query(cluster: Cluster, sql: str) -> list[list[str]]:
    """Rows of one SQL statement through psql (status and tests; values come back as text)."""
    result = _run(
        cluster,
        ["psql", *_psql_args(cluster), "-d", DB_NAME, "-X", "-A", "-t", "-F", "\t", "-c", sql],
        password=True,
    )
    return [line.split("\t") for line in result.stdout.splitlines() if line]


def health(cluster: Cluster) -> dict[str, Any]:
    """Whether the cluster answers, its size and connections (for `labelstudio status`)."""
    report: dict[str, Any] = {"engine": "postgresql", "socket_dir": str(cluster.socket_dir)}
    if not running(cluster):
        return {**report, "running": False}
    try:
        ((size, connections, active, waiting),) = query(
            cluster,
            "SELECT pg_database_size(current_database()), count(*), "
            "count(*) FILTER (WHERE state = 'active'), count(*) FILTER (WHERE wait_event_type = 'Lock') "
            "FROM pg_stat_activity WHERE datname = current_database()",
        )
    except PostgresError as error:
        return {**report, "running": True, "answers": False, "error": str(error)}
    return {
        **report,
        "running": True,
        "answers": True,
        "size_mb": round(int(size) / 2**20, 1),
        "connections": int(connections),
        "active": int(active),
        "waiting_on_locks": int(waiting),
    }


def dump(cluster: Cluster, out: Path) -> Path:
    """A consistent custom-format `pg_dump` of the review database (taken while the server runs)."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    user = service_user()
    # pg_dump runs as the service user, so it writes to a folder of its own; the dump is then moved.
    staging = cluster.root / "dump.tmp"
    staging.unlink(missing_ok=True)
    _run(cluster, ["pg_dump", *_psql_args(cluster), "-d", DB_NAME, "-Fc", "-f", str(staging)], password=True)
    if user is not None:
        os.chown(staging, os.getuid(), os.getgid())
    shutil.move(str(staging), out)
    out.chmod(0o600)
    return out


def restore(cluster: Cluster, dump_file: Path) -> None:
    """Replace the review database with a dump (Label Studio must be stopped meanwhile)."""
    staging = cluster.root / "restore.tmp"
    shutil.copyfile(dump_file, staging)
    _give(staging, service_user())
    try:
        _run(
            cluster,
            [
                "pg_restore",
                *_psql_args(cluster),
                "-d",
                DB_NAME,
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                str(staging),
            ],
            password=True,
        )
    finally:
        staging.unlink(missing_ok=True)
