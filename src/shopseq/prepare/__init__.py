"""Stage 2: clean and sessionise; events table -> events table (same grain, Ibis expressions)."""

from shopseq.prepare.bots import BotFilterConfig, bot_users, drop_bot_users
from shopseq.prepare.dedupe import DedupeConfig, drop_exact_duplicates, drop_repeats
from shopseq.prepare.missing import MissingValueConfig, fill_missing
from shopseq.prepare.pipeline import (
    PREPARED_TABLE,
    PrepareConfig,
    PrepareReport,
    prepare_events,
    prepare_table,
)
from shopseq.prepare.sessionize import SessionizeConfig, sessionize

__all__ = [
    "PREPARED_TABLE",
    "BotFilterConfig",
    "DedupeConfig",
    "MissingValueConfig",
    "PrepareConfig",
    "PrepareReport",
    "SessionizeConfig",
    "bot_users",
    "drop_bot_users",
    "drop_exact_duplicates",
    "drop_repeats",
    "fill_missing",
    "prepare_events",
    "prepare_table",
    "sessionize",
]
