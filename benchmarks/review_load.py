"""Load test of the review server: C simulated physicians looping `GET /next` -> `POST` annotation.

Run: .venv/bin/python benchmarks/review_load.py [--reviewers 10 100 300] [--rate 17]
Starts its own server (PostgreSQL + uWSGI unless --database sqlite) on a fresh data folder under
/tmp, creates reviewer accounts (each with its own API token, in the admin's organization),
and for each reviewer count runs a paced phase (--rate annotations/s overall: 1,000 physicians at
one review a minute is about 17/s; paced reviewers keep their task locked while they read it,
as in the labeling UI) and an unpaced one, each on a fresh project of --tasks text tasks with
`maximum_annotations` 2. Per phase it prints annotations/s, POST and /next latency percentiles,
errors by kind, annotations stored vs acknowledged, duplicates (one reviewer twice on a task),
over-assigned tasks (more reviewers than maximum_annotations), requests the server dropped because
their client had given up, the server's CPU per annotation (uWSGI and PostgreSQL processes: what
sizes a machine for a rate), the machine's load and the client's own CPU.
Every request goes to 127.0.0.1; each phase lasts --duration seconds (plus at most one request
timeout); the data folder, accounts and server are removed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcurate.annotators import postgres, server
from medcurate.annotators.config import LabelStudioConfig, ReviewConfig
from medcurate.annotators.projects import TEXT, connect, ensure_project
from medcurate.annotators.push import push_samples
from medcurate.schemas.sample import new_sample

MAXIMUM_ANNOTATIONS = 2
REQUEST_TIMEOUT_S = 30.0
NOTE = (
    "Seen in clinic for exertional chest tightness relieved by rest; ECG shows no acute change. "
    "Started aspirin and a statin, exercise tolerance test booked, review in six weeks. "
)

# Creates reviewer accounts in the admin's organization with Label Studio's own models (no
# password: API tokens only), run with Label Studio's interpreter and the server's environment.
# Tokens come in on stdin and never appear on a command line or in output.
_ACCOUNTS_SCRIPT = r"""
import json, sys
from label_studio.server import _setup_env
_setup_env()
from organizations.models import Organization
from rest_framework.authtoken.models import Token
from users.models import User

request = json.loads(sys.stdin.read())
org = Organization.objects.order_by("id").first()
ids = []
for email, token in request["accounts"]:
    user = User.objects.create_user(email=email, password=None)
    user.username = email
    org.add_user(user)
    user.active_organization = org
    user.save(update_fields=["username", "active_organization"])
    Token.objects.filter(user=user).delete()
    Token.objects.create(user=user, key=token)
    ids.append(user.id)
print(json.dumps({"user_ids": ids}))
"""


def create_reviewers(config: LabelStudioConfig, count: int) -> list[str]:
    """`count` reviewer accounts; returns their API tokens (kept in memory only)."""
    tokens = [secrets.token_hex(20) for _ in range(count)]
    accounts = [[f"load-reviewer-{i:04d}@example.org", token] for i, token in enumerate(tokens)]
    python = server.ensure_installed(config).parent / "python"
    done = subprocess.run(
        [str(python), "-c", _ACCOUNTS_SCRIPT],
        input=json.dumps({"accounts": accounts}),
        capture_output=True,
        text=True,
        env=server._server_env(config, server.data_dir(config)),
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"creating reviewer accounts failed: {done.stderr.strip().splitlines()[-1:]}")
    return tokens


def make_samples(n: int, prefix: str) -> list[dict[str, Any]]:
    return [
        new_sample(
            source_kind="clinical",
            modality="text",
            source_uri=f"load://{prefix}/{i}",
            text=NOTE,
            language="en",
            quality_score=0.5,
            redactions=[{"start": 8, "end": 14, "type": "PERSON", "score": 0.9}],
            review_status="pending",
            review_reasons=["audit"],
        )
        for i in range(n)
    ]


def review_result(index: int) -> list[dict[str, Any]]:
    verdict = "accept" if index % 5 else "reject"
    return [
        {"from_name": "verdict", "to_name": "text", "type": "choices", "value": {"choices": [verdict]}},
        {"from_name": "accuracy", "to_name": "text", "type": "rating", "value": {"rating": 1 + index % 5}},
    ]


@dataclass
class Phase:
    """What the clients saw in one phase."""

    reviewers: int
    rate: float | None
    duration: float
    acknowledged: set[int] = field(default_factory=set)
    acked_in_time: int = 0
    post_s: list[float] = field(default_factory=list)
    next_s: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    exhausted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    slot: int = 0


def _request(port: int, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any, float]:
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None), time.perf_counter() - start
    finally:
        connection.close()


def _claim_slot(phase: Phase, t0: float) -> float:
    """The time of this reviewer's next submit (slots `1 / phase.rate` apart overall)."""
    with phase.lock:
        due = t0 + phase.slot / phase.rate
        phase.slot += 1
    return due


def _wait(until: float) -> None:
    time.sleep(max(0.0, until - time.monotonic()))


def reviewer(phase: Phase, port: int, project_id: int, token: str, t0: float, deadline: float) -> None:
    """One physician, driving the API as the labeling UI does: open the next task, submit, repeat.

    Paced, reviewers arrive one slot apart and then read each task until their next turn to submit
    (about reviewers / rate seconds), the task staying locked to them meanwhile, as in the UI; the
    UI opens the next task right after a submit. Unpaced, they submit at once.
    """
    index = 0
    while time.monotonic() < deadline:
        due = 0.0
        if phase.rate:
            # The submit slot is claimed before the task is opened: a reviewer whose next submit
            # would fall after the phase does not open a task the phase cannot count (a paced
            # phase would otherwise end with every reviewer holding one unsubmitted task).
            due = _claim_slot(phase, t0)
            if due >= deadline:
                return
            if index == 0:
                _wait(due)  # arrivals are spread over the first slots, not all at once
        try:
            status, task, elapsed = _request(port, "GET", f"/api/projects/{project_id}/next/", token)
            phase.next_s.append(elapsed)
            if status == 404:
                phase.exhausted += 1
                return
            if status != 200:
                phase.errors[f"next HTTP {status}"] += 1
                continue
            _wait(due)
            body = {
                "result": review_result(index),
                "lead_time": 42.0,
                "task": task["id"],
                "project": project_id,
            }
            status, created, elapsed = _request(
                port, "POST", f"/api/tasks/{task['id']}/annotations/?project={project_id}", token, body
            )
            phase.post_s.append(elapsed)
            if status == 201:
                with phase.lock:
                    phase.acknowledged.add(created["id"])
                    phase.acked_in_time += time.monotonic() <= deadline
            else:
                phase.errors[f"post HTTP {status}"] += 1
        except TimeoutError:
            phase.errors["timeout"] += 1
        except (OSError, http.client.HTTPException, ValueError) as error:
            phase.errors[type(error).__name__] += 1
        index += 1


def stored_annotations(config: LabelStudioConfig, project_id: int) -> list[tuple[int, int, int]]:
    """(annotation id, task id, reviewer id) of every annotation stored, read from the database itself."""
    sql = f"SELECT id, task_id, completed_by_id FROM task_completion WHERE project_id = {int(project_id)}"
    if config.database == "postgresql":
        rows = postgres.query(server.cluster(config), sql)
    else:
        with sqlite3.connect(server.data_dir(config) / "label_studio.sqlite3") as db:
            rows = db.execute(sql).fetchall()
    return [(int(a), int(t), int(u)) for a, t, u in rows]


def _process_tree_cpu(roots: list[int]) -> float:
    """CPU seconds used by these processes and all their descendants, reaped ones included (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        pid = int(entry.name)
        parent[pid] = int(fields[1])
        used[pid] = sum(int(value) for value in fields[11:15]) / tick  # utime stime cutime cstime
    tree, frontier = set(), [root for root in roots if root in used]
    while frontier:
        pid = frontier.pop()
        tree.add(pid)
        frontier += [child for child, ppid in parent.items() if ppid == pid and child not in tree]
    return sum(used[pid] for pid in tree)


def server_cpu_s(config: LabelStudioConfig) -> float:
    """CPU seconds the review server has used: uWSGI master and workers, PostgreSQL and its backends."""
    roots = [server.read_state(config).pid]
    if config.database == "postgresql":
        roots.append(int((server.cluster(config).pgdata / "postmaster.pid").read_text().split()[0]))
    return _process_tree_cpu(roots)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def settle(config: LabelStudioConfig, timeout_s: float = 300) -> None:
    """Wait until the server has worked off what the last phase left queued (abandoned requests)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        report = server.report(config)
        if report.get("queue", {}).get("waiting", 0) == 0 and report.get("workers", {}).get("busy", 0) <= 1:
            return
        time.sleep(2)


def with_retries(call, attempts: int = 5):
    """The setup between phases may meet a server still busy with the last one: try again."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception:  # any failure of the setup calls is retried; the last one is raised
            if attempt == attempts - 1:
                raise
            time.sleep(5)


def run_phase(
    config: ReviewConfig, tokens: list[str], reviewers: int, rate: float | None, args: argparse.Namespace
) -> dict[str, Any]:
    ls = config.label_studio
    title = f"load {reviewers} {'paced' if rate else 'unpaced'}"
    project_config = config.model_copy(update={"text_project": title})
    settle(ls)
    client = connect(project_config)
    project_id = with_retries(lambda: ensure_project(client, project_config, TEXT))
    samples = make_samples(args.tasks, title.replace(" ", "-"))
    pushed = with_retries(lambda: push_samples(samples, project_config, client))
    assert pushed.sent + pushed.already_present == args.tasks, pushed
    port = server.read_state(ls).port
    phase = Phase(reviewers, rate, args.duration)
    load_before, cpu_before = os.getloadavg()[0], resource.getrusage(resource.RUSAGE_SELF)
    server_before, queue_before = server_cpu_s(ls), server.report(ls).get("queue", {})
    t0 = time.monotonic()
    deadline = t0 + args.duration
    threads = [
        threading.Thread(
            target=reviewer, args=(phase, port, project_id, tokens[i], t0, deadline), daemon=True
        )
        for i in range(reviewers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + REQUEST_TIMEOUT_S + 5)
    wall = time.monotonic() - t0
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    server_cpu = server_cpu_s(ls) - server_before
    stored = stored_annotations(ls, project_id)
    stored_ids = {a for a, _, _ in stored}
    pairs = Counter((task, user) for _, task, user in stored)
    reviewers_per_task: dict[int, set[int]] = {}
    for _, task, user in stored:
        reviewers_per_task.setdefault(task, set()).add(user)
    health = server.report(ls)
    return {
        "reviewers": reviewers,
        "mode": f"paced {rate:g}/s" if rate else "unpaced",
        "annotations_per_s": phase.acked_in_time / args.duration,
        "post_p50": percentile(phase.post_s, 0.50),
        "post_p95": percentile(phase.post_s, 0.95),
        "post_p99": percentile(phase.post_s, 0.99),
        "next_p95": percentile(phase.next_s, 0.95),
        "errors": dict(phase.errors),
        "acknowledged": len(phase.acknowledged),
        "stored": len(stored),
        "lost": len(phase.acknowledged - stored_ids),
        "unacknowledged_stored": len(stored_ids - phase.acknowledged),
        "duplicates": sum(n - 1 for n in pairs.values() if n > 1),
        "over_assigned": sum(len(users) > MAXIMUM_ANNOTATIONS for users in reviewers_per_task.values()),
        "tasks_ran_out": phase.exhausted > 0,
        "load_1min": (round(load_before, 2), round(os.getloadavg()[0], 2)),
        "client_cpu_pct": round(100 * client_cpu / wall, 1),
        # Server CPU per acknowledged annotation (its /next and POST, and any work for clients
        # that gave up) and the cores the server kept busy: what sizes a machine for a rate.
        "server_cpu_ms_per_annotation": round(1000 * server_cpu / max(len(phase.acknowledged), 1), 1),
        "server_cores_busy": round(server_cpu / wall, 2),
        # Counted by uWSGI since it started: this phase's share.
        **{
            f"queue_{key}": health.get("queue", {}).get(key, 0) - queue_before.get(key, 0)
            for key in ("refused", "abandoned")
        },
        "worker_exceptions": health.get("workers", {}).get("exceptions"),
    }


def describe(row: dict[str, Any]) -> str:
    errors = ", ".join(f"{kind} {n}" for kind, n in sorted(row["errors"].items())) or "0"
    return (
        f"{row['reviewers']:4d} reviewers {row['mode']:>13}: {row['annotations_per_s']:6.1f} annotations/s, "
        f"POST p50/p95/p99 {row['post_p50']:.2f}/{row['post_p95']:.2f}/{row['post_p99']:.2f} s, "
        f"/next p95 {row['next_p95']:.2f} s, errors {errors}, stored {row['stored']} vs acknowledged "
        f"{row['acknowledged']} (lost {row['lost']}, unacknowledged {row['unacknowledged_stored']}), "
        f"duplicates {row['duplicates']}, over-assigned {row['over_assigned']}, "
        f"requests dropped for clients gone {row['queue_abandoned']}, connections refused {row['queue_refused']}, "
        f"server CPU {row['server_cpu_ms_per_annotation']:.0f} ms/annotation on {row['server_cores_busy']} cores, "
        f"load {row['load_1min'][0]}->{row['load_1min'][1]}, client CPU {row['client_cpu_pct']}%"
        + (", tasks ran out" if row["tasks_ran_out"] else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviewers", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--rate", type=float, default=17.0, help="paced phases: annotations/s overall")
    parser.add_argument("--modes", nargs="+", choices=["paced", "unpaced"], default=["paced", "unpaced"])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--tasks", type=int, default=3000, help="tasks per phase's project")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--workers", type=int, default=0, help="uWSGI processes (0: two per core)")
    parser.add_argument("--json", metavar="FILE", help="also write every phase's figures as JSON")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="review-load-"))
    tmp.chmod(0o711)  # PostgreSQL runs unprivileged when we are root: it must enter this folder
    ls = LabelStudioConfig(data_dir=str(tmp / "labelstudio"), database=args.database, workers=args.workers)
    config = ReviewConfig(
        label_studio=ls,
        reviewers_per_task=MAXIMUM_ANNOTATIONS,
        outbox=str(tmp / "outbox.jsonl"),
        reviews_dir=str(tmp / "reviews"),
    )
    rows = []
    try:
        start = time.monotonic()
        state = server.start(ls)
        print(f"server up in {time.monotonic() - start:.0f} s: {args.database}, {state.workers} worker(s), "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        tokens = create_reviewers(ls, max(args.reviewers))
        print(f"{len(tokens)} reviewer accounts created", flush=True)
        for reviewers in args.reviewers:
            for mode in args.modes:
                row = run_phase(config, tokens, reviewers, args.rate if mode == "paced" else None, args)
                rows.append(row)
                print(describe(row), flush=True)
    finally:
        server.stop(ls)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    top = max(args.reviewers)
    paced = next((r for r in rows if r["reviewers"] == top and r["mode"] != "unpaced"), None)
    unpaced = next((r for r in rows if r["reviewers"] == top and r["mode"] == "unpaced"), None)
    if paced:
        errors = sum(paced["errors"].values())
        print(
            f"paced at {args.rate:g}/s: annotations/s {paced['annotations_per_s']:.1f} at {top} reviewers, "
            f"p95 {paced['post_p95']:.2f} s, errors {errors}, lost {paced['lost']}, "
            f"duplicated {paced['duplicates']}, over-assigned {paced['over_assigned']}; server CPU "
            f"{paced['server_cpu_ms_per_annotation']:.0f} ms per annotation, so {args.rate:g}/s keeps "
            f"{paced['server_cpu_ms_per_annotation'] * args.rate / 1000:.1f} cores busy"
        )
    last = unpaced or paced
    if last:
        print(
            f"annotations/s {last['annotations_per_s']:.1f} at {top} reviewers, p95 {last['post_p95']:.2f} s, "
            f"lost {last['lost']}, duplicated {last['duplicates']}"
        )


if __name__ == "__main__":
    main()
