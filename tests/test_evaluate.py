"""Evaluation: reading gold files, mapping labels, and the metrics `dealwatch eval` prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.analyze import Analyzer
from pipeline.config import SHIPPED_CONFIG_DIR, load_config
from pipeline.evaluate import GoldError, deal_type_values, evaluate, format_report, load_gold

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
