"""One typed description of "which split": from prepared events to a :class:`Split`.

The CLI and the benchmarks build the same split from the same :class:`SplitConfig`, and every run
directory records it, so a figure can be reproduced from its ``config.json``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import ibis
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shopseq.errors import InputError
from shopseq.schema import Action
from shopseq.sequences.build import SequenceConfig, fetch_events
from shopseq.sequences.split import Split, leave_last_out, time_cut

__all__ = ["SplitConfig", "split_events"]


class SplitConfig(BaseModel):
    """Which events make sequences, and how they are split.

    Attributes:
        protocol: ``time_cut`` (global, leak-free in time) or ``leave_last_out`` (per owner).
        by: One sequence per ``user`` or per ``session``.
        actions: Keep only these actions (``None``: all).
        collapse_repeats: Drop an event repeating the previous item of the same sequence.
        test_fraction: Time cut only, when ``cut`` is not given: the latest share of events
            that are test targets.
        valid_fraction: Time cut only, when ``valid_cut`` is not given: the share of events just
            before the test period that are validation targets.
        cut: Start of the test period (naive UTC).
        valid_cut: Start of the validation period (naive UTC).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Literal["time_cut", "leave_last_out"] = "time_cut"
    by: Literal["user", "session"] = "user"
    actions: tuple[Action, ...] | None = None
    collapse_repeats: bool = True
    test_fraction: float = Field(default=0.1, gt=0, lt=1)
    valid_fraction: float = Field(default=0.1, ge=0, lt=1)
    cut: datetime | None = None
    valid_cut: datetime | None = None

    @model_validator(mode="after")
    def _fractions(self) -> SplitConfig:
        if self.test_fraction + self.valid_fraction >= 1:
            raise ValueError(
                f"test_fraction + valid_fraction must be < 1; got {self.test_fraction} + "
                f"{self.valid_fraction}"
            )
        return self


def _quantile_time(ts: np.ndarray, q: float) -> datetime:
    second = int(np.quantile(ts, q, method="higher"))
    return datetime.fromtimestamp(second, UTC).replace(tzinfo=None)


def split_events(events: ibis.Table, config: SplitConfig) -> Split:
    """Fetch prepared events as sequences and split them.

    Args:
        events: Prepared events (``store.table(PREPARED_TABLE)``).
        config: The split.

    Returns:
        The split.

    Raises:
        InputError: If there are no events.
    """
    arrays = fetch_events(
        events,
        SequenceConfig(
            by=config.by, actions=config.actions, collapse_repeats=config.collapse_repeats
        ),
    )
    if len(arrays) == 0:
        raise InputError("no events to split (is the store prepared, and do the filters match?)")
    if config.protocol == "leave_last_out":
        return leave_last_out(arrays)
    cut = config.cut or _quantile_time(arrays.ts, 1.0 - config.test_fraction)
    valid_cut = config.valid_cut
    if valid_cut is None and config.cut is None and config.valid_fraction > 0:
        valid_cut = _quantile_time(arrays.ts, 1.0 - config.test_fraction - config.valid_fraction)
    return time_cut(arrays, cut, valid_cut)
