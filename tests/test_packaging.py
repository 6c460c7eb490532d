"""The job packages for Dataflow workers and its graph builds with Dataflow options, launching nothing."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import apache_beam as beam
import pytest

from medcurate.config import load_config
from medcurate.pipelines.curate import build_pipeline
from medcurate.pipelines.options import SETUP_FILE, pipeline_options

REPO = Path(__file__).resolve().parents[1]


def test_pipeline_graph_builds_with_dataflow_options(tmp_path: Path):
    config = load_config(
        REPO / "configs" / "demo.yaml",
        [
            "runner.name=DataflowRunner",
            f"publish.output_dir={tmp_path}",
            f"ingest.inputs=['{REPO / 'sample_data'}']",
        ],
    )
    options = pipeline_options(
        config.runner,
        ["--project=medcurate-test", "--region=europe-west4", "--temp_location=gs://medcurate-test/tmp"],
    )
    assert options.get_all_options()["setup_file"] == str(SETUP_FILE)
    pipeline = beam.Pipeline(options=options)
    assert type(pipeline.runner).__name__ == "DataflowRunner"
    build_pipeline(pipeline, config, "run-id", str(tmp_path / "staging"))
    transforms = pipeline.to_runner_api().components.transforms
    names = {t.unique_name.split("/")[0] for t in transforms.values()}
    assert {"Ingest", "Signals", "Deidentify", "Deduplicate", "Route", "WriteShards"} <= names
    assert not list(tmp_path.iterdir()), "building the graph must not write or launch anything"


@pytest.mark.slow
def test_wheel_holds_the_package_and_no_tests(tmp_path: Path):
    # Built from a clean copy: an in-tree build/ folder could hold stale modules.
    source = tmp_path / "src"
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(".*", "out", "build", "*.egg-info", "__pycache__")
    )
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip_wheel, "-w", str(tmp_path), str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("medcurate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "cli.py",
        "pipelines/curate.py",
        "privacy/beam.py",
        "dedup/beam.py",
        "warehouse/publish.py",
    ):
        assert f"medcurate/{module}" in names
    assert not any(name.startswith(("medcurate/tests/", "medcurate/sample_data/")) for name in names)
    assert "medcurate/setup.py" not in names
