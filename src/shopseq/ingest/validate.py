"""Per-row validation rules, compiled from a layout into one vectorised SQL query.

Every rule is checked for every row, in DuckDB's vectorised engine rather than a Python loop over
rows (10-100x faster at the 1 M rows/s we aim for). The query returns the canonical columns of each
row plus the first rule it breaks (``reason``), the source column at fault and its raw value.

Rules, in the order they are checked (first failure wins, so every row has one reason):
missing required field -> unknown action -> unparseable timestamp -> timestamp out of range ->
non-numeric price -> negative price -> quantity not a positive integer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from shopseq.ingest.layouts import Layout, TsFormat
from shopseq.ingest.quarantine import QuarantineReason
from shopseq.ingest.readers import LINE_COLUMN
from shopseq.schema import (
    ACTION,
    CATEGORY_ID,
    ITEM_ID,
    PRICE,
    QUANTITY,
    QUERY,
    SESSION_ID,
    TS,
    USER_ID,
    Action,
    epoch_micros,
)

__all__ = ["RuleSet", "compile_rules", "validation_sql"]

_ORDINAL_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01T00:00:00Z: base of ordinal timestamps


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A layout's rules, ready to run.

    Attributes:
        layout: The layout they came from.
        ts_min: Earliest accepted timestamp (naive UTC).
        ts_max: Latest accepted timestamp (naive UTC).
        details: Reason -> "what is wrong; what is expected", for messages.
    """

    layout: Layout
    ts_min: datetime
    ts_max: datetime
    details: dict[QuarantineReason, str]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def compile_rules(layout: Layout, ts_min: datetime, ts_max: datetime) -> RuleSet:
    """Prepare the rules of ``layout`` with the accepted timestamp range.

    Args:
        layout: The input layout.
        ts_min: Earliest accepted timestamp (naive UTC).
        ts_max: Latest accepted timestamp (naive UTC).

    Returns:
        The rule set.
    """
    if layout.actions:
        allowed = ", ".join(sorted(layout.actions))
    else:
        allowed = ", ".join(a.value for a in Action)
    ts_expect = {
        TsFormat.AUTO: "expected ISO 8601 (e.g. 2024-01-31T12:00:00Z) or Unix seconds",
        TsFormat.ISO: "expected ISO 8601, e.g. 2024-01-31 12:00:00 or 2024-01-31T12:00:00Z",
        TsFormat.EPOCH_S: "expected Unix seconds, e.g. 1511544070",
        TsFormat.EPOCH_MS: "expected Unix milliseconds, e.g. 1433221332117",
        TsFormat.STRPTIME: f"expected the format {layout.ts_strptime!r}",
        TsFormat.DATE_PLUS_MS: "expected a date (YYYY-MM-DD) and integer milliseconds in "
        f"'{layout.ts_offset_ms_column}'",
        TsFormat.ORDINAL: "",
    }[layout.ts_format]
    details = {
        QuarantineReason.MISSING_FIELD: "is missing; a value is required",
        QuarantineReason.UNKNOWN_ACTION: f"is not a known action; expected one of {allowed} "
        "(map others with --action SOURCE=ACTION)",
        QuarantineReason.BAD_TIMESTAMP: f"is not a valid timestamp; {ts_expect}",
        QuarantineReason.TIMESTAMP_OUT_OF_RANGE: f"is out of range; expected a time between "
        f"{ts_min:%Y-%m-%d} and {ts_max:%Y-%m-%d %H:%M} UTC",
        QuarantineReason.NON_NUMERIC_PRICE: "is not a number; expected a finite decimal price",
        QuarantineReason.NEGATIVE_PRICE: "is negative; expected a price >= 0",
        QuarantineReason.BAD_QUANTITY: "is not a positive integer; expected a quantity >= 1 "
        "(returns and cancellations are not events shopseq models)",
    }
    return RuleSet(layout=layout, ts_min=ts_min, ts_max=ts_max, details=details)


def _text(layout: Layout, source: str) -> str:
    """SQL for a source column as trimmed text; '' and the layout's null markers become NULL."""
    expr = f"NULLIF(TRIM(CAST({_ident(source)} AS VARCHAR)), '')"
    markers = layout.null_values.get(source)
    if markers:
        listed = ", ".join(_quote(m) for m in markers)
        expr = f"CASE WHEN {expr} IN ({listed}) THEN NULL ELSE {expr} END"
    return expr


def _epoch_us(number_sql: str, scale: int) -> str:
    return f"CAST(ROUND({number_sql} * {1_000_000 // scale}) AS BIGINT)"


def _ts_micros(rules: RuleSet, schema: pa.Schema) -> tuple[str, str]:
    """SQL for (raw ts text, ts as epoch microseconds or NULL when unparseable)."""
    layout = rules.layout
    if layout.ts_format is TsFormat.ORDINAL:
        return "'ordinal'", f"({_ORDINAL_EPOCH_US} + {LINE_COLUMN} * 1000000)"
    source = layout.columns[TS]
    raw = _text(layout, source)
    col_type = schema.field(source).type
    iso = f"epoch_us(TRY_CAST({raw} AS TIMESTAMPTZ))"
    number = f"TRY_CAST({raw} AS DOUBLE)"
    fmt = layout.ts_format
    if fmt is TsFormat.AUTO and pa.types.is_timestamp(col_type):
        return raw, f"epoch_us(CAST({_ident(source)} AS TIMESTAMP))"
    if fmt is TsFormat.AUTO and (pa.types.is_integer(col_type) or pa.types.is_floating(col_type)):
        fmt = TsFormat.EPOCH_S
    if fmt is TsFormat.AUTO:
        return raw, f"COALESCE({iso}, CASE WHEN isfinite({number}) THEN {_epoch_us(number, 1)} END)"
    if fmt is TsFormat.ISO:
        return raw, iso
    if fmt in (TsFormat.EPOCH_S, TsFormat.EPOCH_MS):
        scale = 1 if fmt is TsFormat.EPOCH_S else 1000
        # Bound before scaling so absurd numbers become 'out of range', not an overflow error.
        return raw, (
            f"CASE WHEN isfinite({number}) AND abs({number}) < 1e15 "
            f"THEN {_epoch_us(number, scale)} END"
        )
    if fmt is TsFormat.STRPTIME:
        fmt_sql = _quote(layout.ts_strptime or "")
        return raw, f"epoch_us(CAST(TRY_STRPTIME({raw}, {fmt_sql}) AS TIMESTAMP))"
    # DATE_PLUS_MS
    offset = _text(layout, layout.ts_offset_ms_column or "")
    date_us = f"epoch_us(CAST(TRY_CAST({raw} AS DATE) AS TIMESTAMP))"
    return (
        f"{raw} || ' +' || COALESCE({offset}, '?') || 'ms'",
        f"{date_us} + TRY_CAST({offset} AS BIGINT) * 1000",
    )


def validation_sql(rules: RuleSet, schema: pa.Schema, relation: str) -> str:
    """Compile the rules into one query over ``relation`` (a registered raw batch).

    Args:
        rules: The compiled rules.
        schema: Arrow schema of the raw batch (typed Parquet columns are read as they are).
        relation: Name of the registered raw batch.

    Returns:
        SQL returning the canonical columns, ``__line``, ``reason``, ``bad_column``,
        ``bad_value``.
    """
    layout = rules.layout
    cols = layout.columns
    user = _text(layout, cols[USER_ID])
    if layout.user_fallback_column:
        fallback = _text(layout, layout.user_fallback_column)
        user = f"COALESCE({user}, {_quote(layout.user_fallback_column + ':')} || {fallback})"
    item = (
        _quote(layout.constant_item)
        if layout.constant_item is not None
        else _text(layout, cols[ITEM_ID])
    )
    if layout.constant_action is not None:
        action_raw, action = _quote(layout.constant_action.value), _quote(layout.constant_action)
    else:
        action_raw = _text(layout, cols[ACTION])
        if layout.actions:
            whens = " ".join(
                f"WHEN {_quote(k)} THEN {_quote(v.value)}" for k, v in layout.actions.items()
            )
            action = f"CASE {action_raw} {whens} END"
        else:
            known = ", ".join(_quote(a.value) for a in Action)
            action = f"CASE WHEN lower({action_raw}) IN ({known}) THEN lower({action_raw}) END"
    ts_raw, ts_us = _ts_micros(rules, schema)
    lo, hi = epoch_micros(rules.ts_min), epoch_micros(rules.ts_max)
    present = set(schema.names)

    def optional(name: str) -> str:
        if name in cols and cols[name] in present:
            return _text(layout, cols[name])
        return "CAST(NULL AS VARCHAR)"

    price_raw, qty_raw = optional(PRICE), optional(QUANTITY)

    ts_col = cols.get(TS, layout.ts_offset_ms_column or "")
    checks = [
        ("u IS NULL", QuarantineReason.MISSING_FIELD, cols[USER_ID], "u"),
        ("i IS NULL", QuarantineReason.MISSING_FIELD, cols.get(ITEM_ID, ""), "i"),
        ("a_raw IS NULL", QuarantineReason.MISSING_FIELD, cols.get(ACTION, ""), "a_raw"),
        ("a IS NULL", QuarantineReason.UNKNOWN_ACTION, cols.get(ACTION, ""), "a_raw"),
        ("t_raw IS NULL", QuarantineReason.MISSING_FIELD, ts_col, "t_raw"),
        ("t_us IS NULL", QuarantineReason.BAD_TIMESTAMP, ts_col, "t_raw"),
        (f"t_us < {lo} OR t_us >= {hi}", QuarantineReason.TIMESTAMP_OUT_OF_RANGE, ts_col, "t_raw"),
        (
            "p_raw IS NOT NULL AND (p IS NULL OR NOT isfinite(p))",
            QuarantineReason.NON_NUMERIC_PRICE,
            cols.get(PRICE, ""),
            "p_raw",
        ),
        ("p < 0", QuarantineReason.NEGATIVE_PRICE, cols.get(PRICE, ""), "p_raw"),
        (
            "q_raw IS NOT NULL AND (q IS NULL OR q < 1)",
            QuarantineReason.BAD_QUANTITY,
            cols.get(QUANTITY, ""),
            "q_raw",
        ),
    ]
    # The first failing check is found once per row (its number); reason, column and value are
    # then looked up by that number, so no check expression is evaluated twice.
    first_failure = " ".join(f"WHEN {c} THEN {n}" for n, (c, _, _, _) in enumerate(checks))
    reason = " ".join(f"WHEN {n} THEN {_quote(r.value)}" for n, (_, r, _, _) in enumerate(checks))
    bad_column = " ".join(f"WHEN {n} THEN {_quote(col)}" for n, (_, _, col, _) in enumerate(checks))
    bad_value = " ".join(f"WHEN {n} THEN {v}" for n, (_, _, _, v) in enumerate(checks))
    price = "p / q" if layout.price_is_total else "p"
    return f"""
WITH parsed AS (
    SELECT
        {LINE_COLUMN},
        {user} AS u,
        {item} AS i,
        {action_raw} AS a_raw,
        {action} AS a,
        {ts_raw} AS t_raw,
        {ts_us} AS t_us,
        {price_raw} AS p_raw,
        TRY_CAST({price_raw} AS DOUBLE) AS p,
        {qty_raw} AS q_raw,
        CASE WHEN TRY_CAST({qty_raw} AS DOUBLE) = ROUND(TRY_CAST({qty_raw} AS DOUBLE))
             AND abs(TRY_CAST({qty_raw} AS DOUBLE)) < 2e9
             THEN CAST(TRY_CAST({qty_raw} AS DOUBLE) AS INTEGER) END AS q,
        {optional(SESSION_ID)} AS s,
        {optional(CATEGORY_ID)} AS c,
        {optional(QUERY)} AS qu
    FROM {relation}
), checked AS (
    SELECT *, CASE {first_failure} END AS _failure FROM parsed
)
SELECT
    u AS {USER_ID},
    i AS {ITEM_ID},
    a AS {ACTION},
    CASE WHEN t_us >= {lo} AND t_us < {hi} THEN make_timestamp(t_us) END AS {TS},
    s AS {SESSION_ID},
    c AS {CATEGORY_ID},
    {price} AS {PRICE},
    q AS {QUANTITY},
    qu AS {QUERY},
    {LINE_COLUMN},
    CASE _failure {reason} END AS reason,
    CASE _failure {bad_column} END AS bad_column,
    CAST(CASE _failure {bad_value} END AS VARCHAR) AS bad_value
FROM checked
"""
