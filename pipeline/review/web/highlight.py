"""Article highlighting: an article's text cut into runs (evidence, entities) and paragraphs for the page."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from models.records import Entity

ENTITY_CLASSES = {"VENDOR": "vendor", "COUNTRY": "country", "AGENCY": "agency", "ORG": "org"}
# The statistical model's labels (DATE, MONEY, PERSON, …) are many; the page shows them on request.


@dataclass(frozen=True)
class Segment:
    """A run of article text with one look: inside the evidence or not, inside an entity or not."""

    text: str
    evidence: bool = False
    label: str | None = None
    ent_id: str | None = None
    anchor: bool = False  # the first evidence segment: where the page scrolls to

    @property
    def css(self) -> str:
        classes = ["ev"] if self.evidence else []
        if self.label:
            classes += ["ent", "ent-" + ENTITY_CLASSES.get(self.label, "extra")]
        return " ".join(classes)


def article_segments(text: str, evidence: tuple[int, int] | None,
                     entities: Iterable[Entity]) -> list[Segment]:
    """Split an article into segments for highlighting. The template escapes each segment's
    text, so scraped markup never reaches the page as markup."""
    n = len(text)
    spans = [(e.start, e.end, e) for e in entities if 0 <= e.start < e.end <= n]
    cuts = {0, n}
    if evidence:
        cuts.update(evidence)
    for s, e, _ in spans:
        cuts.update((s, e))
    bounds = sorted(c for c in cuts if 0 <= c <= n)
    # One sweep: entities join `covering` as the cuts pass their start and leave (lazily, when
    # on top) once past their end. Overlapping entities (e.g. an ORG inside a longer AGENCY):
    # the longest one wins, then the later one.
    by_start = sorted(range(len(spans)), key=lambda i: spans[i][0])
    covering: list[tuple[int, int, int]] = []  # heap of (-length, -index, end)
    joined = 0
    runs: list[list[Any]] = []  # [start, end, evidence, which entity, anchor]
    anchored = False
    for left, right in itertools.pairwise(bounds):
        while joined < len(by_start) and spans[by_start[joined]][0] <= left:
            i = by_start[joined]
            heapq.heappush(covering, (spans[i][0] - spans[i][1], -i, spans[i][1]))
            joined += 1
        while covering and covering[0][2] <= left:
            heapq.heappop(covering)
        which = -covering[0][1] if covering else -1
        inside = bool(evidence and evidence[0] <= left and right <= evidence[1])
        anchor = inside and not anchored
        anchored = anchored or inside
        if runs and not anchor and runs[-1][2:4] == [inside, which]:
            runs[-1][1] = right  # equal neighbours merge
        else:
            runs.append([left, right, inside, which, anchor])
    out: list[Segment] = []
    for left, right, inside, which, anchor in runs:
        ent = spans[which][2] if which >= 0 else None
        out.append(Segment(text[left:right], inside, ent.label if ent else None,
                           ent.id if ent else None, anchor))
    return out


def paragraphs(segments: Iterable[Segment]) -> list[list[Segment]]:
    """Segments grouped into the article's paragraphs (its lines), for <p> elements; the
    newlines themselves are dropped and a segment spanning one is cut in two."""
    out: list[list[Segment]] = [[]]
    for seg in segments:
        anchor = seg.anchor  # goes with the first piece that has text
        for i, line in enumerate(seg.text.split("\n")):
            if i:
                out.append([])
            if line:
                out[-1].append(replace(seg, text=line, anchor=anchor))
                anchor = False
    return [p for p in out if any(s.text.strip() for s in p)]
