"""spaCy's English stop words, read without importing spaCy.

Importing `spacy.lang.en.stop_words` imports the `spacy` package, which pulls in thinc and torch
(about 250 MB of resident memory). The command that builds and drives the pipeline, and every
module that only needs this word list, would carry that for nothing; the list itself is one plain
Python file in spaCy's source tree, so it is executed on its own.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _spacy_stop_words() -> frozenset[str]:
    spec = importlib.util.find_spec("spacy")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("spaCy is not installed (install the project's requirements)")
    source = Path(next(iter(spec.submodule_search_locations))) / "lang" / "en" / "stop_words.py"
    namespace: dict[str, object] = {}
    exec(compile(source.read_text(encoding="utf-8"), str(source), "exec"), namespace)
    return frozenset(namespace["STOP_WORDS"])  # type: ignore[arg-type]


STOP_WORDS: frozenset[str] = _spacy_stop_words()
