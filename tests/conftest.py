"""Fixtures shared by test modules."""

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medcurate.annotators import server
from medcurate.annotators.config import LabelStudioConfig, ReviewConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ls_config() -> LabelStudioConfig:
    """A real Label Studio server on 127.0.0.1, installed (first time) and started by the project's code:
    PostgreSQL behind uWSGI, as `medcurate labelstudio start` runs it; cluster and migrations once a session.

    Not under pytest's tmp folder: that is private to us (0700), and PostgreSQL, which refuses root,
    runs as an unprivileged user when the tests run as root and must enter the folder.
    """
    root = Path(tempfile.mkdtemp(prefix="medcurate-ls-"))
    root.chmod(0o711)
    config = LabelStudioConfig(data_dir=str(root / "data"))
    server.start(config)
    yield config
    server.stop(config)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def review_config(tmp_path: Path) -> Callable[..., ReviewConfig]:
    """Review settings for one test: its own projects (titled after it) on the given server, and its
    own outbox and reviews folder."""

    def make(label_studio: LabelStudioConfig, name: str, **fields: Any) -> ReviewConfig:
        return ReviewConfig(
            label_studio=label_studio,
            text_project=f"{name} text",
            image_project=f"{name} image",
            outbox=str(tmp_path / "outbox.jsonl"),
            reviews_dir=str(tmp_path / "reviews"),
            **fields,
        )

    return make


@pytest.fixture(scope="session")
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of one `medcurate run` on the demo config with the default runner, started
    from the repository root as `make demo` runs it; shared by the tests that only read it."""
    from medcurate.cli import main

    out = tmp_path_factory.mktemp("demo")
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        assert main(["run", "--config", "configs/demo.yaml", "--output", str(out)]) == 0
    finally:
        os.chdir(cwd)
    return out
