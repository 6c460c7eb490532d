"""The review section of the run config: routing policy, Label Studio server, push and pull settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from medcurate.schemas.config import StrictModel


class LabelStudioConfig(StrictModel):
    """A local Label Studio server. The token itself never lives in config (it would reach manifests)."""

    host: Literal["127.0.0.1"] = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 picks a free port at start")
    data_dir: str = Field("out/labelstudio", description="server data folder (sqlite, uploads, state)")
    venv: str = Field(".venv-labelstudio", description="Label Studio's own virtual environment")
    version: str = Field("label-studio>=1.23,<1.24", description="pip requirement installed on first use")
    username: str = "admin@medcurate.local"
    password_env: str = "MEDCURATE_LS_PASSWORD"
    token_env: str = Field("MEDCURATE_LS_TOKEN", description="env var with the 40-hex admin API token")
    local_files_root: str | None = Field(None, description="folder served as Local Files storage (images)")
    start_timeout_s: float = Field(600, gt=0, description="first start includes migrations")
    database: Literal["postgresql", "sqlite"] = Field(
        "postgresql",
        description="postgresql: a private cluster under data_dir behind uWSGI workers (many reviewers); "
        "sqlite: Label Studio's single-process development server (a light mode for one laptop)",
    )
    workers: int = Field(0, ge=0, description="uWSGI worker processes; 0 = two per CPU core")
    wsgi_server: str = Field("pyuwsgi>=2.0.28,<2.1", description="pip requirement of the uWSGI server")


class ReviewConfig(StrictModel):
    """Which samples go to physician review instead of straight to the dataset, and how."""

    audit_fraction: float = Field(0.05, ge=0, le=1, description="random share of every source kind")
    audit_fraction_by_kind: dict[str, float] = Field(
        default_factory=dict, description="per source kind override of audit_fraction"
    )
    min_deid_confidence: float = Field(0.6, ge=0, le=1, description="less confident de-id goes to review")
    quality_uncertain_low: float = Field(0.4, ge=0, le=1, description="quality scores in [low, high] ...")
    quality_uncertain_high: float = Field(0.6, ge=0, le=1, description="... are uncertain and go to review")
    active_budget_by_kind: dict[str, int] = Field(
        default_factory=dict,
        description="active learning: reviews per run, per source kind, spent on the text samples the "
        "relevance and quality models are least sure of (reason model_uncertain; audit_fraction still applies)",
    )
    review_images_with_text: bool = Field(
        True, description="images with burned-in text redacted go to review"
    )
    seed: int = 0

    push_after_run: bool = Field(
        False, description="after publishing, push the version's pending samples to Label Studio"
    )
    reviewers_per_task: int = Field(2, ge=1, description="maximum_annotations of each task")
    specialty_reviewers: dict[str, list[str]] = Field(
        default_factory=dict,
        description="specialty code -> reviewer e-mails who get that specialty's tasks first; a specialty "
        "listed here ignores what add-reviewer --specialty recorded for it",
    )
    consensus: Literal["unanimous", "majority"] = "majority"
    batch_size: int = Field(1000, ge=1, le=10000)
    max_retries: int = Field(4, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    model_version: str = "medcurate-0.1"
    text_project: str = "medcurate text review"
    image_project: str = "medcurate image review"
    multimodal_project: str = "medcurate image-caption review"
    outbox: str | None = Field(
        None,
        description="pushes kept while Label Studio is down; default <publish.output_dir>/review_outbox.jsonl",
    )
    reviews_dir: str | None = Field(
        None, description="review records, agreement and consensus; default <publish.output_dir>/reviews"
    )
    label_studio: LabelStudioConfig = Field(default_factory=LabelStudioConfig)

    @model_validator(mode="after")
    def _band_ordered(self) -> ReviewConfig:
        if self.quality_uncertain_low > self.quality_uncertain_high:
            raise ValueError("quality_uncertain_low must not exceed quality_uncertain_high")
        for kind, fraction in self.audit_fraction_by_kind.items():
            if not 0 <= fraction <= 1:
                raise ValueError(f"audit_fraction_by_kind[{kind}] must be in [0, 1]")
        if self.specialty_reviewers:
            from medcurate.annotators.projects import SPECIALTIES  # the labeling configs' list

            unknown = sorted(set(self.specialty_reviewers) - set(SPECIALTIES))
            if unknown:
                raise ValueError(
                    f"specialty_reviewers: unknown specialty {unknown}; one of {list(SPECIALTIES)}"
                )
            self.specialty_reviewers = {
                code: [email.strip().lower() for email in emails]
                for code, emails in self.specialty_reviewers.items()
            }
        return self
