"""Evaluation: reading gold files, mapping labels, and the metrics `dealwatch eval` prints."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from models.records import Candidate, Passage
from pipeline.analysis.analyze import Analyzer
from pipeline.analysis.evaluate import (
    GoldError,
    average_precision,
    deal_type_values,
    evaluate,
    format_report,
    gold_counterpart_names,
    load_gold,
    precision_at,
    same_counterpart,
)
from pipeline.analysis.results import Analysis
from pipeline.config import SHIPPED_CONFIG_DIR, Config, load_config

GOLD = [
    {"id": "a", "text": "Rwanda has signed a $90 million agreement with ZTE to extend 4G services.",
     "is_deal": "yes", "vendors": ["ZTE"], "countries": ["Rwanda"], "deal_type": ["5G/telecom network"]},
    {"id": "b", "text": "Huawei and Telecom Egypt signed an MoU on cloud computing.",
     "is_deal": "yes", "vendors": ["Huawei"], "countries": ["Egypt"], "deal_type": ["data centre"]},
    {"id": "c", "text": "The Chinese firm said it would keep growing in Africa.",
     "is_deal": "yes", "vendors": ["Huawei"], "countries": ["Botswana"], "deal_type": []},
    {"id": "d", "text": "Sweden banned Huawei and ZTE from its 5G networks.",
     "is_deal": "no", "vendors": ["Huawei", "ZTE"], "countries": ["Sweden"], "deal_type": []},
    {"id": "e", "text": "Researchers counted 58 Huawei cloud deals in 33 countries.",
     "is_deal": "aggregate", "vendors": ["Huawei"], "countries": [], "deal_type": "cloud"},
    {"id": "f", "text": "Ghana's ministry signed an MoU with Oracle on e-government.",
     "is_deal": "no", "vendors": ["Oracle"], "countries": ["Ghana"], "deal_type": []},
]


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.from_config(load_config(SHIPPED_CONFIG_DIR), use_model="never")


def write_gold(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_gold_reads_and_normalises(tmp_path) -> None:
    path = write_gold(tmp_path / "gold.jsonl", [json.dumps(r) for r in GOLD] + [""])
    records = load_gold(path)
    assert [r["id"] for r in records] == ["a", "b", "c", "d", "e", "f"]
    assert records[4]["deal_type"] == ["cloud"]  # a single string becomes a list


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "gold.jsonl:2: not valid JSON"),
    ('["a list"]', "gold.jsonl:2: not a JSON object"),
    ('{"id": "x", "text": "t", "is_deal": "maybe"}', "gold.jsonl:2: is_deal: must be one of yes, no, aggregate"),
    ('{"id": "x", "is_deal": "yes"}', "gold.jsonl:2: text: a non-empty string is required"),
    ('{"id": "x", "text": "t", "is_deal": "no", "vendors": "Huawei, ZTE", "countries": [1]}',
     "gold.jsonl:2: countries: a list of strings is required"),
    ('{"id": "a", "text": "t", "is_deal": "no"}', "gold.jsonl:2: id 'a' already used at "),
])
def test_bad_gold_lines_name_file_and_line(tmp_path, line, message) -> None:
    path = write_gold(tmp_path / "gold.jsonl", [json.dumps(GOLD[0]), line])
    with pytest.raises(GoldError) as excinfo:
        load_gold(path)
    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_missing_or_empty_gold_file(tmp_path) -> None:
    with pytest.raises(GoldError, match="cannot read"):
        load_gold(tmp_path / "nope.jsonl")
    with pytest.raises(GoldError, match="no labelled passages"):
        load_gold(write_gold(tmp_path / "empty.jsonl", [""]))


def test_free_deal_type_words_map_to_design_values(analyzer) -> None:
    rules = analyzer.config.rules
    assert deal_type_values(["5G/telecom network", "fibre/backbone"], rules) == {
        "telecom_network", "fibre_backbone"}
    assert deal_type_values(["safe city/surveillance", "data centre", "e-government"], rules) == {
        "safe_city", "data_centre", "e_government"}
    assert deal_type_values(["smart city", "cloud", "other"], rules) == {"smart_city", "cloud", "other"}
    assert deal_type_values(["submarine cables"], rules) == {"fibre_backbone"}


def test_metrics_on_a_small_gold_set(analyzer) -> None:
    metrics = evaluate(GOLD, analyzer)
    counts = metrics["counts"]
    assert metrics["threshold"] == analyzer.config.rules.scoring.threshold
    assert (counts["passages"], counts["eligible"], counts["excluded"]) == (6, 5, 1)
    assert metrics["errors"]["excluded"] == ["f"]  # Oracle is not on the watchlist
    assert (counts["tp"], counts["fn"], counts["fp"]) == (2, 1, 0)
    assert metrics["recall"] == pytest.approx(2 / 3, abs=1e-3)
    assert metrics["precision"] == 1.0 and metrics["fp_rate"] == 0.0
    assert metrics["vendor_accuracy"] == 1.0 and metrics["country_accuracy"] == 1.0
    assert metrics["deal_type_accuracy"] == 0.5  # b: found cloud, labelled data centre
    assert metrics["aggregate_accuracy"] == 1.0
    assert metrics["errors"]["missed"] == ["c"]
    assert metrics["analyser"] == analyzer.version
    json.dumps(metrics)  # `dealwatch eval --json` prints it as it is


def test_threshold_changes_what_counts(analyzer) -> None:
    strict = evaluate(GOLD, analyzer, threshold=1.0)
    assert strict["recall"] == 0.0 and strict["counts"]["tp"] == 0
    assert strict["vendor_accuracy"] is None  # nothing found, nothing to be accurate about


def test_report_names_the_numbers_and_the_misses(analyzer) -> None:
    report = format_report(evaluate(GOLD, analyzer))
    assert "recall 0.67" in report and "precision 1.00" in report
    assert "false-positive rate 0.00 (0 of 1)" in report
    assert "missed deals: c" in report
    assert "1 excluded: f" in report


# --- the ranking, counterparts, stages and aggregates, with a scripted analyser ---------------


@dataclass
class QueuedCandidate(Candidate):
    """A candidate as the ranker leaves it: with `queued` and `reasons` (whether or not the
    record has them yet)."""

    queued: bool = True
    reasons: list[str] = field(default_factory=list)


def candidate(score: float, kind: str = "deal", vendor: str = "huawei", country: str | None = "ZM",
              counterpart: str | None = None, counterpart_type: str | None = None,
              stage: str = "unknown", queued: bool | None = None) -> Candidate:
    fields: dict[str, Any] = dict(
        kind=kind, vendor=vendor, vendors=[vendor], country=country, counterpart=counterpart,
        counterpart_type=counterpart_type, deal_type="cloud", deal_types=["cloud"], stage=stage,
        value=None, currency=None, year=None, score=score, sentence="s", start=0, end=1)
    if queued is None:
        return Candidate(**fields)
    return QueuedCandidate(**fields, queued=queued, reasons=["a reason"])


class ScriptedAnalyzer:
    """The real tagger for names (gold vendors, countries, counterparts); scripted candidates for
    the passages, so a test sets every score."""

    version = "scripted"

    def __init__(self, real: Analyzer, script: dict[str, list[Candidate]]) -> None:
        self.real = real
        self.script = script

    @property
    def config(self) -> Config:
        return self.real.config

    def analyze_many(self, texts: Iterable[str | Passage], batch_size: int = 64
                     ) -> Iterator[Analysis]:
        for item in texts:
            text = item.text if isinstance(item, Passage) else item
            if text in self.script:
                yield Analysis(entities=[], candidates=self.script[text])
            else:
                yield from self.real.analyze_many([text])


def passage(pid: str, label: str, *found: Candidate, vendors: tuple[str, ...] = ("Huawei",),
            **gold: Any) -> tuple[dict[str, Any], list[Candidate]]:
    record = {"id": pid, "text": f"passage {pid}", "is_deal": label, "vendors": list(vendors),
              "countries": ["Zambia"], "deal_type": [], **gold}
    return record, list(found)


def run(analyzer: Analyzer, *passages: tuple[dict[str, Any], list[Candidate]],
        threshold: float | None = None) -> dict[str, Any]:
    script = {record["text"]: found for record, found in passages}
    return evaluate([record for record, _ in passages], ScriptedAnalyzer(analyzer, script),
                    threshold=threshold)


def test_average_precision_by_hand() -> None:
    # ranks 1..4: yes, no, yes, no -> (1/2)*1/1 + (1/2)*2/3
    assert average_precision([0.9, 0.8, 0.7, 0.6], [True, False, True, False]) == \
        pytest.approx(5 / 6)
    assert average_precision([0.6, 0.7, 0.8, 0.9], [False, True, False, True]) == \
        pytest.approx(5 / 6)  # input order does not matter
    assert average_precision([0.9, 0.8], [True, True]) == 1.0


def test_average_precision_ties_enter_together() -> None:
    # 0.9: yes (R 1/2, P 1); the tie at 0.5 (a yes and a no) enters as one step: R 1, P 2/3
    assert average_precision([0.9, 0.5, 0.5, 0.1], [True, False, True, False]) == \
        pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision([0.9, 0.5, 0.5, 0.1], [True, True, False, False]) == \
        pytest.approx(0.5 + 0.5 * 2 / 3)  # the order inside a tie changes nothing
    # nothing scored at all: every passage ties at 0, AP is the share of deals
    assert average_precision([0.0, 0.0, 0.0], [True, False, False]) == pytest.approx(1 / 3)


def test_average_precision_undefined_without_deals() -> None:
    assert average_precision([], []) is None
    assert average_precision([0.9, 0.1], [False, False]) is None


def test_average_precision_agrees_with_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = random.Random(8)
    for _ in range(200):
        n = rng.randint(1, 30)
        scores = [rng.choice([0.0, 0.2, 0.5, 0.7, 0.9, 1.0]) for _ in range(n)]  # many ties
        positives = [rng.random() < 0.4 for _ in range(n)]
        if not any(positives):
            continue
        assert average_precision(scores, positives) == pytest.approx(
            metrics.average_precision_score(positives, scores))


def test_precision_at_k() -> None:
    scores = [0.9, 0.8, 0.7, 0.1]
    positives = [True, False, True, True]
    assert precision_at(scores, positives, 1) == 1.0
    assert precision_at(scores, positives, 2) == 0.5
    assert precision_at(scores, positives, 4) == 0.75
    assert precision_at(scores, positives, 5) is None  # fewer passages than k
    assert precision_at([], [], 10) is None


def test_precision_at_k_splits_a_tie_across_the_cut() -> None:
    # top 2 of [0.9 yes, 0.5 yes, 0.5 no]: the yes at 0.9, then half a yes from the tie
    assert precision_at([0.9, 0.5, 0.5], [True, True, False], 2) == pytest.approx(0.75)
    assert precision_at([0.5, 0.9, 0.5], [False, True, True], 2) == pytest.approx(0.75)
    assert precision_at([0.5, 0.5, 0.5], [True, False, False], 3) == pytest.approx(1 / 3)


def test_ranking_uses_every_deal_candidate_and_scores_none_as_zero(analyzer) -> None:
    metrics = run(
        analyzer,
        passage("y1", "yes", candidate(0.9)),
        passage("y2", "yes", candidate(0.3)),  # below the threshold: missed, but ranked by 0.3
        passage("y3", "yes"),  # nothing found: ranked at 0
        passage("n1", "no", candidate(0.4), candidate(0.2)),  # the best deal candidate counts
        passage("a1", "aggregate", candidate(0.95, kind="aggregate")),  # not a deal: 0
        passage("x1", "yes", candidate(1.0), vendors=("Oracle",)),  # excluded, not ranked
    )
    # ranking: y1 .9, n1 .4, y2 .3, then y3 and a1 tied at 0
    assert metrics["average_precision"] == pytest.approx(
        (1 / 3) * 1 + (1 / 3) * (2 / 3) + (1 / 3) * (3 / 5), abs=1e-4)
    assert metrics["precision_at_10"] is None and metrics["precision_at_50"] is None
    assert (metrics["counts"]["ranked"], metrics["counts"]["ranked_yes"]) == (5, 3)
    assert metrics["recall"] == pytest.approx(1 / 3, abs=1e-3)


def test_precision_at_10_on_a_longer_ranking(analyzer) -> None:
    passages = [passage("n0", "no", candidate(0.95))]  # ranks first: a false positive
    passages += [passage(f"y{i}", "yes", candidate(0.9 - i / 100)) for i in range(8)]
    passages += [passage("n1", "no", candidate(0.05))]
    passages += [passage(f"z{i}", "no") for i in range(3)]
    metrics = run(analyzer, *passages)
    assert metrics["precision_at_10"] == 0.8  # n0, the eight deals, n1
    assert metrics["precision_at_50"] is None
    assert metrics["average_precision"] == pytest.approx(
        sum(1 / 8 * (k / (k + 1)) for k in range(1, 9)), abs=1e-4)


@pytest.mark.parametrize(("gold", "found", "country", "same"), [
    # the same words after case, "the", possessives and punctuation
    ("Sabah State Government", "the Sabah state government.", "MY", True),
    ("Government of Kenya", "Kenyan government", "KE", True),  # a country read as its code
    ("Zambia's government", "Zambia", "ZM", True),  # a bare country is its government
    # a generic name is read with the candidate's country, and only names a government
    ("Zambia's government", "government", "ZM", True),
    ("Zambia's government", "the authorities", "ZM", True),
    ("Zambia's government", "government", "KE", False),
    ("Zambia's government", "government", None, False),
    ("Ministry of ICT (Kenya)", "ministry", "KE", False),
    ("Ministry of ICT (Kenya)", "Kenya", "KE", False),
    # one inside the other, when the shorter one says which body it is
    ("Ministry of Interior (Serbia)", "Serbian Ministry of Interior", "RS", True),
    ("Uganda Police Force", "Ugandan police", "UG", True),
    ("Jujuy provincial government", "Jujuy", "AR", True),
    ("Ministry of Interior (Serbia)", "Serbian authorities", "RS", False),
    ("Telecom Egypt (state-owned)", "Egypt", "EG", False),
    # alternatives, acronyms, watchlist bodies
    ("Government of Ethiopia / Ethio Telecom", "ethio telecom", "ET", True),
    ("Ministry of Interior (MOI), Serbia", "MOI", None, True),
    ("ZICTA; Ministry of Transport", "Zambia Information and Communications Technology Authority",
     "ZM", True),
    ("Telecom Egypt; Egypt's telecom ministry", "Ethio Telecom", "EG", False),
    ("Government of Zambia", None, "ZM", False),
])
def test_counterpart_rule(analyzer, gold, found, country, same) -> None:
    assert same_counterpart(gold, found, country, analyzer) is same


def test_gold_counterpart_alternatives() -> None:
    assert gold_counterpart_names("ZICTA; Ministry of Transport (Zambia)") == [
        "ZICTA", "Ministry of Transport"]
    assert gold_counterpart_names("Public Security Bureau (PSB) - named later") == [
        "PSB", "Public Security Bureau", "named later"]
    assert gold_counterpart_names("Government of PNG / PNG DataCo") == [
        "Government of PNG", "PNG DataCo"]


def test_counterpart_type_and_stage_accuracy_on_found_deals(analyzer) -> None:
    metrics = run(
        analyzer,
        passage("y1", "yes", candidate(0.9, counterpart="government", counterpart_type="government",
                                       stage="signed"),
                counterpart="Zambia's government", counterpart_type="government", stage="signed"),
        passage("y2", "yes", candidate(0.8, counterpart="Zamtel", counterpart_type="soe",
                                       stage="mou"),
                counterpart="ZICTA", counterpart_type="agency", stage=["mou", "signed"]),
        passage("y3", "yes", candidate(0.7)),  # no gold counterpart or stage: not counted
        passage("y4", "yes", candidate(0.2, counterpart="ZICTA"), counterpart="ZICTA",
                stage="signed"),  # not found: not counted
    )
    assert metrics["counterpart_accuracy"] == 0.5
    assert metrics["counterpart_type_accuracy"] == 0.5
    assert metrics["stage_accuracy"] == 1.0  # either stage in a list is right
    counts = metrics["counts"]
    assert (counts["counterpart_ok"], counts["counterpart_total"]) == (1, 2)
    assert (counts["stage_ok"], counts["stage_total"]) == (2, 2)
    assert metrics["errors"]["wrong_counterpart"] == [
        {"id": "y2", "got": "Zamtel", "want": "ZICTA"}]
    assert metrics["errors"]["wrong_counterpart_type"] == [
        {"id": "y2", "got": "soe", "want": ["agency"]}]
    report = format_report(metrics)
    assert "counterpart 0.50 (1/2)" in report and "stage 1.00 (2/2)" in report
    assert "wrong counterpart: y2 (got Zamtel, want ZICTA)" in report


def test_no_gold_fields_means_no_accuracy(analyzer) -> None:
    metrics = run(analyzer, passage("y1", "yes", candidate(0.9)))
    assert metrics["counterpart_accuracy"] is None and metrics["stage_accuracy"] is None
    assert metrics["counterpart_type_accuracy"] is None
    assert "counterpart n/a (0/0)" in format_report(metrics)


def test_spurious_deals_on_aggregates(analyzer) -> None:
    metrics = run(
        analyzer,
        passage("a1", "aggregate", candidate(0.9, kind="aggregate")),
        passage("a2", "aggregate", candidate(0.9, kind="aggregate"), candidate(0.6)),  # spurious
        passage("a3", "aggregate", candidate(0.3)),  # below the threshold: no reviewer sees it
        passage("a4", "aggregate"),
    )
    assert metrics["aggregate_spurious_rate"] == 0.25
    assert metrics["aggregate_accuracy"] == 0.5
    assert [x["id"] for x in metrics["errors"]["spurious_on_aggregates"]] == ["a2"]
    assert metrics["average_precision"] is None  # no deals to rank
    report = format_report(metrics)
    assert "spurious deals 0.25 (1 of 4)" in report
    assert "deals raised on aggregates: a2 (0.60)" in report
    assert "average precision n/a" in report
    stricter = run(analyzer, *[passage(f"a{i}", "aggregate", candidate(0.6)) for i in range(2)],
                   threshold=0.7)
    assert stricter["aggregate_spurious_rate"] == 0.0
    assert run(analyzer, passage("y", "yes"))["aggregate_spurious_rate"] is None


def test_queued_and_reasons_change_nothing(analyzer) -> None:
    def passages(queued: bool | None) -> list[tuple[dict[str, Any], list[Candidate]]]:
        return [passage("y1", "yes", candidate(0.9, queued=queued)),
                passage("y2", "yes", candidate(0.3, queued=queued and False)),
                passage("n1", "no", candidate(0.6, queued=queued))]

    plain, queued = run(analyzer, *passages(None)), run(analyzer, *passages(True))
    assert plain == queued
    # ranking: y1 .9, n1 .6, y2 .3
    assert plain["fp_rate"] == 1.0 and plain["average_precision"] == pytest.approx(
        0.5 * 1 + 0.5 * 2 / 3, abs=1e-4)


def test_excluded_deal_passages_are_counted(analyzer) -> None:
    metrics = run(
        analyzer,
        passage("y1", "yes", candidate(0.9)),
        passage("x1", "yes", vendors=("Oracle",)),
        passage("x2", "no", vendors=("Oracle",)),
    )
    assert (metrics["counts"]["excluded"], metrics["counts"]["excluded_yes"]) == (2, 1)
    assert metrics["recall"] == 1.0  # the exclusion stays; the count shows what it hides
    assert "1 excluded deal passage(s) left out of recall" in format_report(metrics)


def test_report_prints_the_threshold_of_the_false_positive_rate(analyzer) -> None:
    metrics = run(analyzer, passage("n1", "no", candidate(0.6)), threshold=0.55)
    assert "false-positive rate 1.00 (1 of 1) at threshold 0.55" in format_report(metrics)
    json.dumps(metrics)


def test_gold_stage_and_counterpart_type_are_design_values(tmp_path) -> None:
    good = dict(GOLD[0], stage="MoU", counterpart_type=["Government", "soe"])
    records = load_gold(write_gold(tmp_path / "gold.jsonl", [json.dumps(good)]))
    assert records[0]["stage"] == "mou"
    assert records[0]["counterpart_type"] == ["government", "soe"]
    assert load_gold(write_gold(tmp_path / "g2.jsonl", [json.dumps(
        dict(GOLD[0], stage="under construction"))]))[0]["stage"] == "under_construction"
    for bad, message in ((dict(GOLD[0], stage="agreed"), "gold.jsonl:1: stage: must be one of"),
                         (dict(GOLD[0], counterpart_type=3),
                          "gold.jsonl:1: counterpart_type: a string or a list of strings"),
                         (dict(GOLD[0], counterpart=["a"]),
                          "gold.jsonl:1: counterpart: a string or null is required")):
        with pytest.raises(GoldError) as excinfo:
            load_gold(write_gold(tmp_path / "gold.jsonl", [json.dumps(bad)]))
        assert message in str(excinfo.value) and "\n" not in str(excinfo.value)
