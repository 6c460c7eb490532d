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

# What a reviewer marks: one set of labels, the display name a physician reads and the PHI type
# (the label's alias) that pull reads and the next version's placeholder shows, e.g. <PERSON>.
PHI_LABELS = {
    "PERSON": "Name",
    "DATE": "Date",
    "AGE": "Age over 89",
    "LOCATION": "Place or address",
    "FACILITY": "Hospital or clinic",
    "ID": "Record or ID number",
    "CONTACT": "Phone, e-mail or web address",
    "OTHER": "Other identifier",
}
# Types de-identification writes as placeholders: its redactions show under their own type.
REDACTED_TYPES = (*PHI_LABELS, "DATE_TIME", "PHONE_NUMBER", "EMAIL_ADDRESS", "URL", "ORGANIZATION")
OVER_REDACTED = "OVER_REDACTED"
SPECIALTIES = {
    "general_medicine": "General medicine",
    "cardiology": "Cardiology",
    "oncology": "Oncology",
    "neurology": "Neurology",
    "pediatrics": "Paediatrics",
    "psychiatry": "Psychiatry",
    "radiology": "Radiology",
    "infectious_disease": "Infectious disease",
    "endocrinology": "Endocrinology",
    "other": "Other",
}
# Controls whose regions are the de-identification's own redactions (predictions, shown as context)
# and the reviewer's "not PHI" markers; any other region a reviewer draws is surviving PHI.
REDACTED_CONTROL = "redacted"
NOT_PHI_CONTROLS = ("not_phi", "not_phi_boxes")

INSTRUCTIONS = """<p><b>You review de-identified samples before they enter a training set.</b>
Personal information the software removed shows as a grey placeholder such as &lt;PERSON&gt;.</p>
<ol>
<li><b>PHI still visible?</b> Pick a label (Name, Date, ...) and select the words, or draw a box on
an image. One mark is enough for it to be removed from the next version.</li>
<li><b>Removed something that is not PHI</b> (a drug, a relation such as "daughter", a heading)?
Pick <i>Not PHI (over-redacted)</i> and select the placeholder.</li>
<li><b>Fit to train a medical model?</b> Answer no for wrong, harmful, non-medical or unreadable
samples, or too much PHI to fix.</li>
<li>Rate the medical accuracy (1 = wrong, 5 = fully correct), choose the specialty, then
<b>Submit</b>. Skip what you cannot judge.</li>
</ol>
<p>Never copy patient details into a comment. You never see another reviewer's answers, and they
never see yours.</p>"""

_STYLE = """<Style>
  .mc-row { display: flex; gap: 20px; align-items: flex-start; }
  .mc-main { flex: 3; min-width: 0; }
  .mc-side { flex: 2; min-width: 330px; max-width: 460px; }
  .mc-note h4 { color: #555; font-size: 13px !important; font-weight: 400 !important;
                line-height: 1.4 !important; margin: 0 0 6px !important; }
  .mc-side h4 { font-size: 14px !important; line-height: 1.3 !important; margin: 12px 0 4px !important; }
  .mc-text { max-height: 640px; overflow-y: auto; border: 1px solid #ddd; border-radius: 4px;
             padding: 10px; font-size: 15px; line-height: 1.6; }
  .mc-hidden { display: none; }
</Style>"""


def _labels(values: dict[str, str] | tuple[str, ...], background: str = "") -> str:
    items = values.items() if isinstance(values, dict) else ((v, v) for v in values)
    colour = f' background="{background}"' if background else ""
    return "".join(f'<Label value="{shown}" alias="{code}"{colour}/>' for code, shown in items)


def _choices(values: dict[str, str]) -> str:
    return "".join(f'<Choice value="{shown}" alias="{code}"/>' for code, shown in values.items())


def _question(text: str) -> str:
    return f'<Header value="{text}" size="6"/>'


def _verdict(to_name: str) -> str:
    """The accept/reject question both projects share: pull reads it as `verdict` in either."""
    return (
        _question("Is this sample fit to train a medical model?")
        + f'<Choices name="verdict" toName="{to_name}" choice="single" required="true" showInline="true">'
        '<Choice value="Yes, fit to train" alias="accept"/>'
        '<Choice value="No, exclude it" alias="reject"/></Choices>'
    )


def _comment(to_name: str) -> str:
    return (
        f'<TextArea name="comment" toName="{to_name}" rows="2" editable="true" showSubmitButton="false" '
        'placeholder="Optional comment (never copy patient details)"/>'
    )


def _not_phi(tag: str, name: str, to_name: str, question: str) -> str:
    return (
        _question(question) + f'<{tag} name="{name}" toName="{to_name}" showInline="true">'
        f'<Label value="Not PHI (over-redacted)" alias="{OVER_REDACTED}" background="#2e7d32"/></{tag}>'
        # The de-identification's redactions: regions from predictions, their label row hidden.
         + f'<View className="mc-hidden"><{tag} name="{REDACTED_CONTROL}" toName="{to_name}">'
        f"{_labels(REDACTED_TYPES, '#9e9e9e')}</{tag}></View>"
    )


def _layout(sample: str, questions: str) -> str:
    """The sample (with its one-line header) on the left, the questions beside it on the right."""
    return f"""<View>
  {_STYLE}
  <View className="mc-row">
    <View className="mc-main">
      <View className="mc-note"><Header value="$review_note" size="6"/></View>
      {sample}
    </View>
    <View className="mc-side">{questions}</View>
  </View>
</View>"""


def _marks(tag: str, name: str, to_name: str, question: str, not_phi: str, not_phi_question: str) -> str:
    """The reviewer's PHI labels, the over-redaction marker, the hidden de-id labels, fit to train?"""
    return (
        _question(question)
        + f'<{tag} name="{name}" toName="{to_name}" showInline="true">{_labels(PHI_LABELS, "#d32f2f")}</{tag}>'
        + _not_phi(tag, not_phi, to_name, not_phi_question)
        + _verdict(to_name)
    )


TEXT_CONFIG = _layout(
    '<View className="mc-text"><Text name="text" value="$text" granularity="word"/></View>',
    _marks(
        "Labels",
        "phi",
        "text",
        "PHI still in the text? Pick a label, then select the words:",
        "not_phi",
        "Something removed that is not PHI? Mark its placeholder:",
    )
    + _question("How accurate is the medical content? 1 = wrong … 5 = fully correct")
    + '<Rating name="accuracy" toName="text" maxRating="5"/>'
    + _question("Specialty")
    + f'<Choices name="specialty" toName="text" choice="single" layout="select">{_choices(SPECIALTIES)}</Choices>'
    + _comment("text"),
)

IMAGE_CONFIG = _layout(
    '<Image name="image" value="$image" zoom="true" maxHeight="620px"/>',
    _marks(
        "RectangleLabels",
        "phi_boxes",
        "image",
        "Text that still identifies a person? Pick a label, then draw a box:",
        "not_phi_boxes",
        "Something blacked out that is not PHI? Box it:",
    )
    + _question("How usable is the image for diagnosis? 1 = unusable … 5 = excellent")
    + '<Rating name="image_quality" toName="image" maxRating="5"/>'
    + _comment("image"),
)

# An image beside its caption or report (multimodal samples). Besides the content verdict, the
# reviewer judges the pairing itself: "does not describe" rejects the sample as a pair.
MULTIMODAL = "multimodal"
PAIRING_MISMATCH = "mismatch"
MULTIMODAL_CONFIG = _layout(
    '<View className="mc-row">'
    '<View className="mc-main"><Image name="image" value="$image" zoom="true" maxHeight="620px"/></View>'
    '<View className="mc-side"><Header value="Caption or report" size="6"/>'
    '<View className="mc-text"><Text name="caption" value="$caption" granularity="word"/></View></View>'
    "</View>"
    + _question("Document text (first of $image_count image(s) shown)")
    + '<View className="mc-text"><Text name="text" value="$text" granularity="word"/></View>',
    _question("Does the caption or report describe this image?")
    + '<Choices name="pairing" toName="image" choice="single" required="true" showInline="true">'
    '<Choice value="Yes, it describes this image" alias="match"/>'
    f'<Choice value="No, it does not describe this image" alias="{PAIRING_MISMATCH}"/></Choices>'
    + _question("PHI still in the caption? Pick a label, then select the words:")
    + f'<Labels name="caption_phi" toName="caption" showInline="true">{_labels(PHI_LABELS, "#d32f2f")}</Labels>'
    + _marks(
        "RectangleLabels",
        "phi_boxes",
        "image",
        "Text in the image that still identifies a person? Pick a label, then draw a box:",
        "not_phi_boxes",
        "Something blacked out that is not PHI? Box it:",
    )
    + _question("How accurate is the medical content? 1 = wrong … 5 = fully correct")
    + '<Rating name="accuracy" toName="image" maxRating="5"/>'
    + _comment("image"),
)

LABEL_CONFIGS = {TEXT: TEXT_CONFIG, IMAGE: IMAGE_CONFIG, MULTIMODAL: MULTIMODAL_CONFIG}


def connect(config: ReviewConfig, url: str | None = None, timeout: float = 120) -> LabelStudio:
    """An SDK client for the running server (its URL from the state file unless given)."""
    if url is None:
        state = read_state(config.label_studio)
        if state is None:
            raise ServerError("Label Studio is not running: medcurate labelstudio start")
        url = state.url
    return LabelStudio(base_url=url, api_key=admin_token(config.label_studio), timeout=timeout)


def project_title(config: ReviewConfig, kind: str) -> str:
    if kind == MULTIMODAL:
        return config.multimodal_project
    return config.text_project if kind == TEXT else config.image_project


DESCRIPTION = "Physician review of de-identified samples. Press Label All Tasks; instructions open from the labeling screen."


def ensure_project(client: LabelStudio, config: ReviewConfig, kind: str, per_reviewer: bool = False) -> int:
    """The id of this kind's review project, creating it (or bringing its settings up to date).

    A reviewer's own project (`per_reviewer`) takes one annotation per task and hands its tasks
    out in the order they were pushed. The shared project takes
    `reviewers_per_task` and hands them out at random: with sequential order every reviewer's
    `/next` walks past the tasks other reviewers hold locked (each check a row lock and three
    queries), which grew its cost by half at 60 reviewers reading a task each; tasks that already
    have a review still come first (Label Studio's breadth-first step precedes the sampling).
    """
    title = project_title(config, kind)
    settings: dict[str, Any] = {
        "label_config": LABEL_CONFIGS[kind],
        "maximum_annotations": 1 if per_reviewer else config.reviewers_per_task,
        "sampling": "Sequential sampling" if per_reviewer else "Uniform sampling",
        "expert_instruction": INSTRUCTIONS,
        "show_instruction": True,
        "description": DESCRIPTION,
    }
    for project in client.projects.list(title=title):
        if project.title == title:
            # Projects made by an older medcurate get the current labeling config (new controls).
            changes = {key: value for key, value in settings.items() if getattr(project, key, None) != value}
            if changes:
                client.projects.update(project.id, **changes)
            _ensure_local_storage(client, config, kind, project.id)
            return project.id
    project = client.projects.create(
        title=title,
        overlap_cohort_percentage=100,
        model_version=config.model_version,
        show_collab_predictions=True,
        show_skip_button=True,
        **settings,
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
    if kind not in (IMAGE, MULTIMODAL) or folder is None:
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
