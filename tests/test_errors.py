"""The error hierarchy is as documented and messages name file, line and column."""

from __future__ import annotations

import pytest

from shopseq.errors import (
    ArtifactError,
    BadRowError,
    ConfigError,
    InputError,
    NotFittedError,
    SchemaMismatchError,
    ShopseqError,
    StoreError,
    UnknownIdError,
)


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        (InputError, (ShopseqError, ValueError)),
        (SchemaMismatchError, (InputError,)),
        (BadRowError, (InputError,)),
        (ConfigError, (InputError,)),
        (UnknownIdError, (InputError, LookupError)),
        (NotFittedError, (ShopseqError, AttributeError)),
        (ArtifactError, (ShopseqError,)),
        (StoreError, (ShopseqError,)),
    ],
)
def test_hierarchy_is_as_documented(error: type, bases: tuple[type, ...]) -> None:
    for base in bases:
        assert issubclass(error, base)


def test_bad_row_error_keeps_its_parts_and_renders_them() -> None:
    err = BadRowError(
        "/data/events.csv",
        1042,
        "ts",
        "2019-13-01 00:00",
        "bad_timestamp",
        "is not a valid timestamp; expected ISO 8601",
    )
    assert (err.line, err.column, err.value, err.reason) == (
        1042,
        "ts",
        "2019-13-01 00:00",
        "bad_timestamp",
    )
    assert str(err) == (
        "events.csv:1042: column 'ts': '2019-13-01 00:00' is not a valid "
        "timestamp; expected ISO 8601"
    )


def test_schema_mismatch_lists_missing_and_found() -> None:
    err = SchemaMismatchError(
        "orders.parquet",
        missing=["ts"],
        found=["user", "time"],
        hint="map them with --column ts=time",
    )
    assert str(err) == (
        "orders.parquet: missing required columns ['ts']; found ['user', 'time']; "
        "map them with --column ts=time"
    )
