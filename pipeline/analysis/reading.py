"""Reading a tagged doc: what each of its sentences says about a deal, as SentenceFacts."""

from __future__ import annotations

from collections.abc import Mapping

from spacy.tokens import Doc, Span

from pipeline.analysis import syntax
from pipeline.analysis.agencies import COUNTERPARTS_KEY
from pipeline.analysis.amounts import AMOUNTS_KEY, DATES_KEY, MODEL_YEAR, YEAR
from pipeline.analysis.counts import is_aggregate
from pipeline.analysis.cues import CUES_KEY, NEGATOR
from pipeline.analysis.facts import Counterpart, DetectorSettings, SentenceFacts, VendorMentions
from pipeline.analysis.parties import (
    company_officer,
    crosses_clause,
    entity_text,
    in_first_person,
    is_actor,
    mention_end,
    near_country,
    near_place,
    object_vendor,
    subject_vendor,
)
from pipeline.analysis.places import PLACES_KEY

# doc.user_data key: the characters before it are the story's headline, context and no evidence
HEADLINE_KEY = "dealwatch_headline_end"


def gather_facts(doc: Doc, text: str, detector: DetectorSettings) -> list[SentenceFacts]:
    """What each sentence of the doc says, in order (`text` is doc.text, built once)."""
    sents = list(doc.sents)
    headline_end = doc.user_data.get(HEADLINE_KEY, 0)
    facts = [SentenceFacts(span=s, text=text[s.start_char:s.end_char],
                           headline=s.end_char <= headline_end) for s in sents]
    sent_of = [0] * len(doc)
    for i, sent in enumerate(sents):
        sent_of[sent.start:sent.end] = [i] * (sent.end - sent.start)
    gaz = detector.gazetteer
    matches = [(cue.label_, cue.start, cue.end) for cue in doc.spans.get(CUES_KEY, [])]
    non_party_ends = {end for category, _, end in matches if category in ("non_party", "compare")}
    vendor_names = VendorMentions(len(doc))
    covered = [False] * len(doc)  # tokens inside a counterpart name: its words are not re-read
    named = [False] * len(doc)  # tokens of a watchlist name ("Galaxy Backbone", "Huawei Cloud")
    for ent in doc.ents:
        fact = facts[sent_of[ent.start]]
        if ent.label_ == "VENDOR" and ent.ent_id_:
            # "Huawei Cloud" is no cloud deal and "Huawei Technologies Co Ltd" no private firm
            named[ent.start:ent.end] = [True] * len(ent)
            vendor_names.add(ent.start, ent.end)
            if not _compared(doc, detector, ent.start, non_party_ends, ent.end):
                fact.vendors.append(ent.ent_id_)
                fact.vendor_at.append((ent.ent_id_, ent.start))
        elif ent.label_ == "COUNTRY" and ent.ent_id_:
            fact.countries.append((ent.ent_id_, ent.start, gaz.is_demonym(ent.text)))
        elif ent.label_ == "ORG" and not ent.ent_id_:
            fact.orgs.append((ent.text, ent.start))
        entry = detector.watch.get(ent.ent_id_) if ent.ent_id_ else None
        if entry and entry.type != "vendor":
            covered[ent.start:ent.end] = named[ent.start:ent.end] = [True] * len(ent)
            if entry.counterpart_type:
                fact.counterparts.append(Counterpart(ent.text, entry.counterpart_type, entry.country,
                                                     detector.ev.named, sent_of[ent.start],
                                                     ent.start))
            elif entry.private:
                fact.private = fact.other_company = True
    for span in doc.spans.get(COUNTERPARTS_KEY, []):
        covered[span.start:span.end] = [True] * len(span)
        facts[sent_of[span.start]].orgs = [o for o in facts[sent_of[span.start]].orgs
                                           if not span.start <= o[1] < span.end]
        facts[sent_of[span.start]].counterparts.append(Counterpart(
            span.text, span.label_, span.kb_id_ or None, detector.ev.named, sent_of[span.start],
            span.start))
    places: list[dict[int, tuple[str, str]]] = [{} for _ in facts]  # per sentence, by token
    for span in doc.spans.get(PLACES_KEY, []):
        if span.kb_id_:
            places[sent_of[span.start]][span.start] = (span.label_, span.kb_id_)
            if span.label_ == "city":
                facts[sent_of[span.start]].places.append(span.kb_id_)
    # "government cloud", "licence plate recognition": a word of a deal type's name is neither
    # a party nor a sign of something else
    in_type = [False] * len(doc)
    for category, start, end in matches:
        if category.startswith("type:"):
            in_type[start:end] = [True] * (end - start)
    for category, start, end in matches:
        if category == NEGATOR:
            facts[sent_of[start]].negators.append(start)
            continue
        if category.startswith(("cp:", "neg", "weak_neg")) and all(in_type[start:end]):
            continue
        # Words inside names say nothing about the deal: "Ministry of Finance" finances nothing
        # and "Galaxy Backbone" is no fibre; a deal type in a public body's name still counts.
        if any(named[start:end]) or (any(covered[start:end]) and not category.startswith(
                ("type:", "cp:"))):
            continue
        # "e-government", "government-to-government": a word in a compound names no party
        if category.startswith("cp:") and _in_compound(doc, start, end):
            continue
        facts[sent_of[start]].words[category].append((doc[start:end].text, start))
    for span in doc.spans.get(AMOUNTS_KEY, []):
        facts[sent_of[span.start]].amounts.append(span)
    for span in doc.spans.get(DATES_KEY, []):
        fact = facts[sent_of[span.start]]
        if span.label_ == YEAR:
            fact.years.append(span._.dw_year)
        elif span.label_ == MODEL_YEAR and span.end <= fact.span.end:
            fact.model_years.append(span._.dw_year)
    for i, fact in enumerate(facts):
        _read_sentence(doc, detector, fact, i, vendor_names, covered, places[i])
    return facts


def _compared(doc: Doc, detector: DetectorSettings, start: int, non_party_ends: set[int],
              end: int | None = None) -> bool:
    """Whether a vendor mention follows 'over', 'rather than' …: compared, not a party.
    Where the sentence was parsed, the parse decides ("chose Nokia's bid over the one from
    Huawei": Huawei is still the object of "over")."""
    if end is not None and syntax.is_parsed(doc[start]):
        return syntax.compared(doc, start, end) or (start > 0 and start in non_party_ends
                                                    and doc[start - 1].lower_
                                                    not in detector.grammar.words.conjunctions)
    k = start
    while k > 0 and start - k < 3 and doc[k - 1].lower_ in detector.comparison_fillers:
        k -= 1
    return k in non_party_ends


def _in_compound(doc: Doc, start: int, end: int) -> bool:
    """Whether the words are glued to a hyphen ("e-government", "government-backed")."""
    before = start > 0 and doc[start - 1].text == "-" and not doc[start - 1].whitespace_
    after = end < len(doc) and doc[end].text == "-" and not doc[end - 1].whitespace_
    return before or after


def _read_sentence(doc: Doc, detector: DetectorSettings, fact: SentenceFacts, index: int,
                   vendor_names: VendorMentions, covered: list[bool],
                   sent_places: Mapping[int, tuple[str, str]]) -> None:
    words = fact.words
    sent = fact.span
    background = _background_tokens(doc, sent, words.get("concessive", []))
    fact.countries = [c for c in fact.countries if c[1] not in background]
    # "in the presence of the minister", "despite the ministry's doubts": named bodies in the
    # background watched or objected; they are no parties
    fact.counterparts = [cp for cp in fact.counterparts if cp.token not in background]
    # "While critics ask whether the centre was needed, the ministry signed …": a doubt in the
    # background is not a doubt about the deal
    if background and words.get("hedge"):
        words["hedge"] = [(w, t) for w, t in words["hedge"] if t not in background]
    negated = _negated_tokens(doc, sent, fact.negators, detector.grammar.reach.negation)
    # "No agreement was signed.", "has not yet signed any contract": the sentence says the deal
    # did not happen (the negator right before the deal word), and says it of the sentences
    # around it too, as a neighbour's negative ("MPs have never seen the contract" says nothing)
    denied = any(n < t and all(doc[j].lower_ in detector.negation_fillers for j in range(n + 1, t))
                 for cat, hits in words.items() if cat.startswith("T:") for _, t in hits
                 for n in fact.negators)
    for category in list(words):  # "did not announce any agreement" announces none
        if category.startswith(("T:", "stage:", "weak_stage:")):
            words[category] = [(w, t) for w, t in words[category] if t not in negated]
    # ... unless a deal verb still stands ("the tender in which it bid" is no deal made)
    denied = denied and not words.get("T:verb")
    fact.denied = denied
    cue = {name: [t for _, t in words.get(name, []) if t not in background and t not in negated]
           for name in ("approval", "cancel", "plan", "lose", "own_facility", "removal")}
    party_words = sorted(t for cat, hits in words.items() if cat.startswith("cp:") for _, t in hits)
    # "… and will not use Huawei", "a network without Huawei": a vendor right after a negator
    # (at most two words between) is left out, as one that lost the bid is
    # ("not only Huawei but also ZTE" adds, it refuses no one)
    refused = [k for _, k in fact.vendor_at
               if any(0 < k - n <= 3 and all(not doc[j].is_punct for j in range(n + 1, k))
                      and doc[n + 1].lower_ not in detector.grammar.words.additive
                      for n in fact.negators)]
    if refused:
        fact.lost = True
        fact.vendor_at = [(v, k) for v, k in fact.vendor_at if k not in refused]
        fact.vendors = [v for v, _ in fact.vendor_at]
    for t in cue["lose"]:  # "Huawei lost out to Ericsson": the loser is no party
        loser = subject_vendor(doc, detector, fact, t, party_words)
        if loser is None:  # "rejected Huawei's appeal", "rechazó el recurso de Huawei"
            loser = object_vendor(doc, detector, fact, t, party_words)
        if loser is not None:
            fact.lost = True
            fact.vendor_at = [(v, k) for v, k in fact.vendor_at if k != loser]
            fact.vendors = [v for v, _ in fact.vendor_at]
    fact.approval = bool(cue["approval"])
    deal_words = {t for cat in ("T:noun", "T:weak_noun") for _, t in words.get(cat, [])}
    vendor_tokens = {j for _, k in fact.vendor_at for j in range(k, mention_end(doc, k))}
    fact.cancelled = any(_cancels_a_deal(doc, t, deal_words, vendor_tokens) for t in cue["cancel"])
    # "signed an MoU, aiming to …" states the deal's purpose: a plan counts before the deal verb
    deeds = sorted(party_words + [t for cat in ("T:verb", "approval") for _, t in words.get(cat, [])])
    fact.plan = any(subject_vendor(doc, detector, fact, t, deeds) is not None
                    or in_first_person(doc, detector, t) for t in cue["plan"])
    fact.own_facility = any(subject_vendor(doc, detector, fact, t, party_words) is not None
                            for t in cue["own_facility"])
    strong = words.get("T:verb", []) + words.get("T:noun", []) + words.get("approval", [])
    weak = words.get("T:weak_verb", []) + words.get("T:weak_noun", [])
    fact.trigger = 1.0 if strong else 0.5 if weak else 0.0
    fact.negative = [w for w, t in words.get("neg", []) + words.get("removal", []) if t not in background]
    if denied:
        fact.negative.append("no deal made")
    fact.weak_negative = [w for w, t in words.get("weak_neg", []) if t not in background]
    if fact.own_facility:
        fact.weak_negative.append("its own site")
    fact.stage, fact.stage_strong = _sentence_stage(detector, words)
    if fact.cancelled:  # "tore up the contract": a cancel word that ends a deal says its stage
        fact.stage, fact.stage_strong = "cancelled", True
    elif fact.stage == "cancelled" and cue["cancel"]:
        # the parse says the cancel word ends no deal ("suspended two officials")
        fact.stage, fact.stage_strong = _sentence_stage(
            detector, {k: v for k, v in words.items() if k != "stage:cancelled"})
    if fact.stage == "unknown" and fact.approval:
        fact.stage = "awarded"  # "gave the nod to Hikvision to mount cameras"
    if fact.plan and fact.stage not in ("unknown", "cancelled"):
        # "our ambition is to sign …": what a plan would sign is proposed, not signed
        fact.stage, fact.stage_strong = "proposed", False
    homes = detector.home_of(fact.vendors) or detector.any_vendor_home

    def describes_vendor(t: int, text: str) -> bool:
        # "a Chinese state-owned company ZTE", "state-run China Telecom": about the vendor, when
        # only words that describe a company stand between ("the president inaugurated the
        # Huawei-built centre" is the president's doing)
        end_char = doc[t].idx + len(text)
        for k in range(t + 1, min(t + 5, len(doc))):
            if vendor_names.starts[k]:
                return True
            token = doc[k]
            if token.idx >= end_char and not (  # past the word itself
                    detector.describes(token) or token.ent_type_ == "COUNTRY"):
                break
        # "China Telecom, the state-run carrier", "ZTE, which is partly state-owned": after the
        # vendor only a description ("Huawei executives met the president" is another party)
        for end in range(t, max(t - 6, 0) - 1, -1):
            if vendor_names.ends[end]:
                return not crosses_clause(doc, detector, end, t)
            token = doc[end]
            if end < t and not (detector.describes(token) or token.ent_type_ == "COUNTRY"
                                or token.is_stop or token.lower_.endswith("ly")):
                break
        return any(0 < t - c <= 3 and code in homes for code, c, _ in fact.countries)

    anaphora = {t for _, t in words.get("anaphor", [])}
    for ctype in ("government", "ministry", "agency", "soe", "subnational", "intergovernmental"):
        for text, t in words.get(f"cp:{ctype}", []):
            if covered[t] or describes_vendor(t, text) or t in background or t in negated \
                    or company_officer(doc, detector, t, anaphora, vendor_names):
                continue  # "Harbourline is not state-owned" names no state company
            if t > 0 and doc[t - 1].lower_ in detector.indefinite:
                continue  # "sign with some municipalities", "des communes": a market, no party
            country = near_country(fact, t) or near_place(sent_places, t)
            fact.counterparts.append(Counterpart(text, ctype, country, detector.ev.word, index, t))
    if any(not covered[t] and not describes_vendor(t, w) for w, t in words.get("private", [])):
        fact.private = True
    verbs = {t for _, t in words.get("T:verb", []) + words.get("T:weak_verb", [])}
    nouns = {t for _, t in words.get("T:noun", [])}
    for code, t, demonym in fact.countries:
        said_of_vendor = vendor_names.said_of(doc, t, detector)
        if code in homes and not demonym and not said_of_vendor:
            fact.home_mentions += 1  # "the Hong Kong government", "in Shenzhen"
        if demonym or code in homes or t in background:
            continue
        if is_actor(doc, detector, sent, t, verbs, nouns, vendor_names):
            fact.counterparts.append(Counterpart(entity_text(doc, t), "government", code,
                                                 detector.ev.actor, index, t))
    for t, (kind, code) in sent_places.items():
        # "Zhejiang Dahua", "the Tianjin-based company": the vendor's home, not the deal's place
        if code in homes and t not in background and not vendor_names.said_of(doc, t, detector) \
                and not _in_compound(doc, t, t + 1):
            fact.home_mentions += 1
        if fact.trigger and is_actor(doc, detector, sent, t, verbs, nouns):
            ctype = "subnational" if kind == "subdivision" else "government"
            fact.counterparts.append(Counterpart(doc[t].text, ctype, code, detector.ev.actor, index, t))
    fact.aggregate = is_aggregate(doc, detector, words, fact, homes)


def _cancels_a_deal(doc: Doc, t: int, deal_words: set[int], vendor_tokens: set[int]) -> bool:
    """'The ministry cancelled the agreement', 'the contract with ZTE was terminated': a
    cancellation whose object is a deal or the vendor. Without a parse every cancel word counts;
    with one, "suspended two officials" or "halted imports of phones" cancel no deal."""
    if not syntax.is_parsed(doc[t]) or not (doc[t]._.dw_tag or "").startswith("VB"):
        return True
    sent = doc[t].sent
    governed = {k for k in range(sent.start, sent.end) if syntax.head(doc, k) == t
                and doc[k]._.dw_dep in ("dobj", "nsubjpass", "prep", "prt", "attr")}
    # one step down through a preposition or particle: "pulled out of the deal"
    governed |= {k for k in range(sent.start, sent.end) if syntax.head(doc, k) in governed
                 and doc[k]._.dw_dep in ("pobj", "dobj")}
    targets = deal_words | vendor_tokens
    return any(k in targets or any(syntax.head(doc, j) == k and j in targets
                                   for j in range(sent.start, sent.end)) for k in governed)


def _sentence_stage(detector: DetectorSettings, words: Mapping[str, list[tuple[str, int]]]
                    ) -> tuple[str, bool]:
    """The sentence's stage: the first listed stage it names, else one its nouns suggest."""
    for stage in detector.stage_order:
        if words.get(f"stage:{stage}"):
            return stage, True
    for stage in detector.weak_stage_order:
        if words.get(f"weak_stage:{stage}"):
            return stage, False
    return "unknown", False


def _negated_tokens(doc: Doc, sent: Span, negators: list[int], reach: int) -> set[int]:
    """Tokens a few words after 'not', 'no', 'without', up to the next punctuation."""
    negated: set[int] = set()
    for t in negators:
        k = t + 1
        while k < min(t + 1 + reach, sent.end) and not doc[k].is_punct:
            negated.add(k)
            k += 1
    return negated


def _background_tokens(doc: Doc, sent: Span, concessives: list[tuple[str, int]]) -> set[int]:
    """Tokens from 'despite' / 'amid' to the next comma: background to the news."""
    tokens: set[int] = set()
    for _, start in concessives:
        t = start
        while t < sent.end and doc[t].text not in (",", ";", "—", "–"):
            tokens.add(t)
            t += 1
    return tokens
