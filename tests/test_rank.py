"""The ranker on its own: features from any candidate, training, the JSON model file, reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.records import Candidate
from pipeline.analysis import rank
from pipeline.analysis.analyze import Analyzer
from pipeline.analysis.rank import RankerError
from pipeline.config import SHIPPED_CONFIG_DIR, load_config


def cand(sentence: str = "The ministry signed a contract with Huawei.", score: float = 0.6,
         kind: str = "deal", **signals: object) -> Candidate:
    return Candidate(kind=kind, vendor="huawei", vendors=["huawei"], country="KE",
                     counterpart="Ministry of ICT", counterpart_type="ministry", deal_type="cloud",
                     deal_types=["cloud"], stage="signed", value=None, currency=None, year=None,
                     score=score, sentence=sentence, start=0, end=len(sentence),
                     signals=dict(signals))


def examples() -> list[rank.Example]:
    """Good deals mention a ministry and 'contract'; bad ones a ban and 'denied'."""
    out = []
    for i in range(12):
        good = cand(f"Ministry number {i} signed a contract with Huawei for a cloud.", 0.7,
                    trigger=1.0, negative=0.0, evidence={"country_from": "counterpart"})
        bad = cand(f"Officials denied any contract talk {i} amid a ban on Huawei.", 0.6,
                   trigger=1.0, negative=1.0, evidence={"country_from": "sentence"})
        bad.counterpart_type = None
        out += [rank.example(good, 1, "test"), rank.example(bad, 0, "test")]
    return out


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), "never", ranker=None)


def test_features_come_from_any_signal_and_never_from_the_rankers_own_score() -> None:
    c = cand(trigger=1.0, parse_subject=True, evidence={"stage_from": "sentence",
                                                        "trigger": ["signed"], "depth": 2},
             rule_score=0.8)
    features = rank.structured_features(c)
    assert features["signal:trigger"] == 1.0
    assert features["signal:parse_subject"] == 1.0  # a signal the ranker never heard of
    assert features["evidence:stage_from=sentence"] == 1.0
    assert features["evidence:trigger=signed"] == 1.0
    assert features["evidence:depth"] == 2.0
    assert features["kind=deal"] == features["counterpart_type=ministry"] == 1.0
    assert features["stage=signed"] == features["deal_type=cloud"] == 1.0
    assert "signal:rule_score" not in features
    assert features["rule_logit"] == pytest.approx(rank.RULE_WEIGHT * 1.386, abs=1e-2)  # logit(0.8), not 0.6


def test_scoring_twice_gives_the_same_score() -> None:
    ranker = rank.train(examples())
    c = cand(score=0.55, trigger=1.0, negative=0.0)
    rank.score_candidate(c, ranker, 0.5)
    first = (c.score, c.reasons, c.queued, dict(c.signals))
    rank.score_candidate(c, ranker, 0.5)
    assert (c.score, c.reasons, c.queued, c.signals) == first
    assert c.signals["rule_score"] == 0.55


def test_training_learns_what_separates_confirmed_from_rejected() -> None:
    ranker = rank.train(examples())
    good = cand("The Ministry signed a contract with Huawei.", 0.6, trigger=1.0, negative=0.0,
                evidence={"country_from": "counterpart"})
    bad = cand("Officials denied a contract amid a ban on Huawei.", 0.6, trigger=1.0, negative=1.0,
               evidence={"country_from": "sentence"})
    bad.counterpart_type = None
    assert ranker.score(good) > 0.5 > ranker.score(bad)
    reasons = ranker.reasons(bad, k=5)
    assert reasons and all(r[0] in "+−" for r in reasons)
    against = [r for r in reasons if r.startswith("−")]
    assert any(what in r for r in against for what in (
        "ban or sanction", "word 'denied'", "no party named", "country from sentence")), reasons
    assert ranker.summary["examples"] == 24 and ranker.summary["positive"] == 12
    assert ranker.summary["sources"] == {"test": {"examples": 24, "positive": 12}}


def test_words_enter_the_vocabulary_only_when_two_examples_have_them() -> None:
    ranker = rank.train(examples())
    assert "contract" in ranker.vocabulary and "denied" in ranker.vocabulary
    assert not any(w.startswith("number 1") for w in ranker.vocabulary)  # seen once each


def test_reasons_read_as_words() -> None:
    assert rank.describe("counterpart_type=ministry") == "named ministry as party"
    assert rank.describe("signal:negative") == "ban or sanction nearby"
    assert rank.describe("word:contract") == "word 'contract'"
    assert rank.describe("signal:brand_new_signal") == "brand new signal"


def test_save_load_round_trip_and_same_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    rank.train(examples()).save(first)
    rank.train(examples()).save(second)
    assert first.read_bytes() == second.read_bytes()
    data = json.loads(first.read_text())
    assert data["format"] == "dealwatch-ranker" and data["version"] == 1
    assert len(data["summary"]["data_sha256"]) == 64
    loaded = rank.load(first)
    original = rank.train(examples())
    for c in (cand(trigger=1.0), cand("denied a ban", negative=1.0)):
        assert loaded.score(c) == pytest.approx(original.score(c), abs=1e-6)
        assert loaded.reasons(c) == original.reasons(c)


@pytest.mark.parametrize(("text", "problem"), [
    (None, "no such ranker model file"),
    ("{not json", "invalid JSON"),
    ('{"format": "spacy-textcat", "version": 1}', "not a dealwatch ranker model"),
    ('{"format": "dealwatch-ranker", "version": 99, "features": {}, "intercept": 0}',
     "version 99"),
    ('{"format": "dealwatch-ranker", "version": 1, "features": {"a": "x"}, "intercept": 0}',
     "features"),
])
def test_bad_model_files_are_one_line_errors_naming_the_file(tmp_path: Path, text: str | None,
                                                             problem: str) -> None:
    path = tmp_path / "model.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(RankerError) as err:
        rank.load(path)
    message = str(err.value)
    assert str(path) in message and problem in message and "\n" not in message


def test_training_needs_both_kinds_of_example() -> None:
    with pytest.raises(RankerError, match="no training examples"):
        rank.train([])
    with pytest.raises(RankerError, match="all 2 training examples are confirmed"):
        rank.train([rank.example(cand(), 1, "t"), rank.example(cand(), 1, "t")])


def test_gold_passages_label_the_analysers_candidates(analyzer: Analyzer) -> None:
    records = [
        {"id": "y", "is_deal": "yes", "vendors": ["Huawei"], "countries": ["Kenya"],
         "text": "Kenya's Ministry of ICT signed a $48 million contract with Huawei to build a "
                 "government cloud data centre."},
        {"id": "n", "is_deal": "no", "vendors": ["Huawei"], "countries": ["Kenya"],
         "text": "Kenya's Ministry of ICT signed a contract with Huawei, officials denied on "
                 "Monday, calling the report baseless."},
        {"id": "a", "is_deal": "aggregate", "vendors": ["Huawei"], "countries": [],
         "text": "Huawei has signed 70 cloud and e-government deals in 41 countries, a study "
                 "by the think tank found."},
    ]
    out = rank.examples_from_gold(records, analyzer, "gold:test")
    by_kind = {(e.features.get("kind=deal"), e.features.get("kind=aggregate"), e.label) for e in out}
    assert (1.0, None, 1) in by_kind  # the deal of the yes passage
    assert all(e.label == 0 for e in out if e.features.get("kind=deal") and "denied" in e.words)
    assert all(e.label == 1 for e in out if e.features.get("kind=aggregate"))
    assert all(e.source == "gold:test" for e in out)


def test_the_shipped_gold_ships_with_the_package() -> None:
    names = [name for name, _ in rank.shipped_gold()]
    assert "deal_sentences.jsonl" in names and "deal_passages_holdout.jsonl" in names
    assert "deal_passages_frozen.jsonl" not in names  # the frozen test set is never trained on


def test_a_count_inside_a_deal_story_is_no_example(analyzer: Analyzer) -> None:
    # the label says the passage reports a deal; it does not say whether the count is an aggregate
    records = [{"id": "y", "is_deal": "yes", "vendors": ["Huawei"], "countries": ["Kenya"],
                "text": "Huawei, which has signed 70 deals in 41 countries, signed a $48 million "
                        "contract with Kenya's Ministry of ICT for a data centre."}]
    analysis = analyzer.analyze(records[0]["text"])
    assert any(c.kind == "aggregate" for c in analysis.candidates)
    out = rank.examples_from_gold(records, analyzer, "gold:test")
    assert out and all(e.features.get("kind=deal") for e in out)
