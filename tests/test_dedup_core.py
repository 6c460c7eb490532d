"""Pure dedup cores: signatures equal datasketch's, banding, perceptual hashes, keeper order."""

from __future__ import annotations

import io

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from PIL import Image

from medcurate.dedup import images, lsh
from medcurate.dedup.beam import key_exact, key_id, node_key
from medcurate.dedup.minhash import MinHasher, shingles
from medcurate.dedup.normalize import exact_text_hash

TEXTS = [
    "Asthma is a chronic disease of the airways that makes breathing difficult.",
    "ASTHMA   is a chronic disease of the airways, that makes breathing difficult!",
    "",
    "ok",
    "Naïve café — résumé of ﬁndings (NFKC ligature) " * 20,
]


@pytest.mark.parametrize("kind,n", [("word", 1), ("word", 5), ("char", 5), ("char", 3)])
@pytest.mark.parametrize("num_perm,seed", [(128, 1), (64, 7)])
def test_signatures_equal_datasketch(kind: str, n: int, num_perm: int, seed: int) -> None:
    sets = [shingles(text, kind, n) for text in TEXTS]
    ours = MinHasher(num_perm, seed).signatures(sets)
    for tokens, signature in zip(sets, ours, strict=True):
        reference = MinHash(num_perm=num_perm, seed=seed)
        reference.update_batch([token.encode() for token in tokens])
        np.testing.assert_array_equal(signature, reference.hashvalues)


def test_batches_larger_than_one_chunk_match_per_document_signatures() -> None:
    # Enough shingles to cross the internal chunk boundary several times.
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5000)]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 3000)))) for _ in range(40)]
    sets = [shingles(text, "word", 2) for text in texts]
    hasher = MinHasher(128, 1)
    batch = hasher.signatures(sets)
    for tokens, row in zip(sets, batch, strict=True):
        np.testing.assert_array_equal(row, hasher.signatures([tokens])[0])


def test_signature_loads_as_lean_minhash_and_queries_datasketch_lsh() -> None:
    hasher = MinHasher(128, 1)
    sigs = hasher.signatures([shingles(t, "word", 3) for t in TEXTS[:2]])
    index = MinHashLSH(threshold=0.5, num_perm=128)
    index.insert("first", hasher.lean_minhash(sigs[0]))
    assert index.query(hasher.lean_minhash(sigs[1])) == ["first"]


def test_exact_hash_ignores_case_whitespace_and_compatibility_forms() -> None:
    assert exact_text_hash("Fever  and\nCOUGH ") == exact_text_hash("fever and cough")
    assert exact_text_hash("ﬁbrosis") == exact_text_hash("fibrosis")
    assert exact_text_hash(" a  b ")[1] == 3
    assert exact_text_hash("fever and cough") != exact_text_hash("fever, and cough")


def test_bands_follow_datasketch_and_near_duplicates_share_a_band() -> None:
    bands, rows = lsh.optimal_bands(0.8, 128)
    assert (bands, rows) == (
        MinHashLSH(threshold=0.8, num_perm=128).b,
        MinHashLSH(threshold=0.8, num_perm=128).r,
    )
    hasher = MinHasher(128, 1)
    base = "the patient was given paracetamol for fever and advised to rest and drink fluids " * 3
    sigs = hasher.signatures(
        [shingles(t, "word", 3) for t in (base, base + " daily", "an unrelated sentence about knees")]
    )
    keys = lsh.text_band_keys(sigs, bands, rows)
    assert (keys[0] == keys[1]).any()
    assert not (keys[0] == keys[2]).any()
    assert lsh.jaccard_verified(sigs[0], sigs[1], 0.8)
    assert not lsh.jaccard_verified(sigs[0], sigs[2], 0.8)


def test_candidate_pairs_all_in_small_buckets_star_in_large() -> None:
    assert lsh.candidate_pairs(["c", "a", "b", "a"]) == [("a", "b"), ("a", "c"), ("b", "c")]
    big = [f"k{i:03d}" for i in range(lsh.ALL_PAIRS_MAX_BUCKET + 5)]
    pairs = lsh.candidate_pairs(reversed(big))
    assert pairs == [("k000", other) for other in big[1:]]


def test_image_bands_find_every_pair_within_the_radius() -> None:
    rng = np.random.default_rng(1)
    radius = 6
    for _ in range(200):
        a = int(rng.integers(0, 2**63)) * 2 + 1
        flips = rng.choice(64, size=int(rng.integers(0, radius + 1)), replace=False)
        b = a
        for bit in flips:
            b ^= 1 << int(bit)
        assert set(lsh.image_band_keys(a, radius)) & set(lsh.image_band_keys(b, radius))
        assert lsh.image_edges([("x", a), ("y", b)], radius) == [("x", "y")]


def _encode(pixels: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _scan(seed: int) -> np.ndarray:
    """A smooth synthetic 'scan': blobs on a gradient, like an X-ray's low-frequency content."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:128, 0:128] / 128.0
    image = 0.3 * x + 0.2 * y
    for cy, cx, r in rng.uniform(0.1, 0.9, size=(5, 3)):
        image += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (0.05 * r))
    return (255 * image / image.max()).astype(np.uint8)


def test_png_and_jpeg_of_the_same_pixels_are_near_duplicates_and_others_are_not() -> None:
    scan = _scan(0)
    png_exact, png_hash = images.fingerprint(_encode(scan, "PNG"))
    jpeg_exact, jpeg_hash = images.fingerprint(_encode(scan, "JPEG", quality=70))
    assert png_exact != jpeg_exact
    assert lsh.hamming(png_hash, jpeg_hash) <= 6
    assert images.fingerprint(_encode(scan, "BMP"))[0] == png_exact
    other_hash = images.fingerprint(_encode(_scan(1), "PNG"))[1]
    assert lsh.hamming(png_hash, other_hash) > 6


def test_node_key_orders_best_quality_then_longest_then_id() -> None:
    keys = [
        node_key("b", 0.9, 10, "ff" * 16),
        node_key("a", 0.9, 10, "ff" * 16),
        node_key("c", 0.9, 500, "00" * 16),
        node_key("d", 0.95, 1, "00" * 16),
        node_key("e", None, 10_000, "00" * 16),
    ]
    assert [key_id(k) for k in sorted(keys)] == ["d", "c", "a", "b", "e"]
    assert key_exact(keys[0]) == "f" * 16
