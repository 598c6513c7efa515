"""Places: links countries to ISO codes, drops look-alike blocks, and marks cities and subdivisions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span

from pipeline.analysis.gazetteer import BLOCK_LABEL, POSSESSIVES, Gazetteer, load_gazetteer
from pipeline.analysis.pipes import phrase_docs

PLACES_KEY = "dealwatch_places"  # span group: cities and subdivisions, kb_id = ISO code


@Language.factory("dealwatch_entity_linker_v1", default_config={"cues": {}, "gazetteer": {}})
def make_entity_linker(nlp: Language, name: str, cues: dict[str, list[str]],
                       gazetteer: dict[str, Any]) -> EntityLinker:
    return EntityLinker(nlp, load_gazetteer(**gazetteer), cues)


class EntityLinker:
    """Drops look-alike blocks, links model GPEs to ISO codes, and marks cities and subdivisions."""

    def __init__(self, nlp: Language, gazetteer: Gazetteer, cues: Mapping[str, Iterable[str]]) -> None:
        """`cues` is rules.counterparts.subdivision_cues: lists `before` and `after`."""
        self.gazetteer = gazetteer
        self.cues_before = frozenset(cues.get("before", ()))
        self.cues_after = frozenset(cues.get("after", ()))
        self.places = PhraseMatcher(nlp.vocab, attr="ORTH")
        for kind in ("city", "subdivision", "cued_subdivision"):
            texts = [text for text, k, _ in gazetteer.place_patterns() if k == kind]
            if texts:
                self.places.add(kind, phrase_docs(nlp, texts))
        self._cued = nlp.vocab.strings["cued_subdivision"]

    def __call__(self, doc: Doc) -> Doc:
        ents = []
        changed = False
        for ent in doc.ents:
            if ent.label_ == BLOCK_LABEL:
                changed = True
                continue
            if ent.label_ in ("GPE", "LOC"):  # French models tag countries LOC
                code = self.gazetteer.country_code(ent.text)
                if code:
                    ent = Span(doc, ent.start, ent.end, label="COUNTRY", span_id=code)
                    changed = True
            ents.append(ent)
        if changed:
            doc.ents = ents
        places = []
        for match_id, start, end in self.places(doc):
            label = doc.vocab.strings[match_id]
            if match_id == self._cued:
                if not self._has_subdivision_cue(doc, start, end):
                    continue  # "Mendoza" the surname, "Delta" the airline
                label = "subdivision"
            span = doc[start:end]
            code = self.gazetteer.place_code(span.text) or ""
            places.append(Span(doc, start, end, label=label, kb_id=code))
        doc.spans[PLACES_KEY] = places
        return doc

    def _has_subdivision_cue(self, doc: Doc, start: int, end: int) -> bool:
        """'the province of Mendoza', 'Kano State', 'Mendoza's provincial government'."""
        if start >= 2 and doc[start - 1].lower_ == "of" and doc[start - 2].lower_ in self.cues_before:
            return True
        after = end
        if after < len(doc) and doc[after].text in POSSESSIVES:
            after += 1
        return after < len(doc) and doc[after].lower_ in self.cues_after
