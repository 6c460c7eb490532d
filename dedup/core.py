"""The dedup stage's pure core, in one process: what the Beam transform does, for inputs that fit.

Same fingerprints, same band keys and candidate rule, same verification (`TextVerifier`), same
keeper order and the same verified-star split, so both paths give the same clusters (a test
compares them on the dev sets). Instead of shuffles: candidates from sorted band keys, exact
verification of only the candidate texts' shingle sets, union-find for connected components.
No Beam import, and numba kernels cached on disk, so the command's cold start stays small.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
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

    if len(set(ids)) != len(ids):
        raise ValueError("duplicate ids")
    known = frozenset(known_exact_hashes)
    hasher = config.hasher()
    hashes, sizes, all_signatures, all_sets = hasher.fingerprints(texts)
    active = [i for i, exact in enumerate(hashes) if exact not in known]
    qualities = qualities or [None] * len(ids)
    keys = {i: node_key(ids[i], qualities[i], sizes[i], hashes[i]) for i in active}
    order = np.array(sorted(active, key=keys.__getitem__), dtype=np.int64)  # rank -> input index
    exact = [hashes[i][:16] for i in order]  # the prefix in the node key, as the star split reads it
    forest = UnionFind(len(order))
    if config.exact:
        first: dict[str, int] = {}
        for rank, index in enumerate(order):
            forest.union(first.setdefault(hashes[index], rank), rank)
    verifier = TextVerifier(config)
    signatures = sets = numbers = None
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
        if config.numbers_agree is not None:
            found = {int(rank): number_set(texts[order[rank]]) for rank in wanted}
            empty = np.empty(0, dtype=np.uint32)
            numbers = ShingleSets.pack([found.get(rank, empty) for rank in range(len(order))])
        if config.boilerplate:
            combine = DocumentFrequency(config.df_sketch_bits)
            frequencies = combine.add_input(combine.create_accumulator(), (len(order), sets.flat()))
        for centre, group in _by_first(pairs):
            close = verifier.close(frequencies, signatures, sets, centre, group, numbers)
            for other in group[close]:
                forest.union(centre, int(other))
    roots = forest.roots()
    cluster: dict[int, tuple[str, bool]] = {}
    members = defaultdict(list)
    for rank, root in enumerate(roots):
        members[int(root)].append(rank)
    exact_arr = np.array(exact, dtype=object)
    for group in members.values():
        group = np.array(group)
        if group.size == 1:
            cluster[int(group[0])] = (ids[order[group[0]]], True)
            continue

        def close_to(centre: int, rest: np.ndarray, group=group) -> np.ndarray:
            same = exact_arr[group[rest]] == exact_arr[group[centre]]
            if signatures is None:
                return same
            return same | verifier.close(
                frequencies, signatures, sets, int(group[centre]), group[rest], numbers
            )

        for star in stars(group.size, close_to):
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
