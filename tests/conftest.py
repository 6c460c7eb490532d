"""Fixtures shared by test modules."""

import pytest

from medcurate.annotators import server
from medcurate.annotators.config import LabelStudioConfig


@pytest.fixture(scope="session")
def ls_config(tmp_path_factory) -> LabelStudioConfig:
    """A real Label Studio server on 127.0.0.1, installed (first time) and started by the project's code."""
    root = tmp_path_factory.mktemp("labelstudio")
    config = LabelStudioConfig(data_dir=str(root / "data"))
    server.start(config)
    yield config
    server.stop(config)
