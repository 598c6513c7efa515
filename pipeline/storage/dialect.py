"""The few SQL fragments that differ between SQLite and PostgreSQL, by name.

Repository SQL is one text for both engines (`?` parameters, `ON CONFLICT`, `RETURNING`,
`IS [NOT] DISTINCT FROM`, `FILTER`, `TRUE`). What cannot be one text is asked of the database's
`dialect`: membership of a list parameter, a JSON list or field, case-insensitive LIKE, the
article full-text match, a join whose order is the planner's hint, and insertion order. Each
method returns a fragment with its own `?` marks, and the `*_param` methods give the value that
goes with them. This is not a query builder: a new need is a new named fragment, and when this
file starts to build queries it is time for SQLAlchemy Core instead (docs/scaling.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dialect:
    name: str  # "sqlite" or "postgresql"

    @property
    def postgres(self) -> bool:
        return self.name == "postgresql"

    def in_list(self, expr: str) -> str:
        """`expr` is one of the values of a list parameter (`list_param`)."""
        if self.postgres:
            return f"{expr} = ANY(?)"
        return f"{expr} IN (SELECT value FROM json_each(?))"

    def list_param(self, values: Iterable[Any]) -> Any:
        values = list(values)
        return values if self.postgres else json.dumps(values, ensure_ascii=False)

    def json_has(self, column: str) -> str:
        """The JSON list in `column` holds the string parameter that follows."""
        if self.postgres:
            return f"({column})::jsonb @> jsonb_build_array(?::text)"
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = ?)"

    def json_elements(self, column: str, alias: str) -> str:
        """A FROM item: one row per element of the JSON list in `column`, as `alias.value`
        (on PostgreSQL in byte order, COLLATE "C" as our text columns are, not the database's
        collation)."""
        if self.postgres:
            return (f'LATERAL (SELECT e.value COLLATE "C" AS value FROM '
                    f"jsonb_array_elements_text(({column})::jsonb) AS e(value)) AS {alias}")
        return f"json_each({column}) {alias}"

    def json_int(self, column: str, key: str) -> str:
        """The integer under one key of the JSON object in `column` (`key` is a fixed name)."""
        if self.postgres:
            return f"(({column})::jsonb ->> '{key}')::bigint"
        return f"json_extract({column}, '$.{key}')"

    def like(self, expr: str) -> str:
        """`expr` holds the LIKE pattern parameter, case aside (SQLite's LIKE already ignores
        ASCII case; PostgreSQL's ILIKE ignores all of it), `\\` escaping `%` and `_`."""
        return f"{expr} {'ILIKE' if self.postgres else 'LIKE'} ? ESCAPE '\\'"

    def fts_match(self, article_id: str, article: str | None = None) -> str:
        """The article `article_id` has every word of the search parameter (`fts_param`).
        `article`: that article's alias, when the query joins it already; PostgreSQL then reads
        its search column in place (a subquery inside the queue's per-row NOT EXISTS is costed
        as built again for every row, and the planner gives up walking the order's index)."""
        if self.postgres:
            if article is not None:
                return f"{article}.search @@ plainto_tsquery('dealwatch', ?)"
            return (f"{article_id} IN (SELECT id FROM articles "
                    "WHERE search @@ plainto_tsquery('dealwatch', ?))")
        return f"{article_id} IN (SELECT rowid FROM articles_fts WHERE articles_fts MATCH ?)"

    def fts_param(self, words: list[str]) -> str:
        """The search parameter for these words (already picked so that none is syntax)."""
        if self.postgres:
            return " ".join(words)
        return " ".join(f'"{word}"' for word in words)

    @property
    def ordered_join(self) -> str:
        """A join SQLite must take in the written order (its planner would pick the other);
        PostgreSQL's planner is left to choose."""
        return "JOIN" if self.postgres else "CROSS JOIN"

    def insert_order(self, alias: str) -> str:
        """The order rows of `deal_sources` were inserted in (it has a composite key)."""
        return f"{alias}.seq" if self.postgres else f"{alias}.rowid"


SQLITE = Dialect("sqlite")
POSTGRESQL = Dialect("postgresql")
