"""Label Studio 1.23's hot paths without the database work that changes nothing.

Loaded by the review server's uWSGI workers (see server.WSGI_TEXT), inside Label Studio's own
interpreter, after Django is set up; it is never imported by medcurate itself. Each patch skips
work whose result is known beforehand, so what is stored stays what Label Studio stores. One
reviewer's annotation (`GET /next`, then `POST`) took 48 SQL statements for the POST and 42 for
`/next` (60 to 70 while most candidate tasks were held by other reviewers); with the patches,
32 and 34.
"""

from __future__ import annotations

import copy
import functools
import logging
import sys
import threading
from typing import Any

log = logging.getLogger("medcurate.labelstudio")


def _summary_only_for_data() -> None:
    """Project summary data columns are recounted only when a task's `data` is saved.

    Label Studio recounts the keys of `task.data` into the project summary (remove the task's
    old keys, add its new ones: 4 SELECTs and 2 UPDATEs of the one summary row every worker
    shares) on every task save except `update_fields=['is_labeled']`. A submitted annotation
    saves its task twice with other fields (`updated_at`, then the annotation counters), so each
    POST recounted unchanged data twice, serialising all workers on that row. A save that names
    its fields and leaves out `data` cannot change the counts.
    """
    from tasks import models

    def data_not_updated(update_fields: Any) -> bool:
        return update_fields is not None and "data" not in update_fields

    models._task_data_is_not_updated = data_not_updated


def _no_lookup_for_new_annotations() -> None:
    """A new annotation has no stored version to subtract from the summary: skip its lookup.

    Label Studio's pre-save handler fetches `Annotation(id=None)` for every new annotation and
    finds nothing; the handler still runs for every update.
    """
    from django.db.models.signals import pre_save
    from tasks import models

    original = models.delete_project_summary_annotations_before_updating_annotation

    def before_saving_annotation(sender: Any, instance: Any, **kwargs: Any) -> None:
        if instance.pk is not None:
            original(sender, instance, **kwargs)

    if pre_save.disconnect(original, sender=models.Annotation):
        pre_save.connect(before_saving_annotation, sender=models.Annotation, weak=False)


def _no_storage_links_without_storages() -> None:
    """A task of a project without import storage has no storage to resolve its URLs against.

    Label Studio looks up the task's storage link (one query per storage kind, five) for every
    task it serves even when the project has no storage at all, so that nothing can be resolved.
    """
    from django.conf import settings
    from tasks.models import Task

    original = Task.resolve_uri

    def resolve_uri(self: Any, task_data: Any, project: Any) -> Any:
        if (
            not settings.CLOUD_FILE_STORAGE_ENABLED
            and not (project.task_data_login and project.task_data_password)
            and not project.get_all_import_storage_objects
        ):
            return task_data
        return original(self, task_data, project)

    Task.resolve_uri = resolve_uri


def _data_types_parsed_once() -> None:
    """A project's data types are derived from its labeling config once per config, not per load.

    Label Studio parses the labeling config's XML in `Project.__init__`, i.e. every time a
    project row is read (three to four times per request). The result depends on the config
    text alone; callers get their own copy.
    """
    from projects import models

    parse = functools.lru_cache(maxsize=64)(models.extract_data_types)

    def extract_data_types(label_config: Any) -> Any:
        return copy.deepcopy(parse(label_config))

    models.extract_data_types = extract_data_types


def _static_flags_evaluated_once() -> None:
    """Feature flags that no rule targets are evaluated once per process.

    `flag_set` builds the user's description (two queries: organization and its creator) and asks
    the flag client, about nine times per request. Label Studio Community reads its flags from a
    file packaged with it; a flag there without targeting rules or targets has the same value for
    every user, as has a flag the file lacks (the default) or one the environment sets, and
    neither changes while the process runs. Flags with rules are still evaluated for each user.
    """
    import json

    from core import feature_flags
    from core.feature_flags import base

    targeted: set[str] = set()
    if base.settings.FEATURE_FLAGS_FROM_FILE:
        with open(base.get_feature_file_path()) as handle:
            flags = json.load(handle).get("flags", {})
        targeted = {name for name, flag in flags.items() if flag.get("rules") or flag.get("targets")}
    else:  # flags from a live service may target anyone: leave them alone
        return
    original = base.flag_set
    values: dict[tuple[str, Any], bool] = {}

    def flag_set(
        feature_flag: str, user: Any = None, override_system_default: Any = None, organization: Any = None
    ) -> Any:
        if feature_flag in targeted:
            return original(feature_flag, user, override_system_default, organization)
        key = (feature_flag, override_system_default)
        if key not in values:
            values[key] = original(feature_flag, user, override_system_default, organization)
        return values[key]

    for module in list(sys.modules.values()):
        if getattr(module, "flag_set", None) is original:
            module.flag_set = flag_set
    feature_flags.flag_set = flag_set


def _free_tasks_tried_first() -> None:
    """`/next` tries tasks no other reviewer holds before those someone does.

    Label Studio's random pick walks up to 50 candidates in random order, locking each row and
    counting its locks and annotations (four queries) until one has room. With hundreds of
    physicians each reading a task, most candidates in the breadth-first step (tasks one review
    short of done) are held by someone, and that walk was 40% of the server's time under load.
    Candidates without another reviewer's live lock are now tried first; if none has room, the
    original walk over all candidates follows, so every task it could hand out still can be. Each
    task handed out still passes Label Studio's own row lock and `has_lock` check.
    """
    from django.db.models import Exists, OuterRef
    from django.utils.timezone import now
    from projects.functions import next_task
    from tasks.models import TaskLock

    original = next_task._get_random_unlocked

    def get_random_unlocked(task_query: Any, user: Any, upper_limit: Any = None) -> Any:
        held = TaskLock.objects.filter(task=OuterRef("pk"), expire_at__gt=now()).exclude(user=user)
        task = original(task_query.exclude(Exists(held)), user, upper_limit)
        return task if task is not None else original(task_query, user, upper_limit)

    next_task._get_random_unlocked = get_random_unlocked


def _one_project_per_review_request() -> None:
    """Within one `/next` or annotation POST, a project or organization is read once.

    Each task and annotation object Label Studio loads reads its project again through its
    foreign key (`task.project`: lock check, permission check, counters, webhook), and each
    user and project its organization: three to four identical rows per request. During these
    two requests only, such reads share the first copy. Neither request changes a project or
    an organization (the project's summary is a row of its own), and every request starts
    from the database again.
    """
    from django.core.signals import request_finished, request_started
    from organizations.models import Organization
    from projects.models import Project
    from tasks.models import Annotation, Task
    from users.models import User

    local = threading.local()

    def start(sender: Any, environ: Any = None, **kwargs: Any) -> None:
        environ = environ or {}
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        review = (method == "GET" and path.endswith("/next/")) or (
            method == "POST" and path.endswith("/annotations/")
        )
        local.rows = {} if review else None

    def finish(sender: Any, **kwargs: Any) -> None:
        local.rows = None

    def shared(descriptor: Any, model: Any) -> None:
        original = descriptor.get_object

        def get_object(instance: Any) -> Any:
            rows = getattr(local, "rows", None)
            key = (model, getattr(instance, descriptor.field.attname))
            if rows is None or key[1] is None:
                return original(instance)
            if key not in rows:
                rows[key] = original(instance)
            return rows[key]

        descriptor.get_object = get_object

    for holder, field, model in (
        (Task, "project", Project),
        (Annotation, "project", Project),
        (Project, "organization", Organization),
        (User, "active_organization", Organization),
    ):
        shared(getattr(holder, field), model)
    request_started.connect(start, weak=False)
    request_finished.connect(finish, weak=False)


PATCHES = (
    _one_project_per_review_request,
    _free_tasks_tried_first,
    _summary_only_for_data,
    _no_lookup_for_new_annotations,
    _no_storage_links_without_storages,
    _data_types_parsed_once,
    _static_flags_evaluated_once,
)


def apply() -> None:
    """Install every patch; one that no longer fits Label Studio's code is skipped with a warning."""
    for patch in PATCHES:
        try:
            patch()
        except (ImportError, AttributeError) as error:
            log.warning("review server tuning %s not applied: %s", patch.__name__, error)
