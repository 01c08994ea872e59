"""`shopseq sequences`: build ordered sequences and a temporal split, report cold starts."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer
from rich.markup import escape
from rich.table import Table

from shopseq.prepare import PREPARED_TABLE
from shopseq.runs.engine import open_engine_store
from shopseq.sequences import SequenceConfig, Split, fetch_events, leave_last_out, time_cut

from .cluster import (
    EngineOption,
    SparkAppOption,
    SparkConfOption,
    SparkMasterOption,
    SparkOutputOption,
    engine_config,
)
from .options import StoreOption, ThreadsOption, console, default_store_path

__all__ = ["Protocol", "sequences"]


class Protocol(StrEnum):
    """Split protocol."""

    LEAVE_LAST_OUT = "leave-last-out"
    TIME_CUT = "time-cut"


def _show(split: Split) -> None:
    table = Table(title=f"Split ({split.report.protocol})", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, value in asdict(split.report).items():
        if value is not None:
            shown = f"{value:,}" if isinstance(value, int) else str(value)
            table.add_row(name.replace("_", " "), shown)
    lengths = split.test.sequences.lengths
    if len(lengths):
        table.add_row("sequences", f"{len(lengths):,}")
        table.add_row("median sequence length", f"{float(sorted(lengths)[len(lengths) // 2]):,.0f}")
    console.print(table)


def sequences(
    by: Annotated[str, typer.Option(help="One sequence per 'user' or per 'session'.")] = "user",
    protocol: Annotated[Protocol, typer.Option(help="Split protocol.")] = Protocol.LEAVE_LAST_OUT,
    cut: Annotated[
        datetime | None, typer.Option(help="Time cut: start of the test period (UTC).")
    ] = None,
    test_days: Annotated[
        int, typer.Option(help="Time cut without --cut: the last N days test.")
    ] = 7,
    valid_days: Annotated[int, typer.Option(help="Time cut: N days before the cut validate.")] = 7,
    collapse_repeats: Annotated[
        bool, typer.Option(help="Drop consecutive events on the same item.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Also write arrays, vocabularies and report here.")
    ] = None,
    store: StoreOption = None,
    threads: ThreadsOption = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = "local[*]",
    spark_app_name: SparkAppOption = "shopseq",
    spark_conf: SparkConfOption = None,
    spark_output: SparkOutputOption = None,
) -> None:
    """Build sequences and a leak-free split; vocabularies are written beside the data.

    With ``--engine spark`` the events are read and ordered on Spark and the vocabularies land
    as Parquet tables under ``--spark-output``.
    """
    engine_cfg = engine_config(engine, spark_master, spark_app_name, spark_conf, spark_output)
    config = SequenceConfig(
        by="session" if by == "session" else "user", collapse_repeats=collapse_repeats
    )
    with open_engine_store(engine_cfg, store or default_store_path(), threads=threads) as opened:
        prepared = opened.table(PREPARED_TABLE)
        with console.status("building sequences"):
            events = fetch_events(prepared, config)
            if protocol is Protocol.TIME_CUT:
                if cut is None:
                    last = prepared.ts.max().execute()
                    cut = (last - timedelta(days=test_days)).replace(microsecond=0)
                split = time_cut(events, cut, cut - timedelta(days=valid_days))
            else:
                split = leave_last_out(events)
        for vocab in (split.item_vocab, split.category_vocab, split.owner_vocab):
            opened.write_arrow(
                f"vocab_{vocab.name}",
                pa.table({"index": pa.array(range(1, vocab.size), pa.int32()), "id": vocab.ids}),
            )
    _show(split)
    console.print("vocabularies written to tables vocab_item, vocab_category, vocab_owner")
    if out is not None:
        split.save(out)
        console.print(f"split written to {escape(str(out))}")
