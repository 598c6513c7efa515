"""Portuguese: the analysis chain fed by config/patterns/pt/, on sentences written for these
tests in both the Brazilian and the European/African spelling (not the labelled passages)."""

from __future__ import annotations

import pytest

from models.records import Candidate
from pipeline.analysis.analyze import Analyzer
from pipeline.config import SHIPPED_CONFIG_DIR, load_config


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model="never")


def deals(analyzer: Analyzer, text: str, lang: str | None = "pt") -> list[Candidate]:
    threshold = analyzer.config.rules.scoring.threshold
    analysis = analyzer.analyze(text, language=lang)
    return [c for c in analysis.candidates if c.kind == "deal" and c.score >= threshold]


def test_a_portuguese_deal_gives_the_same_field_values_as_an_english_one(analyzer) -> None:
    text = ("MAPUTO – O Ministério da Ciência e Tecnologia de Moçambique assinou com a Huawei um "
            "contrato de 20 milhões de dólares para construir um centro de dados do governo.")
    (deal,) = deals(analyzer, text)
    assert (deal.vendor, deal.country, deal.counterpart_type) == ("huawei", "MZ", "ministry")
    assert deal.counterpart.startswith("Ministério da Ciência e Tecnologia")
    assert (deal.value, deal.currency, deal.stage) == (20e6, "USD", "signed")
    assert deal.deal_type == "data_centre"
    assert text[deal.start:deal.end] == deal.sentence  # the evidence stays in Portuguese


def test_a_brazilian_deal_in_reais_names_its_state_not_the_country(analyzer) -> None:
    # Brazilian local news says "(SP)", never "Brasil"
    (deal,) = deals(analyzer, "A Prefeitura de Campinas (SP) firmou com a Dahua um contrato de "
                              "R$ 1,2 bilhão para a instalação de câmeras de videomonitoramento.")
    assert (deal.country, deal.counterpart_type, deal.stage) == ("BR", "subnational", "signed")
    assert (deal.value, deal.currency, deal.deal_type) == (1.2e9, "BRL", "safe_city")


def test_portuguese_is_identified_when_no_language_is_given(analyzer) -> None:
    analysis = analyzer.analyze("A Empresa Nacional de Telecomunicações de Cabo Verde adjudicou à "
                                "ZTE o projecto de governação electrónica do arquipélago.")
    assert analysis.language == "pt" and analysis.supported
    (deal,) = [c for c in analysis.candidates if c.kind == "deal"]
    assert (deal.country, deal.counterpart_type, deal.stage) == ("CV", "soe", "awarded")
    assert deal.deal_type == "e_government"


@pytest.mark.parametrize(("text", "value", "currency"), [
    ("O Governo de Moçambique assinou com a ZTE um contrato de 2,3 mil milhões de meticais para "
     "a expansão da rede móvel.", 2.3e9, "MZN"),
    ("O Executivo angolano e a Huawei celebraram um acordo de financiamento de 35 mil milhões de "
     "kwanzas para a rede de fibra óptica.", 35e9, "AOA"),
    ("O Ministério da Justiça de Angola contratou a Huawei por US$ 50 milhões para a nuvem do "
     "Estado.", 50e6, "USD"),
    ("O Ministério da Educação de Cabo Verde assinou com a Huawei um contrato de 1,5 mil milhões "
     "de escudos para ligar as escolas por fibra óptica.", 1.5e9, "CVE"),
])
def test_portuguese_amounts(analyzer, text, value, currency) -> None:
    (deal,) = deals(analyzer, text)
    assert (deal.value, deal.currency) == (value, currency)


def test_a_portuguese_cancellation_is_kept_below_the_queue(analyzer) -> None:
    text = ("A Câmara Municipal de Maputo rescindiu o contrato que tinha celebrado com a Hikvision "
            "para instalar câmaras de videovigilância na cidade.")
    assert not deals(analyzer, text)
    ended = [c for c in analyzer.analyze(text, language="pt").candidates if c.kind == "deal"]
    assert ended and ended[0].stage == "cancelled" and ended[0].signals["cancelled"] == 1.0


def test_a_portuguese_losing_bid_is_no_deal(analyzer) -> None:
    text = ("A Huawei foi desclassificada do concurso público da Angola Telecom para a rede 5G, que "
            "a Ericsson venceu.")
    assert not [c for c in deals(analyzer, text) if "huawei" in c.vendors]


def test_the_country_of_a_portuguese_story_can_come_from_a_demonym(analyzer) -> None:
    (deal,) = deals(analyzer, "O governo angolano rubricou com a ZTE um protocolo de intenções "
                              "para modernizar a rede de telecomunicações do país.")
    assert (deal.country, deal.counterpart_type, deal.stage) == ("AO", "government", "mou")


def test_the_vendors_home_said_in_portuguese_is_no_party(analyzer) -> None:
    # "chinesa" describes the vendor: the deal is São Tomé's, not China's
    (deal,) = deals(analyzer, "A chinesa Huawei e o Ministério das Comunicações de São Tomé e "
                              "Príncipe assinaram um memorando de entendimento sobre cidades "
                              "inteligentes.")
    assert (deal.country, deal.stage, deal.deal_type) == ("ST", "mou", "smart_city")


def test_a_gift_from_the_vendor_is_no_deal(analyzer) -> None:
    assert not deals(analyzer, "A Huawei doou 50 computadores e formou gratuitamente técnicos do "
                               "Ministério da Saúde de Moçambique.")


def test_a_brazilian_private_operator_is_no_public_party(analyzer) -> None:
    assert not deals(analyzer, "A operadora Claro fechou acordo com a ZTE para ampliar a rede 4G "
                               "em São Paulo.")


def test_many_portuguese_deals_counted_are_an_aggregate(analyzer) -> None:
    text = ("Segundo um levantamento de um centro de estudos, a Huawei assinou mais de 40 "
            "contratos com governos de 12 países africanos.")
    found = [c.kind for c in analyzer.analyze(text, language="pt").candidates
             if c.score >= analyzer.config.rules.scoring.threshold]
    assert found == ["aggregate"]


def test_a_brazilian_state_mark_after_a_town_hall_is_kept_whole(analyzer) -> None:
    analysis = analyzer.analyze("A Prefeitura de Campinas (SP) assinou um contrato de R$ 60 "
                                "milhões com a Hikvision para videomonitoramento.", language="pt")
    (deal,) = [c for c in analysis.candidates if c.kind == "deal"]
    assert (deal.counterpart, deal.country) == ("Prefeitura de Campinas (SP)", "BR")
