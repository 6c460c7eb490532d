"""Beam pipeline options from the run config plus whatever Beam flags the user passed through."""

from __future__ import annotations

from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

from medcurate.config import RunnerConfig

# Dataflow workers install the package from this file; it exists in a source checkout.
SETUP_FILE = Path(__file__).resolve().parents[1] / "setup.py"


def pipeline_options(runner: RunnerConfig, extra_args: list[str]) -> PipelineOptions:
    args = [f"--runner={runner.name}"]
    if runner.name == "FnApiRunner":
        args += [
            f"--direct_num_workers={runner.direct_num_workers}",
            f"--direct_running_mode={runner.direct_running_mode}",
        ]
    passed = [*runner.options, *extra_args]
    if runner.name == "DataflowRunner" and not any(
        a.startswith(("--setup_file", "--extra_package")) for a in passed
    ):
        args.append(f"--setup_file={SETUP_FILE}")
    return PipelineOptions(args + passed)
