"""Per-row validation rules, compiled from a layout into one vectorised SQL query.

Every rule is checked for every row, in DuckDB's vectorised engine rather than a Python loop over
rows (10-100x faster at the 1 M rows/s we aim for). The query returns the canonical columns of each
row plus the first rule it breaks (``reason``), the source column at fault and its raw value.

Rules, in the order they are checked (first failure wins, so every row has one reason):
(an id holding a control character, when the reader has not checked it) -> missing required
field -> unknown action -> unparseable timestamp -> timestamp out of range ->
non-numeric price -> negative price -> quantity not a positive integer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from shopseq.errors import ConfigError
from shopseq.ingest.csvrecords import LINE_COLUMN
from shopseq.ingest.layouts import Layout, TsFormat
from shopseq.ingest.quarantine import CONTROL_CHARACTER_ID, QuarantineReason
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
    if layout.ts_format is TsFormat.STRPTIME:
        _check_strptime(layout.ts_strptime or "")
    ts_expect = {
        TsFormat.AUTO: "expected ISO 8601 (e.g. 2024-01-31T12:00:00Z, offsets within ±14:00) "
        "or Unix seconds",
        TsFormat.ISO: "expected ISO 8601, e.g. 2024-01-31 12:00:00 or 2024-01-31T12:00:00Z "
        "(offsets within ±14:00)",
        TsFormat.EPOCH_S: "expected Unix seconds, e.g. 1511544070",
        TsFormat.EPOCH_MS: "expected Unix milliseconds, e.g. 1433221332117",
        TsFormat.EPOCH_US: "expected Unix microseconds, e.g. 1704067200000000",
        TsFormat.EPOCH_NS: "expected Unix nanoseconds, e.g. 1704067200000000000",
        TsFormat.STRPTIME: f"expected the format {layout.ts_strptime!r}",
        TsFormat.DATE_PLUS_MS: "expected a date (YYYY-MM-DD) and integer milliseconds in "
        f"'{layout.ts_offset_ms_column}'",
        TsFormat.ORDINAL: "",
    }[layout.ts_format]
    details = {
        QuarantineReason.BAD_ID: CONTROL_CHARACTER_ID,
        QuarantineReason.MISSING_FIELD: "is missing; a value is required",
        QuarantineReason.UNKNOWN_ACTION: f"is not a known action; expected one of {allowed} "
        "(map others with --action SOURCE=ACTION)",
        QuarantineReason.BAD_TIMESTAMP: f"is not a valid timestamp; {ts_expect}",
        QuarantineReason.TIMESTAMP_OUT_OF_RANGE: f"is out of range; expected a time between "
        f"{ts_min:%Y-%m-%d} and {ts_max:%Y-%m-%d %H:%M} UTC" + _unit_hint(layout.ts_format),
        QuarantineReason.NON_NUMERIC_PRICE: "is not a number; expected a finite decimal price",
        QuarantineReason.NEGATIVE_PRICE: "is negative; expected a price >= 0",
        QuarantineReason.BAD_QUANTITY: "is not a positive integer; expected a quantity >= 1 "
        "(returns and cancellations are not events shopseq models)",
    }
    return RuleSet(layout=layout, ts_min=ts_min, ts_max=ts_max, details=details)


def _unit_hint(fmt: TsFormat) -> str:
    if fmt in (TsFormat.AUTO, TsFormat.EPOCH_S):
        return (
            " (numbers are read as Unix seconds; for other units use --ts-format epoch_ms, "
            "epoch_us or epoch_ns)"
        )
    return ""


def _check_strptime(fmt: str) -> None:
    """Reject a strptime format DuckDB cannot use (it fails even inside TRY_STRPTIME)."""
    try:
        duckdb.connect().execute("SELECT TRY_STRPTIME('2024-01-01', ?)", [fmt]).fetchall()
    except duckdb.Error as err:
        message = str(err).split("Error: ", 1)[-1]
        raise ConfigError(
            f"ts_strptime {fmt!r} is not a valid format ({message}); use C strptime codes, "
            "e.g. '%Y-%m-%d %H:%M:%S'"
        ) from err


def _text(layout: Layout, source: str) -> str:
    """SQL for a source column as trimmed text; '' and the layout's null markers become NULL."""
    expr = f"NULLIF(TRIM(CAST({_ident(source)} AS VARCHAR)), '')"
    markers = layout.null_values.get(source)
    if markers:
        listed = ", ".join(_quote(m) for m in markers)
        expr = f"CASE WHEN {expr} IN ({listed}) THEN NULL ELSE {expr} END"
    return expr


def _typed_or_text(layout: Layout, source: str, col_type: pa.DataType) -> str:
    """A typed number or time as it is (no null markers apply to it), else its text.

    Formatting every typed value as text only to parse it back (price, quantity, a Parquet
    timestamp) was most of the rules' cost on typed files; the value and its text in messages
    (``CAST(... AS VARCHAR)``) are the same either way.
    """
    # Not float32: its text ('0.1') reads back as a different double than the float does.
    typed = (
        pa.types.is_integer(col_type)
        or pa.types.is_float64(col_type)
        or pa.types.is_timestamp(col_type)
    )
    if typed and not layout.null_values.get(source):
        return _ident(source)
    return _text(layout, source)


#: Stand-in (in µs) for a time too far from 1970 to compute: outside every accepted range.
_FAR_US = 9 * 10**18


def _epoch_us(raw: str, micros_per_unit: float) -> str:
    """SQL for epoch microseconds of a number of units in ``raw``, never overflowing.

    Unparseable text is NULL (a bad timestamp); a number too large to convert becomes
    ``±_FAR_US`` (so it is reported as out of range, not as an overflow error).
    """
    number = f"TRY_CAST({raw} AS DOUBLE)"
    limit = _FAR_US / micros_per_unit
    scaled = f"CAST(ROUND({number} * {micros_per_unit!r}) AS BIGINT)"
    if micros_per_unit < 1:
        # Nanoseconds exceed a double's 53 bits: integers are divided exactly.
        whole = f"TRY_CAST({raw} AS HUGEINT)"
        is_int = f"(strpos({raw}, '.') = 0 AND strpos(lower({raw}), 'e') = 0)"
        scaled = (
            f"CASE WHEN {is_int} AND {whole} IS NOT NULL THEN CAST({whole} // "
            f"{round(1 / micros_per_unit)} AS BIGINT) ELSE {scaled} END"
        )
    return (
        f"CASE WHEN NOT isfinite({number}) THEN NULL "
        f"WHEN abs({number}) >= {limit!r} THEN CAST(sign({number}) AS BIGINT) * {_FAR_US} "
        f"ELSE {scaled} END"
    )


# An ISO time's UTC offset: sign, hours, minutes, seconds (DuckDB accepts any, even +25:00).
_OFFSET_RE = r"[0-9]\s*([+-])([0-9]{1,2}):?([0-9]{2})?:?([0-9]{2})?\s*$"
_MAX_OFFSET_MINUTES = 14 * 60


def _iso_us(raw: str) -> str:
    """SQL for epoch microseconds of ISO 8601 text (offsets within ±14:00), else NULL."""
    parsed = f"epoch_us(TRY_CAST({raw} AS TIMESTAMPTZ))"
    tail = f"substr({raw}, 11)"
    # The offset's parts are read from one regexp_extract, bound to a lambda's parameter: written
    # out at each of its 7 uses, DuckDB compiled the pattern 7 times in every query, most of what
    # validating a small batch (the service's posted events) cost. The same checks, row for row.
    offset = "__offset"
    minutes = (
        f"(COALESCE(TRY_CAST(NULLIF({offset}.h, '') AS INTEGER), 0) * 60 "
        f"+ COALESCE(TRY_CAST(NULLIF({offset}.m, '') AS INTEGER), 0))"
    )
    offset_ok = (
        f"(COALESCE(TRY_CAST(NULLIF({offset}.m, '') AS INTEGER), 0) < 60 "
        f"AND COALESCE(TRY_CAST(NULLIF({offset}.s, '') AS INTEGER), 0) < 60 "
        f"AND ({minutes} < {_MAX_OFFSET_MINUTES} OR ({minutes} = {_MAX_OFFSET_MINUTES} "
        f"AND COALESCE(TRY_CAST(NULLIF({offset}.s, '') AS INTEGER), 0) = 0)))"
    )
    parts = f"regexp_extract({raw}, '{_OFFSET_RE}', ['sg', 'h', 'm', 's'])"
    offset_ok = f"list_transform([{parts}], lambda {offset}: {offset_ok})[1]"
    # Without an offset, the plain TIMESTAMP cast reads the same instant as TIMESTAMPTZ at UTC
    # (or fails, e.g. on a zone name: TIMESTAMPTZ then reads it) and costs ~6x less (ICU).
    plain = f"COALESCE(epoch_us(TRY_CAST({raw} AS TIMESTAMP)), {parsed})"
    # Words DuckDB reads as times ('epoch', 'infinity', 'today') are not timestamps in a log.
    return (
        f"CASE WHEN ascii({raw}) BETWEEN 48 AND 57 THEN CASE "
        f"WHEN strpos({tail}, '+') = 0 AND strpos({tail}, '-') = 0 THEN {plain} "
        f"WHEN {offset_ok} THEN {parsed} END END"
    )


_TS = '"__ts"'  # the timestamp text, computed once per row (it is used many times below)
_TS_OFFSET = '"__ts_offset"'


def _ts_micros(rules: RuleSet, schema: pa.Schema) -> tuple[str, str, dict[str, str]]:
    """SQL for (raw ts text, ts as epoch microseconds or NULL, columns to compute first)."""
    layout = rules.layout
    if layout.ts_format is TsFormat.ORDINAL:
        return "'ordinal'", f"({_ORDINAL_EPOCH_US} + {LINE_COLUMN} * 1000000)", {}
    source = layout.columns[TS]
    pre = {_TS: _text(layout, source)}
    raw = _TS
    col_type = schema.field(source).type
    fmt = layout.ts_format
    if fmt is TsFormat.AUTO and pa.types.is_timestamp(col_type):
        # Readers hand typed times over as naive UTC microseconds, already range-checked.
        pre = {_TS: _typed_or_text(layout, source, col_type)}
        return raw, f"epoch_us(CAST({_ident(source)} AS TIMESTAMP))", pre
    if fmt is TsFormat.AUTO and (pa.types.is_integer(col_type) or pa.types.is_floating(col_type)):
        fmt = TsFormat.EPOCH_S
    if fmt is TsFormat.AUTO:
        return raw, f"COALESCE({_iso_us(raw)}, {_epoch_us(raw, 1_000_000)})", pre
    if fmt is TsFormat.ISO:
        return raw, _iso_us(raw), pre
    if fmt in _MICROS_PER_UNIT:
        return raw, _epoch_us(raw, _MICROS_PER_UNIT[fmt]), pre
    if fmt is TsFormat.STRPTIME:
        fmt_sql = _quote(layout.ts_strptime or "")
        return raw, f"epoch_us(TRY_CAST(TRY_STRPTIME({raw}, {fmt_sql}) AS TIMESTAMP))", pre
    # DATE_PLUS_MS
    pre[_TS_OFFSET] = _text(layout, layout.ts_offset_ms_column or "")
    offset = _TS_OFFSET
    date_us = f"epoch_us(TRY_CAST(TRY_CAST({raw} AS DATE) AS TIMESTAMP))"
    return (
        f"{raw} || ' +' || COALESCE({offset}, '?') || 'ms'",
        f"{date_us} + {_epoch_us(offset, 1000)}",
        pre,
    )


_MICROS_PER_UNIT = {
    TsFormat.EPOCH_S: 1_000_000,
    TsFormat.EPOCH_MS: 1_000,
    TsFormat.EPOCH_US: 1,
    TsFormat.EPOCH_NS: 0.001,
}


#: A control character (what an id may not hold), as an RE2 class.
_CONTROL_RE = r"[\x00-\x1f\x7f]"


def validation_sql(
    rules: RuleSet, schema: pa.Schema, relation: str, *, control_ids: Sequence[str] = ()
) -> str:
    """Compile the rules into one query over ``relation`` (a registered raw batch).

    Args:
        rules: The compiled rules.
        schema: Arrow schema of the raw batch (typed Parquet columns are read as they are).
        relation: Name of the registered raw batch, or a table function such as
            ``read_parquet(...)``.
        control_ids: Source id columns to check for control characters first (``bad_id``),
            for relations no reader has checked (``readers.read_batches`` checks its own).

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
    ts_raw, ts_us, pre = _ts_micros(rules, schema)
    lo, hi = epoch_micros(rules.ts_min), epoch_micros(rules.ts_max)
    present = set(schema.names)

    def optional(name: str) -> str:
        if name in cols and cols[name] in present:
            return _text(layout, cols[name])
        return "CAST(NULL AS VARCHAR)"

    def number(name: str) -> str:
        if name in cols and cols[name] in present:
            return _typed_or_text(layout, cols[name], schema.field(cols[name]).type)
        return "CAST(NULL AS VARCHAR)"

    price_raw, qty_raw = number(PRICE), number(QUANTITY)
    signed_q = (
        f"CASE WHEN TRY_CAST({qty_raw} AS DOUBLE) = ROUND(TRY_CAST({qty_raw} AS DOUBLE)) "
        f"AND abs(TRY_CAST({qty_raw} AS DOUBLE)) < 2e9 "
        f"THEN CAST(TRY_CAST({qty_raw} AS DOUBLE) AS INTEGER) END"
    )
    quantity = signed_q
    # Returns (Online Retail): a negative quantity or a marked invoice is a `return` of |q| units.
    is_return = []
    if layout.return_on_negative_quantity:
        is_return.append(f"COALESCE({signed_q} < 0, false)")
        quantity = f"abs({signed_q})"
    if layout.return_column and layout.return_prefix and layout.return_column in present:
        marker = _text(layout, layout.return_column)
        is_return.append(f"COALESCE(starts_with({marker}, {_quote(layout.return_prefix)}), false)")
    if is_return:
        returned = _quote(Action.RETURN.value)
        action = f"CASE WHEN {' OR '.join(is_return)} THEN {returned} ELSE {action} END"

    ts_col = cols.get(TS, layout.ts_offset_ms_column or "")
    # Raw id text (untrimmed, as the readers check it) carried into the checks.
    raw_ids = {
        f'"__id{k}"': f"CAST({_ident(name)} AS VARCHAR)" for k, name in enumerate(control_ids)
    }
    checks = [
        (f"regexp_matches({alias}, '{_CONTROL_RE}')", QuarantineReason.BAD_ID, name, alias)
        for alias, name in zip(raw_ids, control_ids, strict=True)
    ]
    checks += [
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
    # then looked up by that number, so no check expression is evaluated twice. The guard
    # `random() < 2` (always true) is volatile, so DuckDB cannot push a filter on the result
    # (`INSERT ... WHERE reason IS NULL`) down into the projections, which would inline and
    # evaluate the rule chain there once more for every row (10x slower, measured on 2 M rows).
    first_failure = " ".join(f"WHEN {c} THEN {n}" for n, (c, _, _, _) in enumerate(checks))
    reason = " ".join(f"WHEN {n} THEN {_quote(r.value)}" for n, (_, r, _, _) in enumerate(checks))
    bad_column = " ".join(f"WHEN {n} THEN {_quote(col)}" for n, (_, _, col, _) in enumerate(checks))
    bad_value = " ".join(
        f"WHEN {n} THEN CAST({v} AS VARCHAR)" for n, (_, _, _, v) in enumerate(checks)
    )
    price = "p / q" if layout.price_is_total else "p"
    computed = "".join(f", {expr} AS {name}" for name, expr in pre.items())
    carried = "".join(f"{expr} AS {alias},\n        " for alias, expr in raw_ids.items())
    return f"""
WITH src AS (
    SELECT *{computed} FROM {relation}
), parsed AS (
    SELECT
        {LINE_COLUMN},
        {carried}{user} AS u,
        {item} AS i,
        {action_raw} AS a_raw,
        {action} AS a,
        {ts_raw} AS t_raw,
        {ts_us} AS t_us,
        {price_raw} AS p_raw,
        TRY_CAST({price_raw} AS DOUBLE) AS p,
        {qty_raw} AS q_raw,
        {quantity} AS q,
        {optional(SESSION_ID)} AS s,
        {optional(CATEGORY_ID)} AS c,
        {optional(QUERY)} AS qu
    FROM src
), checked AS (
    SELECT *, CASE WHEN random() < 2 THEN CASE {first_failure} END END AS _failure FROM parsed
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
