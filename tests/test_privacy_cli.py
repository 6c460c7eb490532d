"""The `deid` command-line contract, through the real parser and handlers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from medcurate.cli import CliError
from medcurate.privacy import cli as deid_cli


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medcurate")
    deid_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.handler(args, [])


def test_deid_text_round_trip(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "text": "Mr. Ambrose Okonkwo called from 617-555-0199 on 7/22."},
        {"id": 7, "text": "Noonan syndrome, no PHI."},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    target = tmp_path / "out" / "deid.jsonl"
    assert _run(["deid", "text", "--input", str(source), "--output", str(target)]) == 0
    out = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in out] == ["a", 7]
    original = rows[0]["text"]
    removed = {original[s["start"] : s["end"]] for s in out[0]["spans"]}
    for value in ("Ambrose Okonkwo", "617-555-0199", "7/22"):
        assert any(value in span for span in removed), value
    # Each span names the rule or model that found it.
    sources = {original[s["start"] : s["end"]]: s["source"] for s in out[0]["spans"]}
    assert "clinical:phone_us" in sources["617-555-0199"].split("+")
    assert all(s["source"] for s in out[0]["spans"])
    assert all(set(s) >= {"start", "end", "type", "score"} for s in out[0]["spans"])
    for value in removed:
        assert value not in out[0]["text"]
    assert out[1]["text"] == rows[1]["text"] and out[1]["spans"] == []


def test_deid_text_rejects_bad_input(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "no id"}\n')
    with pytest.raises(CliError, match="needs an `id`"):
        _run(["deid", "text", "--input", str(source), "--output", str(tmp_path / "o.jsonl")])
