"""Text folding for accent-insensitive search, matching the database's fold_text()."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Lower case without Vietnamese diacritics: 'Hà Nội' -> 'ha noi'."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
