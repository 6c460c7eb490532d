"""Banding: which samples meet in a bucket, and which of those meetings become verified edges.

Text: MinHash bands and rows from datasketch's own optimal-parameter routine for the threshold;
candidates are verified by estimated Jaccard. Images: a 64-bit perceptual hash split into
radius+1 bit bands, so by pigeonhole any two hashes within the Hamming radius share a band.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import combinations, pairwise

import numpy as np

# Buckets up to this size emit all their pairs as candidates; larger ones a star around their
# smallest member, which keeps candidate pairs linear in the bucket size.
ALL_PAIRS_MAX_BUCKET = 12
_FNV_PRIME = np.uint64(0x100000001B3)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)


@lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising datasketch's equally weighted false positive + false negative area.

    The same search as `datasketch.lsh._optimal_param`; the integrands are polynomials of degree
    bands x rows <= num_perm, which Gauss-Legendre with num_perm/2 + 1 nodes integrates exactly,
    so no scipy import on the command's cold start (a test checks the result equals datasketch's).
    """
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    below = (nodes + 1) * threshold / 2, weights * threshold / 2
    above = threshold + (nodes + 1) * (1 - threshold) / 2, weights * (1 - threshold) / 2
    best, error_min = (0, 0), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = float(np.dot(below[1], 1 - (1 - below[0] ** r) ** b))
            fn = float(np.dot(above[1], (1 - above[0] ** r) ** b))
            error = 0.5 * fp + 0.5 * fn
            if error < error_min:
                best, error_min = (b, r), error
    return best


def text_band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(documents x bands) uint64: each band's rows folded with FNV-1a; collisions are verified later."""
    h = np.full((signatures.shape[0], bands), _FNV_OFFSET, dtype=np.uint64)
    cut = signatures[:, : bands * rows].astype(np.uint64).reshape(signatures.shape[0], bands, rows)
    for row in range(rows):
        h = (h ^ cut[:, :, row]) * _FNV_PRIME
    return h


def image_band_keys(phash: int, radius: int) -> list[int]:
    """The hash's bits split into radius+1 contiguous bands, each tagged with its band index."""
    bands = radius + 1
    bounds = np.linspace(0, 64, bands + 1).astype(int)
    return [
        (band << 64) | ((phash >> int(lo)) & ((1 << int(hi - lo)) - 1))
        for band, (lo, hi) in enumerate(pairwise(bounds))
    ]


def candidate_pairs(members: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs (smaller, larger) to verify from one bucket's members."""
    ordered = sorted(set(members))
    if len(ordered) <= ALL_PAIRS_MAX_BUCKET:
        return list(combinations(ordered, 2))
    return [(ordered[0], other) for other in ordered[1:]]


def bucket_candidates(band_keys: np.ndarray) -> np.ndarray:
    """Distinct candidate pairs (i < j, int64 x 2) of rows sharing a band key, rows in keeper order.

    The rule of `candidate_pairs`, vectorised: per band, a bucket of at most
    ALL_PAIRS_MAX_BUCKET rows yields all its pairs, a larger one a star around its first row.
    """
    docs = band_keys.shape[0]
    found = [np.empty((0, 2), dtype=np.int64)]
    rows = np.arange(docs, dtype=np.int64)
    for band in range(band_keys.shape[1]):
        order = np.lexsort((rows, band_keys[:, band]))
        keys = band_keys[order, band]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        sizes = np.diff(np.r_[starts, docs])
        for size in np.unique(sizes[sizes > 1]):
            first = starts[sizes == size]
            if size > ALL_PAIRS_MAX_BUCKET:
                for lo in first:
                    members = order[lo : lo + size]
                    found.append(np.column_stack((np.full(size - 1, members[0]), members[1:])))
                continue
            members = order[first[:, None] + np.arange(size)]
            i, j = np.triu_indices(int(size), 1)
            found.append(np.column_stack((members[:, i].ravel(), members[:, j].ravel())))
    pairs = np.concatenate(found)
    return np.unique(pairs, axis=0) if pairs.size else pairs


def jaccard_verified(a: np.ndarray, b: np.ndarray, threshold: float) -> bool:
    return np.count_nonzero(a == b) >= threshold * a.shape[-1]


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def image_edges(members: Sequence[tuple[str, int]], radius: int) -> list[tuple[str, str]]:
    """Verified edges inside one image bucket: every pair of members within the Hamming radius."""
    ordered = sorted(set(members))
    if len(ordered) < 2:
        return []
    keys = [key for key, _ in ordered]
    hashes = np.array([h for _, h in ordered], dtype=np.uint64)
    edges = []
    for i in range(1, len(ordered)):
        diff = hashes[:i] ^ hashes[i]
        close = np.flatnonzero(np.bitwise_count(diff) <= radius)
        edges.extend((keys[int(j)], keys[i]) for j in close)
    return edges
