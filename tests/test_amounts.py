"""Money and dates on their own: the amounts and years a reader would circle, as span groups."""

from __future__ import annotations

from pathlib import Path

import pytest
import spacy
from spacy import displacy
from spacy.language import Language

from pipeline.analysis.amounts import AMOUNTS_KEY, DATES_KEY, MODEL_YEAR, YEAR, Amount
from pipeline.config import SHIPPED_CONFIG_DIR, Config, ConfigError, load_config


def _pipeline(config: Config) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("dealwatch_amounts_v1", config={
        "currencies": config.rules.currencies, "grammar": config.grammar.model_dump(mode="json"),
        "labels": []})  # every doc, not only those naming a vendor
    return nlp


@pytest.fixture(scope="module")
def nlp() -> Language:
    return _pipeline(load_config(SHIPPED_CONFIG_DIR))


def amounts(nlp: Language, text: str) -> list[tuple[str, str, Amount]]:
    doc = nlp(text)
    return [(span.text, span.label_, span._.dw_amount) for span in doc.spans[AMOUNTS_KEY]]


def years(nlp: Language, text: str) -> list[int]:
    doc = nlp(text)
    return [span._.dw_year for span in doc.spans[DATES_KEY] if span.label_ == YEAR]


@pytest.mark.parametrize(("text", "words", "currency", "value", "symbol"), [
    ("Kenya signed a $48 million deal.", "$48 million", "USD", 48e6, "$"),
    ("Entel awarded a US$75m contract.", "US$75m", "USD", 75e6, "US$"),
    ("The ICT Authority awarded a Sh17.5 billion contract.", "Sh17.5 billion", "KES", 17.5e9, "Sh"),
    ("The government signed a P20-billion loan.", "P20-billion", "PHP", 20e9, "P"),
    ("Ethiopia signed a USD500 million agreement.", "USD500 million", "USD", 500e6, "USD"),
    ("The bank lent 3.5 billion yuan for the network.", "3.5 billion yuan", "CNY", 3.5e9, "yuan"),
    ("A 4.1 billion dollars budget.", "4.1 billion dollars", "USD", 4.1e9, "dollars"),
])
def test_amounts_with_their_currency_and_value(nlp, text, words, currency, value, symbol) -> None:
    assert amounts(nlp, text) == [(words, currency, Amount(value, symbol))]


@pytest.mark.parametrize("text", [
    "Officials were handed Ascend P6 units.",  # a one-letter symbol needs a scale word
    "A ticket costs $5 at the gate.",  # a price, not a deal's value
    "Le contrat de 1,2 milliard d'euros a été signé.",  # the grammar is English only for now
    "The city installed 2000 cameras.",
])
def test_no_amount(nlp, text) -> None:
    assert amounts(nlp, text) == []


def test_the_value_is_shown_in_displacy(nlp) -> None:
    doc = nlp("Kenya signed a $48 million deal.")
    (span,) = doc.spans[AMOUNTS_KEY]
    assert span.kb_id_ == "48000000"
    html = displacy.render(doc, style="span", options={"spans_key": AMOUNTS_KEY})
    assert "USD" in html and "48000000" in html


@pytest.mark.parametrize(("text", "expected"), [
    ("The contract was signed in March 2024.", [2024]),
    ("The ministry signed it on Sept. 5, 2023, in Nairobi.", [2023]),
    ("The first phase was completed in 2019.", [2019]),
    ("Phase two ended in mid-2021 and phase three began in 2022.", [2022]),
    ("The city installed 2000 cameras.", []),
    ("Cambodia's ministry, a customer since 2006.", []),
    ("The plan runs from 2015 until 2022.", []),
    ("The network is to be finished by 2027.", []),
    ("The network was built between 2015 and 2017.", []),
])
def test_years_that_date_the_news(nlp, text, expected) -> None:
    assert years(nlp, text) == expected


def test_years_are_spans_of_their_digits(nlp) -> None:
    doc = nlp("It was signed in 2019.")
    (span,) = doc.spans[DATES_KEY]
    assert (span.text, span.label_, span.kb_id_) == ("2019", YEAR, "2019")


def test_model_dates_give_model_years(nlp) -> None:
    doc = nlp.make_doc("The 2019 agreement and the 2015-2017 plan since 2012")
    doc.ents = [doc.char_span(4, 8, label="DATE"), doc.char_span(27, 36, label="DATE"),
                doc.char_span(48, 52, label="DATE")]
    doc = nlp.get_pipe("dealwatch_amounts_v1")(nlp.get_pipe("sentencizer")(doc))
    assert [(s.text, s._.dw_year) for s in doc.spans[DATES_KEY] if s.label_ == MODEL_YEAR] == [
        ("2019", 2019)]


def test_only_documents_naming_a_vendor_are_read() -> None:
    config = load_config(SHIPPED_CONFIG_DIR)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("dealwatch_amounts_v1", config={
        "currencies": config.rules.currencies, "grammar": config.grammar.model_dump(mode="json")})
    doc = nlp("Kenya signed a $48 million deal in 2019.")
    assert list(doc.spans[AMOUNTS_KEY]) == [] and list(doc.spans[DATES_KEY]) == []


# --- the grammar file --------------------------------------------------------------------------


def _shipped_grammar() -> str:
    return (SHIPPED_CONFIG_DIR / "patterns" / "en" / "grammar.toml").read_text(encoding="utf-8")


def test_a_config_dir_grammar_replaces_the_shipped_one(make_config) -> None:
    text = _shipped_grammar().replace("lakh = 100_000", "lakh = 100_000\nmio = 1_000_000")
    config = load_config(make_config({"patterns/en/grammar.toml": text}))
    assert config.files["grammar.toml"].parent.parent.parent != SHIPPED_CONFIG_DIR
    assert amounts(_pipeline(config), "A €3 mio contract.") == [("€3 mio", "EUR", Amount(3e6, "€"))]


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("negation = 5", "negation = 0", "reach.negation: Input should be greater than or equal to 1"),
    ('party_breaks = ["and"', 'party_breaks = ["And"', "words.party_breaks: Value error, 'And' is "
                                                          "matched in lower case"),
    ("lakh = 100_000", "lakh = -1", "amounts.scales: Value error, 'lakh' = -1"),
    ("[dates]", "[dates]\nweekdays = []", "dates.weekdays: unknown field"),
    ("[reach]", "[reach", "not valid TOML"),
])
def test_a_bad_grammar_names_file_and_field(make_config, old, new, expected) -> None:
    text = _shipped_grammar()
    assert old in text
    directory = make_config({"patterns/en/grammar.toml": text.replace(old, new, 1)})
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    message = str(info.value)
    assert str(Path(directory) / "patterns" / "en" / "grammar.toml") in message
    assert expected in message and "\n" not in message


def test_evidence_strengths_are_ordered(make_config) -> None:
    rules = (SHIPPED_CONFIG_DIR / "rules.toml").read_text(encoding="utf-8")
    assert "\nactor = 0.7" in rules
    directory = make_config({"rules.toml": rules.replace("\nactor = 0.7", "\nactor = 1.0", 1)})
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    assert "rules.toml: scoring.evidence: Value error, word <= actor < named" in str(info.value)
