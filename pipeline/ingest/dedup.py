"""Identity of articles: text hashes and near-duplicate signatures, so that one story is stored once."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.config import DedupSettings

if TYPE_CHECKING:
    from datasketch import LeanMinHash

_WS = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


def text_hash(text: str) -> str:
    """Hash of an article's text, blind to case and white space (exact duplicates)."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


# --- near-duplicates: the same wire story on several sites with small edits -------------------

_WORD = re.compile(r"\w+")
MINHASH_SCHEME = "affine64"  # fixed, so signatures stored by one run compare with the next
MINHASH_SEED = 1


@dataclass(frozen=True, slots=True)
class Signature:
    """A MinHash of an article's word shingles, and how many distinct shingles it has."""

    hashvalues: np.ndarray
    shingles: int

    def to_bytes(self) -> bytes:
        return self.hashvalues.astype("<u8").tobytes()

    @classmethod
    def from_bytes(cls, blob: bytes, shingles: int) -> Signature:
        return cls(np.frombuffer(blob, dtype="<u8").astype(np.uint64), shingles)

    def minhash(self) -> LeanMinHash:
        from datasketch import LeanMinHash  # a third of a second to import: only when needed

        return LeanMinHash(seed=MINHASH_SEED, hashvalues=self.hashvalues, scheme=MINHASH_SCHEME)


_DEFAULTS = DedupSettings()  # the shipped [dedup] settings, so callers without config agree


def signature(text: str, num_perm: int = _DEFAULTS.num_perm,
              shingle_words: int = _DEFAULTS.shingle_words) -> Signature:
    """MinHash over the article's lower-cased word n-grams (n = shingle_words)."""
    words = _WORD.findall(text.lower())
    n = min(shingle_words, len(words)) or 1
    shingles = {" ".join(words[i:i + n]) for i in range(max(len(words) - n + 1, 1))}
    from datasketch import MinHash

    mh = MinHash(num_perm=num_perm, seed=MINHASH_SEED, scheme=MINHASH_SCHEME)
    mh.update_batch([s.encode("utf-8") for s in shingles])
    return Signature(mh.hashvalues.copy(), len(shingles))


def resemblance(a: Signature, b: Signature) -> tuple[float, float]:
    """(estimated Jaccard, estimated containment of the smaller in the larger)."""
    jaccard = float(np.mean(a.hashvalues == b.hashvalues))
    if jaccard <= 0:
        return 0.0, 0.0
    common = jaccard * (a.shingles + b.shingles) / (1 + jaccard)
    return jaccard, min(1.0, common / max(min(a.shingles, b.shingles), 1))


class NearDuplicateIndex:
    """MinHash LSH over recent articles: which stored article does a new one copy?

    Two articles are copies when their shingle sets resemble each other (Jaccard) or one is
    mostly inside the other (containment: a shortened or trimmed syndicated copy). The index
    lives in memory for one processing run and is filled from signatures kept in the store,
    so clustering works across runs.
    """

    def __init__(self, num_perm: int = _DEFAULTS.num_perm, jaccard: float = _DEFAULTS.jaccard,
                 containment: float = _DEFAULTS.containment):
        self.num_perm = num_perm
        self.jaccard = jaccard
        self.containment = containment
        from datasketch import MinHashLSH

        # Retrieve generously; the exact test below decides.
        self.lsh = MinHashLSH(threshold=min(jaccard, 0.3), num_perm=num_perm)
        self.signatures: dict[int, Signature] = {}
        self.cluster_of: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.signatures)

    def add(self, article_id: int, sig: Signature, cluster_id: int | None = None) -> None:
        if article_id in self.signatures:
            self.lsh.remove(article_id)
        self.lsh.insert(article_id, sig.minhash())
        self.signatures[article_id] = sig
        self.cluster_of[article_id] = cluster_id or article_id

    def matches(self, sig: Signature, exclude: int | None = None) -> list[tuple[int, float, float]]:
        """Stored articles this signature copies: (article id, jaccard, containment)."""
        found = []
        for other in self.lsh.query(sig.minhash()):
            if other == exclude:
                continue
            jaccard, containment = resemblance(sig, self.signatures[other])
            if jaccard >= self.jaccard or containment >= self.containment:
                found.append((other, jaccard, containment))
        return sorted(found, key=lambda m: (-m[1], m[0]))

    def assign(self, article_id: int, sig: Signature) -> tuple[int, list[int]]:
        """Add an article; returns its cluster id (the oldest member's id) and the clusters that
        it joins together (to be renamed to that id)."""
        matched = self.matches(sig, exclude=article_id)
        clusters = {self.cluster_of[other] for other, _, _ in matched}
        if article_id in self.cluster_of:  # a changed text: its cluster may join others
            clusters.add(self.cluster_of[article_id])
        cluster_id = min(clusters, default=article_id)
        merged = sorted(clusters - {cluster_id})
        if merged:
            for member, cid in self.cluster_of.items():
                if cid in merged:
                    self.cluster_of[member] = cluster_id
        self.add(article_id, sig, cluster_id)
        return cluster_id, merged
