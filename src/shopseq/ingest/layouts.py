"""Input layouts: how a raw file's columns and values map onto the canonical event schema.

A layout is data, not code: a frozen pydantic model, so the built-in layouts below and a user's TOML
file (``shopseq ingest --layout-file my.toml``) go through the same validation, and a misspelled key
fails with its name. Dataset-specific column names never travel past ingest.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shopseq.errors import ConfigError
from shopseq.schema import (
    ACTION,
    CATEGORY_ID,
    EVENT_COLUMNS,
    ITEM_ID,
    PRICE,
    QUANTITY,
    REQUIRED_COLUMNS,
    SESSION_ID,
    TS,
    USER_ID,
    Action,
)

__all__ = ["BUILTIN_LAYOUTS", "Layout", "TsFormat", "generic_layout", "load_layout_file"]


class TsFormat(StrEnum):
    """How the timestamp column is written in the file."""

    AUTO = "auto"  # typed timestamps as they are; text as ISO 8601 (offsets honoured), else epoch s
    ISO = "iso"  # ISO 8601 text; a trailing 'Z', '+hh:mm' or ' UTC' is honoured
    EPOCH_S = "epoch_s"  # Unix seconds, integer or fractional
    EPOCH_MS = "epoch_ms"  # Unix milliseconds
    EPOCH_US = "epoch_us"  # Unix microseconds
    EPOCH_NS = "epoch_ns"  # Unix nanoseconds
    STRPTIME = "strptime"  # text in ``ts_strptime`` format (C strptime codes), read as UTC
    DATE_PLUS_MS = "date_plus_ms"  # a date column plus milliseconds in ``ts_offset_ms_column``
    ORDINAL = "ordinal"  # no time in the data: the row number, as seconds after 2000-01-01


class Layout(BaseModel):
    """How to read one kind of file into canonical events.

    Attributes:
        name: Short name used on the command line.
        description: One line shown by ``shopseq ingest --list-layouts``.
        columns: Canonical column -> source column name (``user_id``, ``item_id``, ``ts`` required;
            ``action`` unless ``constant_action`` is set).
        actions: Source action value -> canonical action. Empty means the file already uses
            canonical names (``view``, ``cart``, ...).
        constant_action: The action of every row, for files holding one kind of event.
        constant_item: The item of every row, for files without items (a store's purchase log).
        ts_format: How timestamps are written.
        ts_strptime: Format for ``TsFormat.STRPTIME``.
        ts_offset_ms_column: Source column of milliseconds added to the date (``DATE_PLUS_MS``).
        delimiter: Field separator; ``"whitespace"`` for runs of spaces (fixed-width-ish files).
        header: Whether the first line names the columns.
        source_columns: Column names for files without a header, in file order.
        null_values: Extra source values read as missing, per source column (``""`` always is).
        user_fallback_column: Source column whose value, prefixed with ``<column>:``, becomes the
            user id when the user id is missing (anonymous sessions); rows stay traceable.
        price_is_total: The price column holds the line total; divide it by the quantity.
        return_on_negative_quantity: A negative quantity is a return: the action becomes
            ``return`` and the quantity its absolute value (Online Retail's cancellations).
        return_column: Source column whose value starting with ``return_prefix`` makes the row
            a ``return`` (Online Retail's cancellation invoices, ``C536379``).
        return_prefix: The prefix of ``return_column`` that marks a return.
        file_format: ``csv``, ``parquet`` or ``jsonl``; ``None`` guesses from the suffix.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    columns: dict[str, str]
    actions: dict[str, Action] = Field(default_factory=dict)
    constant_action: Action | None = None
    constant_item: str | None = None
    ts_format: TsFormat = TsFormat.AUTO
    ts_strptime: str | None = None
    ts_offset_ms_column: str | None = None
    delimiter: str = ","
    header: bool = True
    source_columns: tuple[str, ...] | None = None
    null_values: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    user_fallback_column: str | None = None
    price_is_total: bool = False
    return_on_negative_quantity: bool = False
    return_column: str | None = None
    return_prefix: str | None = None
    file_format: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Layout:
        unknown = sorted(set(self.columns) - set(EVENT_COLUMNS))
        if unknown:
            raise ValueError(
                f"unknown canonical columns {unknown}; expected some of {list(EVENT_COLUMNS)}"
            )
        needed = [
            c
            for c in REQUIRED_COLUMNS
            if not (c == ACTION and self.constant_action is not None)
            and not (c == ITEM_ID and self.constant_item is not None)
            and not (c == TS and self.ts_format is TsFormat.ORDINAL)
        ]
        missing = [c for c in needed if c not in self.columns]
        if missing:
            raise ValueError(f"columns must map {missing} (e.g. --column {missing[0]}=SOURCE)")
        if self.ts_format is TsFormat.STRPTIME and not self.ts_strptime:
            raise ValueError(
                "ts_format 'strptime' needs the format: pass --ts-strptime FORMAT (or set "
                "ts_strptime in a layout file), e.g. --ts-strptime '%Y-%m-%d %H:%M:%S'"
            )
        if self.ts_format is TsFormat.DATE_PLUS_MS and not self.ts_offset_ms_column:
            raise ValueError(
                "ts_format 'date_plus_ms' needs ts_offset_ms_column (the column of milliseconds "
                "added to the date); set it in a layout file"
            )
        if not self.header and not self.source_columns:
            raise ValueError(
                "a file without a header needs its column names: pass --source-columns "
                "a,b,c (or set source_columns in a layout file), in file order"
            )
        if self.source_columns is not None:
            repeated = sorted({c for c in self.source_columns if self.source_columns.count(c) > 1})
            if repeated:
                raise ValueError(f"source_columns names {repeated} more than once")
        if self.delimiter != "whitespace" and (
            len(self.delimiter) != 1 or not self.delimiter.isascii() or self.delimiter in '"\r\n'
        ):
            raise ValueError(
                f"delimiter must be one ASCII character other than a quote or a line break "
                f"(or 'whitespace'); got {self.delimiter!r}"
            )
        if (self.return_column is None) != (self.return_prefix is None) or self.return_prefix == "":
            raise ValueError(
                "return_column and return_prefix go together (e.g. return_column = 'InvoiceNo', "
                "return_prefix = 'C')"
            )
        if self.file_format not in (None, "csv", "parquet", "jsonl"):
            raise ValueError(f"file_format must be csv, parquet or jsonl; got {self.file_format!r}")
        return self

    def required_source_columns(self) -> list[str]:
        """Return the source columns a file must have for this layout.

        Optional canonical columns (session, category, price, quantity, query) may be absent from a
        file; they are then missing on every row.

        Returns:
            Source column names.
        """
        names = [self.columns[c] for c in REQUIRED_COLUMNS if c in self.columns]
        for extra in (self.ts_offset_ms_column, self.user_fallback_column):
            if extra and extra not in names:
                names.append(extra)
        return names

    def mapped_source_columns(self) -> list[str]:
        """Return every source column the layout reads (required first, then optional).

        Returns:
            Source column names without repeats.
        """
        optional = [self.columns[c] for c in EVENT_COLUMNS if c in self.columns]
        if self.return_column:
            optional.append(self.return_column)
        return list(dict.fromkeys(self.required_source_columns() + optional))


_TAOBAO = Layout(
    name="taobao",
    description="Alibaba Tianchi UserBehavior.csv: user,item,category,behavior,timestamp "
    "(no header)",
    columns={
        USER_ID: "user",
        ITEM_ID: "item",
        CATEGORY_ID: "category",
        ACTION: "behavior",
        TS: "ts",
    },
    actions={
        "pv": Action.VIEW,
        "fav": Action.FAVORITE,
        "cart": Action.CART,
        "buy": Action.PURCHASE,
    },
    ts_format=TsFormat.EPOCH_S,
    header=False,
    source_columns=("user", "item", "category", "behavior", "ts"),
)

_RETAILROCKET = Layout(
    name="retailrocket",
    description="RetailRocket events.csv: timestamp(ms),visitorid,event,itemid,transactionid",
    columns={USER_ID: "visitorid", ITEM_ID: "itemid", ACTION: "event", TS: "timestamp"},
    actions={"view": Action.VIEW, "addtocart": Action.CART, "transaction": Action.PURCHASE},
    ts_format=TsFormat.EPOCH_MS,
)

_RETAILROCKET_SESSIONS = Layout(
    name="retailrocket-sessions",
    description="Preprocessed RetailRocket views (tab-separated timestamp(s),user_id,item_id,"
    "session_id), as in SR-GTM's sample",
    columns={USER_ID: "user_id", ITEM_ID: "item_id", TS: "timestamp", SESSION_ID: "session_id"},
    constant_action=Action.VIEW,
    ts_format=TsFormat.EPOCH_S,
    delimiter="\t",
)

_REES46 = Layout(
    name="rees46",
    description="REES46 multi-category store (Kaggle): event_time,event_type,product_id,...",
    columns={
        USER_ID: "user_id",
        ITEM_ID: "product_id",
        ACTION: "event_type",
        TS: "event_time",
        CATEGORY_ID: "category_id",
        PRICE: "price",
        SESSION_ID: "user_session",
    },
    ts_format=TsFormat.ISO,
)

_YOOCHOOSE_CLICKS = Layout(
    name="yoochoose-clicks",
    description="RecSys Challenge 2015 yoochoose-clicks.dat: session,timestamp,item,category "
    "(no header; the session stands for the anonymous user)",
    columns={
        USER_ID: "session",
        ITEM_ID: "item",
        TS: "ts",
        SESSION_ID: "session",
        CATEGORY_ID: "category",
    },
    constant_action=Action.VIEW,
    ts_format=TsFormat.ISO,
    header=False,
    source_columns=("session", "ts", "item", "category"),
)

_YOOCHOOSE_BUYS = Layout(
    name="yoochoose-buys",
    description="RecSys Challenge 2015 yoochoose-buys.dat: session,timestamp,item,price,quantity",
    columns={
        USER_ID: "session",
        ITEM_ID: "item",
        TS: "ts",
        SESSION_ID: "session",
        PRICE: "price",
        QUANTITY: "quantity",
    },
    constant_action=Action.PURCHASE,
    ts_format=TsFormat.ISO,
    header=False,
    source_columns=("session", "ts", "item", "price", "quantity"),
)

_SESSION_REC = Layout(
    name="session-rec",
    description="session-rec / GRU4Rec prepared files: tab-separated SessionId,ItemId,Time(s)",
    columns={USER_ID: "SessionId", ITEM_ID: "ItemId", TS: "Time", SESSION_ID: "SessionId"},
    constant_action=Action.VIEW,
    ts_format=TsFormat.EPOCH_S,
    delimiter="\t",
)

_DIGINETICA_VIEWS = Layout(
    name="diginetica-views",
    description="CIKM Cup 2016 train-item-views.csv: session_id;user_id;item_id;timeframe;"
    "eventdate (ts = date + timeframe ms; anonymous users become their session)",
    columns={USER_ID: "user_id", ITEM_ID: "item_id", TS: "eventdate", SESSION_ID: "session_id"},
    constant_action=Action.VIEW,
    ts_format=TsFormat.DATE_PLUS_MS,
    ts_offset_ms_column="timeframe",
    delimiter=";",
    null_values={"user_id": ("NA",)},
    user_fallback_column="session_id",
)

_DIGINETICA_PURCHASES = Layout(
    name="diginetica-purchases",
    description="CIKM Cup 2016 train-purchases.csv: sessionId;userId;timeframe;eventdate;"
    "ordernumber;itemId (ts = the event date; anonymous users become their session)",
    columns={USER_ID: "userId", ITEM_ID: "itemId", TS: "eventdate", SESSION_ID: "sessionId"},
    constant_action=Action.PURCHASE,
    # Unlike the views file, `timeframe` here reaches 1.3e10 ms (153 days): adding it to the date
    # put 2,245 purchases months after the file's last date, so only the date is used.
    ts_format=TsFormat.ISO,
    delimiter=";",
    null_values={"userId": ("NA",)},
    user_fallback_column="sessionId",
)

_ONLINE_RETAIL = Layout(
    name="online-retail",
    description="UCI Online Retail invoices (one purchase per line; missing/0 CustomerID -> the "
    "invoice stands for the anonymous buyer)",
    columns={
        USER_ID: "CustomerID",
        ITEM_ID: "StockCode",
        TS: "InvoiceDate",
        PRICE: "UnitPrice",
        QUANTITY: "Quantity",
        SESSION_ID: "InvoiceNo",
    },
    constant_action=Action.PURCHASE,
    null_values={"CustomerID": ("0",)},
    user_fallback_column="InvoiceNo",
    return_on_negative_quantity=True,
    return_column="InvoiceNo",
    return_prefix="C",
)

_ONLINE_RETAIL_II = Layout(
    name="online-retail-ii",
    description="UCI Online Retail II (2009-2011): Invoice,StockCode,Description,Quantity,"
    "InvoiceDate,Price,Customer ID,Country (cancellations 'C…' and negative quantities are "
    "returns; no Customer ID -> the invoice stands for the buyer)",
    columns={
        USER_ID: "Customer ID",
        ITEM_ID: "StockCode",
        TS: "InvoiceDate",
        PRICE: "Price",
        QUANTITY: "Quantity",
        SESSION_ID: "Invoice",
    },
    constant_action=Action.PURCHASE,
    null_values={"Customer ID": ("0",)},
    user_fallback_column="Invoice",
    return_on_negative_quantity=True,
    return_column="Invoice",
    return_prefix="C",
)

_ONLINE_RETAIL_NO_INVOICE = Layout(
    name="online-retail-no-invoice",
    description="UCI Online Retail without InvoiceNo/StockCode (Description is the item; "
    "negative quantities are returns)",
    columns={
        USER_ID: "CustomerID",
        ITEM_ID: "Description",
        TS: "InvoiceDate",
        PRICE: "UnitPrice",
        QUANTITY: "Quantity",
    },
    constant_action=Action.PURCHASE,
    return_on_negative_quantity=True,
)

_CDNOW = Layout(
    name="cdnow",
    description="CDNOW_master.txt: customer_id date(YYYYMMDD) number_of_cds dollar_value "
    "(whitespace-separated; item is the store itself, 'cdnow')",
    columns={USER_ID: "customer_id", TS: "date", QUANTITY: "number_of_cds", PRICE: "dollar_value"},
    constant_action=Action.PURCHASE,
    constant_item="cdnow",
    ts_format=TsFormat.STRPTIME,
    ts_strptime="%Y%m%d",
    delimiter="whitespace",
    price_is_total=True,
)

_CDNOW_SAMPLE = _CDNOW.model_copy(
    update={
        "name": "cdnow-sample",
        "description": "CDNOW_sample.txt: index customer_id date cds dollars (no header)",
        "header": False,
        "source_columns": ("index", "customer_id", "date", "number_of_cds", "dollar_value"),
    }
)

_USER_ITEM_LINES = Layout(
    name="user-item-lines",
    description="Benchmark files 'user item' per line in time order (SASRec/BERT4Rec); no "
    "times in the data, so ts is the line number in seconds after 2000-01-01",
    columns={USER_ID: "user", ITEM_ID: "item"},
    constant_action=Action.VIEW,
    ts_format=TsFormat.ORDINAL,
    delimiter=" ",
    header=False,
    source_columns=("user", "item"),
)

_SHOPSEQ = Layout(
    name="shopseq",
    description="Canonical columns (what `shopseq generate` writes): user_id,item_id,action,ts,...",
    columns={c: c for c in EVENT_COLUMNS},
)

#: The built-in layouts by name (a plain dict literal at the edge; no registry).
BUILTIN_LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        _SHOPSEQ,
        _TAOBAO,
        _RETAILROCKET,
        _RETAILROCKET_SESSIONS,
        _REES46,
        _YOOCHOOSE_CLICKS,
        _YOOCHOOSE_BUYS,
        _SESSION_REC,
        _DIGINETICA_VIEWS,
        _DIGINETICA_PURCHASES,
        _ONLINE_RETAIL,
        _ONLINE_RETAIL_II,
        _ONLINE_RETAIL_NO_INVOICE,
        _CDNOW,
        _CDNOW_SAMPLE,
        _USER_ITEM_LINES,
    )
}


def _validated(data: dict[str, Any], origin: str) -> Layout:
    try:
        return Layout.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            (f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else "")
            + str(e["msg"]).removeprefix("Value error, ")
            for e in err.errors()
        )
        raise ConfigError(f"{origin}: invalid layout: {problems}") from err


def load_layout_file(path: Path) -> Layout:
    """Read a layout from a TOML file (same keys as :class:`Layout`).

    Args:
        path: The TOML file.

    Returns:
        The validated layout.

    Raises:
        ConfigError: If the file is not TOML or a key or value is invalid (the message names it).
    """
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: cannot read layout file: {err}") from err
    data.setdefault("name", path.stem)
    return _validated(data, str(path))


def generic_layout(
    column_mappings: list[str],
    action_mappings: list[str],
    *,
    base: Layout | None = None,
    **options: Any,
) -> Layout:
    """Build a layout from ``canonical=source`` strings given on the command line.

    Args:
        column_mappings: e.g. ``["user_id=visitor", "ts=time"]``; canonical names unmapped keep
            the base layout's mapping (or their own name when there is no base).
        action_mappings: e.g. ``["pv=view", "buy=purchase"]`` (source value = canonical action).
        base: A layout to start from.
        **options: Other :class:`Layout` fields (``delimiter``, ``ts_format``, ...).

    Returns:
        The validated layout.

    Raises:
        ConfigError: If a mapping is not ``a=b`` or names an unknown column or action.
    """
    start = base or _SHOPSEQ
    columns = dict(start.columns)
    renamed: dict[str, set[str]] = {}  # the base's source column -> what it is now called
    for mapping in column_mappings:
        canonical, sep, source = mapping.partition("=")
        if not sep or not source:
            raise ConfigError(f"--column {mapping!r}: expected CANONICAL=SOURCE, e.g. ts=time")
        canonical, source = canonical.strip(), source.strip()
        old = start.columns.get(canonical)
        if old is not None and old != source:
            renamed.setdefault(old, set()).add(source)
        columns[canonical] = source
    actions: dict[str, Any] = dict(start.actions)
    for mapping in action_mappings:
        source_value, sep, canonical = mapping.partition("=")
        if not sep:
            raise ConfigError(f"--action {mapping!r}: expected SOURCE_VALUE=ACTION, e.g. pv=view")
        actions[source_value] = canonical.strip()
    data = start.model_dump()
    data.update(columns=columns, actions=actions, **_redirected(start, renamed))
    data.update({k: v for k, v in options.items() if v is not None})
    if column_mappings or action_mappings:
        given = [f"--column {m}" for m in column_mappings] + [
            f"--action {m}" for m in action_mappings
        ]
        data["description"] = f"{start.description} (with {', '.join(given)})".strip()
    return _validated(data, f"--layout {start.name} with the command-line options")


def _redirected(start: Layout, renamed: dict[str, set[str]]) -> dict[str, Any]:
    """The other places that name a renamed source column, pointed at its new name.

    ``--column session_id=Invoice`` on a layout that reads the session from ``InvoiceNo`` means
    this file calls that column ``Invoice``: the layout's fallback user column, its offset column
    and its null markers for ``InvoiceNo`` follow. (Other canonical columns read from the same
    source keep it unless overridden too: each is one ``--column`` away.)
    """

    def follow(name: str | None, what: str) -> str | None:
        if name is None or name not in renamed:
            return name
        targets = renamed[name]
        if len(targets) > 1:
            raise ConfigError(
                f"--layout {start.name}: its {what} {name!r} is mapped to "
                f"{sorted(targets)} by --column; which one it is now is ambiguous: write a "
                "layout file (--layout-file)"
            )
        return next(iter(targets))

    nulls: dict[str, tuple[str, ...]] = {}
    for column, markers in start.null_values.items():
        target = follow(column, "null-marker column")
        nulls[target or column] = markers
    return {
        "user_fallback_column": follow(start.user_fallback_column, "fallback user column"),
        "ts_offset_ms_column": follow(start.ts_offset_ms_column, "time-offset column"),
        "return_column": follow(start.return_column, "return-marker column"),
        "null_values": nulls,
    }
