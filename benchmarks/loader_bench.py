"""Trainer loader benchmark: medcurate's DatasetReader against the loaders trainers use on Parquet.

Generates a zstd Parquet version (default 2M rows, 16 shards, 20 mixed columns; no map columns,
which Hugging Face datasets cannot load) and an image version from the shared PNG images, then
measures in one run, with the same selected columns, batch 256, the same shuffle-memory budget
(rows held for shuffling) and num_workers 0/1/2 behind a torch DataLoader:

  samples/s with shuffle on (median of 3, the first batches dropped), time to first batch, peak
  RSS over the main and worker processes, CPU seconds per sample over the main and worker
  processes (the figure that moves least with the machine's load), and resume latency at 50% of
  an epoch. The repeats
  alternate between the contenders so that all see the same machine load; the load average is
  printed with every figure.

Contenders: raw pyarrow batch iteration (no shuffle, no checks: the physical limit here), Hugging
Face datasets streaming Parquet with shuffle + split_dataset_by_node, LitData's Parquet loader
(after its index step) and MosaicML Streaming (after MDS conversion; conversion timed apart).
Needs `make bench-deps`: the `bench` extra (torch, torchdata, datasets, polars, ...) and LitData and
mosaicml-streaming installed with --no-deps (requirements/bench-no-deps.txt).

The last line: `loader/pyarrow X.XX, loader/hf X.XX, loader/litdata X.XX, loader/mosaic X.XX`, the
ratio of medcurate's samples/s to each contender's (> 1: medcurate faster), taken at the
num_workers where the ratio is lowest (the least favourable setting for medcurate).

    python benchmarks/loader_bench.py                       # full size (minutes)
    python benchmarks/loader_bench.py --rows 200000 --shards 4 --repeats 1   # quick
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from medcurate.schemas.manifest import Manifest, StageCounts, ValidationInfo
from medcurate.warehouse.loader import DatasetReader, decode_images
from medcurate.warehouse.publish import MANIFEST, shard_info

SEED = 17
BATCH = 256
COLUMNS = ["id", "text", "source_kind", "review_status", "quality_score"]
WORDS = np.array(
    [
        "patient",
        "reported",
        "mild",
        "pain",
        "after",
        "exercise",
        "scan",
        "shows",
        "no",
        "acute",
        "change",
        "follow",
        "up",
        "advised",
        "history",
        "of",
        "asthma",
        "dose",
        "adjusted",
        "blood",
        "pressure",
        "stable",
        "chest",
        "clear",
        "wound",
        "healing",
        "well",
        "fever",
        "resolved",
        "culture",
        "negative",
        "review",
        "in",
        "clinic",
        "two",
        "weeks",
        "referral",
        "sent",
        "lab",
        "results",
        "normal",
    ]
)


# ----- data -------------------------------------------------------------------------------------


def _sentences(rng: np.random.Generator, count: int) -> np.ndarray:
    lengths = rng.integers(20, 70, count)
    return np.array([" ".join(rng.choice(WORDS, n)) for n in lengths], dtype=object)


def _table(rng: np.random.Generator, start: int, rows: int, pool: np.ndarray) -> pa.Table:
    pick = rng.integers(0, len(pool), (rows, 2))
    text = [f"{pool[a]}. {pool[b]}." for a, b in pick]
    kinds = np.array(["web", "clinical", "image"])
    statuses = np.array(["not_required", "pending", "accepted", "rejected"])
    ids = [f"{i:032x}" for i in range(start, start + rows)]
    return pa.table(
        {
            "id": ids,
            "source_kind": kinds[rng.integers(0, 3, rows)],
            "modality": np.where(rng.random(rows) < 0.2, "image", "text"),
            "source_uri": [f"file:///corpus/doc-{i}.txt" for i in range(start, start + rows)],
            "text": text,
            "language": np.where(rng.random(rows) < 0.9, "en", "de"),
            "language_score": rng.random(rows, dtype=np.float32),
            "quality_score": rng.random(rows, dtype=np.float32),
            "deid_confidence": rng.random(rows, dtype=np.float32),
            "review_status": statuses[rng.integers(0, 4, rows)],
            "review_reasons": pa.array([["low_confidence"] if r < 0.1 else [] for r in rng.random(rows)]),
            "exact_hash": [f"{h:016x}" for h in rng.integers(0, 2**62, rows)],
            "dedup_cluster_size": rng.integers(1, 5, rows, dtype=np.int32),
            "image_width": rng.integers(0, 2048, rows, dtype=np.int32),
            "image_height": rng.integers(0, 2048, rows, dtype=np.int32),
            "tokens": rng.integers(10, 4000, rows, dtype=np.int64),
            "is_synthetic": rng.random(rows) < 0.05,
            "score_f64": rng.random(rows),
            "ingested_at": pa.array(
                np.datetime64("2026-01-01") + rng.integers(0, 10**9, rows).astype("timedelta64[s]"),
                pa.timestamp("us", tz="UTC"),
            ),
            "metadata": pa.array(
                [[{"key": "site", "value": f"s{i % 9}"}] for i in range(rows)],
                pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())])),
            ),
        }
    )


def write_version(version_dir: Path, tables: Iterable[pa.Table], row_group_rows: int) -> None:
    """Writes shards and a manifest with the chunk digests a publish records."""
    (version_dir / "data").mkdir(parents=True, exist_ok=True)
    infos = []
    for index, table in enumerate(tables):
        relative = f"data/part-{index:05d}.parquet"
        pq.write_table(table, version_dir / relative, row_group_size=row_group_rows, compression="zstd")
        infos.append(shard_info(str(version_dir / relative), relative))
    rows = sum(i.rows for i in infos)
    manifest = Manifest(
        dataset="bench",
        version=version_dir.name,
        parent=None,
        run_id="bench",
        created_at="bench",
        code_version="bench",
        schema_version=1,
        config={},
        config_hash="bench",
        shards=infos,
        rows=rows,
        counts=StageCounts(read=rows, published=rows),
        validation=ValidationInfo(passed=True, suite="bench", results_path="validation/results.json"),
    )
    (version_dir / MANIFEST).write_text(manifest.model_dump_json())


def generate(root: Path, rows: int, shards: int, row_group_rows: int) -> Path:
    version_dir = root / "text" / "v0001"
    marker = version_dir / f".rows-{rows}-{shards}-{row_group_rows}"
    if marker.exists():
        return version_dir
    shutil.rmtree(version_dir, ignore_errors=True)
    rng = np.random.default_rng(SEED)
    pool = _sentences(rng, 4000)
    per = -(-rows // shards)
    tables = (_table(rng, s * per, min(per, rows - s * per), pool) for s in range(shards))
    write_version(version_dir, tables, row_group_rows)
    marker.touch()
    return version_dir


def image_version(root: Path, images: Path, copies: int) -> Path | None:
    files = sorted(images.rglob("*.png"))
    if not files:
        return None
    version_dir = root / "images" / "v0001"
    if (version_dir / MANIFEST).exists():
        return version_dir
    blobs = [f.read_bytes() for f in files] * copies
    table = pa.table(
        {
            "id": [f"{i:032x}" for i in range(len(blobs))],
            "source_kind": ["image"] * len(blobs),
            "modality": ["image"] * len(blobs),
            "review_status": ["accepted"] * len(blobs),
            "quality_score": pa.array(np.linspace(0, 1, len(blobs)), pa.float32()),
            "image_bytes": pa.array(blobs, pa.binary()),
        }
    )
    half = len(blobs) // 2
    write_version(version_dir, [table.slice(0, half), table.slice(half)], 2048)
    return version_dir


# ----- contenders -------------------------------------------------------------------------------


def _torch():
    import torch.utils.data as tud

    return tud


def batch_rows(batch: Any) -> int:
    if isinstance(batch, pa.RecordBatch):
        return batch.num_rows
    if isinstance(batch, dict):
        return len(next(iter(batch.values())))
    return len(batch)


class Contender:
    name = ""
    modules: tuple[str, ...] = ()

    def setup(self) -> float:
        """One-off preparation (conversion, indexing); returns its seconds."""
        return 0.0

    def imports(self) -> None:
        """Imports the library before any timing: time to first batch is not import time."""
        for module in ("torch.utils.data", *self.modules):
            importlib.import_module(module)

    def loader(self, workers: int) -> Iterable[Any]:
        raise NotImplementedError

    def resumed(self) -> Iterable[Any]:
        """A loader continuing at 50% of the epoch (state obtained however the library allows)."""
        raise NotImplementedError

    def cleanup(self) -> None:
        pass


class Medcurate(Contender):
    name = "medcurate"
    modules = ("medcurate.warehouse.torch_data",)

    def __init__(self, version_dir: Path, window: int, total: int, lanes: int | None) -> None:
        self.version_dir, self.window, self.total = str(version_dir), window, total
        self.order = {"window": window, **({"lanes": lanes} if lanes else {})}

    def _dataset(self):
        from medcurate.warehouse.torch_data import LoaderDataset

        return LoaderDataset(
            self.version_dir, columns=COLUMNS, seed=SEED, batch_size=BATCH, shuffle=True, **self.order
        )

    def loader(self, workers: int):
        return _torch().DataLoader(self._dataset(), batch_size=None, num_workers=workers)

    def resumed(self):
        state = DatasetReader(
            self.version_dir, columns=COLUMNS, seed=SEED, batch_size=BATCH, **self.order
        ).state_dict(batches=self.total // 2 // BATCH)
        dataset = self._dataset()
        dataset.load_state_dict(state)
        return _torch().DataLoader(dataset, batch_size=None, num_workers=0)


class RawPyarrow(Contender):
    """Row groups split over workers, read in file order: no shuffle, no verification."""

    name = "pyarrow"

    def __init__(self, version_dir: Path) -> None:
        self.files = sorted(str(p) for p in (version_dir / "data").glob("*.parquet"))

    def _dataset(self, start_fraction: float = 0.0):
        tud = _torch()
        files = self.files

        class Raw(tud.IterableDataset):
            def __iter__(self):
                info = tud.get_worker_info()
                worker, workers = (info.id, info.num_workers) if info else (0, 1)
                groups = [(f, g) for f in files for g in range(pq.ParquetFile(f).metadata.num_row_groups)]
                groups = groups[int(len(groups) * start_fraction) :]
                handles: dict[str, pq.ParquetFile] = {}
                for f, g in groups[worker::workers]:
                    reader = handles.setdefault(f, pq.ParquetFile(f))
                    yield from reader.iter_batches(batch_size=BATCH, columns=COLUMNS, row_groups=[g])

        return Raw()

    def loader(self, workers: int):
        return _torch().DataLoader(self._dataset(), batch_size=None, num_workers=workers)

    def resumed(self):
        return _torch().DataLoader(self._dataset(0.5), batch_size=None, num_workers=0)


class HuggingFace(Contender):
    name = "hf"
    modules = ("datasets", "datasets.distributed")

    def __init__(self, version_dir: Path, buffer: int, total: int) -> None:
        self.files = sorted(str(p) for p in (version_dir / "data").glob("*.parquet"))
        self.buffer, self.total = buffer, total

    def _dataset(self):
        from datasets import load_dataset
        from datasets.distributed import split_dataset_by_node

        ds = load_dataset("parquet", data_files=self.files, split="train", streaming=True, columns=COLUMNS)
        ds = ds.shuffle(seed=SEED, buffer_size=self.buffer)
        return split_dataset_by_node(ds, rank=0, world_size=1)

    def loader(self, workers: int):
        return _torch().DataLoader(self._dataset(), batch_size=BATCH, num_workers=workers)

    def resumed(self):
        """HF keeps no shuffle buffer in its state; a state taken after a few examples is moved to the
        shard boundary at 50% (iterating half an epoch at HF's speed would take minutes)."""
        ds = self._dataset()
        for n, _ in enumerate(ds, 1):
            if n >= BATCH:
                break
        half = len(self.files) // 2
        state = _moved(ds.state_dict(), half)
        fresh = self._dataset()
        fresh.load_state_dict(state)
        return _torch().DataLoader(fresh, batch_size=BATCH, num_workers=0)


def _moved(state: Any, shard: int) -> Any:
    """An HF iterable state with every shard position moved to the start of `shard`."""
    if isinstance(state, dict):
        moved = {k: _moved(v, shard) for k, v in state.items()}
        if "shard_idx" in moved:
            moved.update(shard_idx=shard, shard_example_idx=0)
        for key in ("batch_idx", "num_chunks_since_previous_state", "cropped_chunk_length"):
            if key in moved:
                moved[key] = 0
        return moved
    if isinstance(state, list):
        return [_moved(v, shard) for v in state]
    return state


class LitData(Contender):
    name = "litdata"
    modules = ("litdata", "litdata.streaming.item_loader", "polars")

    def __init__(self, version_dir: Path, work: Path, total: int) -> None:
        self.source = version_dir / "data"
        self.dir = work / "litdata"
        self.cache = work / "litdata-cache"
        self.total = total

    def setup(self) -> float:
        from litdata import index_parquet_dataset

        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        for f in self.source.glob("*.parquet"):
            (self.dir / f.name).symlink_to(f)
        started = time.perf_counter()
        index_parquet_dataset(str(self.dir), num_workers=1)
        return time.perf_counter() - started

    def _loader(self, workers: int):
        from litdata import StreamingDataLoader, StreamingDataset
        from litdata.streaming.item_loader import ParquetLoader

        shutil.rmtree(self.cache, ignore_errors=True)
        ds = StreamingDataset(
            str(self.dir),
            item_loader=ParquetLoader(columns=COLUMNS),
            shuffle=True,
            seed=SEED,
            cache_dir=str(self.cache),
        )
        # Polars (its Parquet reader) deadlocks in forked workers: LitData requires spawn.
        context = {"multiprocessing_context": "spawn"} if workers else {}
        return StreamingDataLoader(ds, batch_size=BATCH, num_workers=workers, **context)

    def loader(self, workers: int):
        return self._loader(workers)

    def resumed(self):
        """LitData's state counts samples yielded; set to 50% it resumes there."""
        loader = self._loader(0)
        next(iter(loader))
        state = loader.state_dict()
        half = self.total // 2
        state["num_samples_yielded"] = state["dataset"]["num_samples_yielded"] = half
        state["dataset"]["sample_in_epoch"] = half
        fresh = self._loader(0)
        fresh.load_state_dict(state)
        return fresh


def _streaming() -> Any:
    """MosaicML Streaming's dataset and MDS writer, imported without running `streaming/__init__`.

    That file imports `streaming.vision` (torchvision) and `streaming.base` imports its
    DataLoader subclass, which imports transformers (for one isinstance check); torchvision's
    PyPI build does not load beside torch's CPU build. The dataset and writer need neither: the
    package shells are set up by hand and the two modules imported directly. A plain torch
    DataLoader takes the place of `StreamingDataLoader` (which only adds sample counting for
    its own state_dict; the dataset's state_dict is used here)."""
    import types

    for name in ("streaming", "streaming.base"):
        if name not in sys.modules:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.submodule_search_locations is None:
                raise ModuleNotFoundError(f"No module named {name!r}")
            shell = types.ModuleType(name)
            shell.__path__ = list(spec.submodule_search_locations)
            shell.__spec__, shell.__file__ = spec, spec.origin
            sys.modules[name] = shell
    dataset = importlib.import_module("streaming.base.dataset")
    writer = importlib.import_module("streaming.base.format.mds.writer")
    util = importlib.import_module("streaming.base.util")
    return types.SimpleNamespace(
        StreamingDataset=dataset.StreamingDataset,
        MDSWriter=writer.MDSWriter,
        clean_stale_shared_memory=util.clean_stale_shared_memory,
    )


class Mosaic(Contender):
    """MosaicML Streaming after MDS conversion (the conversion is timed apart, as preparation)."""

    name = "mosaic"

    def __init__(self, version_dir: Path, work: Path, block: int, total: int) -> None:
        self.version_dir = version_dir
        self.dir = work / "mds"
        self.block, self.total = block, total

    def imports(self) -> None:
        super().imports()
        _streaming()

    def setup(self) -> float:
        shutil.rmtree(self.dir, ignore_errors=True)
        started = time.perf_counter()
        types = {
            "id": "str",
            "text": "str",
            "source_kind": "str",
            "review_status": "str",
            "quality_score": "float32",
        }
        writer = _streaming().MDSWriter(
            out=str(self.dir), columns=types, compression="zstd", size_limit=1 << 26
        )
        with writer:
            for f in sorted((self.version_dir / "data").glob("*.parquet")):
                for batch in pq.ParquetFile(f).iter_batches(batch_size=8192, columns=COLUMNS):
                    for row in batch.to_pylist():
                        row["quality_score"] = np.float32(row["quality_score"])
                        writer.write(row)
        return time.perf_counter() - started

    def _dataset(self):
        streaming = _streaming()
        streaming.clean_stale_shared_memory()
        return streaming.StreamingDataset(
            local=str(self.dir),
            shuffle=True,
            shuffle_seed=SEED,
            shuffle_algo="py1e",
            shuffle_block_size=self.block,
            batch_size=BATCH,
        )

    def loader(self, workers: int):
        return _torch().DataLoader(self._dataset(), batch_size=BATCH, num_workers=workers)

    def resumed(self):
        ds = self._dataset()
        ds.load_state_dict(ds.state_dict(num_samples=self.total // 2, from_beginning=True))
        return _torch().DataLoader(ds, batch_size=BATCH, num_workers=0)


# ----- measuring --------------------------------------------------------------------------------


class PeakRss:
    """Peak resident memory of this process plus its children (DataLoader workers), sampled."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker that just exited
                    total += process.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop.wait(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its live children (DataLoader workers)."""
    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a worker that just exited
            times = process.cpu_times()
            total += times.user + times.system
    return total


def run_once(
    make: Callable[[], Iterable[Any]], measure: int, warmup: int, seconds: float
) -> dict[str, float]:
    """One run: samples/s after warm-up, time to first batch, peak RSS, and CPU per sample.

    CPU per sample covers the whole run (first batch and warm-up included) over the main and
    worker processes: unlike samples/s it hardly moves with the machine's load."""
    gc.collect()
    with PeakRss() as rss:
        cpu = cpu_seconds()
        started = time.perf_counter()
        iterator = iter(make())
        first = next(iterator)
        ttfb = time.perf_counter() - started
        rows = batch_rows(first)
        for _ in range(warmup):
            batch = next(iterator, None)
            rows += batch_rows(batch) if batch is not None else 0
        counted, begun = 0, time.perf_counter()
        for batch in iterator:
            counted += batch_rows(batch)
            if counted >= measure or time.perf_counter() - begun > seconds:
                break
        elapsed = time.perf_counter() - begun
        cpu = cpu_seconds() - cpu
        del iterator, first
    return {
        "rate": counted / elapsed if elapsed else 0.0,
        "ttfb": ttfb,
        "rss": rss.peak / 2**20,
        "cpu_us": cpu / (rows + counted) * 1e6 if rows + counted else float("nan"),
    }


def summary(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        "rate": statistics.median(r["rate"] for r in runs),
        "ttfb": statistics.median(r["ttfb"] for r in runs),
        "rss": max(r["rss"] for r in runs),
        "cpu_us": statistics.median(r["cpu_us"] for r in runs),
    }


def resume_latency(contender: Contender) -> float:
    loader = contender.resumed()
    started = time.perf_counter()
    next(iter(loader))
    return time.perf_counter() - started


def image_figures(version_dir: Path, window: int) -> dict[str, float]:
    """medcurate vs raw pyarrow on the image version (bytes only), and lazy decoding cost per image."""
    started = time.perf_counter()
    reader = DatasetReader(
        str(version_dir), columns=["id", "image_bytes"], seed=SEED, batch_size=BATCH, window=window
    )
    stream = iter(reader)
    first = next(stream)
    ttfb = time.perf_counter() - started
    rows = first.num_rows + sum(b.num_rows for b in stream)
    loader_rate = rows / (time.perf_counter() - started)
    started = time.perf_counter()
    raw = 0
    for f in sorted((version_dir / "data").glob("*.parquet")):
        for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH, columns=["id", "image_bytes"]):
            raw += batch.num_rows
    raw_rate = raw / (time.perf_counter() - started)
    images = decode_images(first)
    started = time.perf_counter()
    for i in range(len(images)):
        images[i].load()
    decode = (time.perf_counter() - started) / len(images)
    return {"rows": rows, "loader": loader_rate, "pyarrow": raw_rate, "ttfb": ttfb, "decode_ms": decode * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--row-group-rows", type=int, default=16384)
    parser.add_argument("--window", type=int, default=4, help="row groups held for shuffling (all lanes)")
    parser.add_argument("--lanes", type=int, help="medcurate's lanes (default: the loader's default)")
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--measure", type=int, default=300_000, help="samples timed per run")
    parser.add_argument("--warmup", type=int, default=8, help="batches dropped before timing")
    parser.add_argument("--seconds", type=float, default=15, help="at most this long timed per run")
    parser.add_argument("--contenders", default="medcurate,pyarrow,hf,litdata,mosaic")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "medcurate-loader-bench")
    parser.add_argument(
        "--images", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/images"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    version_dir = generate(args.work, args.rows, args.shards, args.row_group_rows)
    print(
        f"data: {args.rows:,} rows, {args.shards} shards, 20 columns, zstd, {args.row_group_rows} rows per "
        f"row group ({time.perf_counter() - started:.1f} s); selected columns {COLUMNS}",
        flush=True,
    )
    budget = args.window * args.row_group_rows
    print(f"shuffle memory budget: {budget:,} rows for every contender", flush=True)
    builders = {
        "medcurate": lambda: Medcurate(version_dir, args.window, args.rows, args.lanes),
        "pyarrow": lambda: RawPyarrow(version_dir),
        "hf": lambda: HuggingFace(version_dir, budget, args.rows),
        "litdata": lambda: LitData(version_dir, args.work, args.rows),
        "mosaic": lambda: Mosaic(version_dir, args.work, budget, args.rows),
    }
    chosen = [c for c in args.contenders.split(",") if c]
    workers = [int(w) for w in args.workers.split(",")]
    results: dict[str, dict[str, Any]] = {}
    contenders: dict[str, Contender] = {}
    for name in chosen:
        contenders[name] = contender = builders[name]()
        contender.imports()
        prepared = contender.setup()
        if prepared:
            print(f"{name}: preparation (conversion/index) {prepared:.1f} s", flush=True)
        results[name] = {"prepare_s": prepared}
    samples = min(args.measure, args.rows // 2)
    for w in workers:
        # Repeats alternate between the contenders, so each sees the same machine load (it moves
        # on a shared machine); the median of each contender's runs is reported.
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in chosen}
        for _ in range(args.repeats):
            for name, contender in contenders.items():
                runs[name].append(
                    run_once(lambda c=contender, n=w: c.loader(n), samples, args.warmup, args.seconds)
                )
        load = os.getloadavg()[0]
        for name in chosen:
            results[name][w] = figures = {**summary(runs[name]), "load": load}
            print(
                f"{name:<10} workers={w}  {figures['rate']:>12,.0f} samples/s  first batch {figures['ttfb']:6.3f} s"
                f"  peak RSS {figures['rss']:7.0f} MiB  CPU {figures['cpu_us']:5.2f} us/sample"
                f"  (load average {load:.1f})",
                flush=True,
            )
    for name, contender in contenders.items():
        try:
            results[name]["resume_s"] = resume_latency(contender)
        except Exception as error:  # a library that cannot resume from such a state: say so
            print(f"{name}: resume failed: {type(error).__name__}: {error}", flush=True)
            results[name]["resume_s"] = float("nan")
        print(f"{name:<10} resume at 50%: first batch after {results[name]['resume_s']:.3f} s", flush=True)
        contender.cleanup()

    images = image_version(args.work, args.images, 4) if args.images.exists() else None
    if images is not None:
        figures = image_figures(images, args.window)
        results["images"] = figures
        print(
            f"images: {figures['rows']:,} PNG rows; medcurate {figures['loader']:,.0f} rows/s (shuffled, verified) vs "
            f"pyarrow {figures['pyarrow']:,.0f} rows/s; first batch {figures['ttfb']:.3f} s; lazy decode "
            f"{figures['decode_ms']:.2f} ms per image",
            flush=True,
        )

    if "medcurate" in results:
        ours = results["medcurate"]
        print(
            "\nper num_workers: medcurate samples/s divided by the contender's; first batch (s); "
            "CPU us/sample (main + workers)"
        )
        ratios = {}
        for name in chosen:
            if name == "medcurate":
                continue
            per = {w: ours[w]["rate"] / results[name][w]["rate"] for w in workers if results[name][w]["rate"]}
            ratios[name] = min(per.values())
            cells = "  ".join(
                f"w{w}: {per[w]:.2f}x ttfb {ours[w]['ttfb']:.3f} vs {results[name][w]['ttfb']:.3f}"
                f" cpu {ours[w]['cpu_us']:.2f} vs {results[name][w]['cpu_us']:.2f}"
                for w in per
            )
            print(f"  {name:<8} {cells}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=1, default=str))
        print(
            ", ".join(
                f"loader/{name} {ratios.get(name, float('nan')):.2f}"
                for name in ("pyarrow", "hf", "litdata", "mosaic")
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
