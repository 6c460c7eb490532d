"""MinHash signatures for whole batches of documents, bit-identical to datasketch's.

datasketch (affine32 scheme, its default) hashes each shingle with the first 4 bytes of SHA-1
(here: that, or MurmurHash3_x86_32, the default, passed to datasketch as `hashfunc`),
pre-mixes with the MurmurHash3 finalizer and applies `a*h + b mod 2**32` per permutation. Here a
batch is normalised in Python, concatenated into one UTF-8 buffer, and a compiled kernel (numba)
finds the shingles as byte windows of that buffer, hashes them and folds the permutations into
each signature: no Python object per shingle. The result loads as
`datasketch.LeanMinHash(seed=..., hashvalues=..., scheme="affine32")`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numba
import numpy as np

from medcurate.dedup.normalize import normalize_exact, normalize_for_shingles

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


@numba.njit(cache=True, inline="always")
def _shingle_hash(buf: np.ndarray, start: int, end: int, w: np.ndarray, sha1: bool) -> int:
    """The 32-bit hash of one shingle's bytes, pre-mixed as datasketch's affine32 scheme does."""
    return _fmix32(_sha1_hash32(buf, start, end, w) if sha1 else _murmur3_32(buf, start, end))


@numba.njit(cache=True, inline="always")
def _murmur3_32(buf: np.ndarray, start: int, end: int) -> int:
    """MurmurHash3_x86_32 (seed 0) of buf[start:end]: a tenth of SHA-1's cost per shingle."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = 0
    length = end - start
    p = start
    for _ in range(length // 4):
        k = (
            np.uint64(buf[p])
            | (np.uint64(buf[p + 1]) << 8)
            | (np.uint64(buf[p + 2]) << 16)
            | (np.uint64(buf[p + 3]) << 24)
        )
        k = _rotl((k * c1) & 0xFFFFFFFF, 15)
        h ^= (k * c2) & 0xFFFFFFFF
        h = (_rotl(h, 13) * 5 + 0xE6546B64) & 0xFFFFFFFF
        p += 4
    k = 0
    tail = length & 3
    if tail == 3:
        k ^= np.uint64(buf[p + 2]) << 16
    if tail >= 2:
        k ^= np.uint64(buf[p + 1]) << 8
    if tail >= 1:
        k ^= np.uint64(buf[p])
        k = _rotl((k * c1) & 0xFFFFFFFF, 15)
        h ^= (k * c2) & 0xFFFFFFFF
    return _fmix32(h ^ length)


def murmur3_32(data: bytes) -> int:
    """Pure-Python MurmurHash3_x86_32 (seed 0): `datasketch.MinHash(hashfunc=murmur3_32)` gives the
    same signatures as the default (murmur3) shingle hash here."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & mask

    h, full = 0, len(data) // 4 * 4
    for i in range(0, full, 4):
        k = rotl((int.from_bytes(data[i : i + 4], "little") * c1) & mask, 15)
        h ^= (k * c2) & mask
        h = (rotl(h, 13) * 5 + 0xE6546B64) & mask
    if len(data) & 3:
        k = rotl((int.from_bytes(data[full:], "little") * c1) & mask, 15)
        h ^= (k * c2) & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    return h ^ (h >> 16)


@numba.njit(cache=True)
def _signatures(buf, offsets, words, n, a, b, out, shingles, counts, sha1):  # pragma: no cover - compiled
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
            hashes[0] = _shingle_hash(buf, lo, hi, w, sha1)
        else:
            count = units - n + 1
            for i in range(count):
                hashes[i] = _shingle_hash(buf, starts[i], ends[i + n - 1], w, sha1)
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
def _sort_unique(values, starts, counts, wanted):  # pragma: no cover - compiled
    """Sort each wanted document's slice of values in place and drop repeats (counts shrink)."""
    for d in wanted:
        lo = starts[d]
        chunk = np.sort(values[lo : lo + counts[d]])
        kept = 0
        for i in range(chunk.shape[0]):
            if kept == 0 or chunk[i] != chunk[kept - 1]:
                chunk[kept] = chunk[i]
                kept += 1
        values[lo : lo + kept] = chunk[:kept]
        counts[d] = kept


@numba.njit(cache=True, inline="always")
def _is_space(c: int) -> bool:
    """str.isspace() on one ASCII byte: tab to carriage return, file/group/record/unit separators, space."""
    return 9 <= c <= 13 or 28 <= c <= 32


@numba.njit(cache=True, inline="always")
def _is_alnum(c: int) -> bool:
    return 48 <= c <= 57 or 97 <= c <= 122


@numba.njit(cache=True)
def _forms(
    raw, raw_off, ascii, pre, pre_off, strip_punct, keep_spaces, exact, exact_off, prep, prep_off
):  # pragma: no cover - compiled
    """Exact and shingle forms of many documents into `exact` and `prep` (offsets per document).

    ASCII documents (ascii[d]) are raw text: lower-cased, whitespace runs to one space and stripped
    (normalize_exact), and punctuation to spaces too (normalize_for_shingles), spaces dropped unless
    keep_spaces. Other documents arrive already normalised in Python: raw holds their exact form,
    pre their shingle form; they are copied.
    """
    e = 0
    s = 0
    for d in range(raw_off.shape[0] - 1):
        exact_off[d] = e
        prep_off[d] = s
        lo, hi = raw_off[d], raw_off[d + 1]
        if not ascii[d]:
            for p in range(lo, hi):
                exact[e] = raw[p]
                e += 1
            for p in range(pre_off[d], pre_off[d + 1]):
                prep[s] = pre[p]
                s += 1
            continue
        gap_e = False
        gap_s = False
        start_e = e
        start_s = s
        for p in range(lo, hi):
            c = raw[p]
            if 65 <= c <= 90:
                c += 32
            if _is_space(c):
                gap_e = True
            else:
                if gap_e and e > start_e:
                    exact[e] = 32
                    e += 1
                gap_e = False
                exact[e] = c
                e += 1
            if _is_space(c) or (strip_punct and not _is_alnum(c)):
                gap_s = True
            else:
                if gap_s and keep_spaces and s > start_s:
                    prep[s] = 32
                    s += 1
                gap_s = False
                prep[s] = c
                s += 1
    exact_off[raw_off.shape[0] - 1] = e
    prep_off[raw_off.shape[0] - 1] = s


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

    def sorted(self, wanted: np.ndarray) -> ShingleSets:
        """The wanted documents' hashes as sorted distinct sets, in place (the others unchanged)."""
        counts = self.counts.copy()
        _sort_unique(self.values, self.starts, counts, np.asarray(wanted, dtype=np.int64))
        return ShingleSets(self.values, self.starts, counts)

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


def _pack(parts: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Byte strings as one uint8 buffer and the offsets of each (len + 1 of them)."""
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(part) for part in parts], out=offsets[1:])
    return np.frombuffer(b"".join(parts), dtype=np.uint8), offsets


class MinHasher:
    """The permutations of `datasketch.MinHash(num_perm, seed)`, applied to batches of texts.

    `hash`: how a shingle becomes 32 bits before the permutations. "sha1" is datasketch's default
    (`sha1_hash32`), "murmur3" MurmurHash3_x86_32, about ten times cheaper; either way the
    signature equals `datasketch.MinHash(num_perm, seed, hashfunc=...)` over `Shingling.shingles`
    (`hashfunc=murmur3_32` for "murmur3").
    """

    def __init__(
        self,
        num_perm: int = 128,
        seed: int = 1,
        shingling: Shingling | None = None,
        hash: Literal["murmur3", "sha1"] = "murmur3",
    ) -> None:
        self.num_perm = num_perm
        self.seed = seed
        self.shingling = shingling or Shingling()
        self.hash = hash
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
        _, sets = self.signatures_and_hashes(*self._encode(texts))
        return sets.sorted(np.arange(len(texts)))

    def fingerprints(self, texts: Sequence[str]) -> tuple[list[str], list[int], np.ndarray, ShingleSets]:
        """Exact hashes and sizes (as `exact_text_hash`), signatures, and each text's shingle hashes
        (unsorted, with repeats: `.sorted(wanted)` makes sets of the wanted ones).

        One pass for a whole corpus: ASCII texts are normalised by a compiled kernel, the rest in
        Python; SHA-1 runs once per shingle for both the signature and the set.
        """
        sh = self.shingling
        fast = sh.strip_punctuation and not sh.drop_stopwords
        ascii = np.array([fast and text.isascii() for text in texts], dtype=np.bool_)
        raw_parts, pre_parts, sizes = [], [], []
        for text, plain in zip(texts, ascii, strict=True):
            if plain:
                raw_parts.append(text.encode())
                pre_parts.append(b"")
            else:
                form = normalize_exact(text)
                raw_parts.append(form.encode())
                pre_parts.append(sh.prepare(text).encode())
                sizes.append(len(form))
        raw, raw_off = _pack(raw_parts)
        pre, pre_off = _pack(pre_parts)
        exact = np.empty(raw.shape[0], dtype=np.uint8)
        prep = np.empty(raw.shape[0] + pre.shape[0], dtype=np.uint8)
        exact_off = np.empty(len(texts) + 1, dtype=np.int64)
        prep_off = np.empty(len(texts) + 1, dtype=np.int64)
        keep_spaces = sh.kind == "word" or sh.char_spaces
        _forms(raw, raw_off, ascii, pre, pre_off, True, keep_spaces, exact, exact_off, prep, prep_off)
        view = memoryview(exact)
        hashes = [
            hashlib.blake2b(view[lo:hi], digest_size=16).hexdigest()
            for lo, hi in zip(exact_off[:-1].tolist(), exact_off[1:].tolist(), strict=True)
        ]
        lengths = np.diff(exact_off).tolist()
        others = iter(sizes)
        sizes = [n if plain else next(others) for n, plain in zip(lengths, ascii.tolist(), strict=True)]
        signatures, sets = self.signatures_and_hashes(prep[: prep_off[-1]], prep_off)
        return hashes, sizes, signatures, sets

    def signatures_and_hashes(self, buf: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, ShingleSets]:
        """Signatures of prepared texts (one UTF-8 buffer and offsets) and their raw shingle hashes."""
        signatures, shingles, counts, _ = self._kernel(buf, offsets, collect=True)
        return signatures, ShingleSets(shingles, offsets[:-1] + np.arange(len(offsets) - 1), counts)

    def _encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The prepared texts as one UTF-8 buffer and the byte offsets of each."""
        return _pack([self.shingling.prepare(text).encode() for text in texts])

    def _run(self, texts: Sequence[str], collect: bool) -> tuple[np.ndarray, ...]:
        return self._kernel(*self._encode(texts), collect)

    def _kernel(self, buf: np.ndarray, offsets: np.ndarray, collect: bool) -> tuple[np.ndarray, ...]:
        docs = offsets.shape[0] - 1
        out = np.full((docs, self.num_perm), EMPTY, dtype=np.uint32)
        words = self.shingling.kind == "word"
        shingles = np.empty(buf.shape[0] + docs if collect else 0, dtype=np.uint32)
        counts = np.zeros(docs, dtype=np.int64)
        sha1 = self.hash == "sha1"
        _signatures(buf, offsets, words, self.shingling.n, self._a, self._b, out, shingles, counts, sha1)
        return out, shingles, counts, offsets

    def lean_minhash(self, signature: np.ndarray) -> LeanMinHash:
        from datasketch import LeanMinHash

        return LeanMinHash(seed=self.seed, hashvalues=signature, scheme=SCHEME)
