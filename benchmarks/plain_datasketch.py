"""Plain datasketch near-duplicate clustering: the baseline `benchmarks/dedup_eval.py` compares against.

    .venv/bin/python benchmarks/plain_datasketch.py IN.jsonl OUT.jsonl THRESHOLD word|char NGRAM NUM_PERM

What a user would write with datasketch alone: lower-cased, whitespace-collapsed text cut into
word or character n-grams, one `MinHash` per record, `MinHashLSH` at the same threshold and
permutations, every LSH candidate checked by the exact Jaccard of the two shingle sets, clusters
by union-find (smallest index first). Writes `{"id", "cluster", "keep"}` per record, like
`medcurate dedup text`. Only datasketch and the standard library.
"""

import json
import re
import sys

from datasketch import MinHash, MinHashLSH


def shingles(text, kind, n):
    text = re.sub(r"\s+", " ", text.lower()).strip()
    units = text.split(" ") if kind == "word" else list(text)
    sep = " " if kind == "word" else ""
    return {sep.join(units[i : i + n]) for i in range(max(1, len(units) - n + 1))}


def cluster(texts, threshold, kind, n, num_perm):
    """Root index of each text's cluster."""
    sets = [shingles(text, kind, n) for text in texts]
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    minhashes = []
    for index, own in enumerate(sets):
        m = MinHash(num_perm=num_perm)
        m.update_batch([s.encode() for s in own])
        lsh.insert(index, m)
        minhashes.append(m)
    parent = list(range(len(texts)))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for index, m in enumerate(minhashes):
        for other in lsh.query(m):
            ra, rb = find(index), find(other)
            if ra == rb:
                continue  # already one cluster: no need to check
            a, b = sets[index], sets[other]
            shared = len(a & b)
            if shared >= threshold * (len(a) + len(b) - shared):
                parent[max(ra, rb)] = min(ra, rb)
    return [find(index) for index in range(len(texts))]


def main(source, target, threshold, kind, n, num_perm):
    with open(source) as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    roots = cluster([r["text"] for r in records], threshold, kind, n, num_perm)
    with open(target, "w") as out:
        for index, (r, root) in enumerate(zip(records, roots, strict=True)):
            out.write(
                json.dumps({"id": r["id"], "cluster": records[root]["id"], "keep": root == index}) + "\n"
            )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
