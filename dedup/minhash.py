"""MinHash signatures for whole batches of documents, bit-identical to datasketch's.

datasketch (affine32 scheme, its default) hashes each shingle with the first 4 bytes of SHA-1,
pre-mixes with the MurmurHash3 finalizer and applies `a*h + b mod 2**32` per permutation. Here
the shingles of a whole batch are hashed in one pass and the permutation step is one
(shingles x num_perm) array operation, reduced per document with `np.minimum.reduceat`; the
result loads as `datasketch.LeanMinHash(seed=..., hashvalues=..., scheme="affine32")`.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import sha1
from typing import Literal

import numpy as np
from datasketch import LeanMinHash, MinHash

from medcurate.dedup.normalize import normalize_for_shingles

SCHEME = "affine32"
EMPTY = np.uint32(0xFFFFFFFF)
# Rows of the (shingles x num_perm) array processed at once: about 8 MiB at 128 permutations.
_CHUNK_SHINGLES = 16_384


def shingles(text: str, kind: Literal["word", "char"], n: int, strip_punctuation: bool = True) -> set[str]:
    """Distinct word or character n-grams of the normalised text; short texts give one shingle."""
    norm = normalize_for_shingles(text, strip_punctuation)
    if kind == "word":
        words = norm.split(" ") if norm else []
        if len(words) <= n:
            return {" ".join(words)} if words else set()
        return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
    if len(norm) <= n:
        return {norm} if norm else set()
    return {norm[i : i + n] for i in range(len(norm) - n + 1)}


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class MinHasher:
    """The permutations of `datasketch.MinHash(num_perm, seed)`, applied to batches."""

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        self.num_perm = num_perm
        self.seed = seed
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
        self._a = a.astype(np.uint32)[None, :]
        self._b = b.astype(np.uint32)[None, :]

    def hash_shingles(self, shingle_sets: Sequence[set[str]]) -> tuple[np.ndarray, np.ndarray]:
        """All shingles of the batch hashed at once; returns (mixed hashes, per-document counts)."""
        counts = np.fromiter((len(s) for s in shingle_sets), dtype=np.int64, count=len(shingle_sets))
        digests = b"".join(sha1(s.encode()).digest()[:4] for doc in shingle_sets for s in doc)
        return _fmix32(np.frombuffer(digests, dtype="<u4").astype(np.uint32)), counts

    def signatures(self, shingle_sets: Sequence[set[str]]) -> np.ndarray:
        """(documents x num_perm) uint32; a document without shingles gets the empty signature."""
        hashes, counts = self.hash_shingles(shingle_sets)
        out = np.full((len(shingle_sets), self.num_perm), EMPTY, dtype=np.uint32)
        ends = np.cumsum(counts)
        starts = ends - counts
        doc = 0
        while doc < len(shingle_sets):
            # Take whole documents until the chunk is full (always at least one document).
            last = max(doc + 1, int(np.searchsorted(ends, starts[doc] + _CHUNK_SHINGLES, side="right")))
            lo, hi = starts[doc], ends[last - 1]
            nonempty = np.flatnonzero(counts[doc:last]) + doc
            if hi > lo:
                permuted = hashes[lo:hi, None] * self._a + self._b
                out[nonempty] = np.minimum.reduceat(permuted, starts[nonempty] - lo, axis=0)
            doc = last
        return out

    def lean_minhash(self, signature: np.ndarray) -> LeanMinHash:
        return LeanMinHash(seed=self.seed, hashvalues=signature, scheme=SCHEME)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a == b)) / a.shape[-1]
