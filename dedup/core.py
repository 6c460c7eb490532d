"""The dedup stage's pure core, in one process: what the Beam transform does, for inputs that fit.

Same fingerprints, same band keys and candidate rule, same verification (`TextVerifier`), same
keeper order and the same verified-star split, so both paths give the same clusters (a test
compares them on the dev sets). Instead of shuffles: candidates from sorted band keys, exact
verification of only the candidate texts' shingle sets, union-find for connected components.
No Beam import, and numba kernels cached on disk, so the command's cold start stays small.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from medcurate.dedup import lsh
from medcurate.dedup.config import DedupConfig

EXACT = "exact_duplicate"
NEAR = "near_duplicate"
_QUALITY_DIGITS = 7
_SIZE_DIGITS = 12
_EXACT_PREFIX = 16
_ID_OFFSET = _QUALITY_DIGITS + _SIZE_DIGITS + _EXACT_PREFIX


def node_key(sample_id: str, quality: float | None, size: int, exact_hash: str) -> str:
    """A key whose order is the keeper order: best quality, then largest, then smallest hash and id."""
    scale = 10 ** (_QUALITY_DIGITS - 1)
    inv_quality = (
        10**_QUALITY_DIGITS - 1 if quality is None else scale - round(min(max(quality, 0), 1) * scale)
    )
    inv_size = 10**_SIZE_DIGITS - 1 - min(size, 10**_SIZE_DIGITS - 1)
    return f"{inv_quality:0{_QUALITY_DIGITS}d}{inv_size:0{_SIZE_DIGITS}d}{exact_hash[:_EXACT_PREFIX]:0<16}{sample_id}"


def key_id(key: str) -> str:
    return key[_ID_OFFSET:]


def key_exact(key: str) -> str:
    return key[_QUALITY_DIGITS + _SIZE_DIGITS : _ID_OFFSET]


class UnionFind:
    """Connected components over integer nodes; the root of a set is its smallest node."""

    def __init__(self, size: int) -> None:
        self.parent = np.arange(size)

    def find(self, node: int) -> int:
        parent = self.parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def roots(self) -> np.ndarray:
        return np.array([self.find(node) for node in range(len(self.parent))], dtype=np.int64)


def stars(count: int, close_to) -> list[np.ndarray]:
    """Split one component, members ordered best first, into verified stars.

    The best remaining member becomes a centre and takes every remaining member close to it;
    repeat. So every member of a cluster is a verified near-duplicate of its keeper, and one
    wrong edge cannot chain two unrelated groups into one cluster.
    """
    remaining = np.arange(count)
    result = []
    while remaining.size:
        close = close_to(int(remaining[0]), remaining)
        close[0] = True
        result.append(remaining[close])
        remaining = remaining[~close]
    return result


def assign_text_clusters(
    ids: Sequence[str],
    texts: Sequence[str],
    config: DedupConfig,
    qualities: Sequence[float | None] | None = None,
    known_exact_hashes: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """`{"id", "cluster", "keep"}` per text, input order: the Beam transform's assignments, in process.

    Ids must be distinct (the Beam transform's "same id twice is one record read twice" rule
    belongs to pipelines, not to a file a user hands over).
    """
    from medcurate.dedup.boilerplate import DocumentFrequencies, DocumentFrequency, TextVerifier, number_set
    from medcurate.dedup.minhash import ShingleSets
    from medcurate.dedup.normalize import exact_text_hash, normalize_citation
    from medcurate.dedup.notices import NoticeFinder

    _distinct(ids)
    if config.citations:
        # Compared as cleaned citations; exact duplicates (and keeper sizes) stay on the text itself.
        hashes, sizes = map(list, zip(*map(exact_text_hash, texts), strict=True)) if texts else ([], [])
        texts = [normalize_citation(text) for text in texts]
        _, _, all_signatures, all_sets = config.hasher().fingerprints(texts)
    else:
        hashes, sizes, all_signatures, all_sets = config.hasher().fingerprints(texts)
    order, exact, forest = _exact_forest(ids, hashes, sizes, qualities, known_exact_hashes, config.exact)
    verifier = TextVerifier(config)
    signatures = sets = numbers = kinds = None
    frequencies = DocumentFrequencies()
    if config.near and len(order):
        signatures = all_signatures[order]
        sets = ShingleSets(all_sets.values, all_sets.starts[order], all_sets.counts[order])
        bands, rows = lsh.optimal_bands(config.threshold, config.num_perm)
        pairs = lsh.bucket_candidates(lsh.text_band_keys(signatures, bands, rows))
        # With boilerplate awareness every text counts towards document frequencies; without,
        # only candidates are ever compared, and only their shingle sets are sorted.
        wanted = np.unique(pairs)
        sets = sets.sorted(np.arange(len(order)) if config.boilerplate else wanted)
        if config.compares_numbers:
            found = {int(rank): number_set(texts[order[rank]]) for rank in wanted}
            empty = np.empty(0, dtype=np.uint32)
            numbers = ShingleSets.pack([found.get(rank, empty) for rank in range(len(order))])
        if config.notices:
            finder = NoticeFinder(config.notice_kinds, config.notice_scope)
            kinds = np.zeros(len(order), dtype=np.uint32)
            kinds[wanted] = finder.kinds([texts[order[rank]] for rank in wanted])
        if config.boilerplate:
            combine = DocumentFrequency(config.df_sketch_bits)
            frequencies = combine.add_input(combine.create_accumulator(), (len(order), sets.flat()))
        for centre, group in _by_first(pairs):
            close = verifier.close(frequencies, signatures, sets, centre, group, numbers, kinds)
            for other in group[close]:
                forest.union(centre, int(other))

    def close_to(centre: int, ranks: np.ndarray) -> np.ndarray:
        same = exact[ranks] == exact[centre]
        if signatures is None:
            return same
        return same | verifier.close(frequencies, signatures, sets, centre, ranks, numbers, kinds)

    return _assignments(ids, order, forest, close_to)


def assign_image_clusters(
    ids: Sequence[str],
    images: Iterable[bytes],
    config: DedupConfig,
    qualities: Sequence[float | None] | None = None,
    known_exact_hashes: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """`{"id", "cluster", "keep"}` per image, input order: the Beam transform's assignments, in process.

    `images` (encoded bytes) is read once, one at a time: only hashes are kept (about 100 bytes an
    image), so the input need not fit in memory. Same fingerprints, pHash bands (prefixed by
    height x width), Hamming verification, keeper order and star split as the Beam transform.
    """
    _distinct(ids)
    radius = config.image_hamming_radius
    hashes, sizes, phashes, bands = [], [], [], []
    for data in images:
        exact, size, phash, keys = image_fingerprint(data, radius)
        hashes.append(exact)
        sizes.append(size)
        phashes.append(phash)
        bands.append(keys)
    if len(hashes) != len(ids):
        raise ValueError("one image per id")
    order, exact, forest = _exact_forest(ids, hashes, sizes, qualities, known_exact_hashes, config.exact)
    decoded = np.array([bool(bands[i]) for i in order], dtype=bool)
    phash_arr = np.array([phashes[i] if bands[i] else 0 for i in order], dtype=np.uint64)
    if config.near:
        buckets: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
        for rank, index in enumerate(order):
            for key in bands[index]:
                buckets[key].append((rank, int(phash_arr[rank])))
        for members in buckets.values():
            for a, b in lsh.image_edges(members, radius):
                forest.union(a, b)

    def close_to(centre: int, ranks: np.ndarray) -> np.ndarray:
        near = np.bitwise_count(phash_arr[ranks] ^ phash_arr[centre]) <= radius
        return (exact[ranks] == exact[centre]) | (near & decoded[ranks] & decoded[centre])

    return _assignments(ids, order, forest, close_to)


def image_fingerprint(
    data: bytes, radius: int, phash: int | None = None
) -> tuple[str, int, int | None, list[bytes]]:
    """(exact hash, size, pHash, band keys) of encoded image bytes (`phash`: one already known).
    Undecodable bytes get no bands: they only ever match byte for byte."""
    from medcurate.dedup import images

    try:
        pixels = images.decode_pixels(data)
    except Exception:
        return images.bytes_hash(data), len(data), phash, []
    if phash is None:
        phash = images.phash(pixels)
    return (
        images.pixel_hash(pixels),
        int(pixels.size),
        phash,
        image_band_keys(phash, pixels.shape[:2], radius),
    )


def image_band_keys(phash: int, shape: tuple[int, ...], radius: int) -> list[bytes]:
    """pHash bands, only ever shared by images of the same height and width.

    Re-encodings and DICOM/PNG twins keep their shape; requiring it keeps low-detail images of
    different sizes (stripes, tiny thumbnails), whose hashes collide, apart.
    """
    prefix = b"i%dx%d|" % (shape[0], shape[1])
    return [prefix + k.to_bytes(9, "little") for k in lsh.image_band_keys(phash, radius)]


def _distinct(ids: Sequence[str]) -> None:
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate ids")


def _exact_forest(
    ids: Sequence[str],
    hashes: Sequence[str],
    sizes: Sequence[int],
    qualities: Sequence[float | None] | None,
    known_exact_hashes: Iterable[str],
    exact_edges: bool,
) -> tuple[np.ndarray, np.ndarray, UnionFind]:
    """(rank -> input index in keeper order, exact-hash prefix per rank, union-find with the
    exact-duplicate edges); samples with a known (published) exact hash take no part."""
    known = frozenset(known_exact_hashes)
    active = [i for i, exact in enumerate(hashes) if exact not in known]
    qualities = qualities or [None] * len(ids)
    keys = {i: node_key(ids[i], qualities[i], sizes[i], hashes[i]) for i in active}
    order = np.array(sorted(active, key=keys.__getitem__), dtype=np.int64)
    # The prefix in the node key, as the Beam star split reads it.
    exact = np.array([hashes[i][:_EXACT_PREFIX] for i in order], dtype=object)
    forest = UnionFind(len(order))
    if exact_edges:
        first: dict[str, int] = {}
        for rank, index in enumerate(order):
            forest.union(first.setdefault(hashes[index], rank), rank)
    return order, exact, forest


def _assignments(
    ids: Sequence[str],
    order: np.ndarray,
    forest: UnionFind,
    close_to: Callable[[int, np.ndarray], np.ndarray],
) -> list[dict[str, Any]]:
    """Components split into verified stars -> one row per id, input order. `close_to(rank, ranks)`
    says which ranks pass verification against `rank`; a sample not in `order` was already
    published (dropped as an exact duplicate, its own cluster)."""
    members = defaultdict(list)
    for rank, root in enumerate(forest.roots()):
        members[int(root)].append(rank)
    cluster: dict[int, tuple[str, bool]] = {}
    for group in members.values():
        group = np.array(group)
        if group.size == 1:
            cluster[int(group[0])] = (ids[order[group[0]]], True)
            continue
        for star in stars(
            group.size, lambda centre, rest, group=group: close_to(int(group[centre]), group[rest])
        ):
            keeper = ids[order[group[star[0]]]]
            for index in star:
                cluster[int(group[index])] = (keeper, bool(index == star[0]))
    rows: list[dict[str, Any]] = [{"id": i, "cluster": i, "keep": False} for i in ids]
    for rank, input_index in enumerate(order):
        keeper, keep = cluster[rank]
        rows[input_index] = {"id": ids[input_index], "cluster": keeper, "keep": keep}
    return rows


def _by_first(pairs: np.ndarray):
    """(i, array of j) for each i in the candidate pairs (i < j)."""
    if not len(pairs):
        return
    cuts = np.flatnonzero(np.diff(pairs[:, 0])) + 1
    for chunk in np.split(pairs, cuts):
        yield int(chunk[0, 0]), chunk[:, 1]
