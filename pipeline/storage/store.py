"""Transitional: the old import path of pipeline.storage (removed once every caller moved)."""

from pipeline.storage import (
           CANDIDATE_STATUSES,
           MIGRATIONS,
           QueueQuery,
           Store,
           StoreError,
           is_busy,
           sha256_hex,
)
from pipeline.storage.database import unsupported_reason, utcnow

QueueFilter = QueueQuery

__all__ = ["CANDIDATE_STATUSES", "MIGRATIONS", "QueueFilter", "Store", "StoreError", "is_busy", "sha256_hex",
           "unsupported_reason", "utcnow"]
