"""Finds every aggregate over an amount that could add up different assets, in a SELECT parsed by DuckDB itself
(``json_serialize_sql``).

An amount is a column whose documentation names its asset column (``pipeline.warehouse.views.asset_of``); an
expression over amounts is an amount in all of their assets. An aggregate (or a window function) whose arguments or
window ordering touch an amount must have each of those asset columns as a group key (a window: as a partition key),
or pinned to one value by ``WHERE asset = '...'``. Amounts are followed through subqueries, CTEs, joins and unions;
a reference the walker cannot resolve is reported, never assumed safe.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Columns = dict[str, frozenset[str]]  # output column -> the asset columns it is an amount in (empty: not an amount)
NOT_AMOUNT: frozenset[str] = frozenset()
_NOT_MIXING = {"count", "count_star"}  # counting amounts adds no amounts
_LISTED_LATER = "*"  # output marker: a star over columns the checker cannot list


class Opaque(dict):
    """Columns of a source the checker cannot list (a table function such as read_parquet): any name resolves and
    none is a documented amount (raw lake columns get their assets in the views that join ``symbols``)."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> frozenset[str]:
        return NOT_AMOUNT


def _scope(outputs: list[tuple[str, frozenset[str]]]) -> Columns:
    cols = dict(outputs)
    if _LISTED_LATER in cols:
        del cols[_LISTED_LATER]
        return Opaque(cols)
    return cols


@dataclass
class Checker:
    """``relation(name)``: the columns of a view or table with their assets, None for an unknown name."""

    relation: Callable[[str], Columns | None]
    aggregates: frozenset[str]
    problems: list[str] = field(default_factory=list)

    def check(self, sql: str, where: str) -> list[str]:
        """Problems of one statement (``where`` names it in messages)."""
        self.problems = []
        self._where = where
        parsed = json.loads(_serialize(sql))
        if parsed.get("error"):
            return [f"{where}: DuckDB cannot parse it for checking: {parsed.get('error_message')}"]
        for statement in parsed["statements"]:
            self.node(statement["node"], {})
        return self.problems

    # -- query nodes ------------------------------------------------------------------------------------------------
    def node(self, node: dict[str, Any], ctes: dict[str, Columns]) -> list[tuple[str, frozenset[str]]]:
        """The node's output columns in order, (name, assets)."""
        ctes = dict(ctes)
        for entry in node.get("cte_map", {}).get("map", []):
            ctes[entry["key"]] = _scope(self.node(entry["value"]["query"]["node"], ctes))
        kind = node["type"]
        if kind == "SELECT_NODE":
            return self.select(node, ctes)
        if kind == "SET_OPERATION_NODE":
            left, right = self.node(node["left"], ctes), self.node(node["right"], ctes)
            if node.get("setop_type") == "UNION_BY_NAME":
                merged: dict[str, frozenset[str]] = {}
                for name, assets in [*left, *right]:
                    merged[name] = merged.get(name, NOT_AMOUNT) | assets
                return list(merged.items())
            return [(n, a | b) for (n, a), (_, b) in zip(left, right, strict=False)]
        self.problems.append(f"{self._where}: a {kind} is not understood by the checker")
        return []

    def from_table(self, ref: dict[str, Any], ctes: dict[str, Columns]) -> dict[str, Columns]:
        """Binding name (alias or table) -> its columns; "" holds every column for unqualified references."""
        kind = ref["type"]
        if kind == "EMPTY":
            return {"": {}}
        if kind == "BASE_TABLE":
            name = ref["table_name"]
            cols = ctes.get(name) if name in ctes else self.relation(name)
            if cols is None:
                self.problems.append(f"{self._where}: unknown relation {name!r}")
                cols = {}
            return {ref.get("alias") or name: cols, "": cols}
        if kind == "SUBQUERY":
            cols = _scope(self.node(ref["subquery"]["node"], ctes))
            return {ref.get("alias") or "": cols, "": cols}
        if kind in ("TABLE_FUNCTION", "EXPRESSION_LIST"):  # raw files; VALUES literals
            return {ref.get("alias") or "": Opaque(), "": Opaque()}
        if kind == "JOIN":
            left, right = self.from_table(ref["left"], ctes), self.from_table(ref["right"], ctes)
            both = {**left[""], **right[""]}
            opaque = isinstance(left[""], Opaque) or isinstance(right[""], Opaque)
            return {**left, **right, "": Opaque(both) if opaque else both}
        self.problems.append(f"{self._where}: a {kind} in FROM is not understood by the checker")
        return {"": {}}

    def select(self, node: dict[str, Any], ctes: dict[str, Columns]) -> list[tuple[str, frozenset[str]]]:
        scope = self.from_table(node["from_table"], ctes)
        pinned = _pinned(node.get("where_clause"))
        outputs: list[tuple[str, frozenset[str]]] = []
        keyed = set(pinned)
        for expr in node.get("group_expressions", []):
            keyed |= self.key_names(expr, node)
        grouped = bool(node.get("group_expressions")) or node.get("aggregate_handling") == "FORCE_AGGREGATES"
        for expr in [*node["select_list"], node.get("where_clause"), node.get("having"), node.get("qualify")]:
            for sub in _subqueries(expr):
                self.node(sub["subquery"]["node"], ctes)
        for item in node["select_list"]:
            if item["class"] == "STAR":
                outputs += _star(scope, item)
                continue
            assets = self.assets(item, scope)
            name = item.get("alias") or (item["column_names"][-1] if item["class"] == "COLUMN_REF" else "")
            outputs.append((name, assets))
            if node.get("aggregate_handling") == "FORCE_AGGREGATES" and not self.has_aggregate(item):
                keyed |= self.key_names(item, node)
        if grouped or any(self.has_aggregate(i) for i in node["select_list"]):
            for item in [*node["select_list"], node.get("having"), node.get("qualify")]:
                for agg in self.aggregates_in(item):
                    self.require(agg, self.assets_of_children(agg, scope), keyed, "GROUP BY")
        for item in [*node["select_list"], node.get("qualify")]:
            for window in _windows(item):
                involved = self.assets_of_children(window, scope)
                for order in window.get("orders", []):
                    involved |= self.assets(order["expression"], scope)
                keys = {n for p in window.get("partitions", []) for n in self.key_names(p, node)} | set(pinned)
                self.require(window, involved, keys, "PARTITION BY")
        return outputs

    # -- expressions ------------------------------------------------------------------------------------------------
    def assets(self, expr: dict[str, Any] | None, scope: dict[str, Columns]) -> frozenset[str]:
        """The asset columns the amounts an expression reads are in (FILTER predicates and subqueries excluded)."""
        found: set[str] = set()
        for ref in _column_refs(expr):
            names = ref["column_names"]
            table = scope.get(names[-2] if len(names) > 1 else "", {})
            if names[-1] not in table:
                if table or len(names) == 1:
                    self.problems.append(f"{self._where}: cannot resolve column {'.'.join(names)}")
                continue
            found |= table[names[-1]]
        return frozenset(found)

    def assets_of_children(self, call: dict[str, Any], scope: dict[str, Columns]) -> frozenset[str]:
        return frozenset().union(*(self.assets(c, scope) for c in call.get("children", [])))

    def key_names(self, expr: dict[str, Any], node: dict[str, Any]) -> set[str]:
        """The column names a GROUP BY / PARTITION BY key makes constant (a plain column, or a select position)."""
        if expr["class"] == "COLUMN_REF":
            return {expr["column_names"][-1]}
        if expr["class"] == "CONSTANT" and isinstance(expr["value"].get("value"), int):
            return self.key_names(node["select_list"][expr["value"]["value"] - 1], node)
        return set()

    def has_aggregate(self, expr: dict[str, Any]) -> bool:
        return any(True for _ in self.aggregates_in(expr))

    def aggregates_in(self, expr: Any) -> Iterator[dict[str, Any]]:
        for node in _walk(expr):
            if node.get("class") == "FUNCTION" and node.get("function_name", "").lower() in self.aggregates:
                yield node

    def require(self, call: dict[str, Any], assets: frozenset[str], keys: set[str], clause: str) -> None:
        missing = sorted(assets - keys)
        if missing and call.get("function_name", "").lower() not in _NOT_MIXING:
            self.problems.append(
                f"{self._where}: {call.get('function_name')}(...) over amounts in {', '.join(sorted(assets))} "
                f"lacks {', '.join(missing)} in its {clause} (keys: {', '.join(sorted(keys)) or 'none'})"
            )


def _serialize(sql: str) -> str:
    import duckdb

    return duckdb.connect().execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0]


def _walk(expr: Any) -> Iterator[dict[str, Any]]:
    """Every expression node, not entering subqueries or FILTER predicates."""
    if isinstance(expr, list):
        for x in expr:
            yield from _walk(x)
    elif isinstance(expr, dict):
        if expr.get("class") == "SUBQUERY":
            return
        if "class" in expr:
            yield expr
        for key, value in expr.items():
            if key not in ("filter", "filter_expr"):
                yield from _walk(value)


def _column_refs(expr: Any) -> Iterator[dict[str, Any]]:
    return (n for n in _walk(expr) if n.get("class") == "COLUMN_REF")


def _windows(expr: Any) -> Iterator[dict[str, Any]]:
    return (n for n in _walk(expr) if n.get("class") == "WINDOW")


def _subqueries(expr: Any) -> Iterator[dict[str, Any]]:
    """Subquery expressions (scalar, IN, EXISTS) directly in ``expr``."""
    if isinstance(expr, list):
        for x in expr:
            yield from _subqueries(x)
    elif isinstance(expr, dict):
        if expr.get("class") == "SUBQUERY":
            yield expr
            return
        for value in expr.values():
            yield from _subqueries(value)


def _star(scope: dict[str, Columns], item: dict[str, Any]) -> list[tuple[str, frozenset[str]]]:
    relation = item.get("relation_name") or ""
    excluded = {e if isinstance(e, str) else e[-1] for e in item.get("exclude_list", [])}
    cols = scope.get(relation, {})
    out = [(n, a) for n, a in cols.items() if n not in excluded]
    return [*out, (_LISTED_LATER, NOT_AMOUNT)] if isinstance(cols, Opaque) else out


def _pinned(where: dict[str, Any] | None) -> set[str]:
    """Columns a WHERE fixes to one constant (``col = 'X'`` in a top-level AND)."""
    if where is None:
        return set()
    if where.get("type") == "CONJUNCTION_AND":
        return set().union(*(_pinned(c) for c in where["children"]))
    if where.get("type") == "COMPARE_EQUAL":
        sides = (where["left"], where["right"])
        refs = [s for s in sides if s["class"] == "COLUMN_REF"]
        if len(refs) == 1 and any(s["class"] == "CONSTANT" for s in sides):
            return {refs[0]["column_names"][-1]}
    return set()


def aggregate_functions(con: Any) -> frozenset[str]:
    """DuckDB's aggregate function names (sum, avg, min, max, median, arg_max, ...)."""
    rows = con.execute("SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_type = 'aggregate'")
    return frozenset(r[0].lower() for r in rows.fetchall())
