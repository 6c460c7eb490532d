"""Exit codes and error lines of `medcurate run`, run as a real process on the demo config.

0 when a version was published, with one warning line for each thing that failed after it;
non-zero only when nothing was published; one line per error, the traceback only with --debug.
A full disk is simulated with the fault hook: `MEDCURATE_FAULT_AT=<step>:enospc` raises
OSError(ENOSPC) at that step, exactly as a write to a full disk would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from medcurate.annotators.server import STATE_FILE
from medcurate.warehouse.faults import FAULT_ENV
from medcurate.warehouse.publish import latest_version, read_manifest

REPO = Path(__file__).resolve().parents[1]
DATASET = "medcurate-sample"
CLI = "import sys; from medcurate.cli import entry; sys.exit(entry())"

pytestmark = pytest.mark.slow


def medcurate(*args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )


def demo_run(out: Path | str, *extra: str, fault: str | None = None) -> subprocess.CompletedProcess:
    return medcurate("run", "--config", "configs/demo.yaml", "--output", str(out), *extra, fault=fault)


def lines(stderr: str, kind: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"medcurate: {kind}:")]


def test_disk_full_fails_the_run_before_publishing_and_only_warns_after(tmp_path: Path):
    out = tmp_path / "out"
    before = demo_run(out, fault="shards_moved:enospc")
    assert before.returncode == 1
    assert "Traceback" not in before.stderr
    (error,) = lines(before.stderr, "error")
    assert "disk full (no space left on device)" in error
    assert latest_version(str(out / DATASET)) is None

    after = demo_run(out, fault="reports:enospc")
    assert after.returncode == 0, after.stderr
    assert "Traceback" not in after.stderr
    (warning,) = lines(after.stderr, "warning")
    assert warning.startswith("medcurate: warning: writing the run reports failed: disk full")
    # The first run's half-moved version was rolled back; this run published in its place.
    assert "rolled back v0001" in after.stderr
    assert latest_version(str(out / DATASET)) == "v0001"
    assert read_manifest(str(out / DATASET / "v0001")).validation.passed
    assert not list((out / "reports").rglob("summary.json")), "no empty or torn summary is left"


def test_read_only_output_is_one_line_and_the_traceback_needs_debug(tmp_path: Path):
    # sysfs refuses new folders even to root (tests may run as root, where chmod stops nothing).
    out = "/sys/medcurate-read-only/out"
    result = demo_run(out)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (error,) = lines(result.stderr, "error")
    assert "permission denied" in error or "read-only file system" in error
    assert "/sys/medcurate-read-only" in error and error.endswith("(--debug shows the traceback)")

    for debug in (
        medcurate("--debug", "run", "--config", "configs/demo.yaml", "--output", out),
        medcurate("run", "--config", "configs/demo.yaml", "--output", out, "--debug"),
    ):
        assert debug.returncode == 1
        assert "Traceback" in debug.stderr and "PermissionError" in debug.stderr


def test_label_studio_down_keeps_the_tasks_in_the_outbox_and_the_run_succeeds(tmp_path: Path):
    out = tmp_path / "out"
    data_dir = tmp_path / "labelstudio"
    data_dir.mkdir()
    with socket.socket() as sock:  # a port nothing listens on once this socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The state a server leaves when it crashed: it names a URL where nothing answers.
    state = {"pid": os.getpid(), "port": port, "url": f"http://127.0.0.1:{port}", "data_dir": str(data_dir)}
    (data_dir / STATE_FILE).write_text(json.dumps(state))
    result = demo_run(
        out,
        "--set",
        "review.push_after_run=true",
        "--set",
        "review.audit_fraction=1.0",
        "--set",
        "review.max_retries=1",
        "--set",
        "review.backoff_s=0",
        "--set",
        f"review.label_studio.data_dir={data_dir}",
        "--set",
        "review.label_studio.token_env=MEDCURATE_TEST_NO_SUCH_TOKEN",
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    (warning,) = lines(result.stderr, "warning")
    outbox = out / "review_outbox.jsonl"
    queued = len(outbox.read_text().splitlines())
    assert queued > 0
    assert warning.startswith(f"medcurate: warning: review push: {queued} task(s) kept in the outbox")
    assert "medcurate review push" in warning
    assert f"{queued} in the outbox" in result.stdout
    assert latest_version(str(out / DATASET)) == "v0001"


def test_commands_start_without_the_deep_learning_frameworks():
    """spaCy and Presidio import torch and transformers whenever installed (seconds per start);
    the command line keeps them out, and de-identification still works without them. Libraries
    that look torch up in sys.modules (scipy.stats, which the validation step imports) still load."""
    code = (
        "import sys; from medcurate.cli import skip_unused_frameworks; skip_unused_frameworks(); "
        "import scipy.stats; "
        "from medcurate.privacy.text import TextDeidentifier; "
        "print(TextDeidentifier().deidentify_batch(['Seen by Dr. Zorvanek on 3/4/2021.'])[0].text); "
        "print(sorted(n for n in ('torch', 'transformers') if sys.modules.get(n) is not None))"
    )
    env = {k: v for k, v in os.environ.items() if k != "MEDCURATE_IMPORT_TORCH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    redacted, loaded = out.stdout.strip().splitlines()[-2:]
    assert "Zorvanek" not in redacted and "<DATE>" in redacted
    assert loaded == "[]"
