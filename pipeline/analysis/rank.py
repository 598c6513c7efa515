"""The ranker: a logistic model that turns a candidate's evidence into the probability a reviewer confirms.

Features are taken generically from a Candidate (every numeric signal, the evidence's values,
the kind, counterpart type, stage and deal types, the detector's own rule score as a logit, and
the words of the evidence sentence), so a detector that grows new signals needs no change here.
The model is plain JSON (no pickle): feature names, coefficients, intercept and a summary of
what it was trained on, written in the same bytes for the same training data.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spacy.language import Language
from spacy.tokens import Doc

from models.errors import DealwatchError
from models.records import Candidate, passage_of
from pipeline.analysis.detect import CANDIDATES_KEY

if TYPE_CHECKING:  # the analyser loads spaCy models; ranking a stored candidate does not need it
    from pipeline.analysis.results import AnalyzerLike
    from pipeline.storage import Store

logger = logging.getLogger(__name__)

FORMAT = "dealwatch-ranker"
VERSION = 1  # of the file format
SHIPPED_MODEL = "ranker.json"  # in pipeline.analysis.data
GOLD_DIR = "gold"  # in pipeline.analysis.data: the project's own labelled passages
RULE_SCORE = "rule_score"  # signals key of the detector's own score (never the ranker's)

# Words weigh this much in all (their vector is L2-normalised, then scaled): with little data
# the structured features decide, and reviewers' decisions can still teach new phrasings.
WORD_WEIGHT = 0.5
# The rule score's logit is scaled up by this much: its coefficient then costs less under the
# L2 penalty than the others', so with few decisions the ranker stays close to the detector's
# score and learns departures from it only as evidence for them grows.
RULE_WEIGHT = 3.0
MIN_WORD_EXAMPLES = 2  # a word or bigram enters the vocabulary when this many examples have it
C = 0.3  # inverse L2 regularisation strength
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


class RankerError(DealwatchError):
    """A ranker model that cannot be read or trained; the message names the file and the problem."""


@dataclass(frozen=True)
class Example:
    """One labelled candidate: its features and whether a reviewer confirms it (1) or not (0)."""

    features: dict[str, float]
    label: int
    source: str  # where the label came from: "gold:deal_sentences.jsonl", "reviews"
    words: frozenset[str] = field(default_factory=frozenset)


# --- features -------------------------------------------------------------------------------


def rule_score(candidate: Candidate) -> float:
    """The detector's own score: kept in signals once the ranker has scored the candidate."""
    value = candidate.signals.get(RULE_SCORE)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else float(candidate.score)


def structured_features(candidate: Candidate) -> dict[str, float]:
    """Every feature but the words: signals, evidence, kind, types, stage, the rule score."""
    out: dict[str, float] = {}
    for name, value in candidate.signals.items():
        if name == RULE_SCORE:
            continue
        if isinstance(value, bool | int | float):
            if math.isfinite(float(value)):
                out[f"signal:{name}"] = float(value)
        elif isinstance(value, Mapping):
            for key, inner in value.items():
                _nested(out, f"{name}:{key}", inner)
    out[f"kind={candidate.kind}"] = 1.0
    # an organisation of unknown type ("a contract with Zamtech") is shown to the reviewer, and
    # scores as no party at all
    party = candidate.counterpart_type if candidate.counterpart_type != "unknown" else None
    out[f"counterpart_type={party or 'none'}"] = 1.0
    out[f"stage={candidate.stage or 'unknown'}"] = 1.0
    for deal_type in candidate.deal_types or []:
        out[f"deal_type={deal_type}"] = 1.0
    out["has_value"] = 1.0 if candidate.value is not None else 0.0
    out["vendors"] = float(len(candidate.vendors or []))
    p = min(max(rule_score(candidate), 1e-4), 1 - 1e-4)
    out["rule_logit"] = RULE_WEIGHT * math.log(p / (1 - p))
    return out


def _nested(out: dict[str, float], prefix: str, value: Any) -> None:
    if isinstance(value, bool | int | float):
        if math.isfinite(float(value)):
            out[prefix] = float(value)
    elif isinstance(value, str):
        out[f"{prefix}={value}"] = 1.0
    elif isinstance(value, list):
        for item in value[:8]:
            if isinstance(item, str):
                out[f"{prefix}={item.lower()}"] = 1.0


def sentence_words(sentence: str) -> frozenset[str]:
    """Lower-cased words and adjacent word pairs of the evidence sentence."""
    words = _WORD.findall(sentence.lower())
    return frozenset([*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))])


# --- reasons in words -----------------------------------------------------------------------

SIGNAL_WORDS = {
    "trigger": "deal verb or noun",
    "counterpart": "named public body as party",
    "country": "foreign country named",
    "deal_type": "kind of project named",
    "stage": "stage of the deal named",
    "value": "amount named",
    "vendor_nearby": "vendor named only in a nearby sentence",
    "negative": "ban or sanction nearby",
    "domestic": "deal in the vendor's home country",
    "hedged": "hedged wording",
    "private": "private company as party",
    "aggregate": "count of many deals",
    "survey": "study or survey wording",
    "sentences": "told in several sentences",
    "cancelled": "cancellation",
    "plans": "plans or intentions, not a deal",
    "compared": "vendor named as the one not chosen",
}
COUNTERPART_WORDS = {
    "government": "government", "ministry": "ministry", "agency": "government agency",
    "soe": "state company", "subnational": "regional or city government",
    "intergovernmental": "intergovernmental body", "unknown": "unlisted party",
}


def describe(feature: str) -> str:
    """A feature name in words: `counterpart_type=ministry` -> "named ministry as party"."""
    if feature == "rule_logit":
        return "detector's rule score"
    if feature == "has_value":
        return "amount named"
    if feature == "vendors":
        return "number of vendors"
    if feature.startswith("word:"):
        return f"word '{feature[5:]}'"
    if feature.startswith("signal:"):
        name = feature[7:]
        return SIGNAL_WORDS.get(name, name.replace("_", " "))
    name, _, value = feature.partition("=")
    if name == "counterpart_type":
        if value == "none":
            return "no party named"
        return f"named {COUNTERPART_WORDS.get(value, value)} as party"
    if name == "kind":
        return "an aggregate (many deals)" if value == "aggregate" else f"kind: {value}"
    if name in ("stage", "deal_type"):
        return f"{name.replace('_', ' ')}: {value.replace('_', ' ')}"
    # nested evidence: "evidence:country_from=counterpart" -> "country from counterpart"
    name = name.split(":", 1)[-1].replace("_", " ")
    return f"{name} {value.replace('_', ' ')}".strip() if value else name


# --- the model ------------------------------------------------------------------------------


class Ranker:
    """A trained logistic model over a candidate's features (see the module docstring)."""

    def __init__(self, features: Sequence[str], coefficients: Sequence[float], intercept: float,
                 vocabulary: Sequence[str], summary: Mapping[str, Any] | None = None,
                 source: str = "") -> None:
        self.feature_names = list(features)
        self.coefficients = [float(c) for c in coefficients]
        self.intercept = float(intercept)
        self.vocabulary = frozenset(vocabulary)
        self.summary = dict(summary or {})
        self.source = source  # the file it came from, for messages
        self._weights = dict(zip(self.feature_names, self.coefficients, strict=True))

    def features(self, candidate: Candidate) -> dict[str, float]:
        """The candidate's features as this model sees them (words limited to its vocabulary)."""
        return {**structured_features(candidate),
                **_word_features(sentence_words(candidate.sentence), self.vocabulary)}

    def _contributions(self, candidate: Candidate) -> dict[str, float]:
        return {name: self._weights[name] * value for name, value in self.features(candidate).items()
                if name in self._weights and value}

    def score(self, candidate: Candidate) -> float:
        """The probability that a reviewer confirms the candidate."""
        return self.score_and_reasons(candidate)[0]

    def reasons(self, candidate: Candidate, k: int = 3) -> list[str]:
        """The k features that moved the score most, in words: "+ named ministry as party"."""
        return self.score_and_reasons(candidate, k)[1]

    def score_and_reasons(self, candidate: Candidate, k: int = 3) -> tuple[float, list[str]]:
        """score and reasons from one reading of the candidate's features."""
        contributions = self._contributions(candidate)
        score = _logistic(self.intercept + sum(contributions.values()))
        parts = sorted(contributions.items(), key=lambda item: (-abs(item[1]), item[0]))
        return score, [f"{'+' if weight > 0 else '−'} {describe(name)}" for name, weight in parts[:k]
                       if abs(weight) >= 0.05]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "summary": self.summary,
            "intercept": round(self.intercept, 8),
            "features": {name: round(c, 8) for name, c in zip(self.feature_names, self.coefficients,
                                                              strict=True)},
            "vocabulary": sorted(self.vocabulary),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model as JSON; the same model always gives the same bytes."""
        path = Path(path)
        data = json.dumps(self.to_json(), ensure_ascii=False, indent=1, sort_keys=False) + "\n"
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(data, encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            raise RankerError(f"{path}: cannot write the ranker model: {exc.strerror or exc}") from None


def _logistic(z: float) -> float:
    if z < -35:
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


def _word_features(words: Iterable[str], vocabulary: frozenset[str]) -> dict[str, float]:
    known = sorted(w for w in words if w in vocabulary)
    if not known:
        return {}
    value = WORD_WEIGHT / math.sqrt(len(known))
    return {f"word:{w}": value for w in known}


def load(path: str | os.PathLike[str]) -> Ranker:
    """Read a model file; a missing, malformed, foreign or other-version file is a RankerError."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RankerError(f"{where}: no such ranker model file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RankerError(f"{where}: cannot read the ranker model: {exc}") from None
    return _from_text(text, where)


def load_shipped() -> Ranker:
    """The model trained from the project's own labelled data (`make ranker`)."""
    ref = resources.files("pipeline.analysis.data").joinpath(SHIPPED_MODEL)
    try:
        text = ref.read_text(encoding="utf-8")
    except (OSError, FileNotFoundError) as exc:
        raise RankerError(f"{ref}: the shipped ranker model is missing ({exc}); run make ranker") \
            from None
    return _from_text(text, str(ref))


def _from_text(text: str, where: str) -> Ranker:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RankerError(f"{where}: not a ranker model: invalid JSON at line {exc.lineno}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise RankerError(f"{where}: not a dealwatch ranker model (format {found!r}, "
                          f"expected {FORMAT!r})")
    if data.get("version") != VERSION:
        raise RankerError(f"{where}: ranker model version {data.get('version')!r}; this dealwatch "
                          f"reads version {VERSION} (train it again with dealwatch train)")
    features, intercept = data.get("features"), data.get("intercept")
    vocabulary, summary = data.get("vocabulary", []), data.get("summary", {})
    if not isinstance(features, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in features.values()):
        raise RankerError(f"{where}: features: an object of finite numbers is required")
    if not isinstance(intercept, int | float) or isinstance(intercept, bool) \
            or not math.isfinite(intercept):
        raise RankerError(f"{where}: intercept: a finite number is required")
    if not isinstance(vocabulary, list) or not all(isinstance(w, str) for w in vocabulary):
        raise RankerError(f"{where}: vocabulary: a list of strings is required")
    if not isinstance(summary, dict):
        raise RankerError(f"{where}: summary: an object is required")
    return Ranker(list(features), list(features.values()), intercept, vocabulary, summary,
                  source=where)


# --- training -------------------------------------------------------------------------------


def example(candidate: Candidate, label: int, source: str) -> Example:
    return Example(structured_features(candidate), int(label), source,
                   sentence_words(candidate.sentence))


def train(examples: Sequence[Example]) -> Ranker:
    """Fit the logistic model (scikit-learn, lbfgs: deterministic for the same examples)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    if not examples:
        raise RankerError("no training examples: give labelled files or reviewed candidates")
    labels = Counter(e.label for e in examples)
    if len(labels) < 2:
        only = "confirmed (positive)" if 1 in labels else "rejected (negative)"
        raise RankerError(f"all {len(examples)} training examples are {only}: "
                          "a ranker needs both kinds")
    df = Counter(w for e in examples for w in e.words)
    vocabulary = frozenset(w for w, n in df.items() if n >= MIN_WORD_EXAMPLES)
    rows = [{**e.features, **_word_features(e.words, vocabulary)} for e in examples]
    names = sorted({name for row in rows for name in row})
    index = {name: i for i, name in enumerate(names)}
    x = np.zeros((len(rows), len(names)))
    for r, row in enumerate(rows):
        for name, value in row.items():
            x[r, index[name]] = value
    y = np.array([e.label for e in examples])
    model = LogisticRegression(C=C, solver="lbfgs", max_iter=5000, tol=1e-8)
    model.fit(x, y)
    coefficients = [float(c) for c in model.coef_[0]]
    used = {n: c for n, c in zip(names, coefficients, strict=True) if abs(c) >= 1e-8}
    return Ranker(list(used), list(used.values()), float(model.intercept_[0]),
                  sorted(w for w in vocabulary if f"word:{w}" in used), summary=_summary(examples))


def _summary(examples: Sequence[Example]) -> dict[str, Any]:
    sources: dict[str, dict[str, int]] = {}
    digest = hashlib.sha256()
    for e in examples:
        counts = sources.setdefault(e.source, {"examples": 0, "positive": 0})
        counts["examples"] += 1
        counts["positive"] += e.label
        digest.update(json.dumps([e.label, e.features, sorted(e.words)], sort_keys=True).encode())
    return {"examples": len(examples), "positive": sum(e.label for e in examples),
            "sources": dict(sorted(sources.items())), "data_sha256": digest.hexdigest()}


def examples_from_gold(records: Sequence[Mapping[str, Any]], analyzer: AnalyzerLike,
                       source: str = "gold") -> list[Example]:
    """Label the analyser's candidates on gold passages (eval format; pipeline.analysis.evaluate.load_gold).

    In a `yes` passage a deal candidate naming a gold vendor is confirmed and any other is not;
    in a `no` passage none is; in an `aggregate` passage the aggregates are and the deals are not.
    An aggregate candidate in a `yes` or `no` passage is left out: the label says what the
    passage reports, not whether a count in it ("present in 170 countries") is a true aggregate.
    A `yes` passage whose vendors the tagger does not know is left out (it cannot be labelled).
    """
    return [e for group in examples_by_passage(records, analyzer, source) for e in group]


def examples_by_passage(records: Sequence[Mapping[str, Any]], analyzer: AnalyzerLike,
                        source: str = "gold") -> list[list[Example]]:
    """examples_from_gold, one list per record in order ([] for a passage left out): the
    passages are analysed together, and their gold names resolved once."""
    from pipeline.analysis.evaluate import resolve_names  # the evaluation's own name matching

    vendor_ids = resolve_names(analyzer, (v for r in records for v in r["vendors"]), "VENDOR")
    out: list[list[Example]] = []
    for record, analysis in zip(records, analyzer.analyze_many(map(passage_of, records)),
                                strict=True):
        label = record["is_deal"]
        gold_vendors = {vid for v in record["vendors"] if (vid := vendor_ids.get(v))}
        group: list[Example] = []
        out.append(group)
        if label == "yes" and not gold_vendors:
            continue
        for cand in analysis.candidates:
            if cand.kind == "aggregate" and label != "aggregate":
                continue
            if label == "yes":
                positive = cand.kind == "deal" and bool(set(cand.vendors) & gold_vendors)
            elif label == "aggregate":
                positive = cand.kind == "aggregate"
            else:
                positive = False
            group.append(example(cand, int(positive), source))
    return out


def examples_from_reviews(store: Store) -> list[Example]:
    """Reviewers' decisions as examples, from the stored candidates (no re-analysis).

    Confirmed is 1 and rejected 0, with the fields as the reviewer left them. A deal rejected as
    "aggregate" counts as what the reviewer said: a confirmed aggregate. A rejection as a
    "duplicate" says nothing about the evidence and is left out.
    """
    out: list[Example] = []
    for cand, status, reason in store.candidates.decided_candidates():
        if status == "rejected" and reason == "duplicate":
            continue
        if status == "rejected" and reason == "aggregate" and cand.kind == "deal":
            cand.kind = "aggregate"
            out.append(example(cand, 1, "reviews"))
            continue
        out.append(example(cand, 1 if status == "confirmed" else 0, "reviews"))
    return out


def shipped_gold() -> list[tuple[str, Path]]:
    """The project's own labelled files (name, path), shipped in the package."""
    folder = resources.files("pipeline.analysis.data").joinpath(GOLD_DIR)
    return sorted((entry.name, Path(str(entry))) for entry in folder.iterdir()
                  if entry.name.endswith(".jsonl"))


def in_sample(ranker: Ranker, examples: Sequence[Example], threshold: float) -> dict[str, Any]:
    """A quick look at the fit: accuracy and average precision on the training examples."""
    from pipeline.analysis.evaluate import average_precision

    scores = [score_features(ranker, e.features, e.words) for e in examples]
    labels = [bool(e.label) for e in examples]
    correct = sum(1 for score, label in zip(scores, labels, strict=True) if (score >= threshold) == label)
    ap = average_precision(scores, labels)
    return {"accuracy": round(correct / len(scores), 4) if scores else None,
            "average_precision": round(ap, 4) if ap is not None else None}


def rule_score_of(e: Example) -> float:
    """The detector's rule score of a training example (benches compare against it)."""
    return _logistic(e.features.get("rule_logit", 0.0) / RULE_WEIGHT)


def score_features(ranker: Ranker, features: Mapping[str, float], words: Iterable[str]) -> float:
    """The score of precomputed features (training examples, benches)."""
    row = {**features, **_word_features(words, ranker.vocabulary)}
    return _logistic(ranker.intercept + sum(ranker._weights.get(n, 0.0) * v for n, v in row.items()))


# --- the scorer in the analysis chain -------------------------------------------------------


class CandidateScorer:
    """The last component of the analysis chain: score, reasons and queued on every candidate."""

    def __init__(self, ranker: Ranker | None, threshold: float) -> None:
        self.ranker = ranker
        self.threshold = threshold

    def __call__(self, doc: Doc) -> Doc:
        candidates: list[Candidate] = doc.user_data.get(CANDIDATES_KEY, [])
        for cand in candidates:
            score_candidate(cand, self.ranker, self.threshold)
        candidates.sort(key=lambda c: (-c.score, c.start))
        return doc


def score_candidate(cand: Candidate, ranker: Ranker | None, threshold: float) -> None:
    """Set score, reasons and queued from the ranker (the rule score alone without one)."""
    cand.signals.setdefault(RULE_SCORE, round(float(cand.score), 4))
    if ranker is None:
        cand.score = round(rule_score(cand), 4)
        cand.reasons = []
    else:
        score, cand.reasons = ranker.score_and_reasons(cand)
        cand.score = round(score, 4)
    cand.queued = cand.score >= threshold


@Language.factory("dealwatch_scorer_v1", default_config={"model": "", "threshold": 0.5})
def make_scorer(nlp: Language, name: str, model: str, threshold: float) -> CandidateScorer:
    """model: a ranker file; "" for the shipped one; "none" for the detector's rule score alone."""
    if model == "none":
        return CandidateScorer(None, threshold)
    return CandidateScorer(load(model) if model else load_shipped(), threshold)


SHIPPED = "shipped"  # attach_scorer: the model trained from the project's own data


def attach_scorer(nlp: Language, ranker: Ranker | str | None, threshold: float) -> CandidateScorer:
    """Add the scorer last to an analysis chain.

    ranker: a loaded Ranker, SHIPPED, or None for the detector's rule score alone. A shipped
    model that cannot be read leaves the rule score in use, and says so.
    """
    scorer = nlp.add_pipe("dealwatch_scorer_v1", name="scorer", last=True,
                          config={"model": "none", "threshold": threshold})
    assert isinstance(scorer, CandidateScorer)
    if ranker == SHIPPED:
        try:
            ranker = load_shipped()
        except RankerError as exc:
            logger.warning("%s; scoring with the detector's rules alone", exc)
            ranker = None
    scorer.ranker = ranker if isinstance(ranker, Ranker) else None
    return scorer


def choose_ranker(choices: Sequence[str | None]) -> tuple[Ranker | None, str]:
    """The first of these models that loads (a path, SHIPPED, or None for the rule score alone),
    and what it is. One that fails to load is passed over with a warning naming the file and the
    problem, and the next one is used."""
    for choice in choices:
        if choice is None:
            return None, "the detector's rule score"
        try:
            return (load_shipped(), "the shipped ranker") if choice == SHIPPED \
                else (load(choice), choice)
        except RankerError as exc:
            logger.warning("%s; falling back to the ranker used before it", exc)
    return None, "the detector's rule score"
