"""The standard text filters at their published thresholds: invented texts on both sides of each one.

Each case grows a text step by step until one statistic crosses its default threshold; the text one
step before must be kept and the text at the crossing dropped with that rule's reason. The
statistics are checked against the threshold too, so a rule that fires for another reason fails.
DataTrove's own filters (the reference implementation) must agree on the same texts.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)

from medcurate.quality.config import (
    C4Thresholds,
    FineWebThresholds,
    GopherQualityThresholds,
    GopherRepetitionThresholds,
    QualityConfig,
    TextFilters,
    clinical_filters,
)
from medcurate.quality.filters import filter_reason, filter_statistics, split_words

VOCABULARY = [
    "the",
    "nurse",
    "checked",
    "the",
    "blood",
    "pressure",
    "of",
    "the",
    "patient",
    "with",
    "care",
    "and",
    "wrote",
    "down",
    "the",
    "result",
    "before",
    "lunch",
    "while",
    "her",
    "colleague",
    "prepared",
    "the",
    "ward",
    "for",
    "admission",
    "of",
    "two",
    "more",
    "people",
    "from",
    "the",
    "clinic",
    "near",
    "the",
    "river",
]
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "fe"]


def nonce(i: int) -> str:
    """A distinct invented word per number (keeps lines unique without repeating n-grams)."""
    word = ""
    i += 12
    while i:
        i, rest = divmod(i, len(SYLLABLES))
        word += SYLLABLES[rest]
    return word


def long_word(i: int) -> str:
    return "".join(nonce(i * 4 + j) for j in range(4))


def sentence(i: int, words: int = 10) -> str:
    body = [
        nonce(i * 97 + j) if j % 3 == 2 else VOCABULARY[(i * 7 + j) % len(VOCABULARY)] for j in range(words)
    ]
    return " ".join(body).capitalize() + "."


def prose(n_words: int, per_line: int = 10) -> str:
    """`n_words` words in distinct sentences of `per_line` words, one per line."""
    lines, made = [], 0
    while made < n_words:
        size = min(per_line, n_words - made)
        lines.append(sentence(len(lines), size))
        made += size
    return "\n".join(lines)


def only(family: str, **settings) -> TextFilters:
    """Filters with one family enabled (its published defaults unless overridden)."""
    off = {
        "gopher_quality": GopherQualityThresholds(enabled=False),
        "gopher_repetition": GopherRepetitionThresholds(enabled=False),
        "c4": C4Thresholds(enabled=False),
        "fineweb": FineWebThresholds(enabled=False),
    }
    on = type(off[family])(**settings)
    return TextFilters(**{**off, family: on})


ORACLES = {
    "gopher_quality": GopherQualityFilter,
    "gopher_repetition": GopherRepetitionFilter,
    "c4": C4QualityFilter,
    "fineweb": FineWebQualityFilter,
}


def crossing(make: Callable[[int], str], key: str, threshold: float, above: bool, filters: TextFilters):
    """(kept text, dropped text): the last step on the safe side and the first step past `threshold`."""
    previous = make(0)
    for step in range(1, 400):
        text = make(step)
        value = filter_statistics(text, filters)[key]
        if (value > threshold) if above else (value < threshold):
            return previous, text
        previous = text
    raise AssertionError(f"{key} never crossed {threshold}")


# (family, statistic, published threshold, drops when above?, reason, text grown by step[, settings
# turning off the family's rules that an invented text would trip first])
CASES = [
    ("gopher_quality", "gopher.words", 50, False, "gopher_quality.short_doc", lambda k: prose(60 - k)),
    (
        "gopher_quality",
        "gopher.mean_word_length",
        3,
        False,
        "gopher_quality.below_avg_word_length",
        lambda k: "The cat and the dog sat. " * 10 + "to of " * k,
    ),
    (
        "gopher_quality",
        "gopher.mean_word_length",
        10,
        True,
        "gopher_quality.above_avg_word_length",
        lambda k: "the and with " + " ".join(["pharmacokinetically"] * k + ["hospital"] * 60),
    ),
    (
        "gopher_quality",
        "gopher.hash_word_ratio",
        0.1,
        True,
        "gopher_quality.too_many_hashes",
        lambda k: prose(100) + " #" * k,
    ),
    (
        "gopher_quality",
        "gopher.ellipsis_word_ratio",
        0.1,
        True,
        "gopher_quality.too_many_ellipsis",
        lambda k: prose(100) + " …" * k,
    ),
    (
        "gopher_quality",
        "gopher.bullet_lines_ratio",
        0.9,
        True,
        "gopher_quality.too_many_bullets",
        lambda k: "\n".join(("- " if i < 20 + k else "") + sentence(i) for i in range(30)),
    ),
    (
        "gopher_quality",
        "gopher.ellipsis_lines_ratio",
        0.3,
        True,
        "gopher_quality.too_many_end_ellipsis",
        lambda k: "\n".join(sentence(i)[:-1] + ("..." if i < k else ".") for i in range(20)),
    ),
    (
        "gopher_quality",
        "gopher.alpha_words_ratio",
        0.8,
        False,
        "gopher_quality.below_alpha_words_ratio",
        lambda k: prose(100) + " 42" * k,
    ),
    (
        "gopher_quality",
        "gopher.stop_words",
        2,
        False,
        "gopher_quality.too_few_stop_words",
        lambda k: " ".join(["the", "and", "with"][: 3 - k] + [nonce(i) for i in range(60)]) + ".",
    ),
    (
        "gopher_repetition",
        "repetition.dup_line_frac",
        0.3,
        True,
        "gopher_repetition.dup_line_frac",
        lambda k: "\n".join([sentence(i) for i in range(20)] + ["Ok."] * k),
    ),
    (
        "gopher_repetition",
        "repetition.dup_para_frac",
        0.3,
        True,
        "gopher_repetition.dup_para_frac",
        lambda k: "\n\n".join([sentence(i) for i in range(20)] + ["Ok."] * k),
    ),
    (
        "gopher_repetition",
        "repetition.dup_line_char_frac",
        0.2,
        True,
        "gopher_repetition.dup_line_char_frac",
        lambda k: "\n".join([prose(300)] + [sentence(1000)] * (k + 1)),
        {"top_n_gram_char_frac": {}, "dup_n_gram_char_frac": {}},
    ),
    (
        "gopher_repetition",
        "repetition.top_2_gram_char_frac",
        0.2,
        True,
        "gopher_repetition.top_2_gram",
        lambda k: prose(200) + " " + " ".join(f"heart rate {nonce(900 + i)}" for i in range(k)),
    ),
    (
        "gopher_repetition",
        "repetition.dup_5_gram_char_frac",
        0.15,
        True,
        "gopher_repetition.dup_5_gram",
        lambda k: prose(300) + " " + " ".join(["sa lo mi ne ru"] * k),
        {"top_n_gram_char_frac": {}, "dup_n_gram_char_frac": {5: 0.15}},
    ),
    (
        "c4",
        "c4.sentences",
        5,
        False,
        "c4.too_few_sentences",
        lambda k: "\n".join(sentence(i) if i >= k else sentence(i)[:-1] for i in range(5)),
    ),
    ("c4", "c4.lorem_ipsum", 0, True, "c4.lorem_ipsum", lambda k: prose(60) + " lorem ipsum dolor." * k),
    (
        "c4",
        "c4.curly_bracket",
        0,
        True,
        "c4.curly_bracket",
        lambda k: prose(60) + "\nGive the dose {per kg} twice." * k,
    ),
    (
        "fineweb",
        "fineweb.line_punct_ratio",
        0.12,
        False,
        "fineweb.line_punct_ratio",
        lambda k: "\n".join(sentence(i)[:-1] + ("." if i >= k else "") for i in range(10)),
    ),
    (
        "fineweb",
        "fineweb.short_line_ratio",
        0.67,
        True,
        "fineweb.short_line_ratio",
        lambda k: "\n".join(sentence(i) if i >= k else f"{nonce(i)} {nonce(i + 50)}." for i in range(30)),
    ),
    (
        "fineweb",
        "fineweb.char_dup_ratio",
        0.01,
        True,
        "fineweb.char_dup_ratio",
        lambda k: prose(2000) + "\nSee above." * (k + 1),
    ),
    (
        "fineweb",
        "fineweb.list_ratio",
        0.3,
        True,
        "fineweb.list_ratio",
        lambda k: prose(30) + "\n" + "\n".join(f"{long_word(i)} {long_word(i + 500)}." for i in range(k)),
    ),
]


CASES = [(*case, {}) if len(case) == 6 else case for case in CASES]
# The same settings in DataTrove's terms.
ORACLE_SETTINGS = {"top_n_gram_char_frac": "top_n_grams", "dup_n_gram_char_frac": "dup_n_grams"}


each_case = pytest.mark.parametrize(
    ("family", "key", "threshold", "above", "reason", "make", "settings"),
    CASES,
    ids=[case[4] for case in CASES],
)


def _oracle_keeps(family: str, text: str, settings: dict) -> bool:
    kwargs = {ORACLE_SETTINGS[name]: tuple(sorted(value.items())) for name, value in settings.items()}
    result = ORACLES[family](**kwargs).filter(Document(text=text, id="invented"))
    return result is True or (isinstance(result, tuple) and result[0])


@each_case
def test_threshold_both_sides(family, key, threshold, above, reason, make, settings) -> None:
    filters = only(family, **settings)
    kept, dropped = crossing(make, key, threshold, above, filters)
    kept_stats, dropped_stats = filter_statistics(kept, filters), filter_statistics(dropped, filters)
    assert (kept_stats[key] <= threshold) if above else (kept_stats[key] >= threshold)
    assert filter_reason(kept_stats, filters) is None
    assert filter_reason(dropped_stats, filters) == reason


# DataTrove tokenises with NLTK, which counts some invented texts a little differently right at a
# boundary: it is asked about a text far past the threshold, except for these, where it must agree
# at the crossing itself.
_ORACLE_EXACT = {"gopher_quality.short_doc", "gopher_quality.too_few_stop_words", "c4.lorem_ipsum"}


@each_case
def test_datatrove_agrees(family, key, threshold, above, reason, make, settings) -> None:
    """The reference implementation drops the far-side text and keeps a safe one."""
    filters = only(family, **settings)
    kept, dropped = crossing(make, key, threshold, above, filters)
    assert not _oracle_keeps(family, make(399) if reason not in _ORACLE_EXACT else dropped, settings)
    assert _oracle_keeps(family, kept, settings)


def test_statistics_stored_apart_from_decision() -> None:
    """The same statistics give different decisions under different thresholds; none are lost."""
    text = prose(40)
    filters = only("gopher_quality")
    stats = filter_statistics(text, filters)
    assert stats["gopher.words"] == 40
    assert stats["gopher.stop_words"] >= 2
    assert filter_reason(stats, filters) == "gopher_quality.short_doc"
    assert filter_reason(stats, only("gopher_quality", min_doc_words=40)) is None
    assert filter_reason(stats, only("gopher_quality", min_doc_words=None)) is None


def test_words_split_punctuation_like_treebank() -> None:
    assert split_words("Dr. Vale's patient, aged 70, isn't well…") == [
        "Dr",
        ".",
        "Vale's",
        "patient",
        ",",
        "aged",
        "70",
        ",",
        "isn't",
        "well",
        "…",
    ]


def test_clinical_defaults_keep_terse_notes_web_defaults_drop_them() -> None:
    """A short upper-case handover note: web rules drop it, the clinical defaults keep it."""
    note = (
        "NEURO: ALERT AND ORIENTED X3, MAE.\nCV: HR 80S SR, NO ECTOPY.\nRESP: LS CLEAR, O2 2L NC.\n"
        "GI: TOL CLEAR LIQUIDS.\nPLAN: CONT TO MONITOR, OOB TO CHAIR."
    )
    config = QualityConfig()
    web = config.filters_for("web")
    assert filter_reason(filter_statistics(note, web), web) is not None
    clinical = config.filters_for("clinical")
    assert clinical == clinical_filters()
    assert filter_reason(filter_statistics(note, clinical), clinical) is None
    # The same repeated copy-forward line still counts against a note.
    repeated = "\n".join([note] + ["PT RESTING COMFORTABLY, NO COMPLAINTS."] * 6)
    assert filter_reason(filter_statistics(repeated, clinical), clinical) == "gopher_repetition.dup_line_frac"
    assert config.filters_for("unknown-kind") == config.filters_for("web")


def test_per_kind_overrides_keep_the_other_defaults() -> None:
    from medcurate.config import load_config

    config = load_config(
        None, ["quality.filters.clinical.fineweb.enabled=true", "quality.filters.web.c4.min_num_sentences=3"]
    )
    clinical = config.quality.filters_for("clinical")
    assert clinical.fineweb.enabled and not clinical.c4.enabled
    assert clinical.gopher_quality.min_stop_words is None  # still the clinical default
    assert config.quality.filters_for("web").c4.min_num_sentences == 3
    assert config.quality.filters_for("web").gopher_quality.min_doc_words == 50
