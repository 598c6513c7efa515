"""What an analysis gives back (Analysis), and what its users need of an analyser (AnalyzerLike).

Below the analyser, the ranker and the evaluation alike, so that they can name these types without
importing one another.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from models.records import Candidate, Entity, Passage
from pipeline.config import Config


@dataclass
class Analysis:
    entities: list[Entity]
    candidates: list[Candidate]
    # the language the text was read in (ISO 639-1), or None when it could not be told; a text in
    # a language without a pattern folder is not analysed (supported False, nothing found)
    language: str | None = None
    supported: bool = True


class AnalyzerLike(Protocol):
    """What processing and evaluation need of an analyser (tests pass stand-ins)."""

    version: str

    @property
    def config(self) -> Config: ...

    def analyze_many(self, texts: Iterable[str | Passage], batch_size: int = ...
                     ) -> Iterator[Analysis]: ...
