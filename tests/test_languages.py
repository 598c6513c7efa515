"""Deals in the languages they are reported in: each language's analysis chain, fed by its own
pattern folder (config/patterns/<lang>/), on sentences written for these tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.records import Candidate, Passage
from pipeline.analysis.analyze import Analyzer
from pipeline.config import SHIPPED_CONFIG_DIR, ConfigError, load_config


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model="never")


def deals(analyzer: Analyzer, text: str, lang: str | None = None, title: str | None = None
          ) -> list[Candidate]:
    threshold = analyzer.config.rules.scoring.threshold
    analysis = analyzer.analyze(text, title, lang)
    return [c for c in analysis.candidates if c.kind == "deal" and c.score >= threshold]


# --- Spanish --------------------------------------------------------------------------------


def test_a_spanish_deal_gives_the_same_field_values_as_an_english_one(analyzer) -> None:
    text = ("LA PAZ – El Ministerio de Obras Públicas de Bolivia firmó un contrato de 38,5 millones "
            "de dólares con la empresa china ZTE para ampliar la red de fibra óptica del país.")
    (deal,) = deals(analyzer, text)
    assert (deal.vendor, deal.country, deal.counterpart_type) == ("zte", "BO", "ministry")
    assert deal.counterpart.startswith("Ministerio de Obras Públicas")
    assert (deal.value, deal.currency, deal.stage) == (38.5e6, "USD", "signed")
    assert deal.deal_type == "fibre_backbone"
    assert text[deal.start:deal.end] == deal.sentence  # the evidence stays in Spanish


def test_spanish_is_identified_when_no_language_is_given(analyzer) -> None:
    analysis = analyzer.analyze("La Alcaldía de Quito adjudicó a Hikvision la instalación de 800 "
                                "cámaras de videovigilancia en el centro histórico.")
    assert analysis.language == "es" and analysis.supported
    (deal,) = [c for c in analysis.candidates if c.kind == "deal"]
    assert (deal.country, deal.deal_type, deal.counterpart_type) == ("EC", "safe_city", "subnational")


@pytest.mark.parametrize(("text", "value", "currency"), [
    ("El Gobierno de Panamá contrató a Huawei por B/. 12,5 millones para su nube estatal.",
     12.5e6, "PAB"),
    ("La estatal Entel de Bolivia adjudicó a Huawei un contrato de 1.200 millones de bolivianos "
     "para su red 4G.", 1.2e9, "BOB"),
    ("El Ministerio de Economía de Perú pagará a ZTE US$ 7 millones por un centro de datos.",
     7e6, "USD"),
])
def test_spanish_amounts(analyzer, text, value, currency) -> None:
    (deal,) = deals(analyzer, text, "es")
    assert (deal.value, deal.currency) == (value, currency)


def test_a_spanish_cancellation_is_kept_below_the_queue(analyzer) -> None:
    text = ("La Municipalidad de Rosario rescindió el convenio que había firmado con Dahua para "
            "instalar 500 cámaras en los barrios.")
    assert not deals(analyzer, text, "es")
    ended = [c for c in analyzer.analyze(text, language="es").candidates if c.kind == "deal"]
    assert ended and ended[0].stage == "cancelled" and ended[0].signals["cancelled"] == 1.0


def test_a_spanish_losing_bid_is_no_deal(analyzer) -> None:
    text = ("La estatal Antel rechazó el recurso de Huawei y confirmó a Nokia como ganadora de la "
            "licitación de su red 5G.")
    assert not [c for c in deals(analyzer, text, "es") if "huawei" in c.vendors]


def test_the_country_of_a_spanish_story_can_come_from_a_demonym(analyzer) -> None:
    (deal,) = deals(analyzer, "El gobierno ecuatoriano firmó con Huawei un acuerdo para una nube "
                              "gubernamental.", "es")
    assert deal.country == "EC" and deal.counterpart_type == "government"


def test_the_vendors_home_said_in_spanish_is_no_party(analyzer) -> None:
    # "china" describes the vendor: the deal is Paraguay's, not China's
    (deal,) = deals(analyzer, "La empresa china Huawei firmó un memorando de entendimiento con el "
                              "Ministerio de Tecnologías de Paraguay.", "es")
    assert deal.country == "PY" and deal.stage == "mou"


def test_many_spanish_deals_counted_are_an_aggregate(analyzer) -> None:
    text = ("Según un informe regional, Huawei ha firmado más de 40 acuerdos con gobiernos de 15 "
            "países latinoamericanos.")
    found = [c.kind for c in analyzer.analyze(text, language="es").candidates
             if c.score >= analyzer.config.rules.scoring.threshold]
    assert found == ["aggregate"]


# --- languages without a folder, and folders that are wrong ---------------------------------


def test_a_text_in_a_language_without_a_folder_is_not_read_as_english(analyzer) -> None:
    text = ("Die Regierung von Kenia hat mit Huawei einen Vertrag über ein Rechenzentrum "
            "unterzeichnet, teilte das Ministerium am Dienstag mit.")
    analysis = analyzer.analyze(text)
    assert (analysis.language, analysis.supported, analysis.candidates) == ("de", False, [])
    # asked for a language the analyser reads, it reads it as that
    assert next(analyzer.analyze_many([Passage(text, language="en")])).supported


def test_passages_in_several_languages_come_back_in_order(analyzer) -> None:
    passages = [Passage("Kenya's ICT ministry signed a cloud contract with Huawei."),
                Passage("Die Regierung unterzeichnete mit Huawei einen Vertrag.", language="de"),
                Passage("El Ministerio de Salud de Chile firmó un contrato con Huawei.", language="es")]
    results = list(analyzer.analyze_many(passages, batch_size=2))
    assert [(r.language, r.supported) for r in results] == [("en", True), ("de", False), ("es", True)]
    assert [r.candidates[0].country for r in results if r.candidates] == ["KE", "CL"]


def test_adding_a_language_is_adding_a_folder(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    shutil.copytree(SHIPPED_CONFIG_DIR / "patterns" / "es", config_dir / "patterns" / "it")
    assert "it" in load_config(config_dir).languages
    (config_dir / "patterns" / "it" / "vocab.toml").unlink()
    with pytest.raises(ConfigError, match=r"patterns/it/vocab.toml: file not found"):
        load_config(config_dir)


def test_a_broken_vocabulary_is_one_line_naming_the_file_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "config" / "patterns" / "it"
    shutil.copytree(SHIPPED_CONFIG_DIR / "patterns" / "es", folder)
    vocab = folder / "vocab.toml"
    vocab.write_text(vocab.read_text(encoding="utf-8").replace("[triggers]", "[trigers]"),
                     encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "config")
    assert "patterns/it/vocab.toml: trigers: unknown field" in str(err.value)
    assert "\n" not in str(err.value)


# --- mechanisms other languages asked for -------------------------------------------------------


def test_a_french_name_goes_on_in_lower_case_after_its_head(analyzer) -> None:
    (deal,) = deals(analyzer, "La Direction générale des impôts et des domaines du Bénin a signé "
                              "avec Huawei un contrat pour un centre de données.", "fr")
    assert deal.counterpart == "Direction générale des impôts et des domaines du Bénin"
    assert (deal.counterpart_type, deal.country) == ("agency", "BJ")


@pytest.mark.parametrize(("country", "currency"), [("du Cameroun", "XAF"), ("du Sénégal", "XOF")])
def test_the_cfa_franc_is_central_or_west_african_by_country(analyzer, country, currency) -> None:
    (deal,) = deals(analyzer, f"Le ministère des Postes {country} a signé avec Huawei un contrat "
                              "de 20 milliards de FCFA pour la fibre optique.", "fr")
    assert (deal.value, deal.currency) == (20e9, currency)


def test_a_bare_dollar_sign_in_a_latin_american_story_is_the_local_peso(analyzer) -> None:
    (deal,) = deals(analyzer, "La Municipalidad de Córdoba, en Argentina, adjudicó a Dahua un "
                              "contrato de $ 1.500 millones para cámaras.", "es")
    assert (deal.value, deal.currency, deal.country) == (1.5e9, "ARS", "AR")


def test_a_city_in_a_dateline_places_a_story_in_its_own_spelling(analyzer) -> None:
    (deal,) = deals(analyzer, "ALGER – L'opérateur public a signé avec Huawei un contrat pour la "
                              "fibre optique du pays.", "fr")
    assert deal.country == "DZ"


def test_a_head_on_the_stop_list_stays_in_the_name(analyzer) -> None:
    (deal,) = deals(analyzer, "O Conselho de Ministros de Angola autorizou a contratação da Huawei "
                              "para a rede nacional de fibra óptica.", "pt")
    assert deal.counterpart.startswith("Conselho de Ministros") and deal.country == "AO"


def test_a_countrys_adjective_after_a_named_body_is_its_country(analyzer) -> None:
    (deal,) = deals(analyzer, "O Ministério do Interior angolano assinou com a Huawei um contrato "
                              "de videovigilância.", "pt")
    assert deal.country == "AO" and deal.counterpart_type == "ministry"


def test_an_attributed_count_is_one_deals_size(analyzer) -> None:
    # "according to the police" is no study: 300 cameras are the size of one deal
    text = ("La primera fase instaló 300 cámaras de videovigilancia en la capital de Honduras, "
            "según la Policía Nacional, bajo el contrato firmado con Huawei.")
    assert [c.kind for c in deals(analyzer, text, "es")] == ["deal"]


def test_a_french_showcase_with_hopes_and_a_denial_is_no_deal(analyzer) -> None:
    text = ("Huawei a présenté à Dakar sa plateforme de ville intelligente, en présence du ministre "
            "de l'Économie numérique. « Notre ambition est de signer nos premiers projets avec des "
            "communes cette année », a dit son directeur. Un conseiller du ministère a précisé "
            "qu'aucun accord n'avait été signé.")
    assert not deals(analyzer, text, "fr")


# --- found in review ---------------------------------------------------------------------------


@pytest.mark.parametrize("lead", [" ", "\n", "\n\n  "])
def test_a_text_that_starts_with_whitespace_keeps_its_headline_apart(analyzer, lead) -> None:
    text = lead + "The ministry signed it with Huawei for Kenya's national data centre."
    analysis = analyzer.analyze(text, title="Huawei signs contract with Kenya's Ministry of ICT")
    assert analysis.candidates
    for c in analysis.candidates:
        assert 0 <= c.start < c.end <= len(text) and text[c.start:c.end] == c.sentence
    assert all(text[e.start:e.end] == e.text for e in analysis.entities)


def test_a_long_title_does_not_decide_the_language_of_the_text(analyzer) -> None:
    analysis = analyzer.analyze("Kenya's ICT ministry signed a cloud contract with Huawei.",
                                title="华为" * 1500)
    assert analysis.language == "en" and analysis.candidates


def test_a_language_given_as_no_code_is_identified(analyzer) -> None:
    analysis = analyzer.analyze("Kenya's ICT ministry signed a cloud contract with Huawei for its "
                                "data centre, the ministry said.", language="english")
    assert analysis.language == "en" and analysis.supported and analysis.candidates


def test_a_folder_for_a_language_spacy_cannot_read_is_one_line(tmp_path: Path) -> None:
    shutil.copytree(SHIPPED_CONFIG_DIR / "patterns" / "es", tmp_path / "patterns" / "sw")
    with pytest.raises(ConfigError, match=r"patterns/sw: spaCy has no language 'sw'"):
        load_config(tmp_path)


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("countries.toml", "aliases = 3\n", "countries.toml: aliases: a table is required"),
    ("vocab.toml", None, "vocab.toml: currencies.XXX: a list of strings is required"),
])
def test_a_wrong_shape_in_a_language_file_is_one_line(tmp_path: Path, name, text, expected) -> None:
    folder = tmp_path / "patterns" / "es"
    shutil.copytree(SHIPPED_CONFIG_DIR / "patterns" / "es", folder)
    if text is None:
        vocab = (folder / name).read_text(encoding="utf-8")
        text = vocab.replace("[currencies]", '[currencies]\nXXX = "dolares"')
    (folder / name).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert expected in str(err.value) and "\n" not in str(err.value)
