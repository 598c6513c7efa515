"""Transitional: the old import path of pipeline.storage (removed once every caller moved)."""

from pipeline.storage.database import DEAL_FIELDS, decode_row, utcnow
from pipeline.storage.queue import QueueQuery

__all__ = ["DEAL_FIELDS", "QueueQuery", "decode_row", "utcnow"]
