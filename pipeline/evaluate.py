"""Evaluation: score the detector on labelled passages (recall, false positives, accuracies)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.config import DEAL_TYPES, Rules
from models.errors import DealwatchError
from models.records import Candidate
from pipeline.jsonl import read_jsonl

if TYPE_CHECKING:  # the analyser loads spaCy; reading and scoring gold files does not need it
    from pipeline.analyze import AnalyzerLike

logger = logging.getLogger(__name__)

LABELS = ("yes", "no", "aggregate")


class GoldError(DealwatchError):
    """A gold file is missing or malformed; the message names the file and the line."""


# --- reading gold files ---------------------------------------------------------------------


def load_gold(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Labelled passages, one JSON object a line: id, text, is_deal, vendors, countries, deal_type."""
    path = Path(path)
    records: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for where, data in read_jsonl(path, GoldError):
        record = _check_record(data, where)
        if record["id"] in seen:
            raise GoldError(f"{where}: id {record['id']!r} already used at {seen[record['id']]}")
        seen[record["id"]] = where
        records.append(record)
    if not records:
        raise GoldError(f"{path}: no labelled passages")
    return records


def _check_record(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise GoldError(f"{where}: not a JSON object")
    if not isinstance(data.get("id"), str | int) or isinstance(data.get("id"), bool):
        raise GoldError(f"{where}: id: a string is required")
    if not isinstance(data.get("text"), str) or not data["text"].strip():
        raise GoldError(f"{where}: text: a non-empty string is required")
    if data.get("is_deal") not in LABELS:
        raise GoldError(f"{where}: is_deal: must be one of yes, no, aggregate "
                        f"(got {data.get('is_deal')!r})")
    record = dict(data)
    record["id"] = str(data["id"])
    for name in ("vendors", "countries", "deal_type"):
        value = data.get(name)
        if value is None:
            value = []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise GoldError(f"{where}: {name}: a list of strings is required")
        record[name] = value
    return record


# --- scoring --------------------------------------------------------------------------------


def deal_type_values(words: Iterable[str], rules: Rules) -> set[str]:
    """Map free words ("5G/telecom network", "safe city/surveillance") to deal_type values."""
    return _deal_type_values(words, _deal_type_vocabulary(rules))


def _deal_type_vocabulary(rules: Rules) -> dict[str, str]:
    return {phrase.lower(): deal_type for deal_type, phrases in rules.deal_types.items()
            for phrase in phrases}


def _deal_type_values(words: Iterable[str], vocab: Mapping[str, str]) -> set[str]:
    found: set[str] = set()
    for word in words:
        for part in word.replace(",", "/").split("/"):
            part = part.strip().lower()
            as_value = part.replace("-", "_").replace(" ", "_")
            if as_value in DEAL_TYPES:
                found.add(as_value)
            elif part in vocab:
                found.add(vocab[part])
            elif part.endswith("s") and part[:-1] in vocab:
                found.add(vocab[part[:-1]])
    return found


def _resolve(analyzer: AnalyzerLike, names: Iterable[str], label: str) -> dict[str, str | None]:
    """Gold names to ids with the analyser's own tagger: 'Huawei' -> huawei, 'Egypt' -> EG."""
    unique = sorted(set(names))
    out: dict[str, str | None] = {}
    for name, analysis in zip(unique, analyzer.analyze_many(unique), strict=True):
        ids = [e.id for e in analysis.entities if e.label == label and e.id]
        out[name] = ids[0] if ids else None
    return out


def _ratio(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def evaluate(records: Sequence[Mapping[str, Any]], analyzer: AnalyzerLike,
             threshold: float | None = None) -> dict[str, Any]:
    """Passage-level metrics of the analyser on gold records (see load_gold)."""
    rules: Rules = analyzer.config.rules
    cut = rules.scoring.threshold if threshold is None else threshold
    type_vocabulary = _deal_type_vocabulary(rules)
    vendor_ids = _resolve(analyzer, (v for r in records for v in r["vendors"]), "VENDOR")
    country_ids = _resolve(analyzer, (c for r in records for c in r["countries"]), "COUNTRY")
    counts = dict.fromkeys(("passages", "eligible", "excluded", "yes", "no", "aggregate", "tp",
                            "fn", "fp", "tn", "vendor_ok", "country_ok", "country_total",
                            "type_ok", "type_total", "aggregate_ok"), 0)
    errors: dict[str, list[Any]] = {name: [] for name in (
        "excluded", "missed", "false_positives", "wrong_vendor", "wrong_country",
        "wrong_deal_type", "missed_aggregates")}
    texts = [r["text"] for r in records]
    for record, analysis in zip(records, analyzer.analyze_many(texts), strict=True):
        counts["passages"] += 1
        gold_vendors = {vid for v in record["vendors"] if (vid := vendor_ids.get(v))}
        if not gold_vendors:
            counts["excluded"] += 1
            errors["excluded"].append(record["id"])
            continue
        counts["eligible"] += 1
        label = record["is_deal"]
        counts[label] += 1
        candidates: list[Candidate] = analysis.candidates
        deals = [c for c in candidates if c.kind == "deal" and c.score >= cut]
        if label == "no":
            counts["fp" if deals else "tn"] += 1
            if deals:
                errors["false_positives"].append(
                    {"id": record["id"], "score": deals[0].score, "sentence": deals[0].sentence[:160]})
            continue
        if label == "aggregate":
            if any(c.kind == "aggregate" and c.score >= cut for c in candidates):
                counts["aggregate_ok"] += 1
            else:
                errors["missed_aggregates"].append(record["id"])
            continue
        matching = [c for c in deals if set(c.vendors) & gold_vendors]
        if not matching:
            counts["fn"] += 1
            errors["missed"].append(record["id"])
            continue
        counts["tp"] += 1
        _check_found(record, matching, gold_vendors, country_ids, type_vocabulary, counts, errors)
    return _metrics(counts, errors, cut, analyzer.version)


def _check_found(record: Mapping[str, Any], matching: list[Candidate], gold_vendors: set[str],
                 country_ids: Mapping[str, str | None], type_vocabulary: Mapping[str, str],
                 counts: dict[str, int], errors: dict[str, list[Any]]) -> None:
    top = max(matching, key=lambda c: c.score)
    found_vendors = {v for c in matching for v in c.vendors}
    if found_vendors == gold_vendors:
        counts["vendor_ok"] += 1
    else:
        errors["wrong_vendor"].append({"id": record["id"], "got": sorted(found_vendors),
                                       "want": sorted(gold_vendors)})
    gold_countries = {code for c in record["countries"] if (code := country_ids.get(c))}
    if gold_countries:
        counts["country_total"] += 1
        if top.country in gold_countries:
            counts["country_ok"] += 1
        else:
            errors["wrong_country"].append({"id": record["id"], "got": top.country,
                                            "want": sorted(gold_countries)})
    gold_types = _deal_type_values(record["deal_type"], type_vocabulary)
    if gold_types:
        counts["type_total"] += 1
        if gold_types & set(top.deal_types):
            counts["type_ok"] += 1
        else:
            errors["wrong_deal_type"].append({"id": record["id"], "got": top.deal_types,
                                              "want": sorted(gold_types)})


def _metrics(counts: dict[str, int], errors: dict[str, list[Any]], cut: float,
             version: str) -> dict[str, Any]:
    tp, fn, fp = counts["tp"], counts["fn"], counts["fp"]
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = (round(2 * precision * recall / (precision + recall), 4)
          if precision and recall else (0.0 if precision is not None and recall is not None else None))
    return {
        "analyser": version,
        "threshold": cut,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "fp_rate": _ratio(fp, counts["no"]),
        "vendor_accuracy": _ratio(counts["vendor_ok"], tp),
        "country_accuracy": _ratio(counts["country_ok"], counts["country_total"]),
        "deal_type_accuracy": _ratio(counts["type_ok"], counts["type_total"]),
        "aggregate_accuracy": _ratio(counts["aggregate_ok"], counts["aggregate"]),
        "counts": counts,
        "errors": errors,
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def format_report(metrics: Mapping[str, Any]) -> str:
    """A short plain-text report of evaluate()'s metrics."""
    c = metrics["counts"]
    e = metrics["errors"]
    lines = [
        f"analyser {metrics['analyser']}, threshold {metrics['threshold']:.2f}",
        f"passages    {c['passages']} ({c['eligible']} name a watchlist vendor; "
        f"{c['excluded']} excluded{': ' + ', '.join(e['excluded']) if e['excluded'] else ''})",
        f"deals       precision {_fmt(metrics['precision'])}  recall {_fmt(metrics['recall'])}  "
        f"F1 {_fmt(metrics['f1'])}   (tp {c['tp']}, fn {c['fn']}, fp {c['fp']})",
        f"not deals   false-positive rate {_fmt(metrics['fp_rate'])} ({c['fp']} of {c['no']})",
        f"on found    vendor {_fmt(metrics['vendor_accuracy'])} ({c['vendor_ok']}/{c['tp']})  "
        f"country {_fmt(metrics['country_accuracy'])} ({c['country_ok']}/{c['country_total']})  "
        f"deal type {_fmt(metrics['deal_type_accuracy'])} ({c['type_ok']}/{c['type_total']})",
        f"aggregates  {_fmt(metrics['aggregate_accuracy'])} ({c['aggregate_ok']}/{c['aggregate']})",
    ]
    if e["missed"]:
        lines.append("missed deals: " + ", ".join(e["missed"]))
    if e["false_positives"]:
        lines.append("false positives: " + ", ".join(f"{x['id']} ({x['score']:.2f})"
                                                     for x in e["false_positives"]))
    for name, title in (("wrong_vendor", "wrong vendor"), ("wrong_country", "wrong country"),
                        ("wrong_deal_type", "wrong deal type")):
        if e[name]:
            lines.append(f"{title}: " + ", ".join(f"{x['id']} (got {x['got']}, want {x['want']})"
                                                 for x in e[name]))
    if e["missed_aggregates"]:
        lines.append("missed aggregates: " + ", ".join(e["missed_aggregates"]))
    return "\n".join(lines)
