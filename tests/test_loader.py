"""The trainer loader: one global order per (seed, epoch), split over ranks and workers, exact resume."""

import io
import json
import pickle
from itertools import product
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medcurate.schemas.manifest import Manifest, ShardInfo, StageCounts, ValidationInfo
from medcurate.schemas.sample import new_sample, samples_to_table
from medcurate.warehouse import loader, storage
from medcurate.warehouse.integrity import chunk_range
from medcurate.warehouse.loader import (
    DatasetReader,
    ResumeError,
    ShardIntegrityError,
    decode_images,
    resolve_version_dir,
)
from medcurate.warehouse.publish import LATEST, MANIFEST, shard_info

KINDS = ["web", "clinical", "image"]
STATUSES = ["not_required", "pending", "accepted", "rejected"]


def _png(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 3), (shade, 0, 0)).save(out, format="PNG")
    return out.getvalue()


def write_manifest(version_dir: Path, infos: list[ShardInfo], run_id: str) -> None:
    rows = sum(info.rows for info in infos)
    manifest = Manifest(
        dataset="demo",
        version=version_dir.name,
        parent=None,
        run_id=run_id,
        created_at="now",
        code_version="t",
        schema_version=1,
        config={},
        config_hash="h",
        shards=infos,
        rows=rows,
        counts=StageCounts(read=rows, published=rows),
        validation=ValidationInfo(passed=True, suite="s", results_path="validation/results.json"),
    )
    storage.write_text(str(version_dir / MANIFEST), manifest.model_dump_json())


def make_version(
    root: Path,
    shards: int = 3,
    rows_per_shard: int = 50,
    row_group_size: int = 16,
    version: str = "v0001",
    with_checksums: bool = True,
) -> Path:
    version_dir = root / "demo" / version
    (version_dir / "data").mkdir(parents=True)
    infos: list[ShardInfo] = []
    for index in range(shards):
        samples = []
        for n in range(rows_per_shard):
            k = index * rows_per_shard + n
            image = k % 7 == 0
            samples.append(
                new_sample(
                    source_kind="image" if image else KINDS[k % 2],
                    modality="image" if image else "text",
                    source_uri=f"s{index}-{n}",
                    text=None if image else f"text {index} {n}",
                    image_bytes=_png(k % 250) if image else None,
                    review_status=STATUSES[k % 4],
                    quality_score=None if k % 11 == 0 else (k * 37 % 100) / 100,
                )
            )
        relative = f"data/part-{index:05d}.parquet"
        pq.write_table(samples_to_table(samples), version_dir / relative, row_group_size=row_group_size)
        info = shard_info(str(version_dir / relative), relative)
        if not with_checksums:
            info = ShardInfo(path=info.path, rows=info.rows, bytes=info.bytes, sha256=info.sha256)
        infos.append(info)
    write_manifest(version_dir, infos, "r")
    storage.write_text(str(root / "demo" / LATEST), version + "\n")
    return version_dir


def ids(batches) -> list[str]:
    return [i for batch in batches for i in batch.column("id").to_pylist()]


def job_order(version_dir: Path, world_size: int, num_workers: int, **options) -> list[list[str]]:
    """The batches a job trains on, step by step and rank by rank, as DataLoaders would collect them
    (a rank's batch k comes from worker k % num_workers)."""
    per_rank = []
    for rank in range(world_size):
        streams = [
            [
                b.column("id").to_pylist()
                for b in DatasetReader(
                    str(version_dir),
                    columns=["id"],
                    rank=rank,
                    world_size=world_size,
                    worker_id=w,
                    num_workers=num_workers,
                    **options,
                )
            ]
            for w in range(max(num_workers, 1))
        ]
        batches = []
        while any(streams):
            for stream in streams:
                if stream:
                    batches.append(stream.pop(0))
        per_rank.append(batches)
    steps = max(len(b) for b in per_rank)
    return [rank_batches[s] for s in range(steps) for rank_batches in per_rank if s < len(rank_batches)]


OPTIONS = {"seed": 7, "epoch": 0, "batch_size": 8, "window": 2}


def test_every_sample_once_and_the_same_order_for_any_ranks_and_workers(tmp_path: Path):
    version_dir = make_version(tmp_path, shards=3, rows_per_shard=45)
    everything = sorted(ids(DatasetReader(str(version_dir), columns=["id"], shuffle=False)))
    reference = [i for b in job_order(version_dir, 1, 0, **OPTIONS) for i in b]
    assert sorted(reference) == everything
    assert reference != everything and len(everything) == 135
    for world_size, workers in product(range(1, 5), range(4)):
        batches = job_order(version_dir, world_size, workers, **OPTIONS)
        seen = [i for b in batches for i in b]
        assert seen == reference, (world_size, workers)
        assert all(len(b) <= 8 for b in batches)


def documented_order(groups: list[list[str]], seed: int, epoch: int, window: int, lanes: int, batch: int):
    """The order as docs/loader.md defines it, computed apart from the reader's pieces and gathers."""
    order = loader._permutation(len(groups), seed, epoch, 1)
    size = max(1, window // lanes)
    lane_rows = []
    for lane in range(lanes):
        mine, rows = order[lane::lanes], []
        for j, start in enumerate(range(0, len(mine), size)):
            window_rows = [i for g in mine[start : start + size] for i in groups[g]]
            rows += [
                window_rows[r]
                for r in loader._permutation(len(window_rows), seed, epoch, 2, j * lanes + lane)
            ]
        lane_rows.append(rows)
    full = min(len(rows) // batch for rows in lane_rows)
    expected = [i for j in range(full) for rows in lane_rows for i in rows[j * batch : (j + 1) * batch]]
    return expected + [i for rows in lane_rows for i in rows[full * batch :]]


def row_groups(version_dir: Path) -> list[list[str]]:
    groups = []
    for shard in sorted((version_dir / "data").glob("*.parquet")):
        parquet = pq.ParquetFile(shard)
        groups += [
            parquet.read_row_group(g, columns=["id"]).column("id").to_pylist()
            for g in range(parquet.num_row_groups)
        ]
    return groups


@pytest.mark.parametrize(("window", "lanes"), [(2, 1), (2, 4), (4, 2), (5, 3), (1, 7)])
def test_the_order_is_the_documented_one(tmp_path: Path, window: int, lanes: int):
    """Row groups permuted and dealt to lanes, rows permuted within each lane's windows, lane batches
    interleaved: computed here from that definition, apart from the reader's pieces and gathers."""
    version_dir = make_version(tmp_path, shards=3, rows_per_shard=45)  # row groups of 16, 16, 13 rows
    options = {**OPTIONS, "window": window, "lanes": lanes}
    expected = documented_order(row_groups(version_dir), 7, 0, window, lanes, 8)
    for world_size, workers in ((1, 0), (3, 2), (2, 3), (1, 4)):
        assert [i for b in job_order(version_dir, world_size, workers, **options) for i in b] == expected


def test_one_lane_is_one_window_after_another(tmp_path: Path):
    """With `lanes=1` the order is the windows' permuted rows one after the other, for any batch size."""
    version_dir = make_version(tmp_path, shards=3, rows_per_shard=45)
    groups, order = row_groups(version_dir), loader._permutation(9, 7, 0, 1)
    expected = []
    for w, start in enumerate(range(0, 9, 2)):
        rows = [i for g in order[start : start + 2] for i in groups[g]]
        expected += [rows[r] for r in loader._permutation(len(rows), 7, 0, 2, w)]
    for batch_size in (8, 5):
        options = {**OPTIONS, "lanes": 1, "batch_size": batch_size}
        assert ids(DatasetReader(str(version_dir), columns=["id"], **options)) == expected


def _count_reads(monkeypatch) -> list[int]:
    """Records every row group the loader reads (shard, row group), in order."""
    reads = []
    read = loader._Shard.read

    def counted(shard, group, columns):
        reads.append((shard.path, group))
        return read(shard, group, columns)

    monkeypatch.setattr(loader._Shard, "read", counted)
    return reads


@pytest.mark.parametrize(("world_size", "workers"), [(1, 0), (1, 1), (1, 2), (2, 2), (1, 4), (4, 0)])
def test_readers_of_a_lane_multiple_decode_each_row_group_once(
    tmp_path: Path, monkeypatch, world_size, workers
):
    """When `lanes` is a multiple of ranks x workers, each reader reads only its own lanes' row groups."""
    version_dir = make_version(tmp_path, shards=4, rows_per_shard=64)  # 16 row groups of 16 rows
    reads = _count_reads(monkeypatch)
    options = {**OPTIONS, "window": 8, "lanes": 4}
    job_order(version_dir, world_size, workers, **options)
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 16
    reads.clear()
    job_order(version_dir, world_size, workers, **{**options, "lanes": 1})  # every reader reads every window
    assert len(reads) == 16 * world_size * max(workers, 1)


def test_the_first_batch_reads_only_the_first_lane_window(tmp_path: Path, monkeypatch):
    version_dir = str(make_version(tmp_path, shards=2, rows_per_shard=64))
    reads = _count_reads(monkeypatch)
    batches = iter(DatasetReader(version_dir, columns=["id"], **{**OPTIONS, "window": 8, "lanes": 4}))
    next(batches)
    assert len(reads) == 2
    next(batches)  # the other lanes' windows of the round, read together
    assert len(reads) == 8


def test_a_resumed_first_batch_across_a_window_end_reads_two_windows(tmp_path: Path, monkeypatch):
    """Resuming in the middle of a lane window: the first batch straddles two of the lane's windows
    and waits for those two row groups only, not the round of the other lanes."""
    version_dir = str(make_version(tmp_path, shards=4, rows_per_shard=64))  # 16 row groups of 16 rows
    options = {"columns": ["id"], "seed": 7, "batch_size": 12, "window": 4, "lanes": 4}
    expected = ids(DatasetReader(version_dir, **options))[4 * 12 :]
    state = DatasetReader(version_dir, **options).state_dict(batches=4)  # lane 0's second batch is next
    reads = _count_reads(monkeypatch)
    reader = DatasetReader(version_dir, **options)
    reader.load_state_dict(state)
    batches = iter(reader)
    first = next(batches)
    assert len(reads) == 2
    assert ids([first, *batches]) == expected
    assert len(reads) == len(set(reads))


def test_permutation_is_the_stable_sort_of_raw_pcg64_output():
    """The permutation must not change between releases: saved states and past epochs rely on it."""
    for n, key in ((0, (1,)), (1, (1, 2)), (1000, (7, 0, 2, 3)), (65536, (9, 1, 1))):
        keys = np.random.PCG64(np.random.SeedSequence(list(key))).random_raw(n)
        assert np.array_equal(loader._permutation(n, *key), np.argsort(keys, kind="stable"))


def test_batches_for_workers_carry_only_their_rows(tmp_path: Path):
    """A DataLoader pickles each batch: one sharing its window's buffers would carry the whole window."""
    version_dir = str(make_version(tmp_path, shards=2, rows_per_shard=60))
    options = {**OPTIONS, "columns": ["id", "text"], "window": 4}
    window = pq.read_table(Path(version_dir) / "data" / "part-00000.parquet", columns=["id", "text"])
    window_bytes = len(pickle.dumps(window.slice(0, 4 * 16).combine_chunks()))
    in_process = ids(DatasetReader(version_dir, **options))  # zero-copy slices of larger gathers
    for reader in (
        DatasetReader(version_dir, worker_id=0, num_workers=1, **options),
        DatasetReader(version_dir, compact=True, **options),
        DatasetReader(version_dir, compact=True, prefetch=1, **options),
    ):
        batches = list(reader)
        assert ids(batches) == in_process
        for batch in batches:
            assert batch.num_rows <= 8
            assert len(pickle.dumps(batch)) * 3 < window_bytes


@pytest.mark.parametrize("gather_rows", [3, 8, 13])
def test_gathers_of_any_size_give_the_same_batches(tmp_path: Path, monkeypatch, gather_rows: int):
    """Rows are gathered in groups that need not line up with batches or windows."""
    version_dir = str(make_version(tmp_path))
    options = {**OPTIONS, "columns": ["id"], "window": 3}
    expected = [b.column("id").to_pylist() for b in DatasetReader(version_dir, compact=True, **options)]
    monkeypatch.setattr(loader, "_GATHER_ROWS", gather_rows)
    got = [b.column("id").to_pylist() for b in DatasetReader(version_dir, compact=False, **options)]
    assert got == expected
    assert sorted(i for b in got for i in b) == sorted(
        ids(DatasetReader(version_dir, shuffle=False, columns=["id"]))
    )


def test_first_request_gathered_from_row_groups_matches_the_joined_window():
    """The epoch's first batch is gathered from the row groups' chunks before they are joined."""
    chunks = [
        pa.table({"id": [f"row-{i}" for i in range(start, start + n)]})
        for start, n in ((0, 7), (7, 1), (8, 12))
    ]
    table = pa.concat_tables(chunks)
    rows = np.random.default_rng(3).permutation(table.num_rows)
    expected = [table.column("id").to_pylist()[r] for r in rows]
    for quick, group in product((True, False), (1, 3, 6)):
        window = loader._Window(table, rows, group=group, quick=quick)
        got = window.take(0, 10).column("id").to_pylist()  # rows of all three row groups
        got += [
            i for offset in range(10, len(rows), 5) for i in window.take(offset, 5).column("id").to_pylist()
        ]
        assert got == expected, (quick, group)


def test_windows_decoded_in_pieces_and_joined_as_views_give_the_same_batches(tmp_path: Path, monkeypatch):
    """Row groups decoded in several record batches, string and binary columns (with nulls) joined
    as views and cast back: the same batches, values and schema as one piece per row group."""
    version_dir = str(make_version(tmp_path, shards=2, rows_per_shard=60))
    columns = ["id", "text", "image_bytes", "quality_score"]

    def batches(**options):
        return [b.to_pydict() for b in DatasetReader(version_dir, columns=columns, **OPTIONS, **options)]

    schema = next(iter(DatasetReader(version_dir, columns=columns, **OPTIONS))).schema
    expected = {compact: batches(compact=compact) for compact in (True, False)}
    joined_as_views = []
    gather = loader._Window._gather

    def counted(window, rows):
        joined_as_views.append(len(window._views))
        return gather(window, rows)

    monkeypatch.setattr(loader._Window, "_gather", counted)
    monkeypatch.setattr(loader, "_VIEW_BYTES", 0)
    monkeypatch.setattr(loader, "_DECODE_BYTES", 1)
    monkeypatch.setattr(loader, "_DECODE_MIN_ROWS", 5)
    for compact in (True, False):
        assert batches(compact=compact) == expected[compact]
    assert set(joined_as_views) == {3}  # id, text and image_bytes
    assert next(iter(DatasetReader(version_dir, columns=columns, **OPTIONS))).schema == schema


def test_a_manifest_that_miscounts_a_row_group_is_refused(tmp_path: Path):
    """Gathers index a window by the manifest's row counts: a count that the decoded row groups do
    not match stops the reader."""
    version_dir = make_version(tmp_path, shards=1)
    manifest = json.loads((version_dir / MANIFEST).read_text())
    manifest["shards"][0]["row_groups"][1] += 1
    (version_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ShardIntegrityError, match="in the manifest"):
        list(DatasetReader(str(version_dir), ["id"], **OPTIONS))


def test_the_decoder_sees_only_verified_bytes():
    verified = loader._Verified("shard", pa.py_buffer(b"abcdef"), 10, 100)
    verified.seek(12)
    assert verified.read(3).to_pybytes() == b"cde"
    for start, size in ((9, 2), (14, 3)):
        verified.seek(start)
        with pytest.raises(ShardIntegrityError, match="outside its verified column chunks"):
            verified.read(size)


def test_same_seed_same_order_other_epoch_other_order(tmp_path: Path):
    version_dir = str(make_version(tmp_path))

    def order(**kw):
        return ids(DatasetReader(version_dir, columns=["id"], **{**OPTIONS, **kw}))

    assert order() == order()
    assert order(prefetch=1) == order() == order(prefetch=2)  # reading ahead in a thread: same order
    assert order(epoch=1) != order()
    assert sorted(order(epoch=1)) == sorted(order())
    assert order(seed=8) != order()
    reader = DatasetReader(Path(version_dir), columns=["id"], **OPTIONS)  # a Path works too
    reader.set_epoch(1)
    assert ids(reader) == order(epoch=1)


def test_the_window_bounds_how_far_rows_move(tmp_path: Path):
    """Rows are shuffled inside lane windows of `window // lanes` row groups: here each batch is one."""
    version_dir = str(make_version(tmp_path, shards=2, rows_per_shard=64, row_group_size=16))
    group_of = {f"s{s}-{n}": (s, n // 16) for s in range(2) for n in range(64)}
    uri_of = dict(
        zip(
            ids(DatasetReader(version_dir, columns=["id"], shuffle=False)),
            (
                u
                for b in DatasetReader(version_dir, columns=["source_uri"], shuffle=False)
                for u in b.column(0).to_pylist()
            ),
            strict=True,
        )
    )
    for window, lanes in ((2, 1), (4, 2), (8, 4)):  # the same two row groups per lane window
        order = ids(
            DatasetReader(version_dir, columns=["id"], seed=3, window=window, lanes=lanes, batch_size=32)
        )
        windows = [{group_of[uri_of[i]] for i in order[w : w + 32]} for w in range(0, 128, 32)]
        assert all(len(groups) == 2 for groups in windows)


def test_pad_and_drop_tails(tmp_path: Path):
    version_dir = str(make_version(tmp_path, shards=1, rows_per_shard=50))
    full = ids(DatasetReader(version_dir, columns=["id"], **OPTIONS))
    padded = [
        [
            len(b)
            for b in DatasetReader(version_dir, columns=["id"], rank=r, world_size=3, tail="pad", **OPTIONS)
        ]
        for r in range(3)
    ]
    assert padded == [[8, 8, 8]] * 3  # 50 samples, steps of 24: the last step takes 22 from the start
    dropped = [
        ids(DatasetReader(version_dir, columns=["id"], rank=r, world_size=3, tail="drop", **OPTIONS))
        for r in range(3)
    ]
    assert sum(map(len, dropped)) == 48 and set().union(*map(set, dropped)) == set(full[:48])
    pad_ids = [
        ids(DatasetReader(version_dir, columns=["id"], rank=r, world_size=3, tail="pad", **OPTIONS))
        for r in range(3)
    ]
    assert sorted(i for p in pad_ids for i in p) == sorted(full + full[:22])


def _consume(readers, batches_per_reader):
    """Reads `n` batches from each reader; returns the ids read."""
    read = []
    for reader, n in zip(readers, batches_per_reader, strict=True):
        iterator = iter(reader)
        for _ in range(n):
            read += next(iterator).column("id").to_pylist()
    return read


@pytest.mark.parametrize(("before", "after"), [((2, 2), (3, 1)), ((1, 0), (4, 3)), ((3, 3), (1, 0))])
def test_resume_with_other_ranks_and_workers_reads_exactly_the_rest(tmp_path: Path, before, after):
    version_dir = str(make_version(tmp_path, shards=3, rows_per_shard=60))
    order = [i for b in job_order(Path(version_dir), 1, 0, **OPTIONS) for i in b]
    world_size, workers = before
    readers = [
        DatasetReader(version_dir, ["id"], r, world_size, w, workers, **OPTIONS)
        for r in range(world_size)
        for w in range(max(workers, 1))
    ]
    # Five steps per rank, fetched round-robin from its workers: worker w made ceil((5 - w) / W) batches.
    per_worker = [
        len(range(w, 5, max(workers, 1))) for _ in range(world_size) for w in range(max(workers, 1))
    ]
    consumed = _consume(readers, per_worker)
    assert sorted(consumed) == sorted(order[: 5 * 8 * world_size])
    states = [json.loads(json.dumps(r.state_dict())) for r in readers]
    assert max(s["samples_consumed"] for s in states) == 5 * 8 * world_size

    world_size, workers = after
    rest = []
    for r, w in product(range(world_size), range(max(workers, 1))):
        reader = DatasetReader(version_dir, ["id"], r, world_size, w, workers, **OPTIONS)
        reader.load_state_dict(states)
        rest += ids(reader)
    assert sorted(consumed + rest) == sorted(order)
    assert sorted(rest) == sorted(order[len(consumed) :])


def test_resume_with_the_same_layout_continues_each_worker_exactly(tmp_path: Path):
    """What torchdata's StatefulDataLoader does: each worker gets back its own state."""
    version_dir = str(make_version(tmp_path))
    readers = [DatasetReader(version_dir, ["id"], 0, 1, w, 2, **OPTIONS) for w in range(2)]
    consumed = _consume(readers, [3, 2])  # worker 0 ran one batch ahead (prefetch)
    states = [r.state_dict() for r in readers]
    rest = []
    for w in range(2):
        reader = DatasetReader(version_dir, ["id"], 0, 1, w, 2, **OPTIONS)
        reader.load_state_dict(states[w])
        rest += ids(reader)
    full = ids(DatasetReader(version_dir, ["id"], **OPTIONS))
    assert sorted(consumed + rest) == sorted(full)
    assert len(consumed + rest) == len(full)


def test_a_plain_dataloader_resumes_from_the_training_loop_step(tmp_path: Path):
    version_dir = str(make_version(tmp_path))
    reader = DatasetReader(version_dir, ["id"], 0, 2, 0, 2, **OPTIONS)
    state = reader.state_dict(batches=4)  # the loop on this rank consumed 4 batches
    assert state["samples_consumed"] == 4 * 8 * 2
    resumed = DatasetReader(version_dir, ["id"], **OPTIONS)
    resumed.load_state_dict(state)
    full = ids(DatasetReader(version_dir, ["id"], **OPTIONS))
    assert ids(resumed) == full[64:]


def test_a_state_from_another_order_is_refused(tmp_path: Path):
    version_dir = str(make_version(tmp_path))
    state = DatasetReader(version_dir, ["id"], **OPTIONS).state_dict()
    with pytest.raises(ResumeError, match="seed"):
        DatasetReader(version_dir, ["id"], **{**OPTIONS, "seed": 1}).load_state_dict(state)
    with pytest.raises(ResumeError, match="where"):
        DatasetReader(version_dir, ["id"], where={"modality": "text"}, **OPTIONS).load_state_dict(state)
    with pytest.raises(ResumeError, match="lanes"):  # the lanes interleave differently
        DatasetReader(version_dir, ["id"], **{**OPTIONS, "lanes": 1}).load_state_dict(state)
    with pytest.raises(ResumeError, match="batch_size"):  # lane batches of another size
        DatasetReader(version_dir, ["id"], **{**OPTIONS, "batch_size": 4}).load_state_dict(state)
    single = DatasetReader(version_dir, ["id"], **{**OPTIONS, "lanes": 1, "batch_size": 4})
    single.load_state_dict(
        DatasetReader(version_dir, ["id"], **{**OPTIONS, "lanes": 1}).state_dict(batches=2)
    )
    assert ids(single) == ids(DatasetReader(version_dir, ["id"], **{**OPTIONS, "lanes": 1}))[16:]


FILTERS = [
    {"source_kind": "clinical"},
    {"modality": "image"},
    {"review_status": ["accepted", "not_required"]},
    {"min_quality": 0.5},
    {"source_kind": ["web", "clinical"], "review_status": "accepted", "min_quality": 0.3},
]


@pytest.mark.parametrize("where", FILTERS)
def test_a_filtered_epoch_is_the_unfiltered_epoch_without_the_other_rows(tmp_path: Path, where):
    version_dir = str(make_version(tmp_path, shards=3, rows_per_shard=60))
    columns = ["id", "source_kind", "modality", "review_status", "quality_score"]
    rows = [r for b in DatasetReader(version_dir, columns, **OPTIONS) for r in b.to_pylist()]

    def matches(row):
        for key in ("source_kind", "modality", "review_status"):
            allowed = where.get(key)
            if allowed is not None and row[key] not in ([allowed] if isinstance(allowed, str) else allowed):
                return False
        q = where.get("min_quality")
        return q is None or (row["quality_score"] is not None and row["quality_score"] >= q)

    expected = [r["id"] for r in rows if matches(r)]
    assert 0 < len(expected) < len(rows)
    filtered = DatasetReader(version_dir, ["id"], where=where, **OPTIONS)
    assert filtered.num_samples == len(expected)
    assert ids(filtered) == expected
    # Exact across ranks, workers and a resume too.
    assert [i for b in job_order(Path(version_dir), 3, 2, where=where, **OPTIONS) for i in b] == expected
    first = DatasetReader(version_dir, ["id"], 0, 1, 0, 0, where=where, **OPTIONS)
    head = _consume([first], [2])
    second = DatasetReader(version_dir, ["id"], 1, 2, 0, 0, where=where, **OPTIONS)
    second.load_state_dict(first.state_dict())
    other = DatasetReader(version_dir, ["id"], 0, 2, 0, 0, where=where, **OPTIONS)
    other.load_state_dict(first.state_dict())
    assert sorted(head + ids(second) + ids(other)) == sorted(expected)


def test_a_changed_chunk_is_caught_when_it_is_read_not_before(tmp_path: Path):
    version_dir = make_version(tmp_path, shards=1, rows_per_shard=64)
    shard = version_dir / "data" / "part-00000.parquet"
    metadata = pq.read_metadata(shard)
    text_leaf = [metadata.schema.column(i).path for i in range(metadata.num_columns)].index("text")
    start, length = chunk_range(metadata, metadata.num_row_groups - 1, text_leaf)
    raw = bytearray(shard.read_bytes())
    raw[start + length - 1] ^= 0xFF
    shard.write_bytes(bytes(raw))
    reader = DatasetReader(str(version_dir), ["id", "text"], shuffle=False, batch_size=16, window=1)
    stream = iter(reader)
    assert next(stream).num_rows == 16  # the first row groups verify and stream at once
    with pytest.raises(ShardIntegrityError, match="row group 3, column text"):
        list(stream)
    # Columns whose bytes are intact still read.
    assert len(ids(DatasetReader(str(version_dir), ["id"], shuffle=False))) == 64


def test_a_tampered_shard_without_chunk_digests_is_refused(tmp_path: Path):
    version_dir = make_version(tmp_path, shards=1, with_checksums=False)
    shard = version_dir / "data" / "part-00000.parquet"
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(ShardIntegrityError, match="SHA-256"):
        list(DatasetReader(str(version_dir)))


def test_older_manifests_without_row_group_facts_give_the_same_order(tmp_path: Path):
    with_digests = make_version(tmp_path / "a")
    without = make_version(tmp_path / "b", with_checksums=False)
    assert ids(DatasetReader(str(with_digests), ["id"], **OPTIONS)) == ids(
        DatasetReader(str(without), ["id"], **OPTIONS)
    )


def test_reads_through_an_fsspec_url(tmp_path: Path):
    import fsspec

    version_dir = make_version(tmp_path)
    memory = fsspec.filesystem("memory")
    for path in version_dir.rglob("*"):
        if path.is_file():
            memory.pipe_file(f"/loader-test/{path.relative_to(version_dir)}", path.read_bytes())
    local = ids(DatasetReader(str(version_dir), ["id"], **OPTIONS))
    assert ids(DatasetReader("memory://loader-test", ["id"], **OPTIONS)) == local


def test_projection_and_lazy_images(tmp_path: Path):
    version_dir = str(make_version(tmp_path))
    reader = DatasetReader(version_dir, ["id", "image_bytes"], where={"modality": "image"}, **OPTIONS)
    batch = next(iter(reader))
    assert batch.schema.names == ["id", "image_bytes"]
    images = decode_images(batch)
    assert len(images) == batch.num_rows and images[0].size == (4, 3)


def test_no_latest_is_a_clear_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no validated"):
        resolve_version_dir(str(tmp_path), "missing")


def test_published_manifests_carry_chunk_digests(tmp_path: Path):
    version_dir = make_version(tmp_path, shards=1, rows_per_shard=40)
    info = Manifest.model_validate_json((version_dir / MANIFEST).read_text()).shards[0]
    assert info.row_groups == [16, 16, 8]
    assert info.chunk_sha256 is not None and len(info.chunk_sha256) == 3
    assert len(info.chunk_sha256[0]) == pq.read_metadata(version_dir / info.path).num_columns
    assert np.sum(info.row_groups) == info.rows
    assert pa.__version__


# ----- the optional PyTorch wrapper -----------------------------------------------------------------
# torch stays optional for users; the tests install its CPU build (the `dev` extra).


def _torch():
    import torch.utils.data as torch_data
    import torchdata.stateful_dataloader as stateful

    return torch_data, stateful


TORCH_OPTIONS = {"columns": ["id"], "seed": 7, "batch_size": 8, "window": 2}


def id_list(batch):
    return batch.column("id").to_pylist()


@pytest.mark.slow
def test_stateful_dataloader_resumes_exactly_with_the_same_or_other_worker_counts(tmp_path: Path):
    torch_data, stateful = _torch()
    from medcurate.warehouse.torch_data import LoaderDataset

    version_dir = str(make_version(tmp_path, shards=3, rows_per_shard=60))
    full = ids(DatasetReader(version_dir, **TORCH_OPTIONS))
    loader = stateful.StatefulDataLoader(
        LoaderDataset(version_dir, transform=id_list, **TORCH_OPTIONS), batch_size=None, num_workers=2
    )
    seen = []
    for step, batch in enumerate(loader):
        seen += batch
        if step == 4:
            state = json.loads(json.dumps(loader.state_dict()))
            break
    assert seen == full[:40]

    same = stateful.StatefulDataLoader(
        LoaderDataset(version_dir, transform=id_list, **TORCH_OPTIONS), batch_size=None, num_workers=2
    )
    same.load_state_dict(state)
    assert seen + [i for b in same for i in b] == full

    # StatefulDataLoader refuses another worker count: hand its state to the dataset instead.
    dataset = LoaderDataset(version_dir, transform=id_list, **TORCH_OPTIONS)
    dataset.load_state_dict(state)
    other = torch_data.DataLoader(dataset, batch_size=None, num_workers=1)
    assert seen + [i for b in other for i in b] == full


def test_plain_dataloader_resumes_from_the_loop_step(tmp_path: Path):
    torch_data, _ = _torch()
    from medcurate.warehouse.torch_data import LoaderDataset

    version_dir = str(make_version(tmp_path))
    full = ids(DatasetReader(version_dir, **TORCH_OPTIONS))
    dataset = LoaderDataset(version_dir, transform=id_list, **TORCH_OPTIONS)
    seen = [
        i for _, b in zip(range(3), torch_data.DataLoader(dataset, batch_size=None), strict=False) for i in b
    ]
    state = dataset.state_dict(batches=3)
    resumed = LoaderDataset(version_dir, transform=id_list, **TORCH_OPTIONS)
    resumed.load_state_dict(state)
    assert seen + [i for b in torch_data.DataLoader(resumed, batch_size=None) for i in b] == full


# ----- medcurate diff ----------------------------------------------------------------------------


def _write_samples(root: Path, version: str, samples: list[dict], run_id: str) -> Path:
    version_dir = root / "demo" / version
    (version_dir / "data").mkdir(parents=True)
    pq.write_table(samples_to_table(samples), version_dir / "data" / "part-00000.parquet")
    info = shard_info(str(version_dir / "data" / "part-00000.parquet"), "data/part-00000.parquet")
    write_manifest(version_dir, [info], run_id)
    return version_dir


def test_diff_names_added_removed_and_changed_samples_with_reasons(tmp_path: Path, capsys):
    from medcurate.cli import main

    def sample(n: int, **fields):
        base = {"source_kind": "clinical" if n % 2 else "web", "modality": "text", "text": f"note {n}"}
        return new_sample(source_uri=f"doc-{n}", **{**base, **fields})

    old = [sample(n) for n in range(10)]
    new = [sample(n) for n in range(2, 10)] + [sample(10), sample(11)]
    new[0] = sample(2, review_status="accepted")  # was not_required
    new[1] = sample(3, text="note 3, corrected")
    dropped = {"kind": "drop", "stage": "dedup", "reason": "near_duplicate", "source_uri": "doc-0"}
    reports = tmp_path / "reports" / "demo" / "run-2"
    reports.mkdir(parents=True)
    (reports / "drops.jsonl").write_text(json.dumps({**dropped, "sample_id": old[0]["id"]}) + "\n")
    first = _write_samples(tmp_path, "v0001", old, "run-1")
    second = _write_samples(tmp_path, "v0002", new, "run-2")

    assert main(["diff", str(first), str(second), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["added"], report["removed"], report["changed"]) == (2, 2, 2)
    rows = {(r["change"], r["source_kind"], r["reason"]): r["samples"] for r in report["rows"]}
    assert rows == {
        ("added", "web", "new input"): 1,
        ("added", "clinical", "new input"): 1,
        ("removed", "web", "dedup/near_duplicate"): 1,
        ("removed", "clinical", "not among the inputs of v0002's run"): 1,
        ("changed", "web", "review_status not_required -> accepted"): 1,
        ("changed", "clinical", "text"): 1,
    }
    assert main(["diff", str(first), str(second)]) == 0
    table = capsys.readouterr().out
    assert "v0001 -> v0002: 2 added, 2 removed, 2 changed" in table
