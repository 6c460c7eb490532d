"""Label Studio projects for physician review: labeling configs, idempotent creation, the SDK client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from label_studio_sdk import LabelStudio

from medcurate.annotators.config import ReviewConfig
from medcurate.annotators.server import ServerError, admin_token, read_state

TEXT = "text"
IMAGE = "image"
LOCAL_IMAGES = "medcurate"

# PHI types reviewers can mark; de-id predictions of other types are shown as OTHER.
PHI_LABELS = ("PERSON", "DATE_TIME", "LOCATION", "PHONE_NUMBER", "EMAIL_ADDRESS", "ID", "OTHER")
SPECIALTIES = (
    "general_medicine",
    "cardiology",
    "oncology",
    "neurology",
    "pediatrics",
    "psychiatry",
    "radiology",
    "infectious_disease",
    "endocrinology",
    "other",
)


def _labels(values: tuple[str, ...]) -> str:
    return "".join(f'<Label value="{value}"/>' for value in values)


def _choices(values: tuple[str, ...]) -> str:
    return "".join(f'<Choice value="{value}"/>' for value in values)


def _verdict(to_name: str) -> str:
    """The accept/reject choice both projects share: pull reads it as `verdict` in either."""
    return (
        f'<Choices name="verdict" toName="{to_name}" choice="single" required="true" showInline="true">'
        '<Choice value="accept"/><Choice value="reject"/></Choices>'
    )


TEXT_CONFIG = f"""<View>
  <Header value="Sample $sample_id · $source_kind · language $language · quality $quality_score"/>
  <Text name="text" value="$text" granularity="symbol"/>
  <Header value="PHI the de-identification redacted (prediction)" size="6"/>
  <Labels name="redacted" toName="text">{_labels(PHI_LABELS)}</Labels>
  <Header value="Mark any PHI that survived" size="6"/>
  <Labels name="phi" toName="text">{_labels(PHI_LABELS)}</Labels>
  {_verdict("text")}
  <Header value="Medical accuracy" size="6"/>
  <Rating name="accuracy" toName="text" maxRating="5"/>
  <Header value="Specialty" size="6"/>
  <Choices name="specialty" toName="text" choice="single">{_choices(SPECIALTIES)}</Choices>
  <TextArea name="comment" toName="text" rows="2" editable="true"/>
</View>"""

IMAGE_CONFIG = f"""<View>
  <Header value="Sample $sample_id · $source_kind"/>
  <Image name="image" value="$image" zoom="true"/>
  <Header value="Burned-in text the de-identification blacked out (prediction)" size="6"/>
  <RectangleLabels name="redacted" toName="image">{_labels(PHI_LABELS)}</RectangleLabels>
  <Header value="Box any PHI that survived" size="6"/>
  <RectangleLabels name="phi_boxes" toName="image">{_labels(PHI_LABELS)}</RectangleLabels>
  {_verdict("image")}
  <Header value="Image quality" size="6"/>
  <Rating name="image_quality" toName="image" maxRating="5"/>
  <TextArea name="comment" toName="image" rows="2" editable="true"/>
</View>"""

LABEL_CONFIGS = {TEXT: TEXT_CONFIG, IMAGE: IMAGE_CONFIG}


def connect(config: ReviewConfig, url: str | None = None, timeout: float = 120) -> LabelStudio:
    """An SDK client for the running server (its URL from the state file unless given)."""
    if url is None:
        state = read_state(config.label_studio)
        if state is None:
            raise ServerError("Label Studio is not running: medcurate labelstudio start")
        url = state.url
    return LabelStudio(base_url=url, api_key=admin_token(config.label_studio), timeout=timeout)


def project_title(config: ReviewConfig, kind: str) -> str:
    return config.text_project if kind == TEXT else config.image_project


def ensure_project(client: LabelStudio, config: ReviewConfig, kind: str) -> int:
    """The id of this kind's review project, creating it (or bringing its settings up to date)."""
    title = project_title(config, kind)
    for project in client.projects.list(title=title):
        if project.title == title:
            # Projects made by an older medcurate get the current labeling config (new controls).
            changes: dict[str, Any] = {}
            if project.maximum_annotations != config.reviewers_per_task:
                changes["maximum_annotations"] = config.reviewers_per_task
            if project.label_config != LABEL_CONFIGS[kind]:
                changes["label_config"] = LABEL_CONFIGS[kind]
            if changes:
                client.projects.update(project.id, **changes)
            _ensure_local_storage(client, config, kind, project.id)
            return project.id
    project = client.projects.create(
        title=title,
        label_config=LABEL_CONFIGS[kind],
        maximum_annotations=config.reviewers_per_task,
        overlap_cohort_percentage=100,
        model_version=config.model_version,
        show_collab_predictions=True,
        description="medcurate physician review; see docs/physicians.md",
    )
    _ensure_local_storage(client, config, kind, project.id)
    return project.id


def local_images_dir(config: ReviewConfig) -> Path | None:
    """Where pushed images are written for Local Files serving, or None to send them inline.

    A subfolder: Label Studio refuses a storage whose path is the document root itself.
    """
    root = config.label_studio.local_files_root
    return Path(root).resolve() / LOCAL_IMAGES if root else None


def _ensure_local_storage(client: LabelStudio, config: ReviewConfig, kind: str, project_id: int) -> None:
    """Image links under the Local Files root 404 unless a Local Files storage is attached."""
    folder = local_images_dir(config)
    if kind != IMAGE or folder is None:
        return
    if list(client.import_storage.local.list(project=project_id)):
        return
    folder.mkdir(parents=True, exist_ok=True)
    client.import_storage.local.create(
        project=project_id, path=str(folder), title="medcurate images", use_blob_urls=False
    )


def existing_sample_ids(client: LabelStudio, project_id: int, page_size: int = 5000) -> set[str]:
    """Sample ids already present as tasks: the task key that makes pushes idempotent."""
    ids: set[str] = set()
    for task in client.tasks.list(
        project=project_id, fields="task_only", include="id,data", page_size=page_size
    ):
        data: dict[str, Any] = task.data or {}
        if "sample_id" in data:
            ids.add(data["sample_id"])
    return ids
