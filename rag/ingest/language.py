"""Language of a document, detected offline with py3langid (its model ships in the package)."""

from __future__ import annotations

import functools
from typing import Any

MIN_CONFIDENCE = 0.5
"""Below this probability the language is left unknown (None)."""

SAMPLE_CHARS = 2000
"""Detection reads the start of the text only: enough for a confident answer, and fast."""


def detect_language(text: str) -> str | None:
    """ISO 639-1 code ("de", "en", ...) of the text, or None when unsure."""
    sample = text[:SAMPLE_CHARS]
    if not any(ch.isalpha() for ch in sample):
        return None
    language, confidence = identifier().classify(sample)
    if confidence < MIN_CONFIDENCE or language in ("und", "zxx"):
        return None
    return str(language)


@functools.lru_cache(maxsize=4)
def identifier(languages: tuple[str, ...] = ()) -> Any:
    """py3langid's identifier, limited to `languages` when given. Loaded on first use (~0.7 s),
    not at import; the model is numpy arrays, no pickle."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if languages:
        ident.set_languages(list(languages))
    return ident
