"""PHI probe suite: leak rate per phrasing, through `medcurate deid text` and through `medcurate run`.

    .venv/bin/python benchmarks/phi_probes.py [--count 1140] [--seed 0] [--set deid.tagger=off]

Probes are invented identifiers (names in no list, record numbers, phones, dates, e-mail
addresses, towns) in the phrasings of `medcurate.privacy.probes`; a value leaks when any of its
words survives. Both paths are whole commands run as subprocesses on the same probes. Prints
counts and phrasing numbers only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from medcurate.privacy.probes import PHRASINGS, leaked, probes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1140)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="config override for both paths")
    args = parser.parse_args(argv)
    made = list(probes(args.count, args.seed))
    overrides = [part for value in args.set for part in ("--set", value)]
    command = [sys.executable, "-m", "medcurate.cli"]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "in").mkdir()
        source = folder / "in" / "probes.jsonl"
        source.write_text(
            "".join(json.dumps({"id": f"p{i}", "text": p.text}) + "\n" for i, p in enumerate(made))
        )
        target = folder / "deid.jsonl"
        subprocess.run(
            [*command, "deid", "text", "--input", str(source), "--output", str(target), *overrides],
            check=True,
        )
        outputs = [json.loads(line)["text"] for line in target.read_text().splitlines()]
        by_text = Counter(
            p.phrasing for p, out in zip(made, outputs, strict=True) for v in p.values if leaked(v, out)
        )
        run = [
            *command,
            "run",
            "--input",
            str(folder / "in"),
            "--output",
            str(folder / "out"),
            "--dataset",
            "probes",
        ]
        subprocess.run([*run, *overrides], check=True, stdout=subprocess.DEVNULL)
        blob = "\n".join(
            p.read_bytes().decode("latin-1")
            for p in (folder / "out").rglob("*")
            if p.is_file() and p.suffix != ".parquet"
        )
        import pyarrow.parquet as pq

        for shard in (folder / "out").rglob("*.parquet"):
            table = pq.read_table(shard)
            blob += json.dumps(
                table.drop_columns([c for c in ("image_bytes",) if c in table.column_names]).to_pylist(),
                default=str,
            )
        by_run = Counter(p.phrasing for p in made for v in p.values if leaked(v, blob))
    values = Counter(p.phrasing for p in made for _ in p.values)
    print(f"{len(made)} probes, {sum(values.values())} values, {len(PHRASINGS)} phrasings")
    print(f"{'phrasing':>9s}{'values':>8s}{'deid text':>11s}{'run':>6s}")
    for phrasing in sorted(values):
        print(f"{phrasing:9d}{values[phrasing]:8d}{by_text[phrasing]:11d}{by_run[phrasing]:6d}")
    total = sum(values.values())
    print(
        f"{'all':>9s}{total:8d}{sum(by_text.values()):11d}{sum(by_run.values()):6d}   "
        f"leak rate: deid text {sum(by_text.values()) / total:.4f}, run {sum(by_run.values()) / total:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
