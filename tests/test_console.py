"""The console shows our progress and real warnings, not third-party noise about nothing."""

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import logging, sys
import apache_beam as beam
from medcurate.cli import main

def scaled(x):  # a generator whose nested helpers return values: Beam's scan reads those as its own
    if x > 1:
        def scale(v):
            return v * 2
    else:
        def scale(v):
            return v
    yield scale(x)

main(["versions", "--output", sys.argv[1]])  # configures the console as every command does
logging.warning("apitools not found, and bigquery client libraries are not available")
with beam.Pipeline(runner="FnApiRunner") as pipeline:
    pipeline | beam.Create([1, 2]) | beam.FlatMap(scaled)
logging.getLogger("apache_beam.io").warning("a real problem with an input")
"""


def test_known_harmless_third_party_warnings_stay_off_the_console(tmp_path: Path):
    script = tmp_path / "run.py"  # a file: Beam reads the callable's source
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no catalog at" in done.stderr
    assert "apitools" not in done.stderr
    assert "yield and return" not in done.stderr
    assert "a real problem with an input" in done.stderr
