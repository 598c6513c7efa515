"""Syntax where it decides: the statistical parser, run on candidate sentences only.

The `dealwatch_syntax_v1` component parses the sentences that name a watchlist vendor and
either a cue (a deal verb, a cancellation, a plan, a lost bid) or a public body, and leaves the
parse on the document's tokens as extension attributes: `token._.dw_dep` (the dependency label),
`token._.dw_head` (the head's index in the document) and `token._.dw_tag`. Other sentences are
never parsed: the parser is the costliest part of the model, and a sentence that names no vendor
cannot hold a deal. The deal assembler (pipeline.analysis.detect) asks the helpers below who does what
with whom, and falls back to its token-window rules where a sentence has no parse (the rule-only
path, on machines without the model).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span, Token

from pipeline.analysis.cues import CUES_KEY
from pipeline.analysis.tag import COUNTERPARTS_KEY

# Cue categories that make a vendor's sentence worth parsing.
PARSE_CUES = ("T:verb", "T:noun", "T:weak_verb", "approval", "cancel", "plan", "lose", "compare",
              "non_party")
SUBJECTS = frozenset(("nsubj", "nsubjpass", "csubj"))
# The words that make what follows them the one compared with the party ("chose Nokia over
# Huawei", "instead of ZTE").
_COMPARING = frozenset(("over", "than", "instead", "against", "unlike", "favour", "favor"))

if not Token.has_extension("dw_dep"):
    Token.set_extension("dw_dep", default=None)
    Token.set_extension("dw_head", default=None)
    Token.set_extension("dw_tag", default=None)


@Language.factory("dealwatch_syntax_v1", default_config={"model": ""})
def make_syntax_parser(nlp: Language, name: str, model: str) -> SyntaxParser:
    return SyntaxParser(model)


class SyntaxParser:
    """Parses a document's candidate sentences with the statistical model's tagger and parser."""

    def __init__(self, model: str) -> None:
        self.parser = spacy.load(model, exclude=["ner", "lemmatizer", "attribute_ruler", "senter"])

    def __call__(self, doc: Doc) -> Doc:
        ents = doc.ents  # built once: Span.ents walks every entity of the doc at each call
        vendors = sorted(ent.start for ent in ents if ent.label_ == "VENDOR")
        if not vendors:
            return doc
        # tokens where a cue worth a parse starts, and public bodies: read once per document
        marks = {cue.start for cue in doc.spans.get(CUES_KEY, []) if cue.label_ in PARSE_CUES}
        marks |= {span.start for span in doc.spans.get(COUNTERPARTS_KEY, [])}
        marks |= {ent.start for ent in ents if ent.label_ in ("AGENCY", "COUNTRY")}
        sorted_marks = sorted(marks)
        sents = [s for s in doc.sents if _worth_parsing(s, vendors, sorted_marks)]
        if not sents:
            return doc
        subdocs: Iterable[Doc] = [
            Doc(self.parser.vocab, words=[t.text for t in s], spaces=[bool(t.whitespace_) for t in s])
            for s in sents]
        for _, component in self.parser.pipeline:
            subdocs = list(component.pipe(subdocs))  # type: ignore[attr-defined]
        for sent, parsed in zip(sents, subdocs, strict=True):
            for token, own in zip(parsed, sent, strict=True):
                own._.dw_dep = token.dep_
                own._.dw_head = sent.start + token.head.i
                own._.dw_tag = token.tag_
        return doc

    def pipe(self, docs: Iterable[Doc], batch_size: int = 64) -> Iterator[Doc]:
        for doc in docs:
            yield self(doc)


def _worth_parsing(sent: Span, vendors: list[int], marks: list[int]) -> bool:
    """A sentence naming a vendor and a deal cue, a public body or a country (`vendors`,
    `marks`: the sorted tokens where those start)."""

    def inside(starts: list[int]) -> bool:
        at = bisect.bisect_left(starts, sent.start)
        return at < len(starts) and starts[at] < sent.end

    return inside(vendors) and inside(marks)


# --- questions the assembler asks --------------------------------------------------------------


def is_parsed(token: Token) -> bool:
    return token._.dw_dep is not None


def head(doc: Doc, t: int) -> int:
    return int(doc[t]._.dw_head)


def subjects(doc: Doc, verb: int) -> set[int]:
    """The tokens that are the subject of `verb`, with their conjuncts ("Oman and Huawei")."""
    sent = doc[verb].sent
    found = {k for k in range(sent.start, sent.end) if doc[k]._.dw_head == verb and k != verb
             and doc[k]._.dw_dep in SUBJECTS}
    return found | {k for s in found for k in conjuncts(doc, s)}


def conjuncts(doc: Doc, t: int) -> set[int]:
    """Tokens joined to t by "and" (either way), within its sentence."""
    sent = doc[t].sent
    out: set[int] = set()
    frontier = [t]
    while frontier:
        k = frontier.pop()
        for j in range(sent.start, sent.end):
            if j in out or j == t:
                continue
            if (doc[j]._.dw_dep == "conj" and doc[j]._.dw_head == k) or (
                    doc[k]._.dw_dep == "conj" and doc[k]._.dw_head == j):
                out.add(j)
                frontier.append(j)
    return out


def governing_verb(doc: Doc, t: int) -> int | None:
    """The verb whose clause token t stands in: t itself, or the nearest verb among its heads."""
    k = t
    for _ in range(len(doc[t].sent)):
        if (doc[k]._.dw_tag or "").startswith("VB"):
            return k
        parent = head(doc, k)
        if parent == k:
            return None
        k = parent
    return None


def name_root(doc: Doc, start: int, end: int) -> int:
    """The token of a multi-word name that the parse attaches outside it ("Saudi Arabia": Arabia)."""
    for k in range(start, end):
        if not start <= head(doc, k) < end or head(doc, k) == k:
            return k
    return end - 1


def compared(doc: Doc, start: int, end: int) -> bool:
    """'chose Nokia over Huawei', 'instead of ZTE', 'Nokia's offer rather than the one from
    Huawei': the name, or a phrase it hangs from, follows a comparing word.

    Climbs from the name through prepositions, appositions and conjuncts (at most three
    phrases up); a phrase whose first word comes right after "over", "than", "instead of",
    "in favour of" or "unlike" is the one compared, whatever label the parser gave it."""
    sent = doc[start].sent
    k = name_root(doc, start, end)
    for _ in range(3):
        edge = _left_edge(doc, k, sent)
        before = doc[edge - 1].lower_ if edge > sent.start else ""
        if before in _COMPARING or (before == "of" and edge - 1 > sent.start
                                    and doc[edge - 2].lower_ in _COMPARING):
            return True
        if doc[k]._.dw_dep == "pobj":
            k = head(doc, head(doc, k))  # the phrase the preposition belongs to
        elif doc[k]._.dw_dep in ("appos", "conj"):
            k = head(doc, k)
        else:
            return False
    return False


def _left_edge(doc: Doc, k: int, sent: Span) -> int:
    """The first token of the phrase headed by k."""
    edge = k
    for j in range(sent.start, k):
        a = j
        for _ in range(len(sent)):
            if a == k:
                return j
            parent = head(doc, a)
            if parent == a:
                break
            a = parent
    return edge
