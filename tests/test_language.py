"""The language of a text: what its page declares, confirmed by the identifier."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.language import (
    CONFIDENT,
    SAMPLE_CHARS,
    LanguageGuess,
    identifiable_languages,
    identify,
    normalise_language,
)

EN = ("The ministry said the contract with Huawei covers a national data centre and the fibre "
      "network that will link the regional capitals by the end of next year. ")
ES = ("El Ministerio de Telecomunicaciones firmó un contrato con Huawei para construir un centro "
      "de datos nacional y ampliar la red de fibra óptica hasta las capitales regionales. ")
PT = ("O Governo de Angola assinou com a Huawei um contrato de 20 milhões de dólares para a "
      "expansão da rede de fibra óptica e a construção de um centro de dados nacional. ")
FR = ("Le ministère de l'Économie numérique du Sénégal a signé avec Huawei un contrat pour la "
      "construction d'un centre de données national et l'extension du réseau de fibre optique. ")
ZH = "华为公司与埃塞俄比亚政府签署了国家数据中心建设合同，该项目由中国进出口银行提供资金，预计明年完工。"
AR = "وقعت وزارة الاتصالات عقدا مع شركة هواوي لبناء مركز بيانات وطني وتوسيع شبكة الألياف الضوئية في البلاد."
RU = ("Министерство цифрового развития подписало контракт с компанией Huawei на строительство "
      "национального центра обработки данных и расширение оптоволоконной сети.")


@pytest.mark.parametrize(("tag", "code"), [
    ("pt-BR", "pt"), ("fr_FR", "fr"), ("es-419", "es"), ("EN-us", "en"), (" fr ", "fr"),
    ("en-US,en;q=0.9", "en"), ("pt_AO", "pt"), ("zh-Hant-TW", "zh"),
    ("spa", "es"), ("por", "pt"), ("fre", "fr"), ("fra", "fr"),  # ISO 639-2/3 codes
    ("iw", "he"), ("in", "id"), ("nb-NO", "no"),  # withdrawn and alternative codes
    (None, None), ("", None), ("und", None), ("mul", None), ("zxx", None), ("x-default", None),
    ("zz", None), ("english", None), ("*", None),
])
def test_declared_tags_normalise_to_iso_639_1(tag: str | None, code: str | None) -> None:
    assert normalise_language(tag) == code


def test_a_declaration_the_text_confirms() -> None:
    guess = identify(ES * 3, "es-419")
    assert guess == LanguageGuess("es", "declared+identified", guess.confidence, "es")
    assert guess.confidence >= CONFIDENT


@pytest.mark.parametrize(("text", "code"), [(ES, "es"), (PT, "pt"), (FR, "fr"), (EN, "en")])
def test_undeclared_text_is_identified(text: str, code: str) -> None:
    guess = identify(text * 3)
    assert (guess.code, guess.source, guess.declared) == (code, "identified", None)
    assert guess.confidence >= CONFIDENT


def test_a_wrong_declaration_loses_to_a_confident_identifier() -> None:
    """A Spanish article on a site whose template says lang="en-US"."""
    guess = identify(ES * 4, "en-US")
    assert (guess.code, guess.source, guess.declared) == ("es", "identified", "en")
    assert guess.confidence >= CONFIDENT


def test_a_mixed_language_text_keeps_its_declaration() -> None:
    """Half English, half Spanish, however long: the identifier is not sure, the page knows."""
    for repeat in (1, 5):
        for first, second, declared in ((EN, ES, "en"), (ES, EN, "en"), (EN, ES, "es")):
            text = "\n".join([first * 3, second * 3] * repeat)
            guess = identify(text, declared)
            assert (guess.code, guess.declared) == (declared, declared)
            assert guess.source in ("declared", "declared+identified")
            assert identify(text).code in ("en", "es")  # undeclared: either is as right


def test_too_short_text_falls_back_to_the_declaration_or_unknown() -> None:
    assert identify("Huawei firma acuerdo", "es") == LanguageGuess("es", "declared", 0.0, "es")
    assert identify("Huawei 5G", None) == LanguageGuess(None, "unknown", 0.0, None)
    assert identify("", None) == LanguageGuess(None, "unknown", 0.0, None)
    assert identify("2026-05-05 12:00 — 3,000", "pt-BR").code == "pt"  # digits are no letters


@pytest.mark.parametrize(("text", "code"), [(ZH, "zh"), (AR, "ar"), (RU, "ru")])
def test_scripts_dealwatch_does_not_read_get_their_own_code(text: str, code: str) -> None:
    """Recorded as what they are (the analyser then says it does not read them), never English."""
    for declared in (None, "en", "fr-FR"):
        guess = identify(text * 2, declared)
        assert guess.code == code
        assert guess.declared == normalise_language(declared)


def test_only_the_start_of_a_long_text_is_read() -> None:
    text = EN * (SAMPLE_CHARS // len(EN) + 2) + FR * 200
    assert identify(text).code == "en"
    assert identify(FR * 200 + EN * 200).code == "fr"


def test_identifiable_languages_are_iso_639_1_news_languages() -> None:
    languages = identifiable_languages()
    assert {"en", "es", "pt", "fr", "zh", "ar", "ru", "sw", "ha"} <= languages
    assert all(len(code) == 2 for code in languages)  # no ISO 639-3 regional varieties (ext, wuu)
    assert not {"la", "eo", "vo", "sa"} & languages


def test_a_guess_is_frozen() -> None:
    guess = identify(ES * 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        guess.code = "en"  # type: ignore[misc]


def test_hostile_text_never_raises() -> None:
    for text in ("\ud800" * 50, "\x00" * 100, "a" * 10_000, "🙂" * 500, "<p>" * 1000):
        guess = identify(text, "en")
        assert guess.source in ("declared", "identified", "declared+identified", "unknown")
