"""The repository root is the `medcurate` package; setup.py also serves Dataflow's --setup_file."""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

NOT_SHIPPED = ["tests", "tests.*", "benchmarks", "benchmarks.*", "sample_data", "sample_data.*"]
SUBPACKAGES = [f"medcurate.{name}" for name in find_packages(where=".", exclude=NOT_SHIPPED)]


class BuildPackage(build_py):
    """Leaves this file out: at the root it would otherwise ship as the module `medcurate.setup`."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if (m[0], m[1]) != ("medcurate", "setup")]


setup(
    packages=["medcurate", *SUBPACKAGES], package_dir={"medcurate": "."}, cmdclass={"build_py": BuildPackage}
)
