"""Pure dedup cores: signatures equal datasketch's, banding, perceptual hashes, keeper order."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from datasketch import MinHash, MinHashLSH
from PIL import Image

from medcurate.dedup import images, lsh
from medcurate.dedup.beam import key_exact, key_id, node_key
from medcurate.dedup.clusters import stars
from medcurate.dedup.config import DedupConfig
from medcurate.dedup.minhash import MinHasher, Shingling, murmur3_32, permutations
from medcurate.dedup.normalize import exact_text_hash, normalize_for_shingles

TEXTS = [
    "Asthma is a chronic disease of the airways that makes breathing difficult.",
    "ASTHMA   is a chronic disease of the airways, that makes breathing difficult!",
    "",
    "ok",
    "Naïve café — résumé of ﬁndings (NFKC ligature) " * 20,
]


SHINGLINGS = [
    Shingling("word", 1),
    Shingling("word", 5),
    Shingling("word", 2, drop_stopwords=True),
    Shingling("char", 5),
    Shingling("char", 3, char_spaces=True, strip_punctuation=False),
]


@pytest.mark.parametrize("shingling", SHINGLINGS, ids=repr)
@pytest.mark.parametrize("num_perm,seed", [(128, 1), (64, 7)])
@pytest.mark.parametrize("hash_name", ["sha1", "murmur3"])
def test_signatures_equal_datasketch(shingling: Shingling, num_perm: int, seed: int, hash_name: str) -> None:
    ours = MinHasher(num_perm, seed, shingling, hash_name).signatures(TEXTS)
    hashfunc = {"hashfunc": murmur3_32} if hash_name == "murmur3" else {}  # sha1: datasketch's default
    for text, signature in zip(TEXTS, ours, strict=True):
        reference = MinHash(num_perm=num_perm, seed=seed, **hashfunc)
        reference.update_batch([token.encode() for token in shingling.shingles(text)])
        np.testing.assert_array_equal(signature, reference.hashvalues)


def test_murmur3_matches_published_vectors_and_permutations_match_datasketch() -> None:
    assert murmur3_32(b"") == 0
    assert murmur3_32(b"hello") == 0x248BFA47
    assert murmur3_32(b"The quick brown fox jumps over the lazy dog") == 0x2E4FF723
    for num_perm, seed in [(128, 1), (64, 7), (256, 42)]:
        a, b = permutations(num_perm, seed)
        expected_a, expected_b = MinHash(num_perm=num_perm, seed=seed).permutations
        np.testing.assert_array_equal(a, expected_a)
        np.testing.assert_array_equal(b, expected_b)


def _mixed_texts() -> list[str]:
    """ASCII prose, control characters, punctuation runs, and non-ASCII text (compatibility forms)."""
    rng = np.random.default_rng(5)
    ascii_chars = [chr(c) for c in range(128)]
    wide = [chr(c) for c in range(0x2100)]
    texts = [*TEXTS, "  \x1c\x1fA_b--C  d\te  ", "12-14 May, vol. 3(2):45-67", "ＡＢＣ １２３ ﬁx"]
    for i in range(300):
        pool = ascii_chars if i % 2 else wide
        texts.append("".join(rng.choice(pool, size=int(rng.integers(0, 50)))))
    return texts


def test_fast_normalisation_equals_the_regex_rules() -> None:
    import re

    from medcurate.dedup.normalize import _nfkc_casefold, normalize_exact, normalize_for_shingles

    for text in _mixed_texts():
        folded = _nfkc_casefold(text)
        assert normalize_exact(text) == re.sub(r"\s+", " ", folded).strip()
        assert normalize_for_shingles(text) == re.sub(r"[\W_]+", " ", folded).strip()


@pytest.mark.parametrize("shingling", SHINGLINGS, ids=repr)
def test_one_pass_fingerprints_equal_the_per_text_functions(shingling: Shingling) -> None:
    texts = _mixed_texts()
    hasher = MinHasher(64, 3, shingling)
    hashes, sizes, signatures, raw = hasher.fingerprints(texts)
    assert [(h, n) for h, n in zip(hashes, sizes, strict=True)] == [exact_text_hash(t) for t in texts]
    np.testing.assert_array_equal(signatures, hasher.signatures(texts))
    sets = raw.sorted(np.arange(len(texts)))
    for index, (_, expected) in enumerate(zip(texts, hasher.signatures_and_shingles(texts)[1], strict=True)):
        np.testing.assert_array_equal(sets.of(index), expected)


def test_bands_follow_datasketch_for_common_parameters() -> None:
    from datasketch.lsh import _optimal_param

    for threshold in (0.3, 0.5, 0.7, 0.8, 0.9):
        for num_perm in (64, 128, 256):
            assert lsh.optimal_bands(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_bucket_candidates_apply_the_per_bucket_rule() -> None:
    rng = np.random.default_rng(2)
    keys = rng.integers(0, 6, size=(60, 3)).astype(np.uint64)
    keys[:20, 0] = 99  # one bucket above ALL_PAIRS_MAX_BUCKET: a star around its first row
    expected = set()
    for band in range(keys.shape[1]):
        for value in np.unique(keys[:, band]):
            members = [f"{i:03d}" for i in np.flatnonzero(keys[:, band] == value)]
            expected |= {(int(a), int(b)) for a, b in lsh.candidate_pairs(members)}
    assert {tuple(map(int, pair)) for pair in lsh.bucket_candidates(keys)} == expected


def test_exact_verification_follows_set_jaccard_containment_and_numbers() -> None:
    from medcurate.dedup.boilerplate import DocumentFrequencies, TextVerifier
    from medcurate.dedup.config import DedupConfig
    from medcurate.dedup.minhash import ShingleSets

    centre = np.arange(0, 10, dtype=np.uint32)
    others = [np.arange(0, 6), np.arange(0, 5), np.arange(3, 20), np.arange(40, 50), np.empty(0)]
    sets = ShingleSets.pack([centre, *(o.astype(np.uint32) for o in others)])
    signatures = np.zeros((len(others) + 1, 16), dtype=np.uint32)
    rest = np.arange(1, len(others) + 1)
    for verify, expected in [
        ("jaccard", [True, True, False, False, False]),  # 6/10, 5/10, 7/20, 0, empty
        ("containment", [True, True, True, False, False]),  # 6/6, 5/5, 7/10, 0, empty
    ]:
        verifier = TextVerifier(DedupConfig(threshold=0.5, verify=verify, num_perm=16))
        close = verifier.close(DocumentFrequencies(), signatures, sets, 0, rest)
        assert close.tolist() == expected
    numbers = ShingleSets.pack(
        [np.array([1, 2, 3], dtype=np.uint32), np.array([1, 2], dtype=np.uint32)]
        + [np.array([7, 8], dtype=np.uint32), np.empty(0, dtype=np.uint32)] * 2
    )
    verifier = TextVerifier(DedupConfig(threshold=0.5, numbers_agree=0.5, num_perm=16))
    close = verifier.close(DocumentFrequencies(), signatures, sets, 0, rest, numbers)
    # The second text's numbers differ from the centre's; a text without numbers is not checked.
    assert close.tolist() == [True, False, False, False, False]
    # Against the centre's numbers {1, 2, 3, 4}: the first text shares half of its {1, 5} and misses
    # one; the second shares three quarters of {1, 2, 3, 9} and misses one.
    numbers = ShingleSets.pack(
        [np.array(values, dtype=np.uint32) for values in ([1, 2, 3, 4], [1, 5], [1, 2, 3, 9], [], [], [])]
    )
    for agree, missing, expected in [
        (0.5, None, [True, True]),
        (None, 1, [True, True]),
        (None, 0, [False, False]),
        (0.6, 1, [False, True]),
    ]:
        config = DedupConfig(threshold=0.5, numbers_agree=agree, numbers_missing=missing, num_perm=16)
        close = TextVerifier(config).close(DocumentFrequencies(), signatures, sets, 0, rest[:2], numbers)
        assert close.tolist() == expected, (agree, missing)


def test_near_years_count_as_shared_only_beside_another_shared_number() -> None:
    """An online-first and a print year of one article (same volume and page) are one record; a
    conference paper and the next year's journal article, sharing nothing else, are two."""
    from medcurate.dedup.boilerplate import DocumentFrequencies, TextVerifier, number_set
    from medcurate.dedup.minhash import ShingleSets

    texts = [
        "Widget counts in Northfield Quill 2019 12 345",
        "Widget counts in Northfield Quill 2018 12",
        "Widget counts in Northfield Quill 2018 15 501",
        "Widget counts in Northfield Quill 2018",
        "Widget counts in Northfield Quill 2016 12 346",
    ]
    hasher = DedupConfig(shingle="char", ngram=5).hasher()
    signatures, sets = hasher.signatures(texts), hasher.shingle_sets(texts)
    numbers = ShingleSets.pack([number_set(text) for text in texts])
    others = np.arange(1, len(texts))
    for slack, expected in [(0, [False, False, False, False]), (1, [True, False, False, False])]:
        config = DedupConfig(
            threshold=0.5, shingle="char", ngram=5, numbers_agree=0.6, numbers_year_slack=slack
        )
        close = TextVerifier(config).close(DocumentFrequencies(), signatures, sets, 0, others, numbers)
        assert close.tolist() == expected, slack


def test_citation_normalisation_undoes_what_exports_change() -> None:
    from medcurate.dedup.normalize import normalize_citation

    def words(text: str) -> list[str]:
        return normalize_for_shingles(normalize_citation(text)).split()

    plain = "Widget counts in Northfield: a cohort study. Quill Marsh 2019 12 1234-1245"
    for variant in [
        "Widget counts in Northfield: a cohort study. [Review] [41 refs] Quill Marsh 2019 12 1234-45",
        "Widget counts in <i>Northfield</i>: a cohort study. [Article in German] Quill Marsh 2019 12 1234-1245",
        "Widget counts in Northfield: a cohort study.[Erratum appears in J Widgets. 2020;3(1):7] "
        "Quill Marsh 2019 12 1234-1245",
        "W\u00eddget co\u0308unts in Northfield: a cohort study. Quill Marsh 2019 12 1234\u20131245",
    ]:
        assert words(variant) == words(plain), variant
    assert words("Arms &amp; legs & more") == ["arms", "and", "legs", "and", "more"]
    # A title wholly in brackets (a translated title) keeps its words; markup-like comparisons stay.
    assert words("[Widget counts in Northfield]") == ["widget", "counts", "in", "northfield"]
    assert words("age < 50 and > 65") == ["age", "50", "and", "65"]
    # Ranges that are not abbreviated, or would go backwards, stay as they are.
    assert words("3-7 year 45-12") == ["3", "7", "year", "45", "12"]


def test_venue_initials_agree_for_full_and_abbreviated_journal_titles() -> None:
    from medcurate.dedup.normalize import venue_initials

    full = venue_initials("The Annals of Fictional Dermatology & Placeholder Science")
    assert full == "afdps"
    # ISO 4 style: words truncated, articles and conjunctions dropped, punctuation and case free.
    assert venue_initials("Ann. Fict. Dermatol. Placeholder Sci.") == full
    assert venue_initials("ANN FICT DERMATOL PLACEHOLDER SCI") == full
    # Another journal, an acronym, and no venue stay apart.
    assert venue_initials("Annals of Fictional Cardiology") == "afc"
    assert venue_initials("AFDPS") == "a"
    assert venue_initials("") == ""


def test_signature_values_name_their_shingles_and_rare_ones_are_found() -> None:
    """The verifier's premise: each signature value maps back to one of the document's shingles."""
    from medcurate.dedup.boilerplate import DocumentFrequency, TextVerifier
    from medcurate.dedup.config import DedupConfig

    config = DedupConfig(boilerplate_min_docs=3)
    common = "the parents of an affected person each carry one copy of the altered gene"
    texts = [f"{name} {name} is inherited. {common}" for name in ("alpha", "beta", "gamma", "delta")]
    hasher = MinHasher(config.num_perm, config.seed, config.shingling())
    signatures, shingles = hasher.signatures_and_shingles(texts)
    np.testing.assert_array_equal(signatures, hasher.signatures(texts))
    verifier = TextVerifier(config)
    named = (signatures - verifier._b) * verifier._a_inverse
    for row, own in zip(named, shingles, strict=True):
        assert np.isin(row, own).all()
    combine = DocumentFrequency(config.df_sketch_bits)
    frequencies = combine.add_input(combine.create_accumulator(), (len(texts), np.concatenate(shingles)))
    rare = verifier.rare(frequencies, signatures)
    # Shingles holding a name are in one document (rare), the shared sentence's in all four.
    in_docs = np.array([[sum(h in set(own) for own in shingles) for h in row] for row in named])
    np.testing.assert_array_equal(rare, in_docs < config.boilerplate_min_docs)
    assert set(in_docs.ravel()) == {1, 4}
    assert rare.any(axis=1).all() and not rare.all(axis=1).any()


def test_long_shingles_over_several_sha1_blocks_match_datasketch() -> None:
    rng = np.random.default_rng(0)
    words = ["x" * int(k) for k in rng.integers(1, 90, size=60)]  # 5-grams of 5 to 450 bytes
    shingling = Shingling("word", 5)
    signature = MinHasher(128, 1, shingling, "sha1").signatures([" ".join(words)])[0]
    reference = MinHash(num_perm=128, seed=1)
    reference.update_batch([token.encode() for token in shingling.shingles(" ".join(words))])
    np.testing.assert_array_equal(signature, reference.hashvalues)


def test_a_batch_gives_each_document_its_own_signature() -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(5000)]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(0, 3000)))) for _ in range(40)]
    hasher = MinHasher(128, 1, Shingling("word", 2))
    batch = hasher.signatures(texts)
    for text, row in zip(texts, batch, strict=True):
        np.testing.assert_array_equal(row, hasher.signatures([text])[0])


def test_char_shingles_skip_spaces_unless_asked() -> None:
    assert Shingling("char", 3).shingles("ab cd") == {"abc", "bcd"}
    assert Shingling("char", 3, char_spaces=True).shingles("ab cd") == {"ab ", "b c", " cd"}
    assert Shingling("word", 2, drop_stopwords=True).shingles("The cause of the fever") == {"cause fever"}


def test_signature_loads_as_lean_minhash_and_queries_datasketch_lsh() -> None:
    hasher = MinHasher(128, 1, Shingling("word", 3))
    sigs = hasher.signatures(TEXTS[:2])
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
    hasher = MinHasher(128, 1, Shingling("word", 3))
    base = "the patient was given paracetamol for fever and advised to rest and drink fluids " * 3
    sigs = hasher.signatures([base, base + " daily", "an unrelated sentence about knees"])
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


def test_stars_split_a_chain_at_the_unverified_link() -> None:
    # a~b, b~c, c~d but a is not close to c or d: two stars, never one chained cluster.
    close = {(0, 1), (1, 2), (2, 3)}

    def close_to(centre: int, rest: np.ndarray) -> np.ndarray:
        return np.array([(min(centre, r), max(centre, r)) in close or r == centre for r in rest])

    assert [list(s) for s in stars(4, close_to)] == [[0, 1], [2, 3]]


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


def _pydicom_test_file(name: str) -> bytes:
    import pydicom

    path = Path(pydicom.__file__).parent / "data" / "test_files" / name
    if not path.exists():
        pytest.skip(f"{name} is not in this pydicom wheel")
    return path.read_bytes()


def test_dicom_re_encodings_and_a_png_twin_meet() -> None:
    rle = _pydicom_test_file("SC_rgb_rle.dcm")
    lossy = _pydicom_test_file("SC_rgb_jpeg_lossy_gdcm.dcm")
    rle_16bit = _pydicom_test_file("SC_rgb_rle_16bit.dcm")
    assert images.is_dicom(rle) and not images.is_dicom(_encode(_scan(0), "PNG"))
    pixels = images.decode_pixels(rle)
    exact, phash = images.fingerprint(rle)
    # A PNG of the decoded pixels is an exact duplicate; re-encodings are near duplicates.
    assert images.fingerprint(_encode(pixels, "PNG")) == (exact, phash)
    for other in (lossy, rle_16bit):
        other_exact, other_hash = images.fingerprint(other)
        assert other_exact != exact
        assert lsh.hamming(phash, other_hash) <= 6


def test_notice_kinds_follow_the_leading_words_or_the_whole_text() -> None:
    from medcurate.dedup.config import NOTICE_KINDS
    from medcurate.dedup.notices import NoticeFinder

    kinds = {name: number for number, name in enumerate(sorted(NOTICE_KINDS), start=1)}
    leading, anywhere = NoticeFinder(NOTICE_KINDS, 3), NoticeFinder(NOTICE_KINDS, None)
    cases = [
        ("Erratum: Ferritin in blood donors of Lowmoor", "erratum", "erratum"),
        ("Authors' reply: Comment on ferritin in donors", "reply", "reply"),  # the first phrase decides
        ("Notice of retraction. Ferritin in donors", "retraction", "retraction"),
        ("EXPRESSION OF CONCERN: ferritin in donors", "concern", "concern"),
        ("Ferritin in blood donors of Lowmoor: a reply", None, "reply"),
        ("Ferritin in blood donors of Lowmoor", None, None),
        ("Expressions of concerns about ferritin", None, None),  # whole words and phrases only
    ]
    for text, first, whole in cases:
        assert leading.kind(text) == kinds.get(first, 0), text
        assert anywhere.kind(text) == kinds.get(whole, 0), text
    # A long text: only its opening is normalised for a scope, with the same answer.
    long = "Corrigendum to ferritin " + "in donors " * 5000
    assert leading.kind(long) == kinds["erratum"] and anywhere.kind(long) == kinds["erratum"]
    assert NoticeFinder({}, 3).kinds(["Erratum: x"]).tolist() == [0]


def test_a_notice_never_joins_the_article_it_names() -> None:
    from medcurate.dedup.core import assign_text_clusters

    article = "Ferritin and iron stores in blood donors of Lowmoor Ashgrove Pell 2019 41 112-118"
    texts = {
        "pubmed": article,
        "embase": article.replace("112-118", "112-8"),
        "erratum": "Erratum: " + article,
        "erratum2": "Erratum. " + article.replace("112-118", "112-8"),
        "reply": "Reply: " + article,
    }
    config = DedupConfig(threshold=0.5, shingle="char", ngram=5, numbers_agree=None, notices=True)
    rows = assign_text_clusters(list(texts), list(texts.values()), config)
    cluster = {row["id"]: row["cluster"] for row in rows}
    assert cluster["pubmed"] == cluster["embase"]
    assert cluster["erratum"] == cluster["erratum2"] != cluster["pubmed"]
    assert cluster["reply"] not in (cluster["pubmed"], cluster["erratum"])
    # Without the rule, text similarity merges them all.
    off = assign_text_clusters(
        list(texts), list(texts.values()), config.model_copy(update={"notices": False})
    )
    assert len({row["cluster"] for row in off}) == 1
    # One kind for every phrase: a notice still never joins a non-notice, but notices join each other.
    one = config.model_copy(update={"notice_kinds": {"notice": ["erratum", "reply"]}})
    cluster = {
        row["id"]: row["cluster"] for row in assign_text_clusters(list(texts), list(texts.values()), one)
    }
    assert cluster["erratum"] == cluster["reply"] != cluster["pubmed"] == cluster["embase"]


def test_payloads_round_trip_with_their_notice_kind() -> None:
    from medcurate.dedup.boilerplate import pack_payload, unpack_payloads

    sig = np.arange(16, dtype=np.uint32)
    payloads = [
        pack_payload(sig, np.array([3, 5], dtype=np.uint32), np.array([9], dtype=np.uint32), 4),
        pack_payload(sig + 1, np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.uint32)),
    ]
    sigs, sets, numbers, kinds = unpack_payloads(payloads, 16)
    assert sigs.tolist() == [sig.tolist(), (sig + 1).tolist()]
    assert sets.counts.tolist() == [2, 0] and numbers.counts.tolist() == [1, 0]
    assert kinds.tolist() == [4, 0]
