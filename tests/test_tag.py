"""Tagging: watchlist vendors, countries (names, short forms, demonyms), agencies; with and without the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.analysis.analyze import Analyzer, AnalyzerError
from pipeline.analysis.gazetteer import load_gazetteer
from pipeline.analysis.tag import COUNTERPARTS_KEY, PLACES_KEY, find_model
from pipeline.config import SHIPPED_CONFIG_DIR, load_config


@pytest.fixture(scope="module")
def rules_only() -> Analyzer:
    return Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model="never")


@pytest.fixture(scope="module")
def with_model() -> Analyzer:
    return Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model="required")


def tags(analyzer: Analyzer, text: str) -> set[tuple[str, str, str | None]]:
    return {(e.text, e.label, e.id) for e in analyzer.analyze(text).entities}


@pytest.mark.parametrize(("text", "code"), [
    ("Kenyan", "KE"), ("Pakistani", "PK"), ("Ethiopian", "ET"), ("Chinese", "CN"),
    ("U.S.", "US"), ("USA", "US"), ("UK", "GB"), ("U.K.", "GB"), ("UAE", "AE"), ("DRC", "CD"),
    ("Kenya", "KE"), ("Ivory Coast", "CI"), ("Côte d'Ivoire", "CI"), ("Türkiye", "TR"),
    ("the Philippines", "PH"), ("South Korea", "KR"), ("Laos", "LA"),
])
def test_gazetteer_links_names_short_forms_and_demonyms(text, code) -> None:
    assert load_gazetteer().country_code(text) == code


def test_gazetteer_leaves_out_catalogue_forms_and_ambiguous_codes() -> None:
    gazetteer = load_gazetteer()
    for text in ("Korea, Republic of", "IN", "IT", "us", "in", "CAN", "PER"):
        assert gazetteer.country_code(text) is None, text
    assert gazetteer.place_code("Punjab") is None  # a province of India and of Pakistan
    assert gazetteer.place_code("Sarawak") == "MY"


def test_countries_demonyms_and_short_forms_in_text(rules_only) -> None:
    found = tags(rules_only, "Kenyan officials met U.S. and UK envoys and a Pakistani delegation in Nigeria.")
    assert {("Kenyan", "COUNTRY", "KE"), ("U.S.", "COUNTRY", "US"), ("UK", "COUNTRY", "GB"),
            ("Pakistani", "COUNTRY", "PK"), ("Nigeria", "COUNTRY", "NG")} <= found
    assert not any(text == "Niger" for text, _, _ in found)  # not inside "Nigeria"


def test_case_sensitive_and_look_alike_regions(rules_only) -> None:
    found = tags(rules_only, "Let us see it in Latin America, New Mexico and Papua New Guinea.")
    countries = {(text, code) for text, label, code in found if label == "COUNTRY"}
    assert countries == {("Papua New Guinea", "PG")}


def test_vendor_aliases_link_to_watchlist_ids(rules_only) -> None:
    text = ("ZTE Corporation, Huawei Technologies Co. Ltd, HMN Tech, Huawei Marine, 华为 and 中兴 "
            "competed with Hikvision, Dahua, CloudWalk and Alibaba Cloud.")
    vendors = {(t, i) for t, label, i in tags(rules_only, text) if label == "VENDOR"}
    assert vendors == {("ZTE Corporation", "zte"), ("Huawei Technologies Co. Ltd", "huawei"),
                       ("HMN Tech", "huawei"), ("Huawei Marine", "huawei"), ("华为", "huawei"),
                       ("中兴", "zte"), ("Hikvision", "hikvision"), ("Dahua", "dahua"),
                       ("CloudWalk", "cloudwalk"), ("Alibaba Cloud", "alibaba_cloud")}


def test_no_vendor_in_look_alikes(rules_only) -> None:
    text = "See www.zte.com.cn or https://zte.com/en, said Hua Wei, a lecturer, and zte fans."
    assert not any(label == "VENDOR" for _, label, _ in tags(rules_only, text))


def test_agencies_state_companies_and_sources(rules_only) -> None:
    text = ("Uganda's NITA-U, Telecom Egypt, Ethio Telecom, the FCC and the U.S. Department of "
            "Commerce were named in a CSIS report carried by VOA.")
    found = tags(rules_only, text)
    assert {("NITA-U", "AGENCY", "ug_nita"), ("Telecom Egypt", "ORG", "eg_telecom_egypt"),
            ("Ethio Telecom", "ORG", "et_ethio_telecom"), ("FCC", "AGENCY", "us_fcc"),
            ("U.S. Department of Commerce", "AGENCY", "us_commerce"), ("CSIS", "ORG", "csis"),
            ("VOA", "ORG", "voa")} <= found


def test_government_bodies_by_pattern_keep_their_country(rules_only) -> None:
    doc = rules_only.nlp("Last year the Croatian Ministry of Economy, the Lesotho Mounted Police Service "
                         "and the Selangor state government met Somalia Telecom Corporation staff.")
    bodies = {(s.text, s.label_, s.kb_id_) for s in doc.spans[COUNTERPARTS_KEY]}
    assert bodies == {("Croatian Ministry of Economy", "ministry", "HR"),
                      ("Lesotho Mounted Police Service", "agency", "LS"),
                      ("Selangor state government", "subnational", "MY"),
                      ("Somalia Telecom Corporation", "soe", "SO")}
    ents = {(e.text, e.label_) for e in doc.ents}
    # the body is an AGENCY and its country stays a COUNTRY
    assert {("Croatian", "COUNTRY"), ("Ministry of Economy", "AGENCY"),
            ("Somalia Telecom Corporation", "ORG")} <= ents


def test_government_of_a_country(rules_only) -> None:
    doc = rules_only.nlp("The government of Kenya and Egypt's telecom ministry agreed.")
    bodies = {(s.text, s.label_, s.kb_id_) for s in doc.spans[COUNTERPARTS_KEY]}
    assert bodies == {("government of Kenya", "government", "KE"),
                      ("Egypt's telecom ministry", "ministry", "EG")}


def test_entity_offsets_point_into_the_text(rules_only) -> None:
    text = "MIRI: Sabah’s government and ZTE agreed.\n\nPolandʼs government objected."
    for entity in rules_only.analyze(text).entities:
        assert text[entity.start:entity.end] == entity.text
    assert ("Poland", "COUNTRY", "PL") in tags(rules_only, text)


def test_line_breaks_end_sentences(rules_only) -> None:
    doc = rules_only.nlp("ZTE Wins Zamtel Deal\nZamtel said so. It will build a data centre.")
    assert [s.text.strip() for s in doc.sents] == [
        "ZTE Wins Zamtel Deal", "Zamtel said so.", "It will build a data centre."]


def test_components_are_versioned_factories(rules_only) -> None:
    factories = {rules_only.nlp.get_pipe_meta(name).factory for name in rules_only.nlp.pipe_names}
    assert {"dealwatch_sentencizer_v1", "entity_ruler", "dealwatch_entity_linker_v1",
            "dealwatch_agency_matcher_v1", "dealwatch_deal_detector_v1"} <= factories
    assert rules_only.model_name is None and rules_only.version.startswith("rules-")


def test_model_required_but_missing_is_a_handled_error(monkeypatch) -> None:
    monkeypatch.setattr("pipeline.analysis.analyze.find_model", lambda: None)
    with pytest.raises(AnalyzerError, match="required but not installed"):
        Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model="required")


@pytest.mark.model
def test_model_pipeline_puts_the_ruler_before_ner(with_model) -> None:
    names = with_model.nlp.component_names
    assert names.index("watchlist_ruler") < names.index("ner") < names.index("vendor_ner")
    assert "ner" in with_model.nlp.disabled  # run through vendor_ner, on vendor articles only
    assert "parser" not in names and "lemmatizer" not in names
    assert with_model.model_name == find_model()
    assert "+en_core_web_sm" in with_model.version


@pytest.mark.model
def test_model_adds_its_labels_and_the_watchlist_wins(with_model) -> None:
    found = tags(with_model, "Kenya's ICT Authority paid Huawei $48 million in March 2019, said Hua Wei.")
    assert ("Huawei", "VENDOR", "huawei") in found
    assert ("Kenya", "COUNTRY", "KE") in found
    assert ("ICT Authority", "AGENCY", "ke_icta") in found
    labels = {label for _, label, _ in found}
    assert {"MONEY", "DATE"} <= labels
    assert not any(label == "VENDOR" and text == "Hua Wei" for text, label, _ in found)


@pytest.mark.model
def test_model_runs_only_on_articles_naming_a_vendor(with_model) -> None:
    labels = {label for _, label, _ in tags(with_model, "Microsoft paid $5 million in March 2019.")}
    assert "MONEY" not in labels and "DATE" not in labels


# --- the cases of issue 4, one by one ---------------------------------------------------------


def vendor_ids(analyzer: Analyzer, text: str) -> list[tuple[str, str | None]]:
    return [(e.text, e.id) for e in analyzer.analyze(text).entities if e.label == "VENDOR"]


@pytest.mark.parametrize(("text", "name"), [
    ("Huawei Technologies Co., Ltd. won the tender.", "Huawei Technologies Co., Ltd."),
    ("Huawei Technologies Co. Ltd won the tender.", "Huawei Technologies Co. Ltd"),
    ("Huawei Marine laid the cable.", "Huawei Marine"),
    ("HMN Tech laid the cable.", "HMN Tech"),
    ("ZTE Holdings signed.", "ZTE Holdings"),
])
def test_aliases_and_subsidiaries_link_to_the_parent(rules_only, text, name) -> None:
    found = vendor_ids(rules_only, text)
    assert len(found) == 1 and found[0][0] == name
    assert found[0][1] in ("huawei", "zte")


def test_possessives_leave_the_name(rules_only) -> None:
    text = "Huawei's bid beat ZTE’s, and HUAWEI'S engineers began; Kenyaʼs ministry agreed."
    assert vendor_ids(rules_only, text) == [("Huawei", "huawei"), ("ZTE", "zte"), ("HUAWEI", "huawei")]
    assert ("Kenya", "COUNTRY", "KE") in tags(rules_only, text)


def test_all_caps_datelines_and_vendor_names(rules_only) -> None:
    doc = rules_only.nlp("NAIROBI (Reuters) – HUAWEI will build the data centre, officials said.")
    places = {(s.text, s.kb_id_) for s in doc.spans[PLACES_KEY]}
    assert ("NAIROBI", "KE") in places
    assert [(e.text, e.ent_id_) for e in doc.ents if e.label_ == "VENDOR"] == [("HUAWEI", "huawei")]
    deal = rules_only.analyze("NAIROBI (Reuters) – HUAWEI signed a contract to build a government "
                              "data centre, officials said.").candidates[0]
    assert deal.country == "KE"


def test_chinese_names_inside_chinese_text(rules_only) -> None:
    # the tagger finds the names inside an unspaced run of ideographs
    doc = rules_only.nlp("华为公司与肯尼亚政府签署协议。中兴通讯也参加了。")
    assert [e.ent_id_ for e in doc.ents if e.label_ == "VENDOR"] == ["huawei", "zte"]
    # but a Chinese article is in a language dealwatch has no patterns for: it is not analysed
    analysis = rules_only.analyze("华为公司与肯尼亚政府签署协议。中兴通讯也参加了。")
    assert (analysis.language, analysis.supported, analysis.candidates) == ("zh", False, [])


@pytest.mark.parametrize("text", [
    "Download it from www.zte.com.cn or https://huawei.com/ke/news.",
    "Write to press@zte.com.cn for details.",
    "Hua Wei, a lecturer in Nairobi, and the zte fan club met.",
    "The Huaweiphile blog and ztevideo.net covered it.",
])
def test_no_vendor_in_look_alikes_of_any_kind(rules_only, text) -> None:
    assert vendor_ids(rules_only, text) == []


@pytest.mark.parametrize(("text", "code"), [
    ("ACCRA, May 2 – The deal was signed.", "GH"),
    ("Officials in Tarawa said so.", "KI"),
    ("THIMPHU: The ministry agreed.", "BT"),
    ("Talks in Lusaka ended.", "ZM"),
])
def test_capitals_place_their_country(rules_only, text, code) -> None:
    doc = rules_only.nlp(text)
    assert code in {s.kb_id_ for s in doc.spans[PLACES_KEY]}


def test_subnational_governments_link_to_their_country(rules_only) -> None:
    doc = rules_only.nlp("Hikvision will work with the province of Mendoza, the Selangor state "
                         "government and the KwaZulu-Natal provincial government.")
    bodies = {(s.text, s.label_, s.kb_id_) for s in doc.spans[COUNTERPARTS_KEY]}
    assert bodies == {("province of Mendoza", "subnational", "AR"),
                      ("Selangor state government", "subnational", "MY"),
                      ("KwaZulu-Natal provincial government", "subnational", "ZA")}


def test_subdivision_names_that_are_words_or_surnames_need_a_cue(rules_only) -> None:
    doc = rules_only.nlp("Juan Mendoza flew Delta to the Centre, then North; the Central Bank and "
                         "Eastern Cape officials met in Rivers.")
    assert {s.text for s in doc.spans[PLACES_KEY]} <= {"Eastern Cape"}
    doc = rules_only.nlp("Delta State and Kano State governments agreed.")
    assert {(s.text, s.kb_id_) for s in doc.spans[PLACES_KEY]} >= {("Delta", "NG"), ("Kano", "NG")}


def test_amounts_are_not_place_names(rules_only) -> None:
    doc = rules_only.nlp("Kenya signs Huawei contract for Sh17.5bn government cloud")
    assert [s.text for s in doc.spans[COUNTERPARTS_KEY]] == []


@pytest.mark.parametrize(("text", "name", "ctype", "code"), [
    ("Telecom Egypt signed a cloud contract with Huawei.", "Telecom Egypt", "soe", "EG"),
    ("Ethio Telecom signed a 4G contract with ZTE.", "Ethio Telecom", "soe", "ET"),
    ("Telekom Malaysia signed a fibre contract with Huawei.", "Telekom Malaysia", "soe", "MY"),
    ("PNG DataCo signed a cable contract with Huawei Marine.", "PNG DataCo", "soe", "PG"),
    ("NITA-U signed a backbone contract with Huawei.", "NITA-U", "agency", "UG"),
    ("Zambia's Ministry of Technology and Science signed a data centre contract with Huawei.",
     "Zambia's Ministry of Technology and Science", "ministry", "ZM"),
    ("Lesotel, the state-owned operator, signed a 4G contract with Huawei in Lesotho.",
     "Lesotel", "soe", "LS"),
    ("Kenya's Ministry of Information, Communications and the Digital Economy signed a cloud "
     "contract with Huawei.",
     "Kenya's Ministry of Information, Communications and the Digital Economy", "ministry", "KE"),
    # a head with "General" after it, and a country's "National … Company"
    ("Gabon's Directorate General for Civil Protection signed a camera contract with Dahua.",
     "Gabon's Directorate General for Civil Protection", "agency", "GA"),
    ("The Directorate-General of Immigration of Ghana signed an e-passport contract with Huawei.",
     "Directorate-General of Immigration of Ghana", "agency", "GH"),
    ("The Uruguay National Telecommunications Company awarded ZTE a 4G contract.",
     "Uruguay National Telecommunications Company", "soe", "UY"),
])
def test_counterparts_are_typed_with_their_country(rules_only, text, name, ctype, code) -> None:
    deal = rules_only.analyze(text).candidates[0]
    assert (deal.counterpart, deal.counterpart_type, deal.country) == (name, ctype, code)


def test_counterpart_list_is_seeded_with_operators_and_ict_authorities() -> None:
    watchlist = load_config(SHIPPED_CONFIG_DIR).watchlist
    bodies = {e.id: e for e in watchlist if e.counterpart_type}
    soes = {e.country for e in bodies.values() if e.counterpart_type == "soe"}
    agencies = {e.country for e in bodies.values() if e.counterpart_type == "agency"}
    assert {"EG", "ET", "MY", "PG", "KE", "NG", "ZM", "PK", "LK", "BD"} <= soes
    assert {"UG", "KE"} <= agencies


@pytest.mark.model
def test_model_fills_gaps_where_the_lists_are_silent(with_model, rules_only) -> None:
    text = "Huawei signed the 2019 contract with Zamtech Networks for $48 million in Lusaka."
    found = tags(with_model, text)
    assert ("Huawei", "VENDOR", "huawei") in found  # the ruler's, not the model's ORG
    assert {"MONEY", "ORG"} <= {label for _, label, _ in found}
    # "the 2019 contract" reads as a year only to the model
    assert with_model.analyze(text).candidates[0].year == 2019
    assert rules_only.analyze(text).candidates[0].year is None


@pytest.mark.model
def test_model_org_is_shown_as_an_unknown_party(with_model, rules_only) -> None:
    text = "Huawei signed a contract with Zamtech Networks to build a data centre in Zambia."
    deal = with_model.analyze(text).candidates[0]
    assert (deal.counterpart, deal.counterpart_type) == ("Zamtech Networks", "unknown")
    assert deal.signals["counterpart"] == 0.0  # it tells the reviewer, it does not score
    assert deal.score == rules_only.analyze(text).candidates[0].score


@pytest.mark.model
def test_model_path_keeps_the_lexical_attributes_its_ner_reads(rules_only, with_model) -> None:
    # the rule-only path computes fewer attributes per new word; the model's features need all
    word = with_model.nlp("Zamtechnetworks")[0]
    assert word.shape_ == "Xxxxx" and word.suffix_ == "rks"
    assert len(rules_only.nlp.vocab.lex_attr_getters) < len(with_model.nlp.vocab.lex_attr_getters)


# --- the matcher sees every name whole, and types it by the words before its head ------------


def counterparts(analyzer: Analyzer, text: str) -> set[tuple[str, str, str]]:
    doc = analyzer.nlp(text)
    return {(s.text, s.label_, s.kb_id_) for s in doc.spans[COUNTERPARTS_KEY]}


def test_a_long_name_before_its_description_is_matched_whole(rules_only) -> None:
    text = ("Huawei signed a contract with Vanuatu Interisland Cable Network Systems Company "
            "Holdings (VICN), a state-owned firm, to lay the cable.")
    assert counterparts(rules_only, text) == {
        ("Vanuatu Interisland Cable Network Systems Company Holdings", "soe", "VU")}


@pytest.mark.parametrize(("text", "body", "ctype", "code"), [
    ("Ghana's Ministry of Local Government and Rural Development signed it.",
     "Ghana's Ministry of Local Government and Rural Development", "ministry", "GH"),
    ("Kenya's Ministry of State for Public Service signed it.",
     "Kenya's Ministry of State for Public Service", "ministry", "KE"),
    ("The Kano State Police Command signed it.", "Kano State Police Command", "subnational", "NG"),
    ("The Lagos state government signed it.", "Lagos state government", "subnational", "NG"),
    # named after the capital, yet the country's own
    ("The Abuja federal government signed it.", "Abuja federal government", "government", "NG"),
])
def test_words_before_the_head_say_whose_body_it_is(rules_only, text, body, ctype, code) -> None:
    assert counterparts(rules_only, text) == {(body, ctype, code)}


def test_each_kind_of_pattern_runs_on_all_the_words_it_reaches(rules_only) -> None:
    strings = rules_only.nlp.vocab.strings
    reach = {strings[key]: (before, after)
             for key, _, before, after in rules_only.nlp.get_pipe("agency_matcher").kinds}
    # "Ministry of …, … and the …": up to seventeen words after "Ministry"; "Zamtel Holdings
    # (ZH), a state-…": eleven before "state"; a country name may have eight words before
    # "government" ("the United Kingdom of Great Britain and Northern Ireland's government")
    assert reach["NAMED"][1] == 17 and reach["SOE_APPOSITION"][0] == 11
    assert reach["PLACE_GOVERNMENT"][0] == 12


# --- what spaCy cannot take ------------------------------------------------------------------


def test_lone_surrogates_are_replaced_in_place(rules_only) -> None:
    text = "Kenya\udc8fs ministry signed a $48 million cloud contract with Huawei \ud800 in 2019."
    analysis = rules_only.analyze(text)
    shown = text.replace("\udc8f", "\ufffd").replace("\ud800", "\ufffd")
    assert {(e.text, e.label) for e in analysis.entities} >= {("Kenya", "COUNTRY"), ("Huawei", "VENDOR")}
    for entity in analysis.entities:
        assert shown[entity.start:entity.end] == entity.text
    (deal,) = [c for c in analysis.candidates if c.kind == "deal"]
    assert shown[deal.start:deal.end] == deal.sentence
    assert [len(a.entities) for a in rules_only.analyze_many([text, "\ud800"])] == [
        len(analysis.entities), 0]


def test_the_rules_read_the_first_max_text_chars_characters(rules_only) -> None:
    limit = rules_only.config.settings.process.max_text_chars
    deal = "Kenya's ministry signed a $48 million cloud contract with Huawei."
    text = " " * (limit - len(deal)) + deal
    (found,) = rules_only.analyze(text).candidates
    assert found.start == limit - len(deal) and text[found.start:found.end] == found.sentence == deal
    # past the cap nothing is read: processing records such a page "too long" (test_hostile_input)
    assert not rules_only.analyze(" " * len(deal) + text).candidates


@pytest.mark.model
def test_the_model_analyses_the_first_max_length_characters(with_model, monkeypatch, caplog) -> None:
    first = "Kenya's ministry signed a $48 million cloud contract with Huawei. "
    text = first + "Ghana's ministry signed a $20 million contract with ZTE. " * 10
    limit = len(first) + 30
    monkeypatch.setattr(with_model.nlp, "max_length", limit)
    with caplog.at_level("WARNING", logger="pipeline.analysis.analyze"):
        (analysis,) = with_model.analyze_many([text])
    assert "analysing its first" in caplog.text
    assert {e.text for e in analysis.entities if e.label == "VENDOR"} == {"Huawei"}
    assert all(e.end <= limit and text[e.start:e.end] == e.text for e in analysis.entities)
    assert analysis.candidates[0].country == "KE"
    assert all(c.end <= limit and text[c.start:c.end] == c.sentence for c in analysis.candidates)


def test_the_analyser_version_covers_the_code_that_finds_things() -> None:
    from pipeline import language
    from pipeline.analysis import (
        agencies,
        amounts,
        analyze,
        candidates,
        counts,
        cues,
        detect,
        facts,
        gazetteer,
        merge,
        parties,
        pipes,
        places,
        reading,
        story,
        syntax,
        tag,
        tokenizer,
    )
    from pipeline.analysis.analyze import ANALYSER_CODE

    # language.py decides which chain reads a text, analyze.py how a passage becomes a doc
    modules = (agencies, amounts, analyze, candidates, counts, cues, detect, facts, gazetteer, language,
               merge, parties, pipes, places, reading, story, syntax, tag, tokenizer)
    package = Path(language.__file__).parent
    assert set(ANALYSER_CODE) == {Path(m.__file__).relative_to(package).as_posix() for m in modules}
