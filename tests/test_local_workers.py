"""Local worker processes forked from a zygote (pipelines/zygote.py, pipelines/local_runner.py):
real runs with real processes, the outputs Beam's own runner gives, and no process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import apache_beam as beam
import psutil
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from medcurate.config import RunnerConfig
from medcurate.pipelines.options import LOCAL_RUNNER, pipeline_options
from medcurate.pipelines.zygote import Zygote, ZygoteError

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def test_options_pick_the_forking_runner_unless_spawn_is_asked_for() -> None:
    assert pipeline_options(RunnerConfig(), []).get_all_options()["runner"] == LOCAL_RUNNER
    spawn = pipeline_options(RunnerConfig(worker_start="spawn"), [])
    assert spawn.get_all_options()["runner"] == "FnApiRunner"


def test_workers_are_forked_from_one_zygote_and_give_the_same_results() -> None:
    """Two workers (--direct_num_workers=2), both children of one zygote that is not the command;
    the same elements out as Beam's own runner; no child process left once the run is over."""

    def worker_view(_: object) -> tuple[int, int, int]:
        """Seen from inside a worker: its parent (the zygote) and how many workers that parent has.
        Nested, so that it is pickled by value: a zygote started as a fresh interpreter (this
        process has threads once other tests ran) cannot import the test module."""
        parent = psutil.Process(os.getppid())
        return os.getpid(), parent.pid, len(parent.children())

    before = _children()
    options = PipelineOptions(
        [f"--runner={LOCAL_RUNNER}", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    )
    with beam.Pipeline(options=options) as pipeline:
        views = pipeline | beam.Create(range(40)) | beam.Map(worker_view)
        squares = pipeline | "numbers" >> beam.Create(range(40)) | beam.Map(lambda n: n * n)
        assert_that(squares, equal_to([n * n for n in range(40)]), label="squares")

        def check(seen: list[tuple[int, int, int]]) -> None:
            parents = {parent for _, parent, _ in seen}
            assert len(parents) == 1 and os.getpid() not in parents, seen
            assert {workers for _, _, workers in seen} == {2}, seen
            assert all(pid != parent for pid, parent, _ in seen)

        assert_that(views, check, label="forked")
    _no_new_children(before)


def test_in_memory_mode_runs_in_the_command_as_on_fnapirunner() -> None:
    options = PipelineOptions([f"--runner={LOCAL_RUNNER}", "--direct_running_mode=in_memory"])
    with beam.Pipeline(options=options) as pipeline:
        pids = pipeline | beam.Create([1]) | beam.Map(lambda _: os.getpid())
        assert_that(pids, equal_to([os.getpid()]))


def test_a_failing_worker_fails_the_run_and_leaves_no_process() -> None:
    def boom(n: int) -> int:
        raise ValueError(f"invented failure on {n}")

    before = _children()
    options = PipelineOptions(
        [f"--runner={LOCAL_RUNNER}", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    )
    with pytest.raises(Exception, match="invented failure"), beam.Pipeline(options=options) as pipeline:
        pipeline | beam.Create([1, 2]) | beam.Map(boom)
    _no_new_children(before)


@pytest.mark.parametrize("fork", [False, True])
def test_zygote_starts_workers_and_reports_their_exit(fork: bool) -> None:
    """Both ways of starting the zygote (fresh interpreter, fork of this process), driven directly;
    fork runs in a fresh single-threaded interpreter, as the command does."""
    script = textwrap.dedent(
        f"""
        import json, os, psutil
        from medcurate.pipelines.local_runner import zygote_environment
        from medcurate.pipelines.zygote import Zygote
        with Zygote([], env=zygote_environment(), fork={fork}) as zygote:
            # Beam's harness fails on options that are not JSON: a real start and a real exit.
            pid = zygote.start_worker("w1", {{"PIPELINE_OPTIONS": "{{not json"}})
            parent = psutil.Process(pid).ppid()
            code = zygote.wait_worker("w1", timeout=60)
            env = dict(psutil.Process(zygote.pid).environ())
        print(json.dumps({{"parent": parent, "zygote": zygote.pid, "code": code, "me": os.getpid(),
                          "arena": env.get("MALLOC_ARENA_MAX"), "left": len(psutil.Process().children())}}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=_env()
    )
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["parent"] == seen["zygote"] != seen["me"]
    assert seen["code"] not in (None, 0)  # the harness rejected its options
    assert seen["left"] == 0
    if not fork:  # started with the allocator settings in its environment (a forked one calls mallopt)
        assert seen["arena"] == "2"


def test_zygote_that_cannot_start_raises() -> None:
    """An interpreter that cannot start (no standard library where PYTHONHOME points)."""
    with pytest.raises(ZygoteError, match="exited at start-up"):
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        Zygote([], env={**env, "PYTHONHOME": "/nonexistent"}, fork=False)


RUN_AND_HANG = """
import os, sys, time
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

def hang(n):
    open(os.path.join(sys.argv[1], str(os.getpid())), "w").close()
    time.sleep(600)
    return n

options = PipelineOptions(["--runner=medcurate.pipelines.local_runner.LocalRunner",
                           "--direct_num_workers=2", "--direct_running_mode=multi_processing"])
with beam.Pipeline(options=options) as pipeline:
    pipeline | beam.Create(range(4)) | beam.Reshuffle() | beam.Map(hang)
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_no_process_outlives_a_killed_command(tmp_path: Path, how: signal.Signals) -> None:
    """The command dies mid-run without cleaning up: the zygote sees its order pipe close and ends
    its workers; nothing of the run stays behind."""
    command = subprocess.Popen(
        [sys.executable, "-c", RUN_AND_HANG, str(tmp_path)], env=_env(), stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.iterdir()) and time.monotonic() < deadline:
            assert command.poll() is None
            time.sleep(0.2)
        tree = psutil.Process(command.pid).children(recursive=True)
        assert len([p for p in tree if p.pid in {int(f.name) for f in tmp_path.iterdir()}]) >= 1
        command.send_signal(how)
        command.wait(30)
        _, alive = psutil.wait_procs(tree, timeout=30)
        assert alive == [], [(p.pid, p.cmdline()[-3:]) for p in alive]
    finally:
        if command.poll() is None:
            command.kill()


def _children() -> set[int]:
    """This process's children now (a test server started by another test may be one)."""
    return {child.pid for child in psutil.Process().children()}


def _no_new_children(before: set[int], wait_s: float = 20) -> None:
    """No child process started since `before` is left, within `wait_s`."""
    deadline = time.monotonic() + wait_s
    while _children() - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _children() - before == set()


def _env() -> dict[str, str]:
    """This test run's import path for child interpreters (the package root may be a link)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
