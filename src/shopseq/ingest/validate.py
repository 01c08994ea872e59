"""Per-row validation rules, compiled from a layout into one vectorised SQL query.

Every rule is checked for every row, in DuckDB's vectorised engine rather than a Python loop over
rows (10-100x faster at the 1 M rows/s we aim for). The query returns the canonical columns of each
row plus the first rule it breaks (``reason``), the source column at fault and its raw value.

Rules, in the order they are checked (first failure wins, so every row has one reason):
(an id holding a control character, when the reader has not checked it) -> missing required
field -> unknown action -> unparseable timestamp -> timestamp out of range ->
non-numeric price -> negative price -> quantity not a positive integer.

One definition, two engines: the rules, their order, reasons, columns and values are written
once below; only the primitives differ between DuckDB and Spark SQL (``Dialect``: casts that may
fail, timestamp parsing, regexps, identifiers and literals). Where the engines' own functions
disagree, the Spark primitive is narrowed to what DuckDB does (number and timestamp text is
matched to the grammar DuckDB accepts before Spark casts it; Spark 4 runs in ANSI mode, so every
cast that may fail is a ``TRY_CAST`` and the price total divides with ``try_divide``).
``tests/test_spark_portability.py`` runs the same probe values through both and requires the
same reason, column, value and timestamp for each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

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

__all__ = ["Dialect", "RuleSet", "compile_rules", "spark_strptime", "validation_sql"]

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


#: The engines the rules compile to.
Dialect = Literal["duckdb", "spark"]


@dataclass(frozen=True, slots=True)
class _Sql:
    """The SQL primitives the rules are written in, for one engine.

    Everything else in the query (the rule chain, its order, reasons and values) is the same
    text on both engines. The DuckDB primitives are the query this module always produced.
    """

    dialect: Dialect
    #: (text expression, column) pairs: a column of the query that already holds
    #: :meth:`unplain` of that expression (see ``validation_sql``).
    plain: tuple[tuple[str, str], ...] = ()

    @property
    def spark(self) -> bool:
        return self.dialect == "spark"

    @property
    def text_type(self) -> str:
        return "STRING" if self.spark else "VARCHAR"

    def quote(self, text: str) -> str:
        """A string literal (Spark SQL reads backslashes in literals as escapes)."""
        if self.spark:
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return _quote(text)

    def ident(self, name: str) -> str:
        if self.spark:
            return "`" + name.replace("`", "``") + "`"
        return _ident(name)

    def trim(self, expr: str) -> str:
        # DuckDB's TRIM removes exactly the Unicode space separators (Zs, measured over every
        # code point below U+10000); Spark's removes only U+0020.
        if self.spark:
            return f"regexp_replace({expr}, {self.quote(_ZS_EDGES)}, '')"
        # Text of printable ASCII without a space has no Zs at either end: TRIM would return it
        # unchanged, and the GLOB that says so costs less than the TRIM (most ids of a real log
        # are such text; 4 ids x 10 M rows: 0.80 -> 0.60 s). tests/ingest/test_validate.py
        # checks the two agree at every code point below U+10000.
        return f"CASE WHEN {self.unplain(expr)} THEN TRIM({expr}) ELSE {expr} END"

    def unplain(self, expr: str) -> str:
        """Whether the text holds a character other than printable, non-space ASCII."""
        for text, column in self.plain:
            if text == expr:
                return _ident(column)
        return f"({expr} GLOB '*[!!-~]*')"

    def number(self, expr: str, *, typed: bool = False) -> str:
        """A double from text (NULL when not a number) or from a typed number."""
        if not self.spark:
            return f"TRY_CAST({expr} AS DOUBLE)"
        if typed:
            return f"CAST({expr} AS DOUBLE)"
        # Spark also reads '1.5d', '0x1p3' or ' 5 ' as numbers: match DuckDB's grammar first
        # (which has 'inf', 'infinity' and 'nan' in any case; every rule then says "not finite").
        return (
            f"CASE WHEN {expr} RLIKE {self.quote(_NUMBER_RE)} "
            f"THEN TRY_CAST(regexp_replace({expr}, '[_\\\\s]', '') AS DOUBLE) END"
        )

    def isfinite(self, expr: str) -> str:
        if self.spark:
            return f"(NOT isnan({expr}) AND abs({expr}) != double('Infinity'))"
        return f"isfinite({expr})"

    def matches(self, expr: str, pattern: str) -> str:
        if self.spark:
            return f"({expr} RLIKE {self.quote(pattern)})"
        return f"regexp_matches({expr}, '{pattern}')"

    def has_control(self, expr: str) -> str:
        """Whether the text holds a control character (``_CONTROL_RE``)."""
        if self.spark:
            return self.matches(expr, _CONTROL_RE)
        # Only text that is not plain ASCII can hold one, so the regexp runs on those rows
        # alone (4 ids x 10 M rows: 0.94 s for the regexp, 0.59 s for the GLOB).
        return f"({self.unplain(expr)} AND {self.matches(expr, _CONTROL_RE)})"

    def instr(self, expr: str, needle: str) -> str:
        return f"{'instr' if self.spark else 'strpos'}({expr}, '{needle}')"

    def starts_with(self, expr: str, prefix: str) -> str:
        return f"{'startswith' if self.spark else 'starts_with'}({expr}, {self.quote(prefix)})"

    def epoch_us_of(self, timestamp: str) -> str:
        return f"{'unix_micros' if self.spark else 'epoch_us'}({timestamp})"

    def timestamp_of_us(self, micros: str) -> str:
        return f"{'timestamp_micros' if self.spark else 'make_timestamp'}({micros})"

    def random(self) -> str:
        return "rand()" if self.spark else "random()"

    def divide(self, a: str, b: str) -> str:
        # Spark 4 runs in ANSI mode: a division by zero (a rejected row's quantity) fails there.
        return f"try_divide({a}, {b})" if self.spark else f"{a} / {b}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


#: Leading or trailing Unicode space separators (what DuckDB's TRIM removes), as a Java regexp.
_ZS_EDGES = r"^\p{Zs}+|\p{Zs}+$"
#: The numbers DuckDB's TRY_CAST(... AS DOUBLE) reads, as a Java regexp (probed: '+5', '.5',
#: '5.', '1e5', '1.5_5', 'inf', 'NaN'; not '1_', '_1', '1__0', '1e', '0x10').
_NUMBER_RE = (
    r"^\s*[+-]?(([0-9]+(_[0-9]+)*(\.([0-9]+(_[0-9]+)*)?)?|\.[0-9]+(_[0-9]+)*)"
    r"([eE][+-]?[0-9]+(_[0-9]+)*)?|(?i:inf|infinity|nan))\s*$"
)


_DUCKDB = _Sql("duckdb")
_SPARK = _Sql("spark")


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


def _text(layout: Layout, source: str, sql: _Sql = _DUCKDB) -> str:
    """SQL for a source column as trimmed text; '' and the layout's null markers become NULL."""
    expr = f"NULLIF({sql.trim(f'CAST({sql.ident(source)} AS {sql.text_type})')}, '')"
    markers = layout.null_values.get(source)
    if markers:
        listed = ", ".join(sql.quote(m) for m in markers)
        expr = f"CASE WHEN {expr} IN ({listed}) THEN NULL ELSE {expr} END"
    return expr


def _is_typed(layout: Layout, source: str, col_type: pa.DataType) -> bool:
    # Not float32: its text ('0.1') reads back as a different double than the float does.
    typed = (
        pa.types.is_integer(col_type)
        or pa.types.is_float64(col_type)
        or pa.types.is_timestamp(col_type)
    )
    return bool(typed and not layout.null_values.get(source))


def _typed_or_text(layout: Layout, source: str, col_type: pa.DataType, sql: _Sql = _DUCKDB) -> str:
    """A typed number or time as it is (no null markers apply to it), else its text.

    Formatting every typed value as text only to parse it back (price, quantity, a Parquet
    timestamp) was most of the rules' cost on typed files; the value and its text in messages
    (``CAST(... AS VARCHAR)``) are the same either way.
    """
    if _is_typed(layout, source, col_type):
        return sql.ident(source)
    return _text(layout, source, sql)


#: Stand-in (in µs) for a time too far from 1970 to compute: outside every accepted range.
_FAR_US = 9 * 10**18


def _epoch_us(raw: str, micros_per_unit: float, sql: _Sql = _DUCKDB, *, typed: bool = False) -> str:
    """SQL for epoch microseconds of a number of units in ``raw``, never overflowing.

    Unparseable text is NULL (a bad timestamp); a number too large to convert becomes
    ``±_FAR_US`` (so it is reported as out of range, not as an overflow error).
    """
    number = sql.number(raw, typed=typed)
    limit = _FAR_US / micros_per_unit
    scaled = f"CAST(ROUND({number} * {micros_per_unit!r}) AS BIGINT)"
    if micros_per_unit < 1:
        # Nanoseconds exceed a double's 53 bits: integers are divided exactly.
        if sql.spark:
            whole = f"TRY_CAST({raw} AS DECIMAL(38, 0))"
            exact = f"{whole} DIV {round(1 / micros_per_unit)}"
        else:
            whole = f"TRY_CAST({raw} AS HUGEINT)"
            exact = f"{whole} // {round(1 / micros_per_unit)}"
        is_int = f"({sql.instr(raw, '.')} = 0 AND {sql.instr(f'lower({raw})', 'e')} = 0)"
        scaled = (
            f"CASE WHEN {is_int} AND {whole} IS NOT NULL THEN CAST({exact} AS BIGINT) "
            f"ELSE {scaled} END"
        )
    return (
        f"CASE WHEN NOT {sql.isfinite(number)} THEN NULL "
        f"WHEN abs({number}) >= {limit!r} THEN CAST(sign({number}) AS BIGINT) * {_FAR_US} "
        f"ELSE {scaled} END"
    )


# An ISO time's UTC offset: sign, hours, minutes, seconds (DuckDB accepts any, even +25:00).
_OFFSET_RE = r"[0-9]\s*([+-])([0-9]{1,2}):?([0-9]{2})?:?([0-9]{2})?\s*$"
_MAX_OFFSET_MINUTES = 14 * 60


def _iso_us(raw: str, sql: _Sql = _DUCKDB) -> str:
    """SQL for epoch microseconds of ISO 8601 text (offsets within ±14:00), else NULL."""
    if sql.spark:
        return _iso_us_spark(raw, sql)
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


#: ISO 8601 as DuckDB reads it, as a Java regexp with one group per part: year, month, day
#: (``-`` or ``/``, the same twice), hour, minute, second, fraction, then ``Z``, ``UTC`` or an
#: offset (sign, hours, minutes, seconds). Spark's own cast reads other text ('2024',
#: '2024-01', hour 24 never) and cannot be narrowed to DuckDB's, so Spark computes the instant
#: from these parts instead.
_ISO_RE = (
    r"^([0-9]{4,6})([-/])([0-9]{1,2})\2([0-9]{1,2})"
    r"(?:(?:T|[ \t]+)([0-9]{1,3}):([0-9]{1,2})(?::([0-9]{1,2})(?:\.([0-9]*))?)?)?"
    r"(?:(Z|[ \t]+(?i:UTC))|([+-])([0-9]{2}):?([0-9]{2})?:?([0-9]{2})?)?[ \t]*$"
)


def _iso_us_spark(raw: str, sql: _Sql) -> str:
    # The parts are cut out once per row (one regexp) and bound to `p` by a lambda over a
    # one-element array, so the arithmetic below reads them without re-running the regexp.
    groups = "|".join(f"${k}" for k in (1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13))
    pattern = sql.quote(_ISO_RE)
    parts = (
        f"CASE WHEN {raw} RLIKE {pattern} THEN "
        f"split(regexp_replace({raw}, {pattern}, '{groups}'), '\\\\|', -1) END"
    )

    def num(k: int) -> str:
        return f"COALESCE(TRY_CAST(NULLIF(p[{k}], '') AS BIGINT), 0)"

    y, m, d = (f"TRY_CAST(p[{k}] AS BIGINT)" for k in (0, 1, 2))
    hh, mi, ss = num(3), num(4), num(5)
    frac = "TRY_CAST(rpad(substr(p[6], 1, 6), 6, '0') AS BIGINT)"
    oh, om, os_ = num(8), num(9), num(10)
    leap = f"(({y} % 4 = 0 AND {y} % 100 != 0) OR {y} % 400 = 0)"
    month_days = (
        f"CASE WHEN {m} IN (4, 6, 9, 11) THEN 30 WHEN {m} = 2 THEN "
        f"CASE WHEN {leap} THEN 29 ELSE 28 END ELSE 31 END"
    )
    # Days since 1970-01-01 of a proleptic Gregorian date (years >= 0: integer division).
    y_adj = f"({y} - CASE WHEN {m} <= 2 THEN 1 ELSE 0 END)"
    era = f"({y_adj} DIV 400)"
    yoe = f"({y_adj} - {era} * 400)"
    doy = f"((153 * ({m} + CASE WHEN {m} > 2 THEN -3 ELSE 9 END) + 2) DIV 5 + {d} - 1)"
    doe = f"({yoe} * 365 + {yoe} DIV 4 - {yoe} DIV 100 + {doy})"
    days = f"({era} * 146097 + {doe} - 719468)"
    seconds = f"(({hh} * 60 + {mi}) * 60 + {ss})"
    offset_s = f"(({oh} * 60 + {om}) * 60 + {os_})"
    sign = "CASE WHEN p[7] = '-' THEN -1 ELSE 1 END"
    valid = (
        f"{m} BETWEEN 1 AND 12 AND {d} BETWEEN 1 AND {month_days} "
        f"AND ({hh} < 24 OR ({hh} = 24 AND {mi} = 0 AND {ss} = 0)) AND {mi} < 60 AND {ss} < 60 "
        f"AND {om} < 60 AND {os_} < 60 AND ({oh} * 60 + {om} < {_MAX_OFFSET_MINUTES} "
        f"OR ({oh} * 60 + {om} = {_MAX_OFFSET_MINUTES} AND {os_} = 0))"
    )
    # Years past 99999 (DuckDB reads up to 294247) are far outside every accepted range.
    micros = (
        f"CASE WHEN p IS NULL OR NOT ({valid}) THEN NULL WHEN {y} > 99999 THEN {_FAR_US} "
        f"ELSE ({days} * 86400 + {seconds} - {sign} * {offset_s}) * 1000000 "
        f"+ COALESCE({frac}, 0) END"
    )
    return f"transform(array({parts}), p -> {micros})[0]"


#: The timestamp text, computed once per row (it is used many times below).
_TS_NAME = "__ts"
_TS_OFFSET_NAME = "__ts_offset"


def _ts_micros(
    rules: RuleSet, schema: pa.Schema, sql: _Sql = _DUCKDB
) -> tuple[str, str, dict[str, str]]:
    """SQL for (raw ts text, ts as epoch microseconds or NULL, columns to compute first)."""
    layout = rules.layout
    if layout.ts_format is TsFormat.ORDINAL:
        return "'ordinal'", f"({_ORDINAL_EPOCH_US} + {LINE_COLUMN} * 1000000)", {}
    source = layout.columns[TS]
    ts_name = sql.ident(_TS_NAME)
    pre = {ts_name: _text(layout, source, sql)}
    raw = ts_name
    col_type = schema.field(source).type
    fmt = layout.ts_format
    if fmt is TsFormat.AUTO and pa.types.is_timestamp(col_type):
        # Readers hand typed times over as naive UTC microseconds, already range-checked.
        pre = {ts_name: _typed_or_text(layout, source, col_type, sql)}
        return raw, sql.epoch_us_of(f"CAST({sql.ident(source)} AS TIMESTAMP)"), pre
    if fmt is TsFormat.AUTO and (pa.types.is_integer(col_type) or pa.types.is_floating(col_type)):
        fmt = TsFormat.EPOCH_S
    if fmt is TsFormat.AUTO:
        return raw, f"COALESCE({_iso_us(raw, sql)}, {_epoch_us(raw, 1_000_000, sql)})", pre
    if fmt is TsFormat.ISO:
        return raw, _iso_us(raw, sql), pre
    if fmt in _MICROS_PER_UNIT:
        return raw, _epoch_us(raw, _MICROS_PER_UNIT[fmt], sql), pre
    if fmt is TsFormat.STRPTIME:
        if sql.spark:
            pattern = sql.quote(spark_strptime(layout.ts_strptime or ""))
            return raw, f"unix_micros(try_to_timestamp({raw}, {pattern}))", pre
        fmt_sql = _quote(layout.ts_strptime or "")
        return raw, f"epoch_us(TRY_CAST(TRY_STRPTIME({raw}, {fmt_sql}) AS TIMESTAMP))", pre
    # DATE_PLUS_MS
    offset = sql.ident(_TS_OFFSET_NAME)
    pre[offset] = _text(layout, layout.ts_offset_ms_column or "", sql)
    if sql.spark:
        date_re = sql.quote(r"^[0-9]{4}[-/][0-9]{1,2}[-/][0-9]{1,2}$")
        date_us = (
            f"CASE WHEN {raw} RLIKE {date_re} THEN unix_micros(CAST(TRY_CAST("
            f"regexp_replace({raw}, '/', '-') AS DATE) AS TIMESTAMP)) END"
        )
    else:
        date_us = f"epoch_us(TRY_CAST(TRY_CAST({raw} AS DATE) AS TIMESTAMP))"
    return (
        f"{raw} || ' +' || COALESCE({offset}, '?') || 'ms'",
        f"{date_us} + {_epoch_us(offset, 1000, sql)}",
        pre,
    )


_MICROS_PER_UNIT = {
    TsFormat.EPOCH_S: 1_000_000,
    TsFormat.EPOCH_MS: 1_000,
    TsFormat.EPOCH_US: 1,
    TsFormat.EPOCH_NS: 0.001,
}

#: strptime codes -> Spark datetime pattern letters (one or two digits read, as DuckDB does).
_STRPTIME_TO_SPARK = {
    "Y": "yyyy",
    "m": "M",
    "d": "d",
    "H": "H",
    "M": "m",
    "S": "s",
    "f": "SSSSSS",
    "y": "yy",
    "b": "MMM",
    "j": "D",
}


def spark_strptime(fmt: str) -> str:
    """The Spark datetime pattern of a C strptime format.

    Args:
        fmt: The layout's ``ts_strptime``.

    Returns:
        The pattern for Spark's ``try_to_timestamp``.

    Raises:
        ConfigError: For a code Spark ingest does not translate.
    """
    out: list[str] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            text = "".join(literal).replace("'", "''")
            out.append(f"'{text}'" if any(c.isalpha() for c in text) else text)
            literal.clear()

    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%" and i + 1 < len(fmt):
            code = fmt[i + 1]
            i += 2
            if code == "%":
                literal.append("%")
                continue
            if code not in _STRPTIME_TO_SPARK:
                raise ConfigError(
                    f"ts_strptime {fmt!r}: %{code} is not translated for --engine spark; use "
                    f"%{', %'.join(_STRPTIME_TO_SPARK)} (or ingest on DuckDB)"
                )
            flush()
            out.append(_STRPTIME_TO_SPARK[code])
            continue
        literal.append(ch)
        i += 1
    flush()
    return "".join(out)


#: A control character (what an id may not hold), as an RE2 (and Java) class.
_CONTROL_RE = r"[\x00-\x1f\x7f]"


def validation_sql(
    rules: RuleSet,
    schema: pa.Schema,
    relation: str,
    *,
    control_ids: Sequence[str] = (),
    dialect: Dialect = "duckdb",
    carried: Sequence[str] = (),
) -> str:
    """Compile the rules into one query over ``relation`` (a registered raw batch).

    Args:
        rules: The compiled rules.
        schema: Arrow schema of the raw batch (typed Parquet columns are read as they are).
        relation: Name of the registered raw batch, or a table function such as
            ``read_parquet(...)``.
        control_ids: Source id columns to check for control characters first (``bad_id``),
            for relations no reader has checked (``readers.read_batches`` checks its own).
        dialect: The engine the query is for (``duckdb`` or ``spark``).
        carried: Columns of the relation passed through to the result unchanged (a file id).

    Returns:
        SQL returning the canonical columns, ``__line``, the carried columns, ``reason``,
        ``bad_column``, ``bad_value``.
    """
    sql = _SPARK if dialect == "spark" else _DUCKDB
    layout = rules.layout
    cols = layout.columns
    # DuckDB: whether each unchecked id is plain text is computed once, in ``src``, and read by
    # both its TRIM guard and its control-character check (DuckDB evaluated the two GLOBs
    # apart: 0.5 s of the 10 M-row Parquet ingest). The timestamp's text, computed in ``src``
    # too, cannot read that column and keeps its own guard.
    flags: dict[str, str] = {}
    if not sql.spark:
        flags = {
            f"CAST({_ident(n)} AS VARCHAR)": f"__unplain{k}" for k, n in enumerate(control_ids)
        }
    aliases = [(_ident(f"__id{k}"), column) for k, column in enumerate(flags.values())]
    ts_sql, sql = sql, replace(sql, plain=(*flags.items(), *aliases))
    user = _text(layout, cols[USER_ID], sql)
    if layout.user_fallback_column:
        fallback = _text(layout, layout.user_fallback_column, sql)
        user = f"COALESCE({user}, {sql.quote(layout.user_fallback_column + ':')} || {fallback})"
    item = (
        sql.quote(layout.constant_item)
        if layout.constant_item is not None
        else _text(layout, cols[ITEM_ID], sql)
    )
    if layout.constant_action is not None:
        action_raw = sql.quote(layout.constant_action.value)
        action = sql.quote(layout.constant_action)
    else:
        action_raw = _text(layout, cols[ACTION], sql)
        if layout.actions:
            whens = " ".join(
                f"WHEN {sql.quote(k)} THEN {sql.quote(v.value)}" for k, v in layout.actions.items()
            )
            action = f"CASE {action_raw} {whens} END"
        else:
            known = ", ".join(sql.quote(a.value) for a in Action)
            action = f"CASE WHEN lower({action_raw}) IN ({known}) THEN lower({action_raw}) END"
    ts_raw, ts_us, pre = _ts_micros(rules, schema, ts_sql)
    lo, hi = epoch_micros(rules.ts_min), epoch_micros(rules.ts_max)
    present = set(schema.names)
    null_text = f"CAST(NULL AS {sql.text_type})"

    def optional(name: str) -> str:
        if name in cols and cols[name] in present:
            return _text(layout, cols[name], sql)
        return null_text

    def number(name: str) -> tuple[str, bool]:
        if name in cols and cols[name] in present:
            source = cols[name]
            col_type = schema.field(source).type
            return _typed_or_text(layout, source, col_type, sql), _is_typed(
                layout, source, col_type
            )
        return null_text, False

    (price_raw, price_typed), (qty_raw, qty_typed) = number(PRICE), number(QUANTITY)
    qty = sql.number(qty_raw, typed=qty_typed)
    signed_q = (
        f"CASE WHEN {qty} = ROUND({qty}) AND abs({qty}) < 2e9 THEN CAST({qty} AS INTEGER) END"
    )
    quantity = signed_q
    # Returns (Online Retail): a negative quantity or a marked invoice is a `return` of |q| units.
    is_return = []
    if layout.return_on_negative_quantity:
        is_return.append(f"COALESCE({signed_q} < 0, false)")
        quantity = f"abs({signed_q})"
    if layout.return_column and layout.return_prefix and layout.return_column in present:
        marker = _text(layout, layout.return_column, sql)
        is_return.append(f"COALESCE({sql.starts_with(marker, layout.return_prefix)}, false)")
    if is_return:
        returned = sql.quote(Action.RETURN.value)
        action = f"CASE WHEN {' OR '.join(is_return)} THEN {returned} ELSE {action} END"

    ts_col = cols.get(TS, layout.ts_offset_ms_column or "")
    # Raw id text (untrimmed, as the readers check it) carried into the checks.
    raw_ids = {
        sql.ident(f"__id{k}"): f"CAST({sql.ident(name)} AS {sql.text_type})"
        for k, name in enumerate(control_ids)
    }
    checks = [
        (sql.has_control(alias), QuarantineReason.BAD_ID, name, alias)
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
            f"p_raw IS NOT NULL AND (p IS NULL OR NOT {sql.isfinite('p')})",
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
    reason = " ".join(
        f"WHEN {n} THEN {sql.quote(r.value)}" for n, (_, r, _, _) in enumerate(checks)
    )
    bad_column = " ".join(
        f"WHEN {n} THEN {sql.quote(col)}" for n, (_, _, col, _) in enumerate(checks)
    )
    bad_value = " ".join(
        f"WHEN {n} THEN CAST({v} AS {sql.text_type})" for n, (_, _, _, v) in enumerate(checks)
    )
    price = sql.divide("p", "q") if layout.price_is_total else "p"
    computed = "".join(f", {expr} AS {name}" for name, expr in pre.items())
    computed += "".join(f", {ts_sql.unplain(text)} AS {_ident(c)}" for text, c in flags.items())
    passed = "".join(f"{sql.ident(name)},\n        " for name in carried)
    raw_carried = "".join(f"{expr} AS {alias},\n        " for alias, expr in raw_ids.items())
    raw_carried += "".join(f"{_ident(c)},\n        " for c in flags.values())
    out_carried = "".join(f"    {sql.ident(name)},\n" for name in carried)
    return f"""
WITH src AS (
    SELECT *{computed} FROM {relation}
), parsed AS (
    SELECT
        {LINE_COLUMN},
        {passed}{raw_carried}{user} AS u,
        {item} AS i,
        {action_raw} AS a_raw,
        {action} AS a,
        {ts_raw} AS t_raw,
        {ts_us} AS t_us,
        {price_raw} AS p_raw,
        {sql.number(price_raw, typed=price_typed)} AS p,
        {qty_raw} AS q_raw,
        {quantity} AS q,
        {optional(SESSION_ID)} AS s,
        {optional(CATEGORY_ID)} AS c,
        {optional(QUERY)} AS qu
    FROM src
), checked AS (
    SELECT *, CASE WHEN {sql.random()} < 2 THEN CASE {first_failure} END END AS _failure FROM parsed
)
SELECT
    u AS {USER_ID},
    i AS {ITEM_ID},
    a AS {ACTION},
    CASE WHEN t_us >= {lo} AND t_us < {hi} THEN {sql.timestamp_of_us("t_us")} END AS {TS},
    s AS {SESSION_ID},
    c AS {CATEGORY_ID},
    {price} AS {PRICE},
    q AS {QUANTITY},
    qu AS {QUERY},
    {LINE_COLUMN},
{out_carried}    CASE _failure {reason} END AS reason,
    CASE _failure {bad_column} END AS bad_column,
    CAST(CASE _failure {bad_value} END AS {sql.text_type}) AS bad_value
FROM checked
"""
