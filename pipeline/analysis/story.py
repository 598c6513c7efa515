"""What a candidate asks of the whole story: the sentences around it, the lede, the vendor it is about."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.analysis.facts import DetectorSettings, SentenceFacts


@dataclass
class Story:
    """What the candidates of one document ask of the whole story (see detect_candidates)."""

    headline_vendors: tuple[int, list[str]] | None  # (headline index, vendors) if the text names none
    denied: list[int]  # sentences that say a deal was not made
    countries: frozenset[str]  # the countries the story names
    codes: frozenset[str]  # those and the countries of its places
    # _about's deal types, by vendors and country
    about: dict[tuple[tuple[str, ...], str | None], list[str]] = field(default_factory=dict)


def sentence_window(detector: DetectorSettings, facts: list[SentenceFacts], i: int
                    ) -> list[tuple[int, float]]:
    """The sentence itself, then its neighbours, with the weight of evidence found there."""
    out = [(i, 1.0)]
    if i > 0:
        out.append((i - 1, detector.ev.neighbour))
    if i + 1 < len(facts):
        out.append((i + 1, detector.ev.neighbour))
    return out


def lede_window(detector: DetectorSettings, facts: list[SentenceFacts]) -> list[tuple[int, float]]:
    """The headline and first sentence: when they report a ban or a lawsuit, so does the story."""
    ev = detector.ev
    return [(j, ev.neighbour) for j in range(min(ev.lede_sentences, len(facts)))]


def lede_about(detector: DetectorSettings, facts: list[SentenceFacts], vendors: list[str],
               country: str | None, homes: set[str]) -> list[tuple[int, float]]:
    """Lede sentences that may be about this deal: no other vendor, no other foreign country
    (the vendor's home is no other deal's: "China gains clout in Ecuador through …").

    "Malawi broke ground on a US$75 million data centre …" comes two sentences before "Huawei
    was selected for the project": the lede states the amount the later sentences leave out.
    """
    return [(j, weight) for j, weight in lede_window(detector, facts)
            if not about_another(facts[j], vendors, country, homes)]


def about_another(fact: SentenceFacts, vendors: list[str], country: str | None,
                  homes: set[str]) -> bool:
    """Whether a sentence names another vendor or another foreign country than this deal's."""
    codes = {code for code, _, _ in fact.countries} | set(fact.places)
    return bool(set(fact.vendors) - set(vendors) or codes - {country} - homes)


def story_deal_types(detector: DetectorSettings, facts: list[SentenceFacts], story: Story,
                     vendors: list[str], country: str | None, homes: set[str]) -> list[str]:
    """The deal types the rest of the story gives this vendor and country (worked out once per
    vendor and country: every sentence of a long story may ask; `homes` are the vendors')."""
    key = (tuple(vendors), country)
    if key not in story.about:
        story.about[key] = window_deal_types(facts, _about(detector, facts, vendors, country, homes))
    return story.about[key]


def _about(detector: DetectorSettings, facts: list[SentenceFacts], vendors: list[str], country: str | None,
           homes: set[str]) -> list[tuple[int, float]]:
    """Sentences anywhere in the story about this deal: they name its vendor or its country,
    and no other vendor or foreign country ("The 5,457 km cable will link 14 coastal towns" two
    sentences before "Huawei and the government signed the contract")."""
    out = []
    for j, fact in enumerate(facts):
        if about_another(fact, vendors, country, homes):
            continue
        codes = {code for code, _, _ in fact.countries} | set(fact.places)
        if set(fact.vendors) & set(vendors) or (country and country in codes):
            out.append((j, detector.ev.neighbour))
    return out


def vendors_for(facts: list[SentenceFacts], i: int, story: Story) -> tuple[list[str], int]:
    """Vendors of sentence i, else of the one before ('The two firms signed …'), with distance."""
    if facts[i].vendors:
        return list(dict.fromkeys(facts[i].vendors)), 0
    # A sentence that names another company is about that company, not the vendor before it.
    if i > 0 and facts[i - 1].vendors and (not facts[i].other_company or facts[i].words.get("anaphor")):
        return list(dict.fromkeys(facts[i - 1].vendors)), 1
    if i > 1 and facts[i - 2].vendors and facts[i].words.get("anaphor"):
        return list(dict.fromkeys(facts[i - 2].vendors)), 2
    # A story whose text names no vendor is about the one its headline names ("Huawei project
    # hits snag" over "The deal calls for 12,000 cameras …").
    if story.headline_vendors is not None:
        j, vendors = story.headline_vendors
        return list(vendors), i - j
    return [], 0


def window_deal_types(facts: list[SentenceFacts], window: list[tuple[int, float]]) -> list[str]:
    """Deal types named in the sentence, in order, then those its neighbours add."""
    names: list[str] = []
    for j, _ in window:
        found = sorted((t, cat[5:]) for cat, hits in facts[j].words.items()
                       if cat.startswith("type:") for _, t in hits)
        names += [name for _, name in found]
    return list(dict.fromkeys(names))
