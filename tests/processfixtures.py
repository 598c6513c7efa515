"""What the processing tests share: extraction made to break on one page."""

from __future__ import annotations

from typing import Any

import pytest

import pipeline.jobs.process as process_module


def break_extraction(monkeypatch: pytest.MonkeyPatch, url_ending: str,
                     message: str = "unexpected markup") -> None:
    """Extraction raises RuntimeError(message) for the page whose URL ends with url_ending, and
    works as before for every other page."""
    real = process_module.extract_article

    def breaks(body: bytes, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.endswith(url_ending):
            raise RuntimeError(message)
        return real(body, url, *args, **kwargs)

    monkeypatch.setattr(process_module, "extract_article", breaks)
