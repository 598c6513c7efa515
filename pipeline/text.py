"""Text repairs every stage needs, whatever a page sent."""

from __future__ import annotations

import re
from typing import overload

_SURROGATE = re.compile("[\ud800-\udfff]")


@overload
def without_surrogates(text: str) -> str: ...
@overload
def without_surrogates(text: None) -> None: ...
def without_surrogates(text: str | None) -> str | None:
    """Lone UTF-16 surrogates (from broken entities like &#xD800;) replaced, character for
    character, by U+FFFD: SQLite and spaCy refuse them, and offsets stay right."""
    return _SURROGATE.sub("\ufffd", text) if text else text
