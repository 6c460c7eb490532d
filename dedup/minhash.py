"""MinHash signatures for whole batches of documents, bit-identical to datasketch's.

datasketch (affine32 scheme, its default) hashes each shingle with the first 4 bytes of SHA-1,
pre-mixes with the MurmurHash3 finalizer and applies `a*h + b mod 2**32` per permutation. Here a
batch is normalised in Python, concatenated into one UTF-8 buffer, and a compiled kernel (numba)
finds the shingles as byte windows of that buffer, hashes them and folds the permutations into
each signature: no Python object per shingle. The result loads as
`datasketch.LeanMinHash(seed=..., hashvalues=..., scheme="affine32")`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numba
import numpy as np

from medcurate.dedup.normalize import normalize_for_shingles

if TYPE_CHECKING:
    from datasketch import LeanMinHash

SCHEME = "affine32"
EMPTY = np.uint32(0xFFFFFFFF)
_SPACE = 32


@dataclass(frozen=True)
class Shingling:
    """How a text becomes shingles: word or character n-grams of its normalised form."""

    kind: Literal["word", "char"] = "word"
    n: int = 5
    strip_punctuation: bool = True
    drop_stopwords: bool = False
    char_spaces: bool = False

    def prepare(self, text: str) -> str:
        """The normalised text whose windows are the shingles (char n-grams may skip spaces)."""
        norm = normalize_for_shingles(text, self.strip_punctuation, self.drop_stopwords)
        return norm if self.kind == "word" or self.char_spaces else norm.replace(" ", "")

    def shingles(self, text: str) -> set[str]:
        """The shingle set, as datasketch or rensa would be fed it; a short text is one shingle."""
        prepared = self.prepare(text)
        units = prepared.split(" ") if self.kind == "word" else list(prepared)
        if not prepared:
            return set()
        if len(units) <= self.n:
            return {prepared}
        sep = " " if self.kind == "word" else ""
        return {sep.join(units[i : i + self.n]) for i in range(len(units) - self.n + 1)}


@numba.njit(cache=True, inline="always")
def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF


@numba.njit(cache=True, inline="always")
def _message_word(buf: np.ndarray, start: int, length: int, blocks: int, q: int) -> int:
    """Big-endian word at byte q of the padded message (bytes, 0x80, zeros, 64-bit bit length)."""
    if q + 4 <= length:
        p = start + q
        return (
            (np.uint64(buf[p]) << 24)
            | (np.uint64(buf[p + 1]) << 16)
            | (np.uint64(buf[p + 2]) << 8)
            | buf[p + 3]
        )
    if q == blocks * 64 - 4:
        return (length * 8) & 0xFFFFFFFF
    if q == blocks * 64 - 8:
        return (length * 8) >> 32
    if q > length:
        return 0
    word = 0
    for j in range(4):
        byte = buf[start + q + j] if q + j < length else (0x80 if q + j == length else 0)
        word = (word << 8) | byte
    return word


@numba.njit(cache=True)
def _sha1_hash32(buf: np.ndarray, start: int, end: int, w: np.ndarray) -> int:
    """datasketch's sha1_hash32 of buf[start:end]: SHA-1's first 4 digest bytes, read little-endian."""
    length = end - start
    blocks = (length + 8) // 64 + 1
    h0, h1, h2, h3, h4 = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0
    for index in range(blocks):
        for i in range(16):
            w[i] = _message_word(buf, start, length, blocks, index * 64 + 4 * i)
        for i in range(16, 80):
            w[i] = _rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1)
        a, b, c, d, e = h0, h1, h2, h3, h4
        for i in range(20):
            temp = (_rotl(a, 5) + ((b & c) | (~b & d & 0xFFFFFFFF)) + e + 0x5A827999 + w[i]) & 0xFFFFFFFF
            e, d, c, b, a = d, c, _rotl(b, 30), a, temp
        for i in range(20, 40):
            temp = (_rotl(a, 5) + (b ^ c ^ d) + e + 0x6ED9EBA1 + w[i]) & 0xFFFFFFFF
            e, d, c, b, a = d, c, _rotl(b, 30), a, temp
        for i in range(40, 60):
            temp = (_rotl(a, 5) + ((b & c) | (b & d) | (c & d)) + e + 0x8F1BBCDC + w[i]) & 0xFFFFFFFF
            e, d, c, b, a = d, c, _rotl(b, 30), a, temp
        for i in range(60, 80):
            temp = (_rotl(a, 5) + (b ^ c ^ d) + e + 0xCA62C1D6 + w[i]) & 0xFFFFFFFF
            e, d, c, b, a = d, c, _rotl(b, 30), a, temp
        h0 = (h0 + a) & 0xFFFFFFFF
        h1 = (h1 + b) & 0xFFFFFFFF
        h2 = (h2 + c) & 0xFFFFFFFF
        h3 = (h3 + d) & 0xFFFFFFFF
        h4 = (h4 + e) & 0xFFFFFFFF
    return ((h0 & 0xFF) << 24) | ((h0 >> 8 & 0xFF) << 16) | ((h0 >> 16 & 0xFF) << 8) | (h0 >> 24)


@numba.njit(cache=True, inline="always")
def _fmix32(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & 0xFFFFFFFF
    return h ^ (h >> 16)


@numba.njit(cache=True, inline="always")
def _units(buf, lo, hi, words, starts, ends):  # pragma: no cover - compiled
    """Words (or UTF-8 characters) of buf[lo:hi]: their byte starts and ends; returns their number."""
    units = 0
    for p in range(lo, hi):
        if words:
            if buf[p] != _SPACE and (p == lo or buf[p - 1] == _SPACE):
                starts[units] = p
            if buf[p] != _SPACE and (p + 1 == hi or buf[p + 1] == _SPACE):
                ends[units] = p + 1
                units += 1
        elif buf[p] & 0xC0 != 0x80:  # first byte of a UTF-8 character
            if units > 0:
                ends[units - 1] = p
            starts[units] = p
            units += 1
    if units > 0 and not words:
        ends[units - 1] = hi
    return units


@numba.njit(cache=True)
def _signatures(buf, offsets, words, n, a, b, out, shingles, counts):  # pragma: no cover - compiled
    """Row d of `out` = MinHash of the n-gram windows of buf[offsets[d]:offsets[d+1]].

    When `shingles` is not empty, document d's pre-mixed shingle hashes also go to
    shingles[offsets[d] + d:] and their number to counts[d] (for document frequencies).
    """
    w = np.empty(80, dtype=np.uint64)
    starts = np.empty(buf.shape[0] + 1, dtype=np.int64)
    ends = np.empty(buf.shape[0] + 1, dtype=np.int64)
    hashes = np.empty(buf.shape[0] + 1, dtype=np.uint32)
    for d in range(offsets.shape[0] - 1):
        lo, hi = offsets[d], offsets[d + 1]
        units = _units(buf, lo, hi, words, starts, ends)
        if units == 0:
            continue
        if units <= n:
            count = 1
            hashes[0] = _fmix32(_sha1_hash32(buf, lo, hi, w))
        else:
            count = units - n + 1
            for i in range(count):
                hashes[i] = _fmix32(_sha1_hash32(buf, starts[i], ends[i + n - 1], w))
        if shingles.shape[0]:
            shingles[lo + d : lo + d + count] = hashes[:count]
            counts[d] = count
        for k in range(a.shape[0]):
            ak, bk = a[k], b[k]
            low = np.uint32(0xFFFFFFFF)
            for i in range(count):
                v = np.uint32(ak * hashes[i] + bk)
                low = min(low, v)
            out[d, k] = low


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of `datasketch.MinHash(num_perm, seed)`'s affine32 scheme, drawn the same way.

    Drawn here rather than read from a MinHash so that the command's cold start does not import
    datasketch (and scipy behind it); a test checks they equal datasketch's.
    """
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


@numba.njit(cache=True)
def _shingle_sets(buf, offsets, words, n, values, counts):  # pragma: no cover - compiled
    """Each document's sorted distinct pre-mixed shingle hashes into values[offsets[d] + d:], their
    number into counts[d]: the shingle set that exact verification compares."""
    w = np.empty(80, dtype=np.uint64)
    starts = np.empty(buf.shape[0] + 1, dtype=np.int64)
    ends = np.empty(buf.shape[0] + 1, dtype=np.int64)
    for d in range(offsets.shape[0] - 1):
        lo, hi = offsets[d], offsets[d + 1]
        units = _units(buf, lo, hi, words, starts, ends)
        if units == 0:
            continue
        base = lo + d
        if units <= n:
            values[base] = _fmix32(_sha1_hash32(buf, lo, hi, w))
            counts[d] = 1
            continue
        count = units - n + 1
        for i in range(count):
            values[base + i] = _fmix32(_sha1_hash32(buf, starts[i], ends[i + n - 1], w))
        chunk = np.sort(values[base : base + count])
        kept = 1
        for i in range(1, count):
            if chunk[i] != chunk[kept - 1]:
                chunk[kept] = chunk[i]
                kept += 1
        values[base : base + kept] = chunk[:kept]
        counts[d] = kept


@numba.njit(cache=True)
def intersections(values, starts, counts, left, right):  # pragma: no cover - compiled
    """|A & B| for each pair (left[k], right[k]) of sorted distinct sets stored at values[starts[i]:]."""
    out = np.zeros(left.shape[0], dtype=np.int64)
    for k in range(left.shape[0]):
        i, j = starts[left[k]], starts[right[k]]
        i_end, j_end = i + counts[left[k]], j + counts[right[k]]
        shared = 0
        while i < i_end and j < j_end:
            x, y = values[i], values[j]
            if x == y:
                shared += 1
                i += 1
                j += 1
            elif x < y:
                i += 1
            else:
                j += 1
        out[k] = shared
    return out


@dataclass(frozen=True)
class ShingleSets:
    """Distinct shingle hashes of many documents, packed: document d is values[starts[d]:][:counts[d]]."""

    values: np.ndarray
    starts: np.ndarray
    counts: np.ndarray

    def of(self, index: int) -> np.ndarray:
        return self.values[self.starts[index] : self.starts[index] + self.counts[index]]

    def flat(self) -> np.ndarray:
        """Every document's values, concatenated (a value once per document holding it)."""
        total = int(self.counts.sum())
        first = np.cumsum(self.counts) - self.counts
        return self.values[np.repeat(self.starts - first, self.counts) + np.arange(total)]

    @classmethod
    def pack(cls, sets: Sequence[np.ndarray]) -> ShingleSets:
        counts = np.array([len(s) for s in sets], dtype=np.int64)
        starts = np.zeros(len(sets), dtype=np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        values = np.concatenate(sets).astype(np.uint32) if sets else np.empty(0, dtype=np.uint32)
        return cls(values, starts, counts)


class MinHasher:
    """The permutations of `datasketch.MinHash(num_perm, seed)`, applied to batches of texts."""

    def __init__(self, num_perm: int = 128, seed: int = 1, shingling: Shingling | None = None) -> None:
        self.num_perm = num_perm
        self.seed = seed
        self.shingling = shingling or Shingling()
        self._a, self._b = permutations(num_perm, seed)

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """(documents x num_perm) uint32; a text without shingles gets the empty signature."""
        return self._run(texts, collect=False)[0]

    def signatures_and_shingles(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Signatures, and each document's distinct pre-mixed shingle hashes (what the signature's
        values are permutations of: `a*h + b` with odd `a`, so each value names its shingle)."""
        signatures, shingles, counts, offsets = self._run(texts, collect=True)
        starts = offsets[:-1] + np.arange(len(texts))
        return signatures, [np.unique(shingles[s : s + c]) for s, c in zip(starts, counts, strict=True)]

    def shingle_sets(self, texts: Sequence[str]) -> ShingleSets:
        """Each text's distinct pre-mixed shingle hashes, sorted: the sets exact verification compares."""
        buf, offsets = self._encode(texts)
        values = np.empty(buf.shape[0] + len(texts), dtype=np.uint32)
        counts = np.zeros(len(texts), dtype=np.int64)
        _shingle_sets(buf, offsets, self.shingling.kind == "word", self.shingling.n, values, counts)
        return ShingleSets(values, offsets[:-1] + np.arange(len(texts)), counts)

    def _encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The prepared texts as one UTF-8 buffer and the byte offsets of each."""
        encoded = [self.shingling.prepare(text).encode() for text in texts]
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets

    def _run(self, texts: Sequence[str], collect: bool) -> tuple[np.ndarray, ...]:
        buf, offsets = self._encode(texts)
        out = np.full((len(texts), self.num_perm), EMPTY, dtype=np.uint32)
        words = self.shingling.kind == "word"
        shingles = np.empty(buf.shape[0] + len(texts) if collect else 0, dtype=np.uint32)
        counts = np.zeros(len(texts), dtype=np.int64)
        _signatures(buf, offsets, words, self.shingling.n, self._a, self._b, out, shingles, counts)
        return out, shingles, counts, offsets

    def lean_minhash(self, signature: np.ndarray) -> LeanMinHash:
        from datasketch import LeanMinHash

        return LeanMinHash(seed=self.seed, hashvalues=signature, scheme=SCHEME)
