"""Evaluation: score the detector on labelled passages (recall, false positives, ranking, accuracies)."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.config import COUNTERPART_TYPES, DEAL_TYPES, STAGES, Rules
from models.errors import DealwatchError
from models.records import Candidate, passage_of
from pipeline.jsonl import read_jsonl

if TYPE_CHECKING:  # the analyser loads spaCy; reading and scoring gold files does not need it
    from pipeline.analysis.results import AnalyzerLike

logger = logging.getLogger(__name__)

LABELS = ("yes", "no", "aggregate")
PRECISION_AT = (10, 50)


class GoldError(DealwatchError):
    """A gold file is missing or malformed; the message names the file and the line."""


# --- reading gold files ---------------------------------------------------------------------


def load_gold(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Labelled passages, one JSON object a line: id, text, is_deal, vendors, countries, deal_type.

    Optional: counterpart (free text), counterpart_type and stage (DESIGN.md values, or a list of
    them when either reading is right).
    """
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
    for name in ("counterpart", "title"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise GoldError(f"{where}: {name}: a string or null is required")
    for name, allowed in (("stage", STAGES), ("counterpart_type", COUNTERPART_TYPES)):
        if data.get(name) is not None:
            record[name] = _check_values(data[name], allowed, f"{where}: {name}")
    return record


def _check_values(value: Any, allowed: Sequence[str], where: str) -> str | list[str]:
    """A design value (or a list of them); "MoU", "under construction" are read as mou, ..."""
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise GoldError(f"{where}: a string or a list of strings is required")
    out = [re.sub(r"[\s-]+", "_", v.strip().lower()) for v in values]
    for given, normal in zip(values, out, strict=True):
        if normal not in allowed:
            raise GoldError(f"{where}: must be one of {', '.join(allowed)} (got {given!r})")
    return out if isinstance(value, list) else out[0]


def _gold_values(value: Any) -> set[str]:
    if value is None:
        return set()
    return set(value) if isinstance(value, list) else {value}


# --- deal types -----------------------------------------------------------------------------


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


# --- ranking --------------------------------------------------------------------------------


def _by_score(scores: Sequence[float], positives: Sequence[bool]) -> list[tuple[int, int]]:
    """(passages, positives) per distinct score, best score first: tied passages form one step."""
    pairs = sorted(zip(scores, positives, strict=True), key=lambda pair: -pair[0])
    return [(len(group), sum(p for _, p in group))
            for group in (list(g) for _, g in groupby(pairs, key=lambda pair: pair[0]))]


def average_precision(scores: Sequence[float], positives: Sequence[bool]) -> float | None:
    """Average precision of the ranking by score, as scikit-learn's average_precision_score.

    AP = sum over distinct scores s, best first, of (R(s) - R(previous)) * P(s), where P and R
    are the precision and recall of "score >= s": tied passages enter together, so no order
    among them is assumed. None without passages or without positives (AP is undefined).
    """
    total = sum(positives)
    if not scores or not total:
        return None
    hits = seen = 0
    ap = 0.0
    for size, positive in _by_score(scores, positives):
        seen += size
        hits += positive
        ap += positive / total * hits / seen
    return ap


def precision_at(scores: Sequence[float], positives: Sequence[bool], k: int) -> float | None:
    """Share of positives among the k best-scored passages; None when there are fewer than k.

    Passages tied across the cut count by their group's share of positives (the expectation
    over every order of the ties), so the figure does not depend on input order.
    """
    if k <= 0 or len(scores) < k:
        return None
    taken = 0
    hits = 0.0
    for size, positive in _by_score(scores, positives):
        room = min(size, k - taken)
        hits += positive * room / size
        taken += room
        if taken == k:
            break
    return hits / k


# --- counterparts ---------------------------------------------------------------------------

# Words that say what kind of body a name is, not which one: "the state-owned operator", "the
# ministry". A name made only of these (and country names) does not say which body it is.
GENERIC_BODY_WORDS = frozenset({
    "government", "govt", "authority", "administration", "cabinet", "presidency", "president",
    "parliament", "state", "national", "federal", "central", "public", "provincial",
    "regional", "municipal", "local", "city", "county", "ministry", "minister", "department",
    "agency", "office", "bureau", "commission", "council", "board", "directorate", "official",
    "owned", "run", "linked", "controlled", "backed", "company", "corporation", "corp", "co",
    "ltd", "limited", "plc", "firm", "enterprise", "utility", "operator", "incumbent",
    "monopoly", "telecom", "telecommunication", "telco"
})
# The words that, beside a country, name its government: "Zambia" = "the government of Zambia".
GOVERNMENT_WORDS = frozenset({
    "government", "govt", "authority", "administration", "cabinet", "presidency", "president",
    "state", "national", "federal", "central"
})
_STOP_WORDS = frozenset({
    "the", "of", "and", "for", "a", "an", "in", "on", "at", "to", "by", "with"
})
_COUNTRY = "country:"


@dataclass(frozen=True)
class BodyName:
    """A public body's name as compared: its normalised words and any watchlist ids it names.

    A country inside the name becomes one word, "country:" + its ISO code, so "Kenyan
    government" and "Government of Kenya" have the same words.
    """

    words: frozenset[str]
    ids: frozenset[str]

    @property
    def says_which(self) -> bool:
        """Whether a word beyond the generic ones and country names says which body it is."""
        return any(w not in GENERIC_BODY_WORDS and not w.startswith(_COUNTRY) for w in self.words)


def _words(text: str) -> list[str]:
    text = re.sub(r"['\u2019\u02bc]s\b", "", text.lower())  # possessives: "Zambia's" -> zambia
    out = []
    for word in re.findall(r"[^\W_]+", text):
        if word in _STOP_WORDS:
            continue
        if len(word) > 4 and word.endswith("ies"):
            word = word[:-3] + "y"
        elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


def gold_counterpart_names(gold: str) -> list[str]:
    """The names in a free-text gold counterpart: "ZICTA; Ministry of Transport (Zambia)".

    Alternatives are split on ";", " / " and " - "; a parenthesised acronym ("(DGSN)") is one
    more name, any other parenthesis is a note and is dropped.
    """
    names: list[str] = []
    for part in re.split(r"\s*;\s*|\s+/\s+|\s+[-\u2013\u2014]\s+", gold):
        for note in re.findall(r"\(([^)]*)\)", part):
            if re.fullmatch(r"[A-Z][A-Za-z0-9&.]{1,11}", note.strip()) and \
                    sum(ch.isupper() for ch in note) >= 2:
                names.append(note.strip())
        main = re.sub(r"\([^)]*\)", " ", part).strip(" ,.")
        if main:
            names.append(main)
    return names


def read_body_names(names: Iterable[str], analyzer: AnalyzerLike) -> dict[str, BodyName]:
    """Each name as a BodyName, its countries and watchlist bodies found by the analyser's tagger."""
    unique = sorted(set(names))
    out: dict[str, BodyName] = {}
    for name, analysis in zip(unique, analyzer.analyze_many(unique), strict=True):
        words: list[str] = []
        ids: set[str] = set()
        at = 0
        for entity in sorted(analysis.entities, key=lambda e: e.start):
            if entity.start < at:
                continue
            if entity.label == "COUNTRY" and entity.id:
                words += _words(name[at:entity.start])
                words.append(_COUNTRY + entity.id)
                at = entity.end
            elif entity.label in ("AGENCY", "ORG") and entity.id:
                ids.add(entity.id)
        words += _words(name[at:])
        out[name] = BodyName(frozenset(words), frozenset(ids))
    return out


def counterpart_matches(gold: Sequence[BodyName], found: BodyName, country: str | None) -> bool:
    """Whether a found counterpart names the body of one of the gold names.

    They match when they name the same watchlist body ("ZICTA" and its full name); when their
    words are the same ("Kenyan government", "the Government of Kenya"); or when the words of one
    are all in the other and that shorter name says which body it is ("Ministry of Interior" in
    "Serbia's Ministry of Interior"; "Uganda Police" but not "ministry" in "Ministry of ICT").
    A found name of generic words only ("the government", "state telecom") is read with the
    candidate's country; and a bare country is its government ("Zambia" = "Zambia's
    government"), never a particular ministry or company of it.
    """
    words = found.words
    if words and not found.says_which and country and \
            not any(w.startswith(_COUNTRY) for w in words):
        words = words | {_COUNTRY + country}
    for name in gold:
        if name.ids & found.ids:
            return True
        if not name.words or not words:
            continue
        if name.words == words:
            return True
        if (words < name.words and BodyName(words, found.ids).says_which) or \
                (name.words < words and name.says_which):
            return True
        if not name.says_which and not BodyName(words, found.ids).says_which:
            core = words - GOVERNMENT_WORDS
            if core and core == name.words - GOVERNMENT_WORDS:
                return True
    return False


def same_counterpart(gold: str, found: str | None, country: str | None,
                     analyzer: AnalyzerLike) -> bool:
    """counterpart_matches on raw text: a gold counterpart and a candidate's (with its country)."""
    if not found:
        return False
    alternatives = gold_counterpart_names(gold)
    names = read_body_names([*alternatives, found], analyzer)
    return counterpart_matches([names[n] for n in alternatives], names[found], country)


# --- scoring --------------------------------------------------------------------------------


def resolve_names(analyzer: AnalyzerLike, names: Iterable[str], label: str
                  ) -> dict[str, str | None]:
    """Gold names to ids with the analyser's own tagger: 'Huawei' -> huawei, 'Egypt' -> EG."""
    unique = sorted(set(names))
    out: dict[str, str | None] = {}
    for name, analysis in zip(unique, analyzer.analyze_many(unique), strict=True):
        ids = [e.id for e in analysis.entities if e.label == label and e.id]
        out[name] = ids[0] if ids else None
    return out


def _ratio(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


COUNT_KEYS = ("passages", "eligible", "excluded", "excluded_yes", "yes", "no", "aggregate", "tp",
              "fn", "fp", "tn", "vendor_ok", "country_ok", "country_total", "type_ok",
              "type_total", "counterpart_ok", "counterpart_total", "counterpart_type_ok",
              "counterpart_type_total", "stage_ok", "stage_total", "aggregate_ok",
              "aggregate_spurious", "ranked", "ranked_yes")
ERROR_KEYS = ("excluded", "missed", "false_positives", "wrong_vendor", "wrong_country",
              "wrong_deal_type", "wrong_counterpart", "wrong_counterpart_type", "wrong_stage",
              "missed_aggregates", "spurious_on_aggregates")


def evaluate(records: Sequence[Mapping[str, Any]], analyzer: AnalyzerLike,
             threshold: float | None = None) -> dict[str, Any]:
    """Passage-level metrics of the analyser on gold records (see load_gold).

    Passages whose gold vendors are not on the watchlist are left out of every figure (and
    counted: `excluded`, `excluded_yes`). The ranking orders the others by their best deal
    candidate's score, below the threshold too (0 without one); `yes` passages are its positives.
    """
    rules: Rules = analyzer.config.rules
    cut = rules.scoring.threshold if threshold is None else threshold
    type_vocabulary = _deal_type_vocabulary(rules)
    vendor_ids = resolve_names(analyzer, (v for r in records for v in r["vendors"]), "VENDOR")
    country_ids = resolve_names(analyzer, (c for r in records for c in r["countries"]), "COUNTRY")
    counts = dict.fromkeys(COUNT_KEYS, 0)
    errors: dict[str, list[Any]] = {name: [] for name in ERROR_KEYS}
    scores: list[float] = []
    positives: list[bool] = []
    counterparts: list[tuple[str, str, Candidate]] = []  # (id, gold, top candidate)
    passages = [passage_of(r) for r in records]
    for record, analysis in zip(records, analyzer.analyze_many(passages), strict=True):
        counts["passages"] += 1
        label = record["is_deal"]
        gold_vendors = {vid for v in record["vendors"] if (vid := vendor_ids.get(v))}
        if not gold_vendors:
            counts["excluded"] += 1
            counts["excluded_yes"] += label == "yes"
            errors["excluded"].append(record["id"])
            continue
        counts["eligible"] += 1
        counts[label] += 1
        candidates: list[Candidate] = analysis.candidates
        scores.append(max((c.score for c in candidates if c.kind == "deal"), default=0.0))
        positives.append(label == "yes")
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
            if deals:
                counts["aggregate_spurious"] += 1
                top_deal = max(deals, key=lambda c: c.score)
                errors["spurious_on_aggregates"].append(
                    {"id": record["id"], "score": top_deal.score,
                     "sentence": top_deal.sentence[:160]})
            continue
        matching = [c for c in deals if set(c.vendors) & gold_vendors]
        if not matching:
            counts["fn"] += 1
            errors["missed"].append(record["id"])
            continue
        counts["tp"] += 1
        top = _check_found(record, matching, gold_vendors, country_ids, type_vocabulary, counts,
                           errors)
        if isinstance(record.get("counterpart"), str) and record["counterpart"].strip():
            counterparts.append((record["id"], record["counterpart"], top))
    _check_counterparts(counterparts, analyzer, counts, errors)
    counts["ranked"] = len(scores)
    counts["ranked_yes"] = sum(positives)
    ranking = {"average_precision": _round(average_precision(scores, positives))}
    for k in PRECISION_AT:
        ranking[f"precision_at_{k}"] = _round(precision_at(scores, positives, k))
    return _metrics(counts, errors, cut, analyzer.version, ranking)


def _check_found(record: Mapping[str, Any], matching: list[Candidate], gold_vendors: set[str],
                 country_ids: Mapping[str, str | None], type_vocabulary: Mapping[str, str],
                 counts: dict[str, int], errors: dict[str, list[Any]]) -> Candidate:
    """Score the fields of the best matching candidate; returns it."""
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
    for field in ("counterpart_type", "stage"):
        wanted = _gold_values(record.get(field))
        if wanted:
            counts[f"{field}_total"] += 1
            got = getattr(top, field)
            if got in wanted:
                counts[f"{field}_ok"] += 1
            else:
                errors[f"wrong_{field}"].append({"id": record["id"], "got": got,
                                                 "want": sorted(wanted)})
    return top


def _check_counterparts(found: list[tuple[str, str, Candidate]], analyzer: AnalyzerLike,
                        counts: dict[str, int], errors: dict[str, list[Any]]) -> None:
    """Counterpart accuracy on found deals whose gold names one (see counterpart_matches)."""
    alternatives = {gold: gold_counterpart_names(gold) for _, gold, _ in found}
    names = read_body_names([n for alts in alternatives.values() for n in alts]
                            + [c.counterpart for _, _, c in found if c.counterpart], analyzer)
    for record_id, gold, top in found:
        counts["counterpart_total"] += 1
        ok = bool(top.counterpart) and counterpart_matches(
            [names[n] for n in alternatives[gold]], names[top.counterpart or ""], top.country)
        if ok:
            counts["counterpart_ok"] += 1
        else:
            errors["wrong_counterpart"].append({"id": record_id, "got": top.counterpart,
                                                "want": gold})


def _metrics(counts: dict[str, int], errors: dict[str, list[Any]], cut: float,
             version: str, ranking: Mapping[str, float | None]) -> dict[str, Any]:
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
        "counterpart_accuracy": _ratio(counts["counterpart_ok"], counts["counterpart_total"]),
        "counterpart_type_accuracy": _ratio(counts["counterpart_type_ok"],
                                            counts["counterpart_type_total"]),
        "stage_accuracy": _ratio(counts["stage_ok"], counts["stage_total"]),
        "aggregate_accuracy": _ratio(counts["aggregate_ok"], counts["aggregate"]),
        "aggregate_spurious_rate": _ratio(counts["aggregate_spurious"], counts["aggregate"]),
        **ranking,
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
        f"{c['excluded']} excluded{': ' + ', '.join(e['excluded']) if e['excluded'] else ''}); "
        f"{c['excluded_yes']} excluded deal passage(s) left out of recall",
        f"deals       precision {_fmt(metrics['precision'])}  recall {_fmt(metrics['recall'])}  "
        f"F1 {_fmt(metrics['f1'])}   (tp {c['tp']}, fn {c['fn']}, fp {c['fp']})",
        f"not deals   false-positive rate {_fmt(metrics['fp_rate'])} ({c['fp']} of {c['no']}) "
        f"at threshold {metrics['threshold']:.2f}",
        f"ranking     average precision {_fmt(metrics['average_precision'])}  "
        + "  ".join(f"P@{k} {_fmt(metrics[f'precision_at_{k}'])}" for k in PRECISION_AT)
        + f"   ({c['ranked_yes']} deals among {c['ranked']} passages, by best deal score)",
        f"on found    vendor {_fmt(metrics['vendor_accuracy'])} ({c['vendor_ok']}/{c['tp']})  "
        f"country {_fmt(metrics['country_accuracy'])} ({c['country_ok']}/{c['country_total']})  "
        f"deal type {_fmt(metrics['deal_type_accuracy'])} ({c['type_ok']}/{c['type_total']})",
        f"            counterpart {_fmt(metrics['counterpart_accuracy'])} "
        f"({c['counterpart_ok']}/{c['counterpart_total']})  "
        f"counterpart type {_fmt(metrics['counterpart_type_accuracy'])} "
        f"({c['counterpart_type_ok']}/{c['counterpart_type_total']})  "
        f"stage {_fmt(metrics['stage_accuracy'])} ({c['stage_ok']}/{c['stage_total']})",
        f"aggregates  {_fmt(metrics['aggregate_accuracy'])} ({c['aggregate_ok']}/{c['aggregate']})  "
        f"spurious deals {_fmt(metrics['aggregate_spurious_rate'])} "
        f"({c['aggregate_spurious']} of {c['aggregate']})",
    ]
    if e["missed"]:
        lines.append("missed deals: " + ", ".join(e["missed"]))
    if e["false_positives"]:
        lines.append("false positives: " + ", ".join(f"{x['id']} ({x['score']:.2f})"
                                                     for x in e["false_positives"]))
    for name, title in (("wrong_vendor", "wrong vendor"), ("wrong_country", "wrong country"),
                        ("wrong_deal_type", "wrong deal type"),
                        ("wrong_counterpart", "wrong counterpart"),
                        ("wrong_counterpart_type", "wrong counterpart type"),
                        ("wrong_stage", "wrong stage")):
        if e[name]:
            lines.append(f"{title}: " + ", ".join(f"{x['id']} (got {x['got']}, want {x['want']})"
                                                 for x in e[name]))
    if e["missed_aggregates"]:
        lines.append("missed aggregates: " + ", ".join(e["missed_aggregates"]))
    if e["spurious_on_aggregates"]:
        lines.append("deals raised on aggregates: " + ", ".join(
            f"{x['id']} ({x['score']:.2f})" for x in e["spurious_on_aggregates"]))
    return "\n".join(lines)
