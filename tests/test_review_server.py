"""The review server as `medcurate labelstudio start` runs it (PostgreSQL behind uWSGI), and
consensus by distinct reviewer: a replayed annotation is one review, not two."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import socket
import time
import urllib.request
from typing import Any

import pyarrow.parquet as pq
import pytest

from medcurate.annotators import postgres, server
from medcurate.annotators.agreement import agreement, consensus, latest_per_reviewer, reviewer_stats
from medcurate.annotators.cli import labelstudio_command
from medcurate.annotators.config import LabelStudioConfig, ReviewConfig
from medcurate.annotators.projects import TEXT, connect, ensure_project
from medcurate.annotators.pull import RECORDS_FILE, VERDICTS_FILE, pull_reviews
from medcurate.annotators.push import push_samples
from medcurate.annotators.routing import route_sample
from medcurate.schemas.sample import new_sample

NOTE = "Reviewed in clinic for knee pain after a fall; swelling settling, weight bearing as tolerated."


def record(sample: str, reviewer: int, verdict: str, at: str, annotation: int, accuracy: int = 4) -> dict:
    return {
        "sample_id": sample,
        "project": "text",
        "reviewer_id": reviewer,
        "annotation_id": annotation,
        "created_at": at,
        "verdict": verdict,
        "accuracy": accuracy,
    }


def test_consensus_and_agreement_count_each_reviewer_once_latest_wins(caplog):
    records = [
        record("s1", 7, "accept", "2026-03-01T10:00:00Z", 1),
        record("s1", 7, "accept", "2026-03-01T10:00:01Z", 2),  # the same POST replayed
        record("s1", 8, "reject", "2026-03-01T11:00:00Z", 3),
        record("s2", 7, "accept", "2026-03-01T10:05:00Z", 4),
        record("s2", 7, "accept", "2026-03-01T10:05:00Z", 5),  # one physician twice: not two reviews
        record("s3", 7, "reject", "2026-03-01T09:00:00Z", 6),
        record("s3", 7, "accept", "2026-03-01T12:00:00Z", 7),  # changed their mind: the latest counts
        record("s3", 8, "accept", "2026-03-01T12:30:00Z", 8),
    ]
    distinct, duplicates = latest_per_reviewer(records)
    assert duplicates == 3
    assert sorted(r["annotation_id"] for r in distinct) == [2, 3, 5, 7, 8]

    caplog.set_level(logging.WARNING)
    verdicts = {v["sample_id"]: v for v in consensus(records, "majority", 2)}
    assert "3 duplicate review(s) ignored" in caplog.text
    assert (verdicts["s1"]["decision"], verdicts["s1"]["reviews"]) == ("adjudicate", 2)
    assert (verdicts["s1"]["accept_votes"], verdicts["s1"]["reject_votes"]) == (1, 1)
    assert (verdicts["s2"]["decision"], verdicts["s2"]["reviews"]) == ("incomplete", 1)
    assert (verdicts["s3"]["decision"], verdicts["s3"]["reject_votes"]) == ("accepted", 0)

    # s1 and s3 have two reviewers each; s2 has one, so it is not compared.
    assert agreement(records)["verdict"]["samples"] == 2
    stats = {s["reviewer_id"]: s for s in reviewer_stats(records, list(verdicts.values()))}
    assert stats[7]["reviews"] == 3 and stats[8]["reviews"] == 2


def review(verdict: str) -> list[dict]:
    return [{"from_name": "verdict", "to_name": "text", "type": "choices", "value": {"choices": [verdict]}}]


def pushed_text_samples(config: ReviewConfig, name: str, count: int) -> tuple[list[dict], Any, int]:
    """`count` clinical notes routed to review and pushed: the samples, an admin client, the project id."""
    samples = [
        route_sample(
            new_sample(
                source_kind="clinical",
                modality="text",
                source_uri=f"fhir://{name}/{i}",
                text=NOTE,
                language="en",
            ),
            ReviewConfig(audit_fraction=1),
        )
        for i in range(count)
    ]
    assert push_samples(samples, config).sent == count
    client = connect(config)
    return samples, client, ensure_project(client, config, TEXT)


@pytest.mark.slow
def test_replayed_annotation_is_one_review(ls_config, tmp_path, review_config):
    """A reviewer's annotation submitted twice (as a replayed request stores it) counts once."""
    config = review_config(ls_config, "replay", reviewers_per_task=2)
    samples, client, project_id = pushed_text_samples(config, "replay", 2)
    tasks = {t.data["sample_id"]: t.id for t in client.tasks.list(project=project_id, fields="task_only")}
    admin = client.users.whoami()
    other = client.users.create(
        username="replay-rev2", email="replay-rev2@example.org", password="rev2-pass!"
    )
    first, second = (tasks[s["id"]] for s in samples)
    for _ in range(2):  # the same POST, twice
        client.annotations.create(first, result=review("accept"), completed_by=admin.id)
        client.annotations.create(second, result=review("accept"), completed_by=admin.id)
    client.annotations.create(first, result=review("reject"), completed_by=other.id)

    result = pull_reviews(config)
    assert pq.read_table(tmp_path / "reviews" / RECORDS_FILE).num_rows == 5  # every annotation is kept
    verdicts = {v["sample_id"]: v for v in pq.read_table(tmp_path / "reviews" / VERDICTS_FILE).to_pylist()}
    # Counted per annotation, the first would be accepted 2:1 and the second settled by one physician.
    assert (verdicts[samples[0]["id"]]["decision"], verdicts[samples[0]["id"]]["reviews"]) == (
        "adjudicate",
        2,
    )
    assert (verdicts[samples[1]["id"]]["decision"], verdicts[samples[1]["id"]]["reviews"]) == (
        "incomplete",
        1,
    )
    assert result.verdicts == {"adjudicate": 1, "incomplete": 1}


def secrets_of(config: LabelStudioConfig) -> list[str]:
    return [server.admin_token(config), server.admin_password(config), server.database_password(config)]


@pytest.mark.slow
def test_server_is_postgres_behind_uwsgi_and_status_reports_health(ls_config, capsys):
    state = server.read_state(ls_config)
    assert state.database == "postgresql" and state.url.startswith("http://127.0.0.1:")
    report = server.report(ls_config)
    assert report["running"] and report["database"]["engine"] == "postgresql"
    assert report["database"]["answers"] and report["database"]["size_mb"] > 0
    assert report["workers"]["server"].startswith("uwsgi")
    assert report["workers"]["processes"] == server.worker_count(ls_config) >= 2
    assert report["queue"]["refused"] == 0 and report["queue"]["capacity"] > 0

    # The database listens on its own Unix socket only, and runs unprivileged when we are root.
    cluster = server.cluster(ls_config)
    assert postgres.query(cluster, "SELECT current_setting('listen_addresses') = ''") == [["t"]]
    pid = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
    with open(f"/proc/{pid}/status") as status:
        uid = int(next(line for line in status if line.startswith("Uid:")).split()[1])
    assert uid != 0

    # The UI's static files come through the production server (the page's own scripts and styles).
    with urllib.request.urlopen(f"{state.url}/user/login/", timeout=30) as response:
        page = response.read().decode()
    assets = re.findall(r'(?:src|href)="(/(?:static|react-app)/[^"]+\.(?:js|css))"', page)
    assert assets
    for asset in assets[:3]:
        with urllib.request.urlopen(state.url + asset, timeout=60) as response:
            assert response.status == 200 and len(response.read()) > 100

    args = argparse.Namespace(
        action="status", config=None, overrides=[f"review.label_studio.data_dir={ls_config.data_dir}"]
    )
    assert labelstudio_command(args, []) == 0
    printed = capsys.readouterr().out
    for part in ("database:", "workers:", "queue:"):
        assert part in printed
    assert json.loads(printed.split("workers: ", 1)[1].splitlines()[0])["processes"] >= 2

    # No secret in console output, the server's or the database's logs, or the state file.
    root = server.data_dir(ls_config)
    written = [root / server.LOG_FILE, root / server.STATE_FILE, cluster.log_file]
    for secret in secrets_of(ls_config):
        assert secret not in printed
        for path in written:
            assert secret not in path.read_text(errors="replace")


@pytest.mark.slow
def test_backup_then_restore_brings_back_the_review_database(ls_config, tmp_path):
    client = connect(ReviewConfig(label_studio=ls_config))
    kept = client.projects.create(title="backup probe kept")
    dump = server.backup(ls_config, tmp_path / "reviews.dump")
    assert dump.stat().st_size > 0 and dump.stat().st_mode & 0o077 == 0  # it holds tokens: owner only
    client.projects.delete(kept.id)
    client.projects.create(title="backup probe after")

    server.restore(ls_config, dump)
    titles = {p.title for p in connect(ReviewConfig(label_studio=ls_config)).projects.list()}
    assert "backup probe kept" in titles and "backup probe after" not in titles


@pytest.mark.slow
def test_an_annotation_whose_client_gave_up_while_queued_is_not_stored(ls_config, review_config):
    """A POST that waited for a worker longer than its client did is dropped unserved (and counted),
    so what is stored is what was acknowledged; a client that waits is served as before."""
    config = review_config(ls_config, "abandoned", reviewers_per_task=2)
    sample = new_sample(
        source_kind="clinical", modality="text", source_uri="fhir://gone/1", text=NOTE, language="en"
    )
    assert push_samples([route_sample(sample, ReviewConfig(audit_fraction=1))], config).sent == 1
    client = connect(config)
    project_id = ensure_project(client, config, TEXT)
    assert client.projects.get(project_id).sampling == "Uniform sampling"  # the shared project
    (task,) = client.tasks.list(project=project_id, fields="task_only")

    state = server.read_state(ls_config)
    before = server.report(ls_config)["queue"]["abandoned"]
    body = json.dumps({"result": review("accept"), "task": task.id, "project": project_id}).encode()
    head = (
        f"POST /api/tasks/{task.id}/annotations/?project={project_id} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Token {server.admin_token(ls_config)}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    # Every worker busy (here: stopped), the request waits in the accept queue; its client gives up.
    workers = [w["pid"] for w in server._uwsgi_stats(state.stats_socket)["workers"]]
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        with socket.create_connection(("127.0.0.1", state.port), timeout=10) as sock:
            sock.sendall(head.encode() + body)
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 30
    while server.report(ls_config)["queue"]["abandoned"] == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.report(ls_config)["queue"]["abandoned"] == before + 1
    assert list(client.annotations.list(task.id)) == []

    client.annotations.create(task.id, result=review("accept"))
    assert len(list(client.annotations.list(task.id))) == 1


def _next_task(config: LabelStudioConfig, project_id: int) -> int:
    """The task `/next` hands the admin (as the labeling UI asks for it)."""
    state = server.read_state(config)
    request = urllib.request.Request(
        f"{state.url}/api/projects/{project_id}/next/",
        headers={"Authorization": f"Token {server.admin_token(config)}", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["id"]


@pytest.mark.slow
def test_next_prefers_free_tasks_and_annotations_keep_label_studio_counts(ls_config, review_config):
    """The server's tuning (ls_tuning.py) is in place and changes only what it should.

    `/next` hands out a task nobody else holds before one another reviewer is reading, and
    still hands out a held task with room left when no free one remains. A submitted
    annotation updates the task's counters and releases its lock, and the project summary
    still counts every task's data keys once (annotations do not change them).
    """
    assert "not applied" not in (server.data_dir(ls_config) / server.LOG_FILE).read_text(errors="replace")
    config = review_config(ls_config, "tuning", reviewers_per_task=2)
    _, client, project_id = pushed_text_samples(config, "tune", 3)
    tasks = sorted(t.id for t in client.tasks.list(project=project_id, fields="task_only"))
    other = client.users.create(username="tune-rev2", email="tune-rev2@example.org", password="rev2-pass!")
    cluster = server.cluster(ls_config)
    held, free = tasks[:2], tasks[2]
    for task in held:  # another reviewer is reading these two
        postgres.query(
            cluster,
            "INSERT INTO tasks_tasklock (task_id, user_id, expire_at, unique_id, created_at) "
            f"VALUES ({task}, {other.id}, now() + interval '1 hour', gen_random_uuid(), now())",
        )
    summary_sql = (
        f"SELECT all_data_columns::text FROM projects_projectsummary WHERE project_id = {project_id}"
    )
    columns_before = json.loads(postgres.query(cluster, summary_sql)[0][0])
    assert columns_before and set(columns_before.values()) == {3}

    assert _next_task(ls_config, project_id) == free
    client.annotations.create(free, result=review("accept"))
    task_sql = f"SELECT total_annotations, is_labeled FROM task WHERE id = {free}"
    assert postgres.query(cluster, task_sql) == [["1", "f"]]
    assert postgres.query(cluster, f"SELECT count(*) FROM tasks_tasklock WHERE task_id = {free}") == [["0"]]

    # Only held tasks are left for the admin (who reviewed the free one): one still has room.
    assert _next_task(ls_config, project_id) in held
    client.annotations.create(free, result=review("reject"), completed_by=other.id)
    assert postgres.query(cluster, task_sql) == [["2", "t"]]
    assert json.loads(postgres.query(cluster, summary_sql)[0][0]) == columns_before
