"""The parser on candidate sentences, and the cases where the parse decides (model path)."""

from __future__ import annotations

import pytest

from pipeline.analysis.analyze import Analyzer
from pipeline.config import SHIPPED_CONFIG_DIR, load_config

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def with_model() -> Analyzer:
    return Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model="required", ranker=None)


@pytest.fixture(scope="module")
def rules_only() -> Analyzer:
    return Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model="never", ranker=None)


def test_only_candidate_sentences_are_parsed(with_model) -> None:
    doc = with_model.nlp("The weather in Nairobi was fine on Monday. Kenya's ministry signed a deal "
                         "with Huawei. Prices of maize rose again.")
    parsed = [[t._.dw_dep is not None for t in s] for s in doc.sents]
    assert [all(p) for p in parsed] == [False, True, False]
    assert not any(t._.dw_dep for t in with_model.nlp("Kenya's ministry signed a deal with Safaricom."))


def test_a_vendor_after_rather_than_is_compared_not_a_party(with_model, rules_only) -> None:
    text = ("The state-owned carrier picked Nokia's offer for its core network rather than the one "
            "from Huawei.")
    assert not [c for c in with_model.analyze(text).candidates if c.vendor == "huawei"]
    # the token-window rules cannot see it: the parse decides
    assert [c for c in rules_only.analyze(text).candidates if c.vendor == "huawei"]


def test_a_purpose_clause_is_no_plan_but_the_vendors_hope_is(with_model) -> None:
    purpose = with_model.analyze("Ghana's ministry and Huawei signed an MoU, aiming to extend rural "
                                 "coverage.").candidates[0]
    hope = with_model.analyze("Huawei hopes to win a contract for Ghana's rural coverage.").candidates[0]
    assert purpose.signals["plan"] == 0.0 and hope.signals["plan"] == 1.0
    assert hope.score < purpose.score


def test_a_cancel_word_that_ends_no_deal(with_model) -> None:
    deal = with_model.analyze("The ministry suspended two officials over delays in the Huawei safe "
                              "city project.").candidates[0]
    assert deal.signals["cancelled"] == 0.0 and deal.stage != "cancelled"
    ended = with_model.analyze("The ministry cancelled its safe city contract with Huawei.").candidates[0]
    assert ended.signals["cancelled"] == 1.0 and ended.stage == "cancelled"


def test_a_conjoined_country_and_vendor_sign_together(with_model) -> None:
    deal = with_model.analyze("Bahrain and China's Huawei on Sunday signed an agreement on a "
                              "government cloud.").candidates[0]
    assert (deal.country, deal.counterpart) == ("BH", "Bahrain")
