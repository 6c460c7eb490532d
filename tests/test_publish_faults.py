"""Crash-safe, concurrent publishing: a kill at every publish step, concurrent runs, held readers, gc.

The staged shards come from one real `medcurate run`, killed (SIGKILL, through the fault hook
`MEDCURATE_FAULT_AT`) right before it would publish; each test then publishes copies of that
staging folder, in a subprocess that kills itself at the step under test, and publishes again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from medcurate.cli import main
from medcurate.schemas.manifest import Manifest, StageCounts, ValidationInfo
from medcurate.warehouse import locks
from medcurate.warehouse.catalog import Catalog, catalog_path
from medcurate.warehouse.faults import FAULT_ENV, PUBLISH_STEPS
from medcurate.warehouse.publish import latest_version, publish_version, read_manifest

REPO = Path(__file__).resolve().parents[1]
DATASET = "medcurate-sample"
CLI = "import sys; from medcurate.cli import entry; sys.exit(entry())"

pytestmark = pytest.mark.slow


def spawn(*args: str, fault: str | None = None, cwd: Path = REPO) -> subprocess.Popen:
    """`python ARGS` as a real process, optionally with a fault injected."""
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.Popen(
        [sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def medcurate(*args: str, fault: str | None = None) -> subprocess.Popen:
    """`medcurate ARGS`, from the repository root as `make demo` runs it."""
    return spawn("-c", CLI, *args, fault=fault)


def demo_run(out: Path, *extra: str, fault: str | None = None) -> subprocess.Popen:
    return medcurate("run", "--config", "configs/demo.yaml", "--output", str(out), *extra, fault=fault)


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run's staging folder (shards, validation results), the run killed before publishing."""
    out = tmp_path_factory.mktemp("killed")
    process = demo_run(out, fault="recovered")
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == -signal.SIGKILL, stderr
    dataset_dir = out / DATASET
    # Killed before publishing: nothing published, the staging (and its dead marker) left behind.
    assert not (dataset_dir / "LATEST").exists() and not list(dataset_dir.glob("v*"))
    (run_dir,) = [p for p in (dataset_dir / locks.STAGING).iterdir() if p.is_dir()]
    assert list((run_dir / "data").glob("part*.parquet")) and (run_dir / "validation.json").exists()
    template = tmp_path_factory.mktemp("template") / "staging"
    shutil.copytree(run_dir, template)
    return template


def publish_staged(template: str, out: str, run_id: str) -> str:
    """Publishes a copy of `template` as run `run_id` would (the run's live marker held); the version."""
    dataset_dir = str(Path(out) / DATASET)
    staging = Path(dataset_dir) / locks.STAGING / run_id
    with locks.live_run(dataset_dir, run_id):
        shutil.copytree(template, staging)
        shards = sorted(str(p) for p in (staging / "data").glob("part*.parquet"))

        def make_manifest(version, parent, shard_infos):
            rows = sum(s.rows for s in shard_infos)
            return Manifest(
                dataset=DATASET,
                version=version,
                parent=parent,
                run_id=run_id,
                created_at=datetime.now(UTC).isoformat(),
                code_version="test",
                schema_version=1,
                config={},
                config_hash="c" * 64,
                shards=shard_infos,
                rows=rows,
                counts=StageCounts(read=rows, published=rows),
                validation=ValidationInfo(passed=True, suite="s", results_path="validation/results.json"),
            )

        _, manifest = publish_version(
            shards, str(staging / "validation.json"), dataset_dir, catalog_path(out), make_manifest, 30
        )
        shutil.rmtree(staging)
    return manifest.version


def publisher(template: Path, out: Path, run_id: str, fault: str | None = None) -> subprocess.Popen:
    """`publish_staged` in its own process, logging at INFO to stderr."""
    code = (
        f"import logging, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "logging.basicConfig(level=logging.INFO); "
        "from test_publish_faults import publish_staged; print(publish_staged(*sys.argv[1:]))"
    )
    return spawn("-c", code, str(template), str(out), run_id, fault=fault)


def publish_in_subprocess(template: Path, out: Path, run_id: str, fault: str | None = None):
    process = publisher(template, out, run_id, fault)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_consistent(out: Path, versions: int) -> None:
    """Catalog, folders, manifests, shard checksums and LATEST all agree on v0001..v{versions}."""
    dataset_dir = out / DATASET
    expected = [f"v{n:04d}" for n in range(1, versions + 1)]
    with Catalog(catalog_path(str(out)), read_only=True) as catalog:
        rows = catalog.versions(DATASET)
        shard_rows = {v: catalog.shard_paths(DATASET, v) for v in expected}
        counts = {
            v: catalog.query("SELECT count(*) FROM samples", DATASET, v).fetchall()[0][0] for v in expected
        }
    assert [row["version"] for row in rows] == expected
    assert all(row["validation_passed"] for row in rows)
    assert sorted(p.name for p in dataset_dir.glob("v*")) == expected, "no version folder outside the catalog"
    assert latest_version(str(dataset_dir)) == expected[-1]
    for number, version in enumerate(expected):
        manifest = read_manifest(str(dataset_dir / version))
        assert manifest.version == version
        assert manifest.parent == (expected[number - 1] if number else None)
        assert counts[version] == manifest.rows
        assert shard_rows[version] == sorted(str(dataset_dir / version / s.path) for s in manifest.shards)
        for shard in manifest.shards:
            data = (dataset_dir / version / shard.path).read_bytes()
            assert (len(data), hashlib.sha256(data).hexdigest()) == (shard.bytes, shard.sha256)
    staging = dataset_dir / locks.STAGING
    assert not staging.exists() or not list(staging.iterdir()), "staging of dead runs is removed"


@pytest.fixture
def one_version(staged: Path, tmp_path: Path) -> Path:
    """An output folder holding v0001 (built per test: the catalog records absolute paths)."""
    out = tmp_path / "out"
    assert publish_staged(str(staged), str(out), "run-base") == "v0001"
    return out


# What the next publish does with each step's leftovers, and how many versions there are then.
RECOVERY = {
    "recovered": ("removed staging of dead run", 2),
    "shard_moved": ("rolled back v0002", 2),
    "shards_moved": ("rolled back v0002", 2),
    "validation_moved": ("rolled back v0002", 2),
    "manifest_written": ("completed v0002", 3),
    "catalog_registered": ("LATEST moved from v0001 to v0002", 3),
    "latest_written": ("removed staging of dead run", 3),
}


def test_every_publish_step_is_covered():
    assert set(RECOVERY) == set(PUBLISH_STEPS)


@pytest.mark.parametrize("step", PUBLISH_STEPS)
def test_a_kill_at_any_publish_step_is_recovered_by_the_next_publish(
    step: str, staged: Path, one_version: Path, tmp_path: Path, caplog
):
    out = one_version
    v1 = tree_digest(out / DATASET / "v0001")

    killed = publish_in_subprocess(staged, out, "run-killed", fault=step)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    leftovers = {p.name for p in (out / DATASET).iterdir()}
    if step in ("shard_moved", "shards_moved", "validation_moved", "manifest_written"):
        assert "v0002" in leftovers and latest_version(str(out / DATASET)) == "v0001"

    log_line, versions = RECOVERY[step]
    with caplog.at_level(logging.INFO, logger="medcurate"):
        assert publish_staged(str(staged), str(out), "run-next") == f"v{versions:04d}"
    assert log_line in caplog.text
    assert_consistent(out, versions)
    assert tree_digest(out / DATASET / "v0001") == v1, "published versions are never touched"


def test_two_concurrent_runs_both_publish(tmp_path: Path):
    out = tmp_path / "out"
    runs = [demo_run(out), demo_run(out)]
    results = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [stderr[-2000:] for _, stderr in results]
    assert sorted(stdout.splitlines()[-1].rsplit("/", 1)[1] for stdout, _ in results) == ["v0001", "v0002"]
    assert_consistent(out, 2)


def test_a_publish_queues_behind_the_one_holding_the_dataset_lock(staged: Path, one_version: Path):
    out = one_version
    with locks.publishing(str(out / DATASET)):  # another publish in progress
        waiting = publisher(staged, out, "run-queued")
        for line in waiting.stderr:
            if "another run is publishing this dataset: waiting for it" in line:
                break
        else:
            pytest.fail(f"the second publish did not wait: {waiting.communicate()}")
        assert waiting.poll() is None and not (out / DATASET / "v0002").exists()
    stdout, _ = waiting.communicate(timeout=300)
    assert waiting.returncode == 0 and stdout.strip() == "v0002"
    assert_consistent(out, 2)


def test_a_reader_holding_the_catalog_delays_a_publish_but_does_not_fail_it(
    staged: Path, one_version: Path, tmp_path: Path
):
    out = one_version
    hold_s = 3.0
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print(c.execute('SELECT count(*) FROM versions').fetchone()[0], flush=True); "
            "time.sleep(float(sys.argv[2])); c.close()",
            catalog_path(str(out)),
            str(hold_s),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout.readline().strip() == "1"  # the reader holds the file from here on
    started = time.monotonic()
    # Without waiting, a writer fails at once on the reader's lock (what used to fail a publish).
    with pytest.raises(duckdb.IOException, match="lock"):
        duckdb.connect(catalog_path(str(out)))
    assert publish_staged(str(staged), str(out), "run-waits") == "v0002"
    assert time.monotonic() - started > 1.0
    assert reader.wait(timeout=30) == 0
    assert_consistent(out, 2)


def test_gc_removes_dead_runs_staging_but_never_a_running_runs(one_version: Path, tmp_path: Path, capsys):
    out = one_version
    dataset_dir = out / DATASET
    staging = dataset_dir / locks.STAGING
    (staging / "run-dead" / "data").mkdir(parents=True)
    locks.marker_path(str(dataset_dir), "run-dead").touch()  # its run died: nobody holds the marker
    (staging / "run-unmarked").mkdir()
    old = time.time() - 3600
    os.utime(staging / "run-unmarked", (old, old))  # left by a run older than every running run
    with locks.live_run(str(dataset_dir), "run-alive"):
        (staging / "run-alive" / "data").mkdir(parents=True)
        assert main(["gc", "--output", str(out)]) == 0
        assert sorted(p.name for p in staging.iterdir()) == ["run-alive", "run-alive.lock"]
    printed = capsys.readouterr().out
    assert "removed staging of dead run run-dead" in printed and "run-unmarked" in printed
    assert "run-alive" not in printed
    assert latest_version(str(dataset_dir)) == "v0001"


def test_fault_hook_names_only_known_steps(monkeypatch):
    from medcurate.warehouse.faults import fault_point

    monkeypatch.setenv(FAULT_ENV, "no_such_step")
    with pytest.raises(ValueError, match="shard_moved"):
        fault_point("recovered")
    monkeypatch.setenv(FAULT_ENV, "shards_moved:enospc")
    fault_point("recovered")  # another step: nothing happens
    with pytest.raises(OSError, match="No space left"):
        fault_point("shards_moved")
