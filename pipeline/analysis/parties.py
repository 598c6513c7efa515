"""Who does what in a sentence: the vendor a cue is said of, public bodies and countries as parties."""

from __future__ import annotations

from collections.abc import Mapping

from spacy.tokens import Doc, Span

from pipeline.analysis import syntax
from pipeline.analysis.facts import Counterpart, DetectorSettings, SentenceFacts, VendorMentions
from pipeline.analysis.gazetteer import POSSESSIVES


def subject_vendor(doc: Doc, detector: DetectorSettings, fact: SentenceFacts, t: int,
                   party_words: list[int]) -> int | None:
    """The first token of the vendor that is the subject of the cue at token t, if one is:
    the nearest vendor named before it in the same clause, with no public body between
    ("Huawei, which built the network, now hopes to win" — not "the ministry, Huawei said,
    plans to"). Without the parser this is the rule path's reading of who does what."""
    if syntax.is_parsed(doc[t]):
        verb = syntax.governing_verb(doc, t)
        if verb is None:
            return None
        subjects = syntax.subjects(doc, verb)
        return next((k for _, k in fact.vendor_at
                     if any(j in subjects for j in range(k, mention_end(doc, k)))), None)
    before = [k for _, k in fact.vendor_at if k < t and t - k <= detector.grammar.reach.subject]
    if not before:
        return None
    k = max(before)
    if any(k < p < t for p in party_words) or any(doc[j].text in (";", ":") for j in range(k, t)):
        return None
    return k


def object_vendor(doc: Doc, detector: DetectorSettings, fact: SentenceFacts, t: int,
                  party_words: list[int]) -> int | None:
    """The first token of the vendor a few words after the cue at token t, with no public body
    and no clause break between: what a rejection or a loss is said of when the vendor follows
    it ("dismissed the objection filed by Huawei")."""
    reach = detector.grammar.reach.trigger
    after = [k for _, k in fact.vendor_at if 0 < k - t <= reach]
    if not after:
        return None
    k = min(after)
    if any(t < p < k for p in party_words) or any(doc[j].text in (";", ".", ",")
                                                   for j in range(t + 1, k)):
        return None
    return k


def in_first_person(doc: Doc, detector: DetectorSettings, t: int) -> bool:
    """A plan said in the first person, in a quote of the company ("Our ambition is to sign our
    first projects with towns"): the speaker's hope, whoever the speaker is named as."""
    return any(doc[k].lower_ in detector.first_person for k in range(max(t - 2, 0), t + 1))


def mention_end(doc: Doc, start: int) -> int:
    """The token after the entity that starts at `start`."""
    end = start + 1
    while end < len(doc) and doc[end].ent_iob_ == "I":
        end += 1
    return end


def entity_text(doc: Doc, t: int) -> str:
    """The whole entity that starts at token t ("Saudi Arabia", not "Saudi")."""
    return doc[t:mention_end(doc, t)].text


def company_officer(doc: Doc, detector: DetectorSettings, t: int, anaphora: set[int],
                    vendor_names: VendorMentions) -> bool:
    """'the company's regional president', 'its managing director', 'president of Huawei Cloud
    for Africa': people of a company."""
    after = t + 1
    if after < len(doc) and doc[after].lower_ in detector.grammar.words.officer_prepositions:
        after += 1 + (after + 1 < len(doc) and doc[after + 1].lower_ in detector.description_fillers)
        if after < len(doc) and (vendor_names.starts[after] or after in anaphora):
            return True
    for k in range(t - 1, max(t - 4, -1), -1):
        token = doc[k]
        if token.is_punct and token.text not in POSSESSIVES:
            return False
        if token.lower_ in detector.grammar.words.company_possessives or (
                token.text in POSSESSIVES and k > 0 and (k - 1 in anaphora or vendor_names.ends[k])):
            return True
    return False


def near_place(places: Mapping[int, tuple[str, str]], t: int) -> str | None:
    # "the Hangzhou public security bureau": a city or province right before the word
    return next((code for p, (_, code) in places.items() if 0 < t - p <= 3), None)


def near_country(fact: SentenceFacts, t: int) -> str | None:
    # "the Kenyan police", "Uganda's government": a country right before the word is its own.
    for code, c, _ in fact.countries:
        if 0 < t - c <= 3:
            return code
    return None


def crosses_clause(doc: Doc, detector: DetectorSettings, start: int, end: int) -> bool:
    """Whether a word between start and end separates two parties ("the authorities and Huawei")."""
    return any(doc[t].text in (";", ".") or doc[t].lower_ in detector.party_breaks
               for t in range(start, end))


def _past_conjoined_vendor(doc: Doc, detector: DetectorSettings, sent: Span, t: int,
                           vendor_names: VendorMentions) -> int:
    """Where the verb of a party at token t may stand when the vendor is its co-subject.

    "Saudi Arabia and China's Huawei recently signed": after "and" and a described vendor the
    verb belongs to both, so the country signs too. Otherwise t itself.
    """
    if t >= sent.end or doc[t].lower_ not in detector.grammar.words.subject_conjunctions:
        return t
    k = t + 1
    while k < sent.end and k - t <= detector.grammar.reach.description:
        if vendor_names.starts[k]:
            while k < sent.end and vendor_names.inside[k]:
                k += 1
            return k
        if not (detector.describes(doc[k]) or doc[k].ent_type_ == "COUNTRY"):
            return t
        k += 1
    return t


def is_actor(doc: Doc, detector: DetectorSettings, sent: Span, t: int, verbs: set[int],
             nouns: set[int], vendor_names: VendorMentions | None = None) -> bool:
    """A country that does the deal: 'Ethiopia has signed', 'Kenya's $48m deal', 'with Egypt',
    'Oman and China's Huawei signed'."""
    end = t + 1
    while end < sent.end and doc[end].ent_iob_ == "I" and doc[end].ent_type_ == doc[t].ent_type_:
        end += 1
    if end < sent.end and doc[end].text in POSSESSIVES:
        return any(n in nouns for n in range(end + 1, min(end + 5, sent.end)))
    if syntax.is_parsed(doc[t]):
        # the country, or a conjunct of it ("Oman and Huawei signed"), is the deal verb's subject
        root = syntax.name_root(doc, t, end)
        for k in {root} | syntax.conjuncts(doc, root):
            if doc[k]._.dw_dep in syntax.SUBJECTS and syntax.head(doc, k) in verbs:
                return True
            if doc[k]._.dw_dep == "conj" and doc[syntax.head(doc, k)]._.dw_dep in syntax.SUBJECTS \
                    and syntax.head(doc, syntax.head(doc, k)) in verbs:
                return True
    j = _past_conjoined_vendor(doc, detector, sent, end, vendor_names) if vendor_names else end
    start = j
    while j < sent.end and j - start < 4 and doc[j].lower_ in detector.auxiliaries:
        j += 1
    if j in verbs:
        return True
    # "a contract with Egypt", "signed with the province of Mendoza": a party when a deal word
    # comes shortly before "with" ("the borders with Niger" are no party)
    before = t - 1
    while before > sent.start and doc[before].lower_ in detector.place_lead:
        before -= 1
    if before >= sent.start and doc[before].lower_ in detector.grammar.words.party_prepositions:
        return any(before - detector.grammar.reach.trigger <= k < before for k in verbs | nouns)
    return False


def pick_counterpart(detector: DetectorSettings, facts: list[SentenceFacts], window: list[tuple[int, float]],
                     homes: set[str]) -> tuple[Counterpart | None, float]:
    pool = [(cp, weight) for j, weight in window for cp in facts[j].counterparts]
    if not pool:
        return None, 0.0
    foreign = [(cp, w) for cp, w in pool if cp.country and cp.country not in homes]
    unknown = [(cp, w) for cp, w in pool if not cp.country]
    home = [(cp, w) for cp, w in pool if cp.country in homes]
    foreign_countries = any(code not in homes for j, _ in window
                            for code, _, _ in facts[j].countries)
    # A home-country body (a Chinese ministry or lender) is the counterpart only when nothing
    # foreign is in sight: then the deal is domestic. A body of unknown country goes with a
    # foreign one, and loses a tie to a home one ("the Hainan provincial government" beats the
    # bare "government" of the same sentence).
    if foreign:
        candidates = foreign + unknown
    elif foreign_countries:
        candidates = unknown
    else:
        candidates = unknown + home
    if not candidates:
        return None, 0.0
    own = window[0][0]
    # A party in the sentence itself beats a stronger-sounding one next door.
    bonus = detector.ev.own_sentence
    return max(candidates, key=lambda p: (p[0].strength * p[1] + (bonus if p[0].sentence == own else 0),
                                          p[0].country is not None, -p[0].token))


def unlisted_party(detector: DetectorSettings, facts: list[SentenceFacts], i: int) -> Counterpart | None:
    """An organisation the statistical model found where the deal's other party stands
    ("a contract with Zamtel"): shown to the reviewer as of unknown type, worth no score."""
    fact = facts[i]
    doc = fact.span.doc
    prepositions = detector.grammar.words.unlisted_party_prepositions
    for text, t in fact.orgs:
        if t > 0 and doc[t - 1].lower_ in prepositions and fact.trigger:
            return Counterpart(text, "unknown", None, 0.0, i, t)
    return None
