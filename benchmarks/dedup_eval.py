"""Dedup quality and speed on the gold sets, beside datasketch (and rensa) in the same run.

    .venv/bin/python benchmarks/dedup_eval.py [--sets bib,mqp,medquad,pydicom,speed]

bib_records: pairwise precision/recall/F1 against the gold clusters, record text = title, author
surnames, year and journal, at --threshold 0.5 --shingle char --ngram 5 --num-perm 128. medical_question_pairs:
share of label-0 pairs put in one cluster, share of label-1 pairs found. medquad answers: duplicate
rate, largest cluster, distinct texts merged into another. pydicom near-duplicate groups: pair recall (and pairs merged across
groups). The baseline is plain datasketch: one `MinHash` per document over the same shingles of
lower-cased text, `MinHashLSH` with the same threshold and permutations, candidates kept when the
estimated Jaccard reaches the threshold, clusters by union-find. Speed: signatures/s on medquad
answers, tokenisation included, for ours, datasketch and rensa (if installed). Prints figures only.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path

from datasketch import MinHash, MinHashLSH

from medcurate.dedup.beam import assign_clusters
from medcurate.dedup.config import DedupConfig
from medcurate.dedup.minhash import MinHasher
from medcurate.dedup.normalize import exact_text_hash
from medcurate.schemas.sample import new_sample

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BIB = DATA / "dedup" / "bib_records"
MQP = DATA / "dedup" / "medical_question_pairs" / "mqp.csv"
MEDQUAD = DATA / "web" / "medquad" / "medquad.jsonl.gz"
PYDICOM_GROUPS = DATA / "images" / "pydicom" / "near_duplicate_groups_dhash.csv"
BIB_CONFIG = DedupConfig(threshold=0.5, shingle="char", ngram=5, num_perm=128)
DEFAULT_CONFIG = DedupConfig()

Clusterer = Callable[[list[str], DedupConfig], list[str]]


def ours(texts: list[str], config: DedupConfig) -> list[str]:
    samples = [
        new_sample(id=f"{i:08d}", source_kind="web", modality="text", source_uri=f"eval#{i}", text=t)
        for i, t in enumerate(texts)
    ]
    return [row["cluster"] for row in assign_clusters(samples, config)]


def _plain(text: str, config: DedupConfig) -> set[str]:
    """The baseline's tokens: lower-cased, whitespace-collapsed text, no other normalisation."""
    text = re.sub(r"\s+", " ", text.lower()).strip()
    if config.shingle == "word":
        words = text.split(" ")
        return {" ".join(words[i : i + config.ngram]) for i in range(max(1, len(words) - config.ngram + 1))}
    return {text[i : i + config.ngram] for i in range(max(1, len(text) - config.ngram + 1))}


def datasketch_clusters(texts: list[str], config: DedupConfig) -> list[str]:
    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
    minhashes = []
    for i, text in enumerate(texts):
        m = MinHash(num_perm=config.num_perm, seed=config.seed)
        m.update_batch([s.encode() for s in _plain(text, config)])
        minhashes.append(m)
        lsh.insert(str(i), m)
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, m in enumerate(minhashes):
        for other in map(int, lsh.query(m)):
            if other != i and m.jaccard(minhashes[other]) >= config.threshold:
                parent[find(other)] = find(i)
    return [str(find(i)) for i in range(len(texts))]


def cluster_pairs(labels: Sequence[str], groups: Sequence[str]) -> set[tuple[int, int]]:
    """Index pairs sharing a cluster, within the same group (data set) only."""
    members = defaultdict(list)
    for index, (label, group) in enumerate(zip(labels, groups, strict=True)):
        members[(group, label)].append(index)
    return {pair for indices in members.values() for pair in combinations(indices, 2)}


def prf(predicted: set, gold: set) -> tuple[float, float, float]:
    tp = len(predicted & gold)
    p = tp / len(predicted) if predicted else 1.0
    r = tp / len(gold) if gold else 1.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def surnames(authors: str) -> str:
    """'Noris, M. and Remuzzi, G' -> 'Noris Remuzzi': initials and given names vary between exports."""
    return " ".join(name.split(",")[0].strip() for name in authors.split(" and ") if name.strip())


def load_bib() -> tuple[list[str], list[str], set[tuple[int, int]]]:
    texts, groups, gold = [], [], set()
    for folder in sorted(p for p in BIB.iterdir() if (p / "records_pre_merged.csv").exists()):
        index = {}
        with (folder / "records_pre_merged.csv").open(newline="") as handle:
            for row in csv.DictReader(handle):
                index[row["ID"]] = len(texts)
                fields = (row["title"], surnames(row["author"]), row["year"], row["journal"])
                texts.append(" ".join(f for f in fields if f))
                groups.append(folder.name)
        with (folder / "merged_record_ids.csv").open(newline="") as handle:
            for row in csv.DictReader(handle):
                ids = sorted(index[i] for i in row["merged_ids"].split(";") if i in index)
                gold.update(combinations(ids, 2))
    return texts, groups, gold


def eval_bib(clusterers: dict[str, Clusterer]) -> None:
    texts, groups, gold = load_bib()
    print(
        f"\nbib_records: {len(texts)} records, {len(gold)} gold pairs; text = title + author surnames + year + journal"
    )
    print(
        f"  params: threshold {BIB_CONFIG.threshold}, char {BIB_CONFIG.ngram}-grams, {BIB_CONFIG.num_perm} perm"
    )
    for name, clusterer in clusterers.items():
        start = time.perf_counter()
        p, r, f1 = prf(cluster_pairs(clusterer(texts, BIB_CONFIG), groups), gold)
        print(
            f"  {name:<11} precision {p:.4f}  recall {r:.4f}  F1 {f1:.4f}  ({time.perf_counter() - start:.1f} s)"
        )


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
                f"  {config_name:<8} {name:<11} label-0 merged {share['0']:.2%}  label-1 found {share['1']:.2%}"
            )


def medquad_answers() -> list[str]:
    with gzip.open(MEDQUAD, "rt") as handle:
        return [row["answer"] for row in map(json.loads, handle) if row["answer"].strip()]


def eval_medquad(clusterers: dict[str, Clusterer], config: DedupConfig) -> None:
    answers = medquad_answers()
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
        dup_rate = 1 - len(sizes) / len(labels)
        largest, size = sizes.most_common(1)[0]
        # Distinct (normalised) texts folded into another: what near-duplicate detection decided.
        near = sum(len(texts) - 1 for texts in members.values())
        print(
            f"  {name:<11} duplicate rate {dup_rate:.2%}  clusters {len(sizes)}  largest cluster {size} "
            f"({len(members[largest])} distinct texts)  distinct texts merged {near}"
        )


def eval_pydicom() -> None:
    import logging

    import pydicom

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
    if missing:
        print("  install pydicom-data for the full set")
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


def eval_speed(config: DedupConfig) -> None:
    answers = medquad_answers()
    shingling = config.shingling()
    kind, n = shingling.kind, shingling.n
    hasher = MinHasher(config.num_perm, config.seed, shingling)
    print(
        f"\nsignatures/s on {len(answers)} medquad answers ({kind} {n}-grams, {config.num_perm} perm, "
        "tokenisation included, one process, best of 3)"
    )

    def time_it(run: Callable[[], object]) -> float:
        start = time.perf_counter()
        run()
        return len(answers) / (time.perf_counter() - start)

    def run_ours() -> None:
        for lo in range(0, len(answers), config.batch_size):
            batch = answers[lo : lo + config.batch_size]
            hasher.signatures(batch)

    def run_datasketch() -> None:
        for text in answers:
            m = MinHash(num_perm=config.num_perm, seed=config.seed)
            m.update_batch([s.encode() for s in shingling.shingles(text)])

    runners = {"ours": run_ours, "datasketch": run_datasketch}
    try:
        from rensa import RMinHash
    except ImportError:
        print("  rensa not installed")
    else:

        def run_rensa() -> None:
            for text in answers:
                m = RMinHash(num_perm=config.num_perm, seed=config.seed)
                m.update(list(shingling.shingles(text)))
                m.digest()

        runners["rensa"] = run_rensa
    hasher.signatures(answers[:1])  # compile outside the timing (numba caches it on disk too)
    # Best of three, interleaved: the machine is shared, so the slowest runs measure the neighbours.
    rates = {name: 0.0 for name in runners}
    for _ in range(3):
        for name, run in runners.items():
            rates[name] = max(rates[name], time_it(run))
    for name, rate in rates.items():
        ratios = "  ".join(f"{rate / other:.2f}x {o}" for o, other in rates.items() if o != name)
        print(f"  {name:<11} {rate:9.0f} signatures/s   {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="bib,mqp,medquad,pydicom,speed")
    sets = set(parser.parse_args().sets.split(","))
    if not DATA.exists():
        raise SystemExit(f"evaluation data not found at {DATA}")
    clusterers: dict[str, Clusterer] = {"ours": ours, "datasketch": datasketch_clusters}
    if "bib" in sets:
        eval_bib(clusterers)
    if "mqp" in sets:
        eval_mqp(clusterers, {"default": DEFAULT_CONFIG, "bib": BIB_CONFIG})
    if "medquad" in sets:
        eval_medquad(clusterers, DEFAULT_CONFIG)
    if "pydicom" in sets:
        eval_pydicom()
    if "speed" in sets:
        eval_speed(DEFAULT_CONFIG)


if __name__ == "__main__":
    main()
