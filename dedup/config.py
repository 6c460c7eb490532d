from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from medcurate.schemas.config import StrictModel

if TYPE_CHECKING:
    from medcurate.dedup.minhash import MinHasher, Shingling

# Notice phrases per kind (`dedup.notices`), as normalised words (lower case, no punctuation),
# after NLM's publication types: Published Erratum, Comment, Letter (replies), Retraction of
# Publication, Expression of Concern. "retracted" is not one: a retracted article is still the
# article (NLM "Retracted Publication"); only the retraction notice is a record of its own.
NOTICE_KINDS: dict[str, list[str]] = {
    "erratum": ["erratum", "errata", "corrigendum", "corrigenda", "correction", "corrections"],
    "comment": ["comment", "comments", "commentary"],
    "reply": ["reply", "response"],
    "retraction": ["retraction"],
    "concern": ["expression of concern"],
}


class DedupConfig(StrictModel):
    exact: bool = True
    near: bool = True
    threshold: float = Field(
        0.8, gt=0, le=1, description="estimated Jaccard above which texts are near-duplicates"
    )
    num_perm: int = Field(128, ge=16)
    shingle: Literal["word", "char"] = "word"
    ngram: int = Field(5, ge=1)
    seed: int = 1
    shingle_hash: Literal["murmur3", "sha1"] = Field(
        "murmur3",
        description="32-bit shingle hash: murmur3 (fast) or sha1 (datasketch's default, for signatures "
        "interchangeable with a plain datasketch.MinHash)",
    )
    strip_punctuation: bool = Field(
        True, description="drop punctuation before shingling (exact hashes keep it)"
    )
    drop_stopwords: bool = Field(False, description="drop English function words before shingling")
    char_spaces: bool = Field(
        False,
        description="keep spaces inside character n-grams (off: n-grams span words, fewer shared fragments)",
    )
    verify: Literal["jaccard", "containment", "estimate"] = Field(
        "jaccard",
        description="how LSH candidates are checked: exact Jaccard of their shingle sets, containment "
        "(shared shingles over the smaller set), or the MinHash estimate of Jaccard",
    )
    numbers_agree: float | None = Field(
        0.6,
        ge=0,
        le=1,
        description="if set, two texts that both contain numbers must share at least this share of the "
        "smaller set of digit runs (years, volumes, pages, doses) to be near-duplicates",
    )
    numbers_missing: int | None = Field(
        None,
        ge=0,
        description="if set, two texts that both contain numbers may miss at most this many digit runs "
        "of the smaller set in the other (a share alone lets shared numbers of a title outvote a "
        "different volume and pages)",
    )
    numbers_year_slack: int = Field(
        0,
        ge=0,
        description="with the number rules, years (1800-2099) this far apart count as the same "
        "number: an article's online-first and print years",
    )
    citations: bool = Field(
        False,
        description="texts are bibliographic records: markup, database annotations ('[Review]', "
        "'[Article in German]') and accents are dropped, '&' is 'and' and abbreviated page ranges are "
        "written in full before comparison (exact hashes keep the text as it is)",
    )
    notices: bool = Field(
        False,
        description="a notice (erratum, comment, reply, retraction) is never a near-duplicate of a "
        "text of another kind or of no notice kind; an option for bibliographic records",
    )
    notice_kinds: dict[str, list[str]] = Field(
        default_factory=lambda: {kind: list(words) for kind, words in NOTICE_KINDS.items()},
        description="with `notices`: notice phrases per kind (lower case, no punctuation)",
    )
    notice_scope: int | None = Field(
        3,
        ge=1,
        description="a notice phrase must start within this many leading words (a title's opening); "
        "null: anywhere in the text",
    )
    local_max_bytes: int = Field(
        1 << 28,
        ge=0,
        description="`medcurate dedup text` inputs up to this size run in one process; larger ones "
        "through the Beam transform",
    )
    boilerplate: bool = Field(
        False,
        description="templated texts (same boilerplate, different subject) must also agree on their "
        "rare shingles to be near-duplicates",
    )
    boilerplate_share: float = Field(
        0.001, gt=0, le=1, description="a shingle in at least this share of the texts is boilerplate"
    )
    boilerplate_min_docs: int = Field(10, ge=2, description="... and in at least this many texts")
    rare_threshold: float = Field(
        0.5, ge=0, le=1, description="estimated Jaccard the rare (non-boilerplate) shingles must reach"
    )
    rare_min_share: float = Field(
        0.02,
        ge=0,
        le=1,
        description="below this share of permutations sampling a rare shingle, plain Jaccard decides",
    )
    df_sketch_bits: int = Field(20, ge=8, le=28, description="log2 width of the document-frequency sketch")
    image_hamming_radius: int = Field(
        6, ge=0, le=31, description="pHash bits two images may differ by and still be near-duplicates"
    )
    max_image_repeats: int = Field(
        10,
        ge=1,
        description="an image (by perceptual hash) in more multimodal documents than this is left out of "
        "all of them: logos, banners, icons (OBELICS removes images seen more than 10 times)",
    )
    against_published: list[str] = Field(
        default_factory=list,
        description="datasets whose latest published version's exact hashes count as already seen "
        "(append-style datasets: only new content is published)",
    )
    batch_size: int = Field(512, ge=1, description="samples per signature batch; bounds working memory")
    cc_rounds: int = Field(
        8, ge=1, description="large-star/small-star rounds unrolled for connected components"
    )

    @property
    def compares_numbers(self) -> bool:
        """Whether verification compares the texts' digit runs (`numbers_agree`, `numbers_missing`)."""
        return self.numbers_agree is not None or self.numbers_missing is not None

    def hasher(self) -> MinHasher:
        """The MinHasher this configuration describes (imported on demand, as `shingling`)."""
        from medcurate.dedup.minhash import MinHasher

        return MinHasher(self.num_perm, self.seed, self.shingling(), self.shingle_hash)

    def shingling(self) -> Shingling:
        """Built on demand: the kernel module (numba) is not imported just to read a config."""
        from medcurate.dedup.minhash import Shingling

        return Shingling(
            self.shingle, self.ngram, self.strip_punctuation, self.drop_stopwords, self.char_spaces
        )
