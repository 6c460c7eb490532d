"""Beam pipeline options from the run config plus whatever Beam flags the user passed through.

Dataflow workers must install medcurate itself. From a source checkout Beam builds it from
`setup.py` (`--setup_file`); an installed wheel has no `setup.py`, so the installed distribution is
packed back into a wheel and staged with `--extra_package`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.metadata
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

from medcurate.config import RunnerConfig

DISTRIBUTION = "medcurate"
# Present in a source checkout only (the repository root is the package).
SETUP_FILE = Path(__file__).resolve().parents[1] / "setup.py"
# Files pip writes at install time; they do not belong in a wheel.
_INSTALL_ONLY = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}


class PackagingError(RuntimeError):
    """The installed medcurate cannot be packed for Dataflow workers; the message says what to do."""


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def installed_wheel(out_dir: str | Path | None = None, distribution: str = DISTRIBUTION) -> Path:
    """A wheel of the installed distribution, rebuilt from the files its RECORD lists.

    pip keeps no copy of the wheel it installed, and every file of it is still on disk, so the
    wheel is repacked (bytecode caches and pip's own install files left out, RECORD rewritten).
    """
    dist = importlib.metadata.distribution(distribution)
    files = [f for f in dist.files or [] if f.parts[0] != ".." and "__pycache__" not in f.parts]
    info_dirs = {f.parts[0] for f in files if f.parts[0].endswith(".dist-info")}
    if len(info_dirs) != 1 or any(f.name.startswith("__editable__") for f in files):
        raise PackagingError(
            f"{distribution} is not installed from a wheel (editable or unusual install): pass "
            "--setup_file=PATH/setup.py or --extra_package=PATH.whl to stage it for Dataflow workers"
        )
    (info_dir,) = info_dirs
    wheel_meta = dist.read_text("WHEEL") or ""
    tags = re.findall(r"^Tag:\s*(\S+)", wheel_meta, re.MULTILINE) or ["py3-none-any"]
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    target_dir = Path(out_dir or tempfile.mkdtemp(prefix="medcurate-dataflow-"))
    target_dir.mkdir(parents=True, exist_ok=True)
    wheel = target_dir / f"{name}-{dist.version}-{tags[0]}.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(files, key=str):
            arcname = file.as_posix()
            if file.parts[0] == info_dir and file.name in _INSTALL_ONLY:
                continue
            data = Path(dist.locate_file(file)).read_bytes()
            archive.writestr(arcname, data)
            record.append(f"{arcname},{_record_hash(data)},{len(data)}")
        record.append(f"{info_dir}/RECORD,,")
        archive.writestr(f"{info_dir}/RECORD", "\n".join(record) + "\n")
    return wheel


def worker_package_args() -> list[str]:
    """The Beam flag that ships medcurate to Dataflow workers from wherever it runs."""
    if SETUP_FILE.exists():
        return [f"--setup_file={SETUP_FILE}"]
    return [f"--extra_package={installed_wheel()}"]


# Beam's own DaskRunner loses outputs in 2.77; this one fixes it (see pipelines/dask_runner.py).
DASK_RUNNER = "medcurate.pipelines.dask_runner.DaskRunner"
# FnApiRunner whose worker processes are forked from one that imported the code once (see
# pipelines/local_runner.py); other running modes run on it exactly as on FnApiRunner.
LOCAL_RUNNER = "medcurate.pipelines.local_runner.LocalRunner"


def runner_class(runner: RunnerConfig) -> str:
    """The --runner Beam is given for a run config's runner."""
    if runner.name == "DaskRunner":
        return DASK_RUNNER
    if runner.name == "FnApiRunner" and runner.worker_start == "fork":
        return LOCAL_RUNNER
    return runner.name


def pipeline_options(runner: RunnerConfig, extra_args: list[str]) -> PipelineOptions:
    args = [f"--runner={runner_class(runner)}"]
    if runner.name == "FnApiRunner":
        args += [
            f"--direct_num_workers={runner.direct_num_workers}",
            f"--direct_running_mode={runner.direct_running_mode}",
        ]
    passed = [*runner.options, *extra_args]
    if runner.name == "DataflowRunner" and not any(
        a.startswith(("--setup_file", "--extra_package")) for a in passed
    ):
        args += worker_package_args()
    return PipelineOptions(args + passed)


# glibc settings for the local runner's worker processes. Each thread that allocates gets an arena
# of its own (up to 8 per core), and a Beam worker runs its bundles on a pool of threads, so what
# one stage freed sits in arenas the next stage's thread does not use: two arenas. Blocks of 1 MB
# and more (numpy arrays, Arrow buffers, sketches) are mapped on their own and returned to the
# system when freed, instead of the threshold glibc otherwise raises as the run goes. Measured on
# generated notes: about 60 MB less at 16,000 (arenas) and 30 MB less at 4,000 (threshold).
WORKER_MALLOC = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}


@contextlib.contextmanager
def local_worker_environment(runner: RunnerConfig) -> Iterator[None]:
    """While the local runner starts its worker processes: WORKER_MALLOC in their environment (each
    unless the user set it), the command's own environment restored afterwards."""
    added = (
        {}
        if runner.name != "FnApiRunner"
        else {k: v for k, v in WORKER_MALLOC.items() if k not in os.environ}
    )
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
