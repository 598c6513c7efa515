"""spaCy plumbing the tagger is built from: the rule sentencizer, a gated component, phrase patterns."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

import numpy
from spacy.language import Language
from spacy.pipeline import Sentencizer as SpacySentencizer
from spacy.tokens import Doc
from spacy.util import minibatch


def phrase_docs(nlp: Language, phrases: Iterable[str]) -> list[Doc]:
    """Phrase-matcher patterns, tokenised as the pipeline tokenises text."""
    return [nlp.make_doc(phrase) for phrase in phrases]


@Language.factory("dealwatch_sentencizer_v1")
def make_sentencizer(nlp: Language, name: str) -> Sentencizer:
    return Sentencizer(nlp)


class Sentencizer:
    """Sentence starts after final punctuation (spaCy's sentencizer rule) and after line breaks.

    Headlines and datelines carry no full stop, so a line break ends a sentence too. It works on
    token arrays: creating a Token object per word costs more than the whole rule.
    """

    def __init__(self, nlp: Language) -> None:
        self.final = frozenset(nlp.vocab.strings.add(c) for c in SpacySentencizer.default_punct_chars)

    def __call__(self, doc: Doc) -> Doc:
        n = len(doc)
        if not n:
            return doc
        array = doc.to_array(["ORTH", "IS_PUNCT", "IS_SPACE"])
        is_punct = array[:, 1].astype(bool)
        is_space = array[:, 2].astype(bool)
        final = numpy.zeros(n, dtype=bool)
        punct = numpy.flatnonzero(is_punct)  # full stops are punctuation: look at those only
        final[punct] = [orth in self.final for orth in array[punct, 0].tolist()]
        # After a line break the next token starts a sentence, whatever it is ("“We …").
        after_break = [i + 1 for i in numpy.flatnonzero(is_space).tolist()
                       if i + 1 < n and not is_space[i + 1] and "\n" in doc[i].text]
        # Any other word (not punctuation, not whitespace) starts one when a full stop, question
        # or exclamation mark stands between it and the word or line start before it: closing
        # quotes, brackets and spaces in between do not matter ("… ZTE.” Next", "… 5G.  Next").
        is_anchor = ~is_punct & ~final & ~is_space
        is_anchor[after_break] = True
        anchors = numpy.flatnonzero(is_anchor)
        finals_before = numpy.concatenate(([0], numpy.cumsum(final)))  # finals in doc[:i]
        previous_end = numpy.concatenate(([0], anchors[:-1] + 1))
        starts = numpy.full(n, -1, dtype=numpy.int64)
        starts[anchors[finals_before[anchors] > finals_before[previous_end]]] = 1
        starts[is_space] = -1  # a blank line never makes a sentence of its own
        starts[after_break] = 1
        starts[0] = 1
        # spaCy keeps -1 ("not a start") wrapped around in an unsigned array
        doc.from_array(["SENT_START"], cast(Any, starts.astype(numpy.uint64)))
        return doc


@Language.factory("dealwatch_gated_pipe_v1", default_config={"pipe": "ner", "labels": ["VENDOR"]})
def make_gated_pipe(nlp: Language, name: str, pipe: str, labels: list[str]) -> GatedPipe:
    return GatedPipe(nlp, pipe, labels)


class GatedPipe:
    """Runs another (disabled) component only on docs that already have an entity of `labels`."""

    def __init__(self, nlp: Language, pipe: str, labels: Iterable[str]) -> None:
        self.nlp = nlp
        self.pipe_name = pipe
        self.labels = frozenset(labels)

    def _wanted(self, doc: Doc) -> bool:
        return any(ent.label_ in self.labels for ent in doc.ents)

    def __call__(self, doc: Doc) -> Doc:
        return self.nlp.get_pipe(self.pipe_name)(doc) if self._wanted(doc) else doc

    def pipe(self, docs: Iterable[Doc], batch_size: int = 64) -> Iterator[Doc]:
        component = self.nlp.get_pipe(self.pipe_name)
        for batch in minibatch(docs, size=batch_size):
            wanted = [doc for doc in batch if self._wanted(doc)]
            if wanted and hasattr(component, "pipe"):
                for _ in component.pipe(wanted, batch_size=len(wanted)):
                    pass  # annotates the docs in place
            elif wanted:
                for doc in wanted:
                    component(doc)
            yield from batch
