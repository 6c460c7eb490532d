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
from datasketch.lsh import _optimal_param

# Buckets up to this size emit all their pairs as candidates; larger ones a star around their
# smallest member, which keeps candidate pairs linear in the bucket size.
ALL_PAIRS_MAX_BUCKET = 12
_FNV_PRIME = np.uint64(0x100000001B3)
_FNV_OFFSET = np.uint64(0xCBF29CE484222325)


@lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising datasketch's equally weighted false positive + false negative area."""
    return _optimal_param(threshold, num_perm, 0.5, 0.5)


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
