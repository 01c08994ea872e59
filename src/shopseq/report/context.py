"""What every section of the report reads: the settings, the store, and results computed once.

Sections never recompute what another section already has: the prepared events, the actions
present, the events in session order (``ordered``: each event's position and neighbours, read by
the funnel, paths, transitions and intent states, which each sorted the events by session
before), the user segments (used by the segments section and by the funnel's per-segment view)
and the segment labels as an engine table are computed at most once per report and shared here.
Artifact files of other stages are read once and *claimed* by the section that renders them;
whatever no section claims is shown by the generic artifact section at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import ibis
from pydantic import BaseModel, ConfigDict, Field

from shopseq.analyze import (
    FunnelConfig,
    PathsConfig,
    PatternConfig,
    RetentionConfig,
    RuleConfig,
    SegmentConfig,
    SegmentsResult,
    StatesConfig,
    TransitionConfig,
    segment_users,
    session_order,
)
from shopseq.prepare.pipeline import PREPARED_TABLE
from shopseq.report.artifacts import KNOWN_ARTIFACTS
from shopseq.schema import (
    ACTION,
    CATEGORY_ID,
    ITEM_ID,
    SESSION_ID,
    SOURCE_FILE_ID,
    SOURCE_ROW,
    TS,
    USER_ID,
)
from shopseq.store import Store

__all__ = ["REPORT_FIT_SESSIONS", "ReportConfig", "ReportContext"]

#: Sessions the report's intent-state HMM is fitted on (a seeded sample; all are decoded).
REPORT_FIT_SESSIONS = 10_000


class ReportConfig(BaseModel):
    """What the report shows and how each analysis is run.

    Attributes:
        title: Page title.
        funnel: Funnel settings (the report adds a per-category and a per-segment view).
        paths: Path settings.
        transitions: Transition settings.
        patterns: Sequential-pattern settings.
        rules: Association-rule settings.
        segments: Segment settings.
        retention: Retention settings.
        states: Intent-state (HMM) settings (fitted on a sample of ``REPORT_FIT_SESSIONS``).
        artifact_dirs: Directories searched for other stages' JSON artifacts (docs/report.md).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = "shopseq report"
    funnel: FunnelConfig = Field(default_factory=FunnelConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    transitions: TransitionConfig = Field(default_factory=TransitionConfig)
    patterns: PatternConfig = Field(default_factory=PatternConfig)
    rules: RuleConfig = Field(default_factory=RuleConfig)
    segments: SegmentConfig = Field(default_factory=SegmentConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    # The report fits the states on a sample (every session is still decoded): EM on the
    # analysis' default 200,000 sessions x 3 restarts took 1,201 s of a 10 M-event report.
    states: StatesConfig = Field(
        default_factory=lambda: StatesConfig(max_fit_sessions=REPORT_FIT_SESSIONS, n_init=2)
    )
    artifact_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class Artifact:
    """One JSON file of another stage.

    Attributes:
        path: The file.
        name: Its file name (``leaderboard.json``).
        data: The parsed JSON (``None`` when it could not be read).
        error: Why it could not be read ("" when it could).
    """

    path: Path
    name: str
    data: Any
    error: str = ""


@dataclass
class ReportContext:
    """The shared state of one report.

    Attributes:
        store: The prepared store.
        config: The settings.
        warnings: Problems found while building (artifact files in an unexpected shape).
        seconds: Wall time of each shared result (``ordered``, ``segments``), counted also in
            the section that first asked for it.
    """

    store: Store
    config: ReportConfig
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    _claimed: set[Path] = field(default_factory=set)

    def _timed(self, name: str, compute: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        value = compute()
        self.seconds[name] = time.perf_counter() - started
        return value

    @cached_property
    def events(self) -> ibis.Table:
        """The prepared events."""
        return self.store.table(PREPARED_TABLE)

    @cached_property
    def ordered(self) -> ibis.Table:
        """The events in session order (``analyze.session_order``), materialised once.

        Only the columns the ordered analyses read are kept (not price, quantity, query).
        """
        kept = [USER_ID, SESSION_ID, ITEM_ID, CATEGORY_ID, ACTION, TS, SOURCE_FILE_ID, SOURCE_ROW]
        ordered: ibis.Table = self._timed(
            "ordered", lambda: session_order(self.events.select(kept)).cache()
        )
        return ordered

    @cached_property
    def actions_present(self) -> set[str]:
        """Actions that occur in the events."""
        column = self.events.select(ACTION).distinct().to_pyarrow().column(0)
        return {str(a) for a in column.to_pylist()}

    @cached_property
    def segments(self) -> SegmentsResult:
        """User segments (computed once: the segments section and the funnel both use them)."""
        result: SegmentsResult = self._timed(
            "segments", lambda: segment_users(self.events, self.config.segments)
        )
        return result

    @cached_property
    def segment_labels(self) -> ibis.Table:
        """``user_id, segment`` (the segment's name) as an engine table, for joins."""
        assignments = self.segments.assignments.select([USER_ID, "segment_name"])
        return ibis.memtable(assignments.rename_columns([USER_ID, "segment"]))

    @cached_property
    def artifacts(self) -> list[Artifact]:
        """Every artifact file found in the configured directories, each read once."""
        seen: set[Path] = set()
        found: list[Artifact] = []
        for directory in self.config.artifact_dirs:
            names = [n for n in KNOWN_ARTIFACTS if (directory / n).is_file()]
            if directory.is_dir():
                names += sorted(p.name for p in directory.glob("*.report.json"))
            for name in names:
                path = (directory / name).resolve()
                if path in seen:
                    continue
                seen.add(path)
                try:
                    found.append(Artifact(path, name, json.loads(path.read_text())))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                    found.append(Artifact(path, name, None, f"{path}: not readable JSON: {err}"))
        return found

    def artifact(self, name: str, accept: Callable[[Any], bool] | None = None) -> Artifact | None:
        """The first readable artifact called ``name`` not yet claimed (and in the shape asked).

        Two stages write ``leaderboard.json`` (next-item and per-user runs), so a section asks
        for the shape it renders: a file of the other shape never hides the one it wants.

        Args:
            name: File name.
            accept: Whether the parsed JSON is in the section's shape (default: any).

        Returns:
            The artifact, or ``None``.
        """
        for item in self.artifacts:
            fresh = item.name == name and item.path not in self._claimed and not item.error
            if fresh and (accept is None or accept(item.data)):
                return item
        return None

    def claim(self, item: Artifact) -> None:
        """Mark an artifact as rendered by a section (the generic section skips it).

        Args:
            item: The artifact.
        """
        self._claimed.add(item.path)

    def unclaimed(self) -> list[Artifact]:
        """Artifacts no section has rendered yet, in the order found."""
        return [a for a in self.artifacts if a.path not in self._claimed]
