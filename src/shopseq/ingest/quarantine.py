"""Why a row was rejected: the reason codes and the record kept for every rejected row."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["CONTROL_CHARACTER_ID", "QuarantineReason", "RejectedRow"]


#: What is wrong with an id holding a control character (one text for every reader and the SQL).
CONTROL_CHARACTER_ID = (
    "holds a control character (a line break, tab or NUL); expected a printable id"
)


class QuarantineReason(StrEnum):
    """Machine-readable reason a row was quarantined (first failing rule wins)."""

    LINE_TOO_LONG = "line_too_long"
    UNTERMINATED_QUOTE = "unterminated_quote"
    BAD_ENCODING = "bad_encoding"
    WRONG_COLUMN_COUNT = "wrong_column_count"
    MALFORMED_ROW = "malformed_row"
    BAD_ID = "bad_id"
    MISSING_FIELD = "missing_field"
    UNKNOWN_ACTION = "unknown_action"
    BAD_TIMESTAMP = "bad_timestamp"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    NON_NUMERIC_PRICE = "non_numeric_price"
    NEGATIVE_PRICE = "negative_price"
    BAD_QUANTITY = "bad_quantity"


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """One rejected input row, found while reading (before per-column validation).

    Attributes:
        line: Physical line (text files, 1-based, header included) or row number (Parquet).
        column: Source column at fault, or "" for the whole row.
        raw_value: The offending value or row text.
        reason: Why it was rejected.
        detail: What is wrong and what was expected.
    """

    line: int
    column: str
    raw_value: str
    reason: QuarantineReason
    detail: str
