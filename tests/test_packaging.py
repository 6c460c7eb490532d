"""The job packages for Dataflow workers and its graph builds with Dataflow options, launching nothing."""

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import apache_beam as beam
import pytest

from medcurate.config import load_config
from medcurate.pipelines.curate import build_pipeline
from medcurate.pipelines.options import SETUP_FILE, pipeline_options

REPO = Path(__file__).resolve().parents[1]
# --dry_run: the DataflowRunner builds and stages the job but submits nothing, and skips its
# network checks of the temp bucket.
DATAFLOW_ARGS = [
    "--project=medcurate-test",
    "--region=europe-west4",
    "--temp_location=gs://medcurate-test/tmp",
    "--dry_run=True",
]

# Run inside a venv where medcurate is installed from its wheel: builds the Dataflow job.
DRY_RUN = """
import json, sys
from pathlib import Path
import apache_beam as beam
from apache_beam.portability.api import beam_runner_api_pb2 as api
import medcurate
from medcurate.config import load_config
from medcurate.pipelines.curate import build_pipeline
from medcurate.pipelines.options import pipeline_options

repo, out, extra = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
config = load_config(repo / "configs" / "demo.yaml", ["runner.name=DataflowRunner",
    f"publish.output_dir={out}", f"ingest.inputs=['{repo / 'sample_data'}']"])
options = pipeline_options(config.runner, extra)
pipeline = beam.Pipeline(options=options)
build_pipeline(pipeline, config, "run-id", "gs://medcurate-test/out/.staging/run-id")
result = pipeline.run()
staged = {}
for env in result.job.proto_pipeline.components.environments.values():
    for artifact in env.dependencies:
        path = api.ArtifactFilePayload.FromString(artifact.type_payload).path
        name = api.ArtifactStagingToRolePayload.FromString(artifact.role_payload).staged_name
        staged[name] = path
print(json.dumps({"module": medcurate.__file__, "options": options.get_all_options(),
    "staged": staged, "job": result.job.proto.name}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built from a clean copy (an in-tree build/ folder could hold stale modules)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    shutil.copytree(
        REPO, source, ignore=shutil.ignore_patterns(".*", "out", "build", "*.egg-info", "__pycache__")
    )
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip_wheel, "-w", str(root), str(source)], check=True, capture_output=True)
    (built,) = root.glob("medcurate-*.whl")
    return built


def scratch_venv(path: Path) -> Path:
    """A bare venv that sees this interpreter's packages (plain path: no .pth files, so not the
    editable medcurate): installs stay offline and fast, and medcurate comes only from what is installed."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    (site,) = path.glob("lib/python*/site-packages")
    (site / "outer-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return path / "bin" / "python"


def test_pipeline_graph_builds_with_dataflow_options(tmp_path: Path):
    config = load_config(
        REPO / "configs" / "demo.yaml",
        [
            "runner.name=DataflowRunner",
            f"publish.output_dir={tmp_path}",
            f"ingest.inputs=['{REPO / 'sample_data'}']",
        ],
    )
    options = pipeline_options(config.runner, DATAFLOW_ARGS)
    assert options.get_all_options()["setup_file"] == str(SETUP_FILE)
    pipeline = beam.Pipeline(options=options)
    assert type(pipeline.runner).__name__ == "DataflowRunner"
    build_pipeline(pipeline, config, "run-id", str(tmp_path / "staging"))
    transforms = pipeline.to_runner_api().components.transforms
    names = {t.unique_name.split("/")[0] for t in transforms.values()}
    assert {"Ingest", "NotesSignals", "NotesDeidentify", "NotesStage", "Deduplicate", "WriteShards"} <= names
    assert not list(tmp_path.iterdir()), "building the graph must not write or launch anything"


@pytest.mark.slow
def test_wheel_holds_the_package_and_no_tests(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in (
        "cli.py",
        "pipelines/curate.py",
        "privacy/beam.py",
        "dedup/beam.py",
        "warehouse/publish.py",
        "stages/base.py",
        "stages/errors.py",
    ):
        assert f"medcurate/{module}" in names
    assert not any(name.startswith(("medcurate/tests/", "medcurate/sample_data/")) for name in names)
    assert "medcurate/setup.py" not in names


@pytest.mark.slow
def test_dataflow_job_from_an_installed_wheel_stages_the_package(wheel: Path, tmp_path: Path):
    python = scratch_venv(tmp_path / "venv")
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True)
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run(
        [str(python), "-c", DRY_RUN, str(REPO), str(tmp_path / "out"), json.dumps(DATAFLOW_ARGS)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    job = json.loads(done.stdout.splitlines()[-1])
    assert Path(job["module"]).is_relative_to(tmp_path / "venv"), "medcurate must come from the wheel"
    assert job["options"]["setup_file"] is None
    (staged_wheel,) = job["options"]["extra_packages"]
    assert job["staged"][Path(staged_wheel).name] == staged_wheel
    assert job["job"].startswith("beamapp-")
    assert not (tmp_path / "out").exists(), "a dry run writes no output"

    # What the workers get installs cleanly and holds the same package as the wheel it came from.
    target = tmp_path / "worker"
    subprocess.run([*install, "--target", str(target), staged_wheel], check=True, capture_output=True)
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if not n.endswith("RECORD")}
    restaged = {n for n in zipfile.ZipFile(staged_wheel).namelist() if not n.endswith("RECORD")}
    assert shipped == restaged
    assert (target / "medcurate" / "pipelines" / "curate.py").read_bytes() == (
        REPO / "pipelines" / "curate.py"
    ).read_bytes()
