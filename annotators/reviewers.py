"""Physician reviewer accounts, each in its own Label Studio organization.

Label Studio Community shows every member of an organization every project and every annotation
in it, and has no role that hides other annotators' answers. Independence therefore comes from
structure: each reviewer is the only member of an organization of their own, holding their own
copy of the review projects; `review push` sends each sample to `reviewers_per_task` reviewers'
projects and `review pull` gathers them all. A reviewer cannot list, open or export another
reviewer's organization.

Community has no API to create an organization, so accounts are made by a short Django script run
with Label Studio's own interpreter and the server's environment. The password is generated here,
passed to that script on stdin (never on a command line), printed once to the engineer and never
stored; the reviewer's API token (used by push and pull) is kept in the one secret store, a file in
the server's data folder readable only by its owner.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from medcurate.annotators import server
from medcurate.annotators.config import LabelStudioConfig

SECRETS_FILE = ".reviewers.json"  # the secret store: reviewers and their API tokens, mode 0600

_CREATE_SCRIPT = r"""
import json, sys
from label_studio.server import _setup_env
_setup_env()
import django
django.setup()
from django.db import transaction
from organizations.models import Organization
from rest_framework.authtoken.models import Token
from users.models import User

request = json.loads(sys.stdin.read())
if User.objects.filter(email__iexact=request["email"]).exists():
    print(json.dumps({"error": "exists"}))
    sys.exit(0)
with transaction.atomic():
    user = User.objects.create_user(email=request["email"], password=request["password"])
    user.username = request["email"]
    user.save(update_fields=["username"])
    org = Organization.create_organization(
        created_by=user, title=request["title"], legacy_api_tokens_enabled=True
    )
    user.active_organization = org
    user.save(update_fields=["active_organization"])
    Token.objects.filter(user=user).delete()
    Token.objects.create(user=user, key=request["token"])
print(json.dumps({"user_id": user.id, "organization_id": org.id}))
"""


class ReviewerError(RuntimeError):
    """A reviewer could not be added; the message says why."""


@dataclass(frozen=True)
class Reviewer:
    email: str
    user_id: int
    organization_id: int
    specialty: str | None = None


def _store(config: LabelStudioConfig) -> Path:
    return server.data_dir(config) / SECRETS_FILE


def _read_store(config: LabelStudioConfig) -> dict[str, dict]:
    path = _store(config)
    return json.loads(path.read_text()) if path.exists() else {}


def _write_store(config: LabelStudioConfig, entries: dict[str, dict]) -> None:
    """Atomically replace the store; the file is created 0600 and never readable by others."""
    path = _store(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(entries, handle, indent=1)
    tmp.replace(path)


def list_reviewers(config: LabelStudioConfig) -> list[Reviewer]:
    """Registered reviewers (no secrets), in the order they were added."""
    return [
        Reviewer(email, e["user_id"], e["organization_id"], e.get("specialty"))
        for email, e in _read_store(config).items()
    ]


def reviewer_token(config: LabelStudioConfig, email: str) -> str:
    return _read_store(config)[email]["token"]


def add_reviewer(config: LabelStudioConfig, email: str, specialty: str | None = None) -> tuple[Reviewer, str]:
    """Create the account and its organization; returns (reviewer, password). Show the password once."""
    email = email.strip().lower()
    if "@" not in email or any(c.isspace() for c in email):
        raise ReviewerError(f"not an e-mail address: {email!r}")
    entries = _read_store(config)
    if email in entries:
        raise ReviewerError(f"{email} is already a reviewer")
    if server.status(config) is None:
        raise ReviewerError("Label Studio is not running: medcurate labelstudio start")
    python = server.ensure_installed(config).parent / "python"
    password, token = secrets.token_urlsafe(12), secrets.token_hex(20)
    request = {"email": email, "password": password, "token": token, "title": f"medcurate review · {email}"}
    completed = subprocess.run(
        [str(python), "-c", _CREATE_SCRIPT],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=server._server_env(config, server.data_dir(config)),
        timeout=300,
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ReviewerError(f"creating the account failed: {tail[0]}")
    answer = json.loads(lines[-1])
    if answer.get("error") == "exists":
        raise ReviewerError(f"Label Studio already has a user {email}; choose another address")
    reviewer = Reviewer(email, answer["user_id"], answer["organization_id"], specialty)
    entries[email] = {**{k: v for k, v in asdict(reviewer).items() if k != "email"}, "token": token}
    _write_store(config, entries)
    return reviewer, password


def specialists(
    specialty: str | None, reviewers: list[Reviewer], overrides: dict[str, list[str]]
) -> set[str]:
    """E-mails of the reviewers of `specialty`: the list `overrides` (review.specialty_reviewers)
    gives for it, else those whose recorded specialty (add-reviewer --specialty) it is."""
    if not specialty:
        return set()
    if specialty in overrides:
        return {r.email for r in reviewers if r.email in overrides[specialty]}
    return {r.email for r in reviewers if r.specialty == specialty}


def assigned_reviewers(
    sample_id: str, reviewers: list[Reviewer], count: int, preferred: set[str] | frozenset[str] = frozenset()
) -> list[Reviewer]:
    """The `count` reviewers a sample goes to: those in `preferred` (the sample's specialists) first,
    then the others, each group by highest hash of (sample, reviewer).

    Stable per sample, spread evenly, and adding a reviewer moves only the samples it now wins.
    """

    def rank(reviewer: Reviewer) -> tuple[bool, bytes]:
        digest = hashlib.sha256(f"{sample_id}\0{reviewer.email}".encode()).digest()
        return reviewer.email in preferred, digest

    return sorted(reviewers, key=rank, reverse=True)[:count]
