"""French: the analysis chain fed by config/patterns/fr/, on sentences written for these tests
(not the labelled passages)."""

from __future__ import annotations

import pytest

from models.records import Candidate
from pipeline.analysis.analyze import Analyzer
from pipeline.config import SHIPPED_CONFIG_DIR, load_config


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model="never")


def deals(analyzer: Analyzer, text: str, lang: str | None = "fr") -> list[Candidate]:
    threshold = analyzer.config.rules.scoring.threshold
    analysis = analyzer.analyze(text, None, lang)
    return [c for c in analysis.candidates if c.kind == "deal" and c.score >= threshold]


def test_a_french_deal_gives_the_same_field_values_as_an_english_one(analyzer) -> None:
    text = ("DAKAR – Le ministère de la Communication et de l'Économie numérique du Sénégal a "
            "signé lundi avec ZTE un contrat de 20 milliards de FCFA pour la pose de 1 200 km "
            "de fibre optique.")
    (deal,) = deals(analyzer, text)
    assert (deal.vendor, deal.country, deal.counterpart_type) == ("zte", "SN", "ministry")
    assert deal.counterpart.startswith("ministère de la Communication")
    assert (deal.value, deal.currency, deal.stage) == (20e9, "XOF", "signed")
    assert deal.deal_type == "fibre_backbone"
    assert text[deal.start:deal.end] == deal.sentence  # the evidence stays in French


@pytest.mark.parametrize(("text", "value", "currency"), [
    ("Le gouvernement de la Tunisie a conclu avec Huawei un accord de 1,2 milliard de dollars "
     "pour son réseau 5G national.", 1.2e9, "USD"),
    ("L'Agence nationale de sécurité du Niger a attribué à Hikvision un marché de 50 millions "
     "d'euros pour la vidéosurveillance de Niamey.", 50e6, "EUR"),
    ("Le ministère de l'Intérieur du Maroc a signé avec Huawei un contrat de 300 millions de "
     "dirhams pour un centre de données.", 300e6, "MAD"),
    ("Le ministère des Postes de Madagascar a signé avec Huawei une convention de 185 milliards "
     "d'ariary pour la 4G rurale.", 185e9, "MGA"),
])
def test_french_amounts(analyzer, text, value, currency) -> None:
    (deal,) = deals(analyzer, text)
    assert (deal.value, deal.currency) == (value, currency)


def test_a_count_with_spaced_thousands_is_no_money(analyzer) -> None:
    (deal,) = deals(analyzer, "La mairie de Douala a signé avec Dahua un contrat pour installer "
                              "1 500 caméras de vidéosurveillance dans la ville.")
    assert (deal.value, deal.deal_type, deal.counterpart_type) == (None, "safe_city", "subnational")


def test_french_is_identified_when_no_language_is_given(analyzer) -> None:
    analysis = analyzer.analyze("Le ministère de la Santé du Burkina Faso a signé un mémorandum "
                                "d'entente avec Huawei pour un cloud gouvernemental destiné aux "
                                "hôpitaux publics.")
    assert analysis.language == "fr" and analysis.supported
    (deal,) = [c for c in analysis.candidates if c.kind == "deal"]
    assert (deal.country, deal.deal_type, deal.stage) == ("BF", "cloud", "mou")


def test_a_french_cancellation_is_kept_below_the_queue(analyzer) -> None:
    text = ("Le ministère des Télécommunications du Togo a résilié la convention qu'il avait "
            "signée avec ZTE pour moderniser le réseau mobile.")
    assert not deals(analyzer, text)
    ended = [c for c in analyzer.analyze(text, language="fr").candidates if c.kind == "deal"]
    assert ended and ended[0].stage == "cancelled" and ended[0].signals["cancelled"] == 1.0


def test_a_french_losing_bid_is_no_deal(analyzer) -> None:
    text = ("L'opérateur public Camtel a rejeté l'offre de Huawei et retenu Nokia pour son "
            "réseau 5G au Cameroun.")
    assert not [c for c in deals(analyzer, text) if "huawei" in c.vendors]


def test_the_country_of_a_french_story_can_come_from_a_demonym(analyzer) -> None:
    (deal,) = deals(analyzer, "Le gouvernement ivoirien a signé avec Huawei un accord pour la "
                              "construction d'un centre de données.")
    assert deal.country == "CI" and deal.counterpart_type == "government"


def test_the_vendors_home_said_in_french_is_no_party(analyzer) -> None:
    # "le chinois Huawei": China describes the vendor, the deal is Gabon's
    (deal,) = deals(analyzer, "Le chinois Huawei a signé un protocole d'accord avec le "
                              "ministère de l'Économie numérique du Gabon pour une ville "
                              "intelligente.")
    assert deal.country == "GA" and deal.stage == "mou" and deal.deal_type == "smart_city"


def test_the_vendors_plan_in_the_future_tense_is_no_deal(analyzer) -> None:
    assert not deals(analyzer, "Huawei construira au Bénin un centre de données capable "
                               "d'héberger les données de l'administration, a déclaré son "
                               "directeur général.")


def test_many_french_deals_counted_are_an_aggregate(analyzer) -> None:
    text = ("Selon un rapport publié mardi, Huawei a mené plus de 40 projets avec des "
            "gouvernements dans une vingtaine de pays africains.")
    found = [c.kind for c in analyzer.analyze(text, language="fr").candidates
             if c.score >= analyzer.config.rules.scoring.threshold]
    assert found == ["aggregate"]
