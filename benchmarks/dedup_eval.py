"""Dedup quality and whole-command speed on the gold sets, beside plain datasketch in the same run.

    .venv/bin/python benchmarks/dedup_eval.py [--sets bib,mqp,medquad,pydicom] [--speed]

bib_records, cross-validated: the subject categories are folds. Every tuned constant (record
fields, citation clean-up `citations`, verification by exact Jaccard or containment,
`numbers_agree`, `numbers_missing`, `numbers_year_slack`, the notice rule, boilerplate awareness)
is chosen by pooled pairwise F1 on the other categories and scored on the held-out one, at the
fixed threshold 0.5, character 5-grams, 128 permutations. Record text = title, author surnames
(all, the first, or none), year, venue initials (`normalize.venue_initials`) or not, volume and
pages. Each fold also shows the chosen
settings verified the other way (containment vs Jaccard), the best settings with each rule on and
off (both fitted on the training categories; a rule wins when it is never worse held out and
better by MIN_GAIN on at least one fold), and plain datasketch (`plain_datasketch.py`: MinHash +
MinHashLSH + exact Jaccard check, same parameters, same record texts).
medical_question_pairs: share of label-0 pairs put in one cluster (must stay low). medquad
answers: duplicate rate, largest cluster. pydicom: near-duplicate group recall (images, Beam).

--speed: the whole `medcurate dedup text` command, run as a user runs it (a subprocess through
the console-script entry point), against `plain_datasketch.py` as a subprocess, on the MedQuAD
answers (ids made unique), word 3-grams, threshold 0.7, 128 permutations. One untimed warm-up
each, then interleaved rounds; median wall time and peak RSS (wait4) of each. The last line
prints the ratio.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from itertools import combinations, product
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import plain_datasketch  # noqa: E402

from medcurate.dedup.config import NOTICE_KINDS, DedupConfig  # noqa: E402
from medcurate.dedup.core import assign_text_clusters  # noqa: E402
from medcurate.dedup.normalize import exact_text_hash, venue_initials  # noqa: E402

DATA = HERE.parents[1] / "shared" / "data"
BIB = DATA / "dedup" / "bib_records"
MQP = DATA / "dedup" / "medical_question_pairs" / "mqp.csv"
MEDQUAD = DATA / "web" / "medquad" / "medquad.jsonl.gz"
PYDICOM_GROUPS = DATA / "images" / "pydicom" / "near_duplicate_groups_dhash.csv"
BIB_CONFIG = DedupConfig(threshold=0.5, shingle="char", ngram=5, num_perm=128)
DEFAULT_CONFIG = DedupConfig()
SPEED_ARGS = {"threshold": 0.7, "shingle": "word", "ngram": 3, "num_perm": 128}

# What `eval_bib` fits on every category (its last line), for the other sets when bib is not run.
BIB_FITTED = {
    "fields": "title+authors+year+venue initials+volume+pages",
    "citations": True,
    "verify": "jaccard",
    "numbers_agree": 0.6,
    "numbers_missing": None,
    "numbers_year_slack": 1,
    "notice rule": "off",
    "notices": False,
    "boilerplate": False,
}

Clusterer = Callable[[list[str], DedupConfig], list[str]]


def ours(texts: list[str], config: DedupConfig) -> list[str]:
    ids = [f"{i:08d}" for i in range(len(texts))]
    return [row["cluster"] for row in assign_text_clusters(ids, texts, config)]


def datasketch_clusters(texts: list[str], config: DedupConfig) -> list[str]:
    roots = plain_datasketch.cluster(texts, config.threshold, config.shingle, config.ngram, config.num_perm)
    return [str(root) for root in roots]


def cluster_pairs(labels: Sequence[str]) -> set[tuple[int, int]]:
    members = defaultdict(list)
    for index, label in enumerate(labels):
        members[label].append(index)
    return {pair for indices in members.values() for pair in combinations(indices, 2)}


def counts(predicted: set, gold: set) -> tuple[int, int, int]:
    """(true positive pairs, predicted pairs, gold pairs): summed over folds for pooled figures."""
    return len(predicted & gold), len(predicted), len(gold)


def prf(tp: int, predicted: int, gold: int) -> tuple[float, float, float]:
    p = tp / predicted if predicted else 1.0
    r = tp / gold if gold else 1.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def surnames(authors: str) -> str:
    """'Doe, J. and Roe, R' -> 'Doe Roe': initials and given names vary between exports."""
    return " ".join(name.split(",")[0].strip() for name in authors.split(" and ") if name.strip())


# Which bibliographic fields make up a record's text: a tuned choice like any other. The venue
# enters as its initials, the same whether an export gives the journal in full or abbreviated.
FIELDS = {
    "title+authors+year+venue initials+volume+pages": (
        "title",
        "authors",
        "year",
        "venue initials",
        "volume",
        "pages",
    ),
    "title+authors+year+volume+pages": ("title", "authors", "year", "volume", "pages"),
    "title+first author+year+volume+pages": ("title", "first author", "year", "volume", "pages"),
    "title+year+volume+pages": ("title", "year", "volume", "pages"),
}


def record_text(row: dict[str, str], fields: Sequence[str]) -> str:
    values = {
        "title": row.get("title", ""),
        "authors": surnames(row.get("author", "")),
        "first author": surnames(row.get("author", "")).partition(" ")[0],
        "year": row.get("year", ""),
        "venue initials": venue_initials(row.get("journal") or row.get("booktitle", "")),
        "volume": row.get("volume", ""),
        "pages": row.get("pages", ""),
    }
    return " ".join(values[f] for f in fields if values[f])


def load_bib() -> dict[str, tuple[list[dict[str, str]], set[tuple[int, int]]]]:
    """Per subject category: records and gold duplicate pairs (index pairs)."""
    categories = {}
    for folder in sorted(p for p in BIB.iterdir() if (p / "records_pre_merged.csv").exists()):
        records, index, gold = [], {}, set()
        with (folder / "records_pre_merged.csv").open(newline="") as handle:
            for row in csv.DictReader(handle):
                index[row["ID"]] = len(records)
                records.append(row)
        with (folder / "merged_record_ids.csv").open(newline="") as handle:
            for row in csv.DictReader(handle):
                ids = sorted(index[i] for i in row["merged_ids"].split(";") if i in index)
                gold.update(combinations(ids, 2))
        categories[folder.name] = (records, gold)
    return categories


# The notice rule (`dedup.notices`): off, or NLM's notice phrases as one kind ("a notice never
# joins a non-notice") in a title's leading words.
ONE_KIND = {"notice": sorted({w for words in NOTICE_KINDS.values() for w in words})}
NOTICES = [
    {"notice rule": "off", "notices": False},
    {
        "notice rule": "one kind, leading 3 words",
        "notices": True,
        "notice_kinds": ONE_KIND,
        "notice_scope": 3,
    },
]
# Digit runs: share of the smaller set that must be shared, how many of it may be missing, and
# how far apart two years may be and still count as shared.
NUMBERS = list(product((None, 0.5, 0.6, 0.7), (None, 1), (0, 1)))


def bib_grid() -> list[dict]:
    """Candidate settings, simplest first (ties go to the earlier one)."""
    boilerplate = [
        {"boilerplate": False},
        {"boilerplate": True, "rare_min_share": 0.0, "rare_threshold": 0.3},
    ]
    return [
        {
            "fields": fields,
            "citations": citations,
            "verify": verify,
            "numbers_agree": agree,
            "numbers_missing": missing,
            "numbers_year_slack": slack,
            **notices,
            **extra,
        }
        for notices, citations, fields, verify, (agree, missing, slack), extra in product(
            NOTICES, (False, True), FIELDS, ("jaccard", "containment"), NUMBERS, boilerplate
        )
    ]


def _config(settings: dict) -> DedupConfig:
    names = ("fields", "notice rule")
    return BIB_CONFIG.model_copy(update={k: v for k, v in settings.items() if k not in names})


def describe(settings: dict) -> str:
    hidden = ("notices", "notice_kinds", "notice_scope")
    return " ".join(f"{k}={v}" for k, v in settings.items() if k not in hidden)


# Smaller held-out F1 gains are a few gold pairs either way on these folds: noise, not a win.
MIN_GAIN = 0.01


def wins(on: list[float], off: list[float]) -> bool:
    """A rule wins across folds: never worse held out, and better by MIN_GAIN on at least one fold."""
    pairs = list(zip(on, off, strict=True))
    return all(a >= b for a, b in pairs) and any(a >= b + MIN_GAIN for a, b in pairs)


def _best(grid: list[dict], scores: dict, train: list[str], keep: Callable[[dict], bool]) -> int:
    def pooled_f1(index: int) -> float:
        tp, predicted, gold = (sum(scores[index, c][k] for c in train) for k in range(3))
        return prf(tp, predicted, gold)[2]

    return max((i for i, s in enumerate(grid) if keep(s)), key=lambda i: (pooled_f1(i), -i))


def eval_bib() -> dict:
    categories = load_bib()
    grid = bib_grid()
    print(
        f"\nbib_records, cross-validated over {len(categories)} subject categories "
        f"(threshold {BIB_CONFIG.threshold}, char {BIB_CONFIG.ngram}-grams, {BIB_CONFIG.num_perm} perm; "
        f"{len(grid)} candidate settings fitted on two categories, scored on the third)"
    )
    scores = {}
    texts_of = {
        (fields, name): [record_text(row, FIELDS[fields]) for row in records]
        for fields in FIELDS
        for name, (records, _) in categories.items()
    }
    for index, settings in enumerate(grid):
        for name, (_, gold) in categories.items():
            texts = texts_of[settings["fields"], name]
            scores[index, name] = counts(cluster_pairs(ours(texts, _config(settings))), gold)
    rules = {
        "venue initials": lambda s: "venue initials" in s["fields"],
        "citation normalisation": lambda s: s["citations"],
        "numbers missing rule": lambda s: s["numbers_missing"] is not None,
        "year slack": lambda s: s["numbers_year_slack"] > 0,
        "boilerplate awareness": lambda s: s["boilerplate"],
        "notice rule": lambda s: s["notices"],
    }
    rows, held_out = [], {rule: {"on": [], "off": []} for rule in rules}
    for held in categories:
        train = [c for c in categories if c != held]
        chosen = _best(grid, scores, train, lambda s: True)
        other_way = {
            **grid[chosen],
            "verify": "containment" if grid[chosen]["verify"] == "jaccard" else "jaccard",
        }
        flipped = grid.index(other_way)
        records, gold = categories[held]
        texts = texts_of[grid[chosen]["fields"], held]
        result = prf(*scores[chosen, held])
        # The baseline reads the same record texts.
        plain = prf(*counts(cluster_pairs(datasketch_clusters(texts, BIB_CONFIG)), gold))
        rows.append((held, result, plain))
        print(f"  fold {held} ({len(records)} records, {len(gold)} gold pairs); fitted on {', '.join(train)}")
        print(f"    chosen: {describe(grid[chosen])}")
        print(f"    ours        P {result[0]:.4f}  R {result[1]:.4f}  F1 {result[2]:.4f}")
        flip = prf(*scores[flipped, held])
        print(
            f"    ours, verified by {other_way['verify']:<11} P {flip[0]:.4f}  R {flip[1]:.4f}  F1 {flip[2]:.4f}"
        )
        print(f"    datasketch  P {plain[0]:.4f}  R {plain[1]:.4f}  F1 {plain[2]:.4f}")
        for rule, uses in rules.items():
            for state, keep in (("on", uses), ("off", lambda s, uses=uses: not uses(s))):
                best = _best(grid, scores, train, keep)
                p, r, f1 = prf(*scores[best, held])
                held_out[rule][state].append(f1)
                print(
                    f"    best fitted with {rule} {state:<3}: P {p:.4f}  R {r:.4f}  F1 {f1:.4f}  "
                    f"({describe(grid[best])})"
                )
    f1s = [result[2] for _, result, _ in rows]
    print(
        f"  cross-validated F1: mean {statistics.mean(f1s):.4f}, worst fold {min(f1s):.4f}; "
        f"datasketch mean {statistics.mean(p[2] for *_, p in rows):.4f}; "
        f"ours above datasketch on every fold: {all(r[2] > p[2] for _, r, p in rows)}"
    )
    won = {}
    for rule, results in held_out.items():
        won[rule] = wins(results["on"], results["off"])
        print(
            f"  {rule} held-out F1 on/off per fold: "
            + ", ".join(f"{a:.4f}/{b:.4f}" for a, b in zip(results["on"], results["off"], strict=True))
            + f"; wins across folds: {won[rule]}"
        )
    # The defaults: fitted on every category, each rule on only where it won across folds.
    final = _best(
        grid, scores, list(categories), lambda s: all(uses(s) == won[r] for r, uses in rules.items())
    )
    print(
        "  fitted on all categories, rules on where they won (settings for bibliographic records): "
        + describe(grid[final])
    )
    return grid[final]


def eval_mqp(clusterers: dict[str, Clusterer], configs: dict[str, DedupConfig]) -> None:
    pairs = [(row[1], row[2], row[3]) for row in csv.reader(MQP.open(newline=""))]
    texts = sorted({t for a, b, _ in pairs for t in (a, b)})
    index = {t: i for i, t in enumerate(texts)}
    print(f"\nmedical_question_pairs: {len(pairs)} pairs, {len(texts)} distinct questions")
    for config_name, config in configs.items():
        for name, clusterer in clusterers.items():
            labels = clusterer(texts, config)
            merged = defaultdict(list)
            for a, b, label in pairs:
                merged[label].append(labels[index[a]] == labels[index[b]])
            share = {label: sum(v) / len(v) for label, v in merged.items()}
            print(
                f"  {config_name:<11} {name:<11} label-0 merged {share['0']:.2%}  label-1 found {share['1']:.2%}"
            )


def medquad_records() -> list[tuple[str, str]]:
    """(unique id, answer) of every non-empty MedQuAD answer; repeated question ids get a suffix."""
    seen: Counter[str] = Counter()
    records = []
    with gzip.open(MEDQUAD, "rt") as handle:
        for row in map(json.loads, handle):
            if not row["answer"].strip():
                continue
            seen[row["qid"]] += 1
            suffix = f"~{seen[row['qid']]}" if seen[row["qid"]] > 1 else ""
            records.append((f"{row['qid']}{suffix}", row["answer"]))
    return records


def eval_medquad(clusterers: dict[str, Clusterer], config: DedupConfig) -> None:
    answers = [text for _, text in medquad_records()]
    print(
        f"\nmedquad answers: {len(answers)} (default config: {config.shingle} {config.ngram}-grams, "
        f"threshold {config.threshold})"
    )
    exact = [exact_text_hash(answer)[0] for answer in answers]
    for name, clusterer in clusterers.items():
        labels = clusterer(answers, config)
        members = defaultdict(set)
        for label, text_hash in zip(labels, exact, strict=True):
            members[label].add(text_hash)
        sizes = Counter(labels)
        largest, size = sizes.most_common(1)[0]
        near = sum(len(texts) - 1 for texts in members.values())
        print(
            f"  {name:<11} duplicate rate {1 - len(sizes) / len(labels):.2%}  clusters {len(sizes)}  "
            f"largest cluster {size} ({len(members[largest])} distinct texts)  distinct texts merged {near}"
        )


def eval_pydicom() -> None:
    import logging

    import pydicom

    from medcurate.dedup.beam import assign_clusters
    from medcurate.schemas.sample import new_sample

    logging.getLogger("pydicom").setLevel(logging.CRITICAL)  # the malformed test files log tracebacks
    site = Path(pydicom.__file__).resolve().parent.parent
    roots = {
        "pydicom_wheel_test_files": site / "pydicom" / "data" / "test_files",
        "pydicom_data_store": site / "data_store" / "data",
    }
    with PYDICOM_GROUPS.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    group_of = {}
    for row in rows:
        prefix, name = row["file"].split("/", 1)
        group_of[str(roots[prefix] / name)] = row["group_id"]
    files = sorted({str(p) for root in roots.values() if root.exists() for p in root.rglob("*.dcm")})
    missing = [f for f in group_of if f not in files]
    print(
        f"\npydicom near-duplicate groups: {len(group_of)} grouped files ({len(missing)} missing), "
        f"{len(files)} DICOM files in all"
    )
    samples = [
        new_sample(
            id=f, source_kind="image", modality="image", source_uri=f, image_bytes=Path(f).read_bytes()
        )
        for f in files
    ]
    labels = {row["id"]: row["cluster"] for row in assign_clusters(samples, DedupConfig())}
    gold = {
        (a, b) for a, b in combinations(sorted(group_of), 2) if group_of[a] == group_of[b] and a in labels
    }
    found = sum(labels[a] == labels[b] for a, b in gold)
    merged = sum(
        1 for a, b in combinations(sorted(labels), 2) if labels[a] == labels[b] and (a, b) not in gold
    )
    print(
        f"  ours        pair recall {found / len(gold):.2%} ({found}/{len(gold)}); other pairs merged {merged}"
    )


def _measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one subprocess."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode:
        raise SystemExit(f"{command[:3]} failed ({process.returncode}): {error[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def _clusters(path: Path) -> dict[str, str]:
    return {row["id"]: row["cluster"] for row in map(json.loads, path.open())}


def eval_speed(rounds: int) -> None:
    records = medquad_records()
    args = SPEED_ARGS
    with tempfile.TemporaryDirectory(prefix="medcurate-dedup-speed-") as tmp:
        source, ours_out, plain_out = (Path(tmp) / name for name in ("in.jsonl", "ours.jsonl", "plain.jsonl"))
        with source.open("w") as handle:
            for record_id, text in records:
                handle.write(json.dumps({"id": record_id, "text": text}) + "\n")
        # What the `medcurate` console script runs, with this interpreter and PYTHONPATH.
        medcurate = [sys.executable, "-c", "import sys; from medcurate.cli import entry; sys.exit(entry())"]
        commands = {
            "medcurate": [
                *medcurate, "dedup", "text", "--input", str(source), "--output", str(ours_out),
                "--threshold", str(args["threshold"]), "--shingle", args["shingle"],
                "--ngram", str(args["ngram"]), "--num-perm", str(args["num_perm"]),
            ],
            "datasketch": [
                sys.executable, str(HERE / "plain_datasketch.py"), str(source), str(plain_out),
                str(args["threshold"]), args["shingle"], str(args["ngram"]), str(args["num_perm"]),
            ],
        }  # fmt: skip
        print(
            f"\nwhole command on {len(records)} medquad answers ({args['shingle']} {args['ngram']}-grams, "
            f"threshold {args['threshold']}, {args['num_perm']} perm): one warm-up each, then {rounds} "
            "interleaved rounds"
        )
        for name, command in commands.items():
            seconds, peak = _measure(command)
            print(f"  warm-up {name:<11} {seconds:6.2f} s  peak RSS {peak:6.0f} MB")
        times: dict[str, list[float]] = defaultdict(list)
        peaks: dict[str, list[float]] = defaultdict(list)
        for _ in range(rounds):
            for name, command in commands.items():
                seconds, peak = _measure(command)
                times[name].append(seconds)
                peaks[name].append(peak)
        for name in commands:
            print(
                f"  {name:<11} median {statistics.median(times[name]):6.2f} s  "
                f"(runs {', '.join(f'{t:.2f}' for t in times[name])})  peak RSS {max(peaks[name]):6.0f} MB"
            )
        mine, plain = _clusters(ours_out), _clusters(plain_out)
        mine_pairs, plain_pairs = cluster_pairs(list(mine.values())), cluster_pairs(list(plain.values()))
        print(
            f"  duplicate pairs: medcurate {len(mine_pairs)}, datasketch {len(plain_pairs)}, "
            f"in both {len(mine_pairs & plain_pairs)}"
        )
        memory = max(peaks["medcurate"]) <= max(peaks["datasketch"])
        print(f"  peak memory medcurate <= datasketch: {memory}")
        ratio = statistics.median(times["datasketch"]) / statistics.median(times["medcurate"])
        print(f"speed ratio (datasketch / medcurate dedup text, median wall time): {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=None, help="bib,mqp,medquad,pydicom (default: all, unless --speed)")
    parser.add_argument("--speed", action="store_true", help="whole-command speed and memory")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds for --speed")
    options = parser.parse_args()
    sets = set((options.sets or ("" if options.speed else "bib,mqp,medquad,pydicom")).split(","))
    if not DATA.exists():
        raise SystemExit(f"evaluation data not found at {DATA}")
    clusterers: dict[str, Clusterer] = {"ours": ours, "datasketch": datasketch_clusters}
    # The settings fitted on every bib_records category, or those the last full run chose.
    bib_settings = eval_bib() if "bib" in sets else BIB_FITTED
    if "mqp" in sets:
        notices = BIB_CONFIG.model_copy(update={"notices": True})
        fitted = _config(bib_settings)
        eval_mqp(
            clusterers,
            {"default": DEFAULT_CONFIG, "bib": BIB_CONFIG, "bib+notices": notices, "bib fitted": fitted},
        )
    if "medquad" in sets:
        eval_medquad(clusterers, DEFAULT_CONFIG)
        # Where boilerplate awareness matters: templated web pages (same paragraphs, another subject).
        web = {"ours, boilerplate awareness on": lambda texts, config: ours(texts, config)}
        eval_medquad(web, DEFAULT_CONFIG.model_copy(update={"boilerplate": True}))
    if "pydicom" in sets:
        eval_pydicom()
    if options.speed:
        eval_speed(options.rounds)


if __name__ == "__main__":
    main()
