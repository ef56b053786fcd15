"""Filters as SQL over the documents table ``d``: the named fields, or any metadata key."""
from __future__ import annotations

from typing import Any

from qa.stores.base import Filters

FILTER_COLUMNS = {"document_id": "d.id", "film": "d.film", "title": "d.title"}


def filter_clause(filters: Filters) -> tuple[str, list[Any]]:
    """SQL condition on documents ``d`` for every filter (a list value means any of), and its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    for key, value in filters.items():
        values = [value] if isinstance(value, str) else list(value)
        marks = ",".join("?" * len(values))
        column = FILTER_COLUMNS.get(key)
        if not values:
            clauses.append("0")
            continue
        if column is None:  # a metadata field: a scalar, or a list of which any may match
            clauses.append(f"EXISTS (SELECT 1 FROM json_each(d.metadata, ?) AS j "
                           f"WHERE CAST(j.value AS TEXT) COLLATE NOCASE IN ({marks}))")
            params.append(f'$."{key}"')
        else:
            nocase = " COLLATE NOCASE" if key in ("film", "title") else ""
            clauses.append(f"{column}{nocase} IN ({marks})")
        params.extend(str(v) for v in values)
    return " AND ".join(clauses) or "1", params
