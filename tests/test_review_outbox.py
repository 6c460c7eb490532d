"""The push outbox survives a write cut by a crash: later pushes neither fail nor lose a task."""

from __future__ import annotations

import logging

from medcurate.annotators.push import Outbox


def entries(ids: list[str]) -> list[tuple[str, dict]]:
    return [("text", {"data": {"sample_id": i, "text": f"note {i}"}}) for i in ids]


def test_torn_lines_are_skipped_and_later_appends_start_a_fresh_line(tmp_path, caplog):
    outbox = Outbox(tmp_path / "outbox.jsonl")
    outbox.append(entries(["a", "b", "c"]))
    with outbox.path.open("a") as handle:  # a crash in the middle of an append
        handle.write('{"kind": "text", "task": {"data": {"sample_id": "x", "te')
    outbox.append(entries(["d", "e"]))
    outbox.ack([("text", "a")])
    with outbox.acked.open("a") as handle:  # a crash in the middle of an acknowledgement
        handle.write('["text", "b')

    with caplog.at_level(logging.WARNING, logger="medcurate.review.push"):
        pending = outbox.load()
    assert sorted(key[1] for key in pending) == ["b", "c", "d", "e"]
    assert pending[("text", "d")]["data"]["text"] == "note d"
    assert "skipped 1 line(s)" in caplog.text and "note" not in caplog.text

    outbox.compact(pending)
    caplog.clear()
    assert outbox.load() == pending
    assert not outbox.acked.exists() and not caplog.text


def test_a_push_while_label_studio_was_never_started_keeps_every_task(tmp_path, caplog):
    from medcurate.annotators.config import LabelStudioConfig, ReviewConfig
    from medcurate.annotators.push import push_samples

    config = ReviewConfig(
        outbox=str(tmp_path / "outbox.jsonl"),
        label_studio=LabelStudioConfig(data_dir=str(tmp_path / "no-server")),
    )
    samples = [{"id": f"s{i}", "modality": "text", "text": f"note {i}"} for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="medcurate.review.push"):
        result = push_samples(samples, config)
    assert (result.sent, result.left_in_outbox) == (0, 3)
    assert "not running" in result.unreachable and "tasks kept in the outbox" in caplog.text
    assert sorted(key[1] for key in Outbox(config.outbox).load()) == ["s0", "s1", "s2"]
