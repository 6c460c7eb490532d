"""medcurate: physician-reviewed, de-identified, deduplicated, versioned Parquet datasets from raw health data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("medcurate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
