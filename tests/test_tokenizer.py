"""The regex tokenizer: spaCy-compatible tokens, text kept byte for byte, names kept whole."""

from __future__ import annotations

import time

import pytest
import spacy

from pipeline.analysis.tokenizer import FastTokenizer, default_abbreviations, use_fast_tokenizer


@pytest.fixture(scope="module")
def nlp() -> spacy.language.Language:
    nlp = spacy.blank("en")
    use_fast_tokenizer(nlp)
    return nlp


def words(nlp: spacy.language.Language, text: str) -> list[str]:
    return [t.text for t in nlp.make_doc(text)]


@pytest.mark.parametrize("text", [
    "", " ", "\n\nLead", "end.\n\n", "A  B", "tab\there", "Huawei's\u00a0deal", "a \n b",
    "“Quoted,” she said — then left…", "Polandʼs 华为技术有限公司与肯尼亚 deal", "x@y.co and https://a.b/c?d=1.",
])
def test_text_and_offsets_survive(nlp, text) -> None:
    doc = nlp.make_doc(text)
    assert doc.text == text
    for token in doc:
        assert text[token.idx:token.idx + len(token.text)] == token.text


@pytest.mark.parametrize(("text", "expected"), [
    ("Huawei's deal", ["Huawei", "'s", "deal"]),
    ("HUAWEI’S deal", ["HUAWEI", "’S", "deal"]),
    ("Hungaryʼs", ["Hungary", "ʼs"]),
    ("don't", ["do", "n't"]),
    ("Côte d'Ivoire", ["Côte", "d'Ivoire"]),
    ("the U.S. and U.K.", ["the", "U.S.", "and", "U.K."]),
    ("ZTE Corp. signed", ["ZTE", "Corp.", "signed"]),
    ("e-government", ["e", "-", "government"]),
    ("NITA-U", ["NITA", "-", "U"]),
    ("US$75 million", ["US$", "75", "million"]),
    ("$1.6 billion", ["$", "1.6", "billion"]),
    ("1,100 km", ["1,100", "km"]),
    ("(NITA-U)", ["(", "NITA", "-", "U", ")"]),
    ("4G/5G", ["4G", "/", "5G"]),
])
def test_tokens_as_spacy_splits_them(nlp, text, expected) -> None:
    assert words(nlp, text) == expected


def test_links_and_addresses_stay_whole(nlp) -> None:
    tokens = words(nlp, "See www.zte.com.cn, https://zte.com/en. or press@zte.com.cn today")
    assert {"www.zte.com.cn", "https://zte.com/en", "press@zte.com.cn"} <= set(tokens)
    assert "zte" not in tokens


def test_ideographs_stand_one_to_a_token(nlp) -> None:
    assert words(nlp, "华为公司") == ["华", "为", "公", "司"]


def test_line_breaks_and_extra_spaces_are_tokens(nlp) -> None:
    doc = nlp.make_doc("One.\n\nTwo  three")
    assert [t.text for t in doc] == ["One", ".", "\n\n", "Two", " ", "three"]
    assert doc[3].whitespace_ == " "


def test_abbreviations_come_from_the_language_plus_ours(nlp) -> None:
    found = default_abbreviations(nlp)
    assert {"Corp.", "Inc.", "Jan.", "Govt."} <= set(found)
    assert "a." not in found  # one letter and a stop ends more sentences than it abbreviates


def test_serialises_with_its_settings(nlp) -> None:
    tokenizer = FastTokenizer(nlp.vocab, ["Corp."])
    copy = FastTokenizer(nlp.vocab).from_bytes(tokenizer.to_bytes())
    assert [t.text for t in copy("ZTE Corp. said")] == ["ZTE", "Corp.", "said"]


@pytest.mark.parametrize(("text", "expected"), [
    ("https://zte.com/en.", ["https://zte.com/en", "."]),
    ("(see www.zte.com.cn/a_b).", ["(", "see", "www.zte.com.cn/a_b", ")", "."]),
    ("“www.zte.com”", ["“", "www.zte.com", "”"]),
    ("www.zte.com<br>", ["www.zte.com", "<", "br", ">"]),
    ("mail a-b.c+d@zte.com.cn", ["mail", "a-b.c+d@zte.com.cn"]),
])
def test_where_links_and_addresses_end(nlp, text, expected) -> None:
    assert words(nlp, text) == expected


@pytest.mark.parametrize(("text", "tokens"), [
    ("www." + "." * 100_000 + "x", ["www." + "." * 100_000 + "x"]),  # one link
    ("www.-" * 20_000 + "<", ["www.-" * 20_000, "<"]),
    ("-" * 100_000, ["-"] * 100_000),  # a line of dashes, with no address in it
    ("a-" * 50_000, ["a", "-"] * 50_000),
    ("华" * 100_000, ["华"] * 100_000),
])
def test_long_runs_take_one_pass(nlp, text, tokens) -> None:
    # these took from seconds to hours with a lazy link pattern and an address that could start
    # anywhere in a run; the bound is generous, and on CPU time, so that neither a slow nor a
    # busy machine can fail it
    started = time.process_time()
    found = words(nlp, text)
    assert time.process_time() - started < 5
    assert found == tokens
