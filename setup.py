"""The repository root is the `medcurate` package; setup.py also serves Dataflow's --setup_file."""

from setuptools import find_packages, setup

NOT_SHIPPED = ["tests", "tests.*", "benchmarks", "benchmarks.*", "sample_data", "sample_data.*"]
SUBPACKAGES = [f"medcurate.{name}" for name in find_packages(where=".", exclude=NOT_SHIPPED)]

setup(packages=["medcurate", *SUBPACKAGES], package_dir={"medcurate": "."})
