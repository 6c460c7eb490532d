"""Small file helpers over Beam's FileSystems, so outputs can live on local disk, gs:// or s3://."""

from __future__ import annotations

import hashlib
import os

from apache_beam.io.filesystems import FileSystems

CHUNK = 8 * 1024 * 1024


def is_remote(path: str) -> bool:
    """A `scheme://` path (gs://, s3://...): only Beam's FileSystems reach it, never pathlib or open()."""
    return "://" in path and not path.startswith("file://")


def join(*parts: str) -> str:
    """Joins with the path's own filesystem: pathlib would turn `gs://bucket` into `gs:/bucket`."""
    return FileSystems.join(*parts)


def open_read(path: str):
    """A binary, seekable reader for a file on any Beam filesystem."""
    return FileSystems.open(path)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def ensure_dir(path: str) -> None:
    if not FileSystems.exists(path):
        FileSystems.mkdirs(path)


def read_text(path: str) -> str:
    with FileSystems.open(path) as handle:
        return handle.read().decode()


def write_text(path: str, text: str) -> None:
    ensure_dir(FileSystems.split(path)[0])
    with FileSystems.create(path) as handle:
        handle.write(text.encode())


def write_text_atomic(path: str, text: str) -> None:
    """Writes a whole file or nothing: a crash or a full disk never leaves a torn or empty file.

    Atomic on a local filesystem (rename replaces); on object stores the rename is copy + delete.
    """
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        write_text(temporary, text)
        FileSystems.rename([temporary], [path])
    except BaseException:
        if FileSystems.exists(temporary):
            FileSystems.delete([temporary])
        raise


def delete_tree(path: str) -> None:
    """Removes a folder and everything in it (local) or every object under the prefix (object stores)."""
    below = glob(join(path, "**"))
    if below:
        FileSystems.delete(below)
    if FileSystems.exists(path):
        FileSystems.delete([path])


def move(source: str, destination: str) -> None:
    ensure_dir(FileSystems.split(destination)[0])
    FileSystems.rename([source], [destination])


def glob(pattern: str) -> list[str]:
    return sorted(m.path for result in FileSystems.match([pattern]) for m in result.metadata_list)


def children(folder: str) -> list[str]:
    """Names directly under a folder, empty subfolders included where the filesystem has folders.

    On object stores (`scheme://`), the first part of each object name below the prefix.
    """
    if "://" in folder:
        prefix = folder.rstrip("/") + "/"
        return sorted({path.removeprefix(prefix).split("/")[0] for path in glob(prefix + "**")})
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def size_and_sha256(path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with FileSystems.open(path) as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
