"""The cue matcher on its own: which words it finds, as spans a reviewer could see in displaCy."""

from __future__ import annotations

import pytest
from spacy import displacy

from pipeline.analysis.analyze import Analyzer
from pipeline.analysis.cues import CUES_KEY
from pipeline.config import SHIPPED_CONFIG_DIR, ConfigError, load_config


@pytest.fixture(scope="module")
def rules_only() -> Analyzer:
    return Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model="never", ranker=None)


def cues(analyzer: Analyzer, text: str) -> dict[str, list[str]]:
    doc = analyzer.nlp(text)
    found: dict[str, list[str]] = {}
    for span in doc.spans[CUES_KEY]:
        found.setdefault(span.label_, []).append(span.text)
    return found


@pytest.mark.parametrize(("text", "label", "words"), [
    ("The transport minister gave the go-ahead to Hikvision to put up speed cameras.", "approval",
     "gave the go-ahead"),
    ("Lesotho's cabinet has tapped ZTE to modernise the national ID registry.", "approval", "tapped ZTE"),
    ("The regulator terminated its 2021 contract with Huawei.", "cancel", "terminated"),
    ("Officials tore up the agreement with Dahua last week.", "cancel", "tore up"),
    ("Huawei is eyeing a role in Chile's planned cable to Asia.", "plan", "eyeing"),
    ("ZTE hopes to supply the state operator's next network.", "plan", "hopes to"),
    ("Huawei lost out to Nokia in the tender.", "lose", "lost out to"),
    ("The carrier will be reimbursed for swapping out ZTE radios.", "removal", "reimbursed"),
    ("Huawei opened its own cloud region in Santiago on Tuesday.", "own_facility", "opened its own cloud"),
])
def test_lemma_patterns_find_each_cue_class(rules_only, text, label, words) -> None:
    found = cues(rules_only, text)
    assert label in found, found
    assert any(words in hit or hit in words for hit in found[label]), found[label]


def test_inflected_forms_match_through_lemmas(rules_only) -> None:
    # one pattern on the lemma "cancel" finds every form of it, on the rule-only path
    for verb in ("cancels", "cancelled", "cancelling", "canceled"):
        assert "cancel" in cues(rules_only, f"Namibia {verb} the Huawei agreement.")


def test_rules_vocabularies_are_cues_too(rules_only) -> None:
    found = cues(rules_only, "Kenya's ministry signed a cloud contract with Huawei.")
    assert {"T:verb", "T:noun", "type:cloud", "stage:signed", "cp:ministry"} <= set(found)


def test_a_document_naming_no_vendor_has_no_cues(rules_only) -> None:
    assert cues(rules_only, "Kenya's ministry signed a cloud contract with a local firm.") == {}


def test_cues_render_in_displacy(rules_only) -> None:
    doc = rules_only.nlp("Huawei lost out to Nokia in Kenya's 5G tender.")
    html = displacy.render(doc, style="span", options={"spans_key": CUES_KEY})
    assert "lose" in html and "Nokia" in html


@pytest.mark.parametrize(("line", "problem"), [
    ('{"label": "plan", "pattern": [{"NOT_AN_ATTR": "x"}]}', "pattern"),
    ('{"label": "plan", "pattern": [{"TEXT": {"REGEX": "(unclosed"}}]}', "pattern"),
    ('{"label": "maybe", "pattern": [{"LOWER": "x"}]}', "label"),
    ('{"label": "plan"}', "label' and 'pattern"),
    ('not json', "not valid JSON"),
])
def test_a_bad_cue_pattern_is_a_config_error_naming_file_and_line(make_config, line, problem) -> None:
    directory = make_config({"patterns/en/cues.jsonl": "// my patterns\n" + line + "\n"})
    with pytest.raises(ConfigError) as info:
        load_config(directory)
    message = str(info.value)
    assert "cues.jsonl:2" in message and problem in message and "\n" not in message


def test_a_config_dir_can_add_cue_patterns(make_config) -> None:
    directory = make_config({"patterns/en/extra.jsonl":
                             '{"label": "approval", "pattern": [{"LEMMA": "anoint"}]}\n'})
    analyzer = Analyzer.from_config(load_config(directory), use_model="never", ranker=None)
    assert "approval" in cues(analyzer, "The ministry anointed Huawei as its cloud partner.")
