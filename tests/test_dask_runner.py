"""medcurate's DaskRunner against Beam 2.77's stock one, on a real dask.distributed cluster.

A scheduler and two single-threaded workers are started as separate processes on 127.0.0.1.
Each defect test runs the same pipeline on the stock runner (which shows the defect) and on
ours (which must not). Pipelines write what they produce to text files, read back here.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.internal.cloudpickle import cloudpickle as beam_cloudpickle
from apache_beam.io import fileio
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.dask.dask_runner import DaskRunner as StockDaskRunner
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate, window
from apache_beam.utils.windowed_value import WindowedValue

from medcurate.pipelines.dask_runner import DaskRunner

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]

# The scheduler and workers cannot import this module: Beam's pickler ships its functions by value,
# and the DoFns the stock runner must run too are defined inside the tests (pickled by value).
beam_cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1; their address."""
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    dask = str(Path(sys.executable).parent / "dask")  # the command distributed installs
    common = ["--no-dashboard"]
    processes = [
        subprocess.Popen(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--scheduler-file",
                str(scheduler_file),
                *common,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        address = None
        while address is None:
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.2)
            with contextlib.suppress(OSError, ValueError):  # not written yet, or half written
                address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [
                        dask,
                        "worker",
                        address,
                        "--host",
                        "127.0.0.1",
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        *common,
                    ],
                    env=env,
                    # The demo config's relative paths are read by the workers: they run where
                    # `make demo` runs, as workers sharing the driver's folder would.
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        import dask.distributed as ddist

        with ddist.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            # Warm the workers: Beam's import is the slow part of a first task.
            client.run(lambda: __import__("apache_beam.runners.common"))
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        deadline = time.monotonic() + 5  # a worker that imported Beam may not exit on SIGTERM
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run(runner: type, address: str, build: Callable[[beam.Pipeline], None], *flags: str):
    """Runs a pipeline to the end; the result, or the exception it raised."""
    pipeline = beam.Pipeline(
        runner=runner(), options=PipelineOptions([f"--dask_client_address={address}", *flags])
    )
    build(pipeline)
    result = None
    try:
        result = pipeline.run()
        result.wait_until_finish()
        return result
    except Exception as error:
        return error
    finally:
        if runner is StockDaskRunner and result is not None:
            result.client.close()  # the stock runner leaves it open


def lines(prefix: Path) -> list[str]:
    return sorted(line for path in prefix.parent.glob(prefix.name + "*") for line in path.read_text().split())


def collect(pcoll: beam.PCollection, prefix: Path, label: str = "Collect") -> None:
    """A sink that works on the stock runner too (fixed shard count: no finish_bundle outputs)."""
    _ = pcoll | label >> beam.Map(str) | f"{label}Write" >> beam.io.WriteToText(str(prefix), num_shards=1)


# --- the defects, one test each ------------------------------------------------------------------


def test_every_sink_runs_not_only_the_last(scheduler, tmp_path):
    def build(p):
        numbers = p | beam.Create(range(6))
        collect(numbers, tmp_path / "a" / "out", "A")
        collect(numbers | beam.Map(lambda x: x * 10), tmp_path / "b" / "out", "B")

    assert not isinstance(run(StockDaskRunner, scheduler, build), Exception)
    assert lines(tmp_path / "b" / "out") == sorted(str(x * 10) for x in range(6))
    assert lines(tmp_path / "a" / "out") == [], "the stock runner computes only the last sink"
    assert not isinstance(run(DaskRunner, scheduler, build), Exception)
    assert lines(tmp_path / "a" / "out") == sorted(str(x) for x in range(6))


@pytest.mark.parametrize("runner", [StockDaskRunner, DaskRunner], ids=["stock", "fixed"])
def test_tagged_outputs_get_only_their_elements(scheduler, tmp_path, runner):
    class SplitOddEven(beam.DoFn):
        def process(self, x):
            yield x if x % 2 == 0 else beam.pvalue.TaggedOutput("odd", x)

    def build(p):
        parts = p | beam.Create(range(10)) | beam.ParDo(SplitOddEven()).with_outputs("odd", main="even")
        collect(parts.odd, tmp_path / "odd")

    outcome = run(runner, scheduler, build)
    assert not isinstance(outcome, Exception), outcome
    got = lines(tmp_path / "odd")
    if runner is StockDaskRunner:
        assert got != ["1", "3", "5", "7", "9"]
    else:
        assert got == ["1", "3", "5", "7", "9"]


@pytest.mark.parametrize("runner", [StockDaskRunner, DaskRunner], ids=["stock", "fixed"])
def test_finish_bundle_outputs_are_kept(scheduler, tmp_path, runner):
    class SumInFinishBundle(beam.DoFn):
        def start_bundle(self):
            self.total = 0

        def process(self, x):
            self.total += x

        def finish_bundle(self):
            yield WindowedValue(self.total, window.GlobalWindow().max_timestamp(), [window.GlobalWindow()])

    def build(p):
        sums = p | beam.Create(range(100)) | beam.ParDo(SumInFinishBundle()) | beam.CombineGlobally(sum)
        collect(sums, tmp_path / "sum")

    outcome = run(runner, scheduler, build)
    assert not isinstance(outcome, Exception), outcome
    got = lines(tmp_path / "sum")
    assert (got == ["4950"]) is (runner is DaskRunner), got


@pytest.mark.parametrize("runner", [StockDaskRunner, DaskRunner], ids=["stock", "fixed"])
def test_impulse_and_file_reads_run(scheduler, tmp_path, runner):
    source = tmp_path / "in.txt"
    source.write_text("".join(f"line{i}\n" for i in range(50)))

    def build(p):
        collect(p | beam.io.ReadFromText(str(source)), tmp_path / "read")

    outcome = run(runner, scheduler, build)
    if runner is StockDaskRunner:
        assert isinstance(outcome, Exception)
    else:
        assert not isinstance(outcome, Exception), outcome
        assert lines(tmp_path / "read") == sorted(f"line{i}" for i in range(50))


@pytest.mark.parametrize("runner", [StockDaskRunner, DaskRunner], ids=["stock", "fixed"])
def test_stateful_dofn_sees_every_element_of_its_key(scheduler, tmp_path, runner):
    class BufferPerKey(beam.DoFn):
        """GroupIntoBatches' shape: state per key, flushed by an end-of-window timer."""

        BUFFER = userstate.BagStateSpec("buffer", beam.coders.VarIntCoder())
        FLUSH = userstate.TimerSpec("flush", userstate.TimeDomain.WATERMARK)

        def process(
            self,
            kv,
            buffer=beam.DoFn.StateParam(BUFFER),  # noqa: B008 (Beam's state API)
            flush=beam.DoFn.TimerParam(FLUSH),  # noqa: B008
            w=beam.DoFn.WindowParam,
        ):
            buffer.add(kv[1])
            flush.set(w.max_timestamp())

        @userstate.on_timer(FLUSH)
        def on_flush(self, key=beam.DoFn.KeyParam, buffer=beam.DoFn.StateParam(BUFFER)):  # noqa: B008
            yield f"{key}={sum(buffer.read())}"

    def build(p):
        keyed = p | beam.Create(range(30)) | beam.Map(lambda x: (f"k{x % 3}", x))
        collect(keyed | beam.ParDo(BufferPerKey()), tmp_path / "state")

    outcome = run(runner, scheduler, build)
    expected = sorted(f"k{k}={sum(range(k, 30, 3))}" for k in range(3))
    if runner is StockDaskRunner:
        assert isinstance(outcome, Exception) or lines(tmp_path / "state") != expected
    else:
        assert lines(tmp_path / "state") == expected


@pytest.mark.parametrize("runner", [StockDaskRunner, DaskRunner], ids=["stock", "fixed"])
def test_side_input_upstream_runs_once(scheduler, tmp_path, runner):
    marks = tmp_path / "marks"
    marks.mkdir()

    class MarkRun(beam.DoFn):
        """Leaves one file per execution of the side input's upstream."""

        def __init__(self, folder: str) -> None:
            self.folder = folder

        def process(self, x):
            import pathlib
            import uuid

            pathlib.Path(self.folder, uuid.uuid4().hex).touch()
            yield x

    def build(p):
        offset = p | "Offset" >> beam.Create([1000]) | beam.ParDo(MarkRun(str(marks)))
        main = p | "Main" >> beam.Create(range(400))
        shifted = main | beam.Map(lambda x, o: x + o, beam.pvalue.AsSingleton(offset))
        collect(shifted, tmp_path / "shifted")

    outcome = run(runner, scheduler, build, "--dask_npartitions=4")
    runs = len(list(marks.iterdir()))
    if runner is StockDaskRunner:
        # The side input's bag travels inside every task: its upstream runs once per partition
        # (in-process scheduler), or the graph does not even deserialize on a separate scheduler.
        assert isinstance(outcome, Exception) or runs > 1
    else:
        assert lines(tmp_path / "shifted") == sorted(str(x + 1000) for x in range(400))
        assert runs == 1


@pytest.mark.parametrize("runner", [StockDaskRunner, DaskRunner], ids=["stock", "fixed"])
def test_client_is_closed_and_metrics_reported(scheduler, tmp_path, runner):
    class CountSeen(beam.DoFn):
        def process(self, x):
            Metrics.counter("probe", "seen").inc()
            yield x

    def build(p):
        collect(p | beam.Create(range(25)) | beam.ParDo(CountSeen()), tmp_path / "seen")

    options = PipelineOptions([f"--dask_client_address={scheduler}"])
    pipeline = beam.Pipeline(runner=runner(), options=options)
    build(pipeline)
    result = pipeline.run()
    result.wait_until_finish()
    status = result.client.status
    try:
        counters = result.metrics().query()["counters"]
    except NotImplementedError:
        counters = None
    finally:
        result.client.close()
    if runner is StockDaskRunner:
        assert status == "running" or counters is None
    else:
        assert status == "closed"
        assert [(c.key.metric.name, c.committed) for c in counters] == [("seen", 25)]


@pytest.mark.parametrize("runner", [StockDaskRunner, DaskRunner], ids=["stock", "fixed"])
def test_window_into_groups_per_window(scheduler, tmp_path, runner):
    def build(p):
        stamped = p | beam.Create(range(10)) | beam.Map(lambda x: window.TimestampedValue(("k", x), x))
        grouped = stamped | beam.WindowInto(window.FixedWindows(5)) | beam.GroupByKey()
        collect(grouped | beam.MapTuple(lambda k, v: sum(v)), tmp_path / "windows")

    outcome = run(runner, scheduler, build)
    assert not isinstance(outcome, Exception), outcome
    got = lines(tmp_path / "windows")
    assert (got == ["10", "35"]) is (runner is DaskRunner), got


# --- what a Beam pipeline generally uses, all on the fixed runner ---------------------------------


def test_common_primitives_and_every_assert(scheduler, tmp_path):
    source = tmp_path / "docs"
    source.mkdir()
    for i in range(4):
        (source / f"doc{i}.txt").write_text(f"alpha beta doc{i}\n")

    def build(p):
        words = p | "Words" >> beam.Create(["ash", "birch", "ash", "cedar", "birch", "ash"] * 20)
        counted = words | beam.combiners.Count.PerElement()
        assert_that(counted, equal_to([("ash", 60), ("birch", 40), ("cedar", 20)]), label="CountPerKey")
        reshuffled = words | beam.Reshuffle() | beam.combiners.Count.Globally()
        assert_that(reshuffled, equal_to([120]), label="Reshuffle")
        small, large = words | beam.Partition(lambda w, n: int(len(w) > 3), 2)
        assert_that(
            small | "CountSmall" >> beam.combiners.Count.Globally(), equal_to([60]), label="Partition0"
        )
        both = (small, large) | beam.Flatten()
        assert_that(both | "CountBoth" >> beam.combiners.Count.Globally(), equal_to([120]), label="Flatten")
        lookup = p | "Lookup" >> beam.Create([("ash", 1), ("birch", 2), ("cedar", 3)])
        scored = (
            p
            | "Few" >> beam.Create(["ash", "cedar"])
            | beam.Map(
                lambda w, d, ws: (d[w], len(ws)), beam.pvalue.AsDict(lookup), beam.pvalue.AsList(words)
            )
        )
        assert_that(scored, equal_to([(1, 120), (3, 120)]), label="SideInputs")
        files = (
            p
            | fileio.MatchFiles(str(source / "*.txt"))
            | fileio.ReadMatches()
            | beam.Map(lambda f: f.read_utf8().split()[2])
        )
        assert_that(files, equal_to([f"doc{i}" for i in range(4)]), label="MatchFiles")
        batches = (
            p | "Many" >> beam.Create(range(50)) | beam.BatchElements(min_batch_size=7, max_batch_size=7)
        )
        assert_that(
            batches | beam.Map(len) | "SumBatched" >> beam.CombineGlobally(sum), equal_to([50]), label="Batch"
        )
        _ = words | "Dump" >> beam.io.WriteToText(str(tmp_path / "words"))

    outcome = run(DaskRunner, scheduler, build)
    assert not isinstance(outcome, Exception), outcome
    assert len(lines(tmp_path / "words")) == 120

    def failing(p):
        assert_that(p | "One" >> beam.Create([1]), equal_to([1]), label="Right")
        assert_that(p | "Two" >> beam.Create([2]), equal_to([3]), label="Wrong")
        assert_that(p | "Three" >> beam.Create([3]), equal_to([3]), label="RightAgain")

    assert isinstance(run(DaskRunner, scheduler, failing), Exception), "a failing assert that is not last"


def test_parquet_round_trip(scheduler, tmp_path):
    import pyarrow as pa

    schema = pa.schema([("id", pa.string()), ("n", pa.int64())])
    rows = [{"id": f"s{i}", "n": i} for i in range(40)]

    def write(p):
        _ = (
            p
            | beam.Create(rows)
            | beam.io.WriteToParquet(str(tmp_path / "part"), schema, file_name_suffix=".parquet")
        )

    def read(p):
        got = p | beam.io.ReadFromParquet(str(tmp_path / "part*.parquet"))
        assert_that(got, equal_to(rows))
        pattern = p | "Pattern" >> beam.Create([str(tmp_path / "part*.parquet")])
        assert_that(pattern | beam.io.ReadAllFromParquet(), equal_to(rows), label="ReadAll")

    for build in (write, read):
        outcome = run(DaskRunner, scheduler, build)
        assert not isinstance(outcome, Exception), outcome


# --- the demo job end to end, on both runners ------------------------------------------------------


def published(out: Path) -> dict[str, tuple[str, str]]:
    """Sample id -> (hash of its texts, hash of its images) over every published shard."""
    import hashlib

    import pyarrow.parquet as pq

    rows = {}
    for shard in sorted(out.glob("medcurate-sample/v0001/data/*.parquet")):
        for row in pq.read_table(shard, columns=["id", "text", "texts", "image_bytes", "images"]).to_pylist():
            texts = hashlib.sha256(json.dumps([row["text"], row["texts"]]).encode()).hexdigest()
            images = hashlib.sha256()
            for blob in [row["image_bytes"], *(row["images"] or [])]:
                images.update(hashlib.sha256(blob or b"").digest())
            rows[row["id"]] = (texts, images.hexdigest())
    return rows


def test_demo_publishes_the_same_samples_on_both_runners(scheduler, tmp_path, demo_output):
    from medcurate.cli import main

    cwd = Path.cwd()
    os.chdir(REPO)  # as `make demo` runs it
    try:
        started = time.monotonic()
        dask = main(
            [
                "run",
                "--config",
                "configs/demo.yaml",
                "--output",
                str(tmp_path / "dask"),
                "--runner",
                "DaskRunner",
                f"--dask_client_address={scheduler}",
            ]
        )
        print(f"DaskRunner {time.monotonic() - started:.1f} s")
    finally:
        os.chdir(cwd)
    assert dask == 0
    on_local, on_dask = published(demo_output), published(tmp_path / "dask")
    assert len(on_local) >= 10
    assert on_dask == on_local
    manifests = [
        json.loads((out / "medcurate-sample" / "v0001" / "manifest.json").read_text())["counts"]
        for out in (demo_output, tmp_path / "dask")
    ]
    assert manifests[0] == manifests[1]


def test_splittable_dofn_reads_every_range_once(scheduler, tmp_path):
    from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
    from apache_beam.transforms.core import RestrictionProvider

    class Ranges(RestrictionProvider):
        def initial_restriction(self, n):
            return OffsetRange(0, n)

        def create_tracker(self, restriction):
            return OffsetRestrictionTracker(restriction)

        def split(self, n, restriction):
            return restriction.split(max(1, n // 4))

        def restriction_size(self, n, restriction):
            return restriction.size()

    class Count(beam.DoFn):
        def process(self, n, tracker=beam.DoFn.RestrictionParam(Ranges())):  # noqa: B008
            position = tracker.current_restriction().start
            while tracker.try_claim(position):
                yield n * 1000 + position
                position += 1

    def build(p):
        got = p | beam.Create([10, 7]) | beam.ParDo(Count())
        assert_that(got, equal_to([10_000 + i for i in range(10)] + [7_000 + i for i in range(7)]))

    outcome = run(DaskRunner, scheduler, build)
    assert not isinstance(outcome, Exception), outcome


def test_a_long_lived_worker_keeps_only_recent_dofns_set_up():
    from apache_beam.internal import pickler

    from medcurate.pipelines.dask_runner import _DoFnPool

    class Model(beam.DoFn):
        torn_down = 0

        def teardown(self):
            type(self).torn_down += 1

    pool = _DoFnPool(max_kinds=1)
    first, fresh = pool.take("a", pickler.dumps((Model(), [], {}, None)))
    assert fresh
    pool.give_back("a", first)
    assert pool.take("a", b"never unpickled") == (first, False)  # reused, no second setup
    pool.give_back("a", first)
    second, _ = pool.take("b", pickler.dumps((Model(), [], {}, None)))
    pool.give_back("b", second)
    assert list(pool.idle) == ["b"]
    assert first[0].torn_down == 1
