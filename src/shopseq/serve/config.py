"""The service's one config: built at the edge (the CLI, a test), passed to ``create_app``."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretBytes, field_validator

__all__ = ["ServeConfig"]


class ServeConfig(BaseModel):
    """How the service runs.

    Attributes:
        run: The next-item run directory to serve (``shopseq train --out``).
        log: The durable event log (SQLite, WAL); created when absent.
        keys: The API-key file (``shopseq serve keys add``); keys are stored hashed.
        forecasts: ``forecasts.json`` written by ``shopseq forecast`` (``None``: no forecasts).
        state: ``memory`` (each user's recent events in this process, rebuilt from the log at
            start) or a ``redis://`` URL (shared by several replicas).
        state_prefix: Prefix of every Redis key (several services may share one Redis).
        pseudonymize_key: HMAC key of ``ingest --pseudonymize``; user ids are pseudonymised with
            it before they are looked up, logged or stored (``None``: ids are used as given).
        max_body_bytes: Largest request body accepted (413 beyond).
        max_batch: Most events in one ``POST /v1/events`` (413 beyond).
        max_k: Largest ``k`` of a recommendation or similar-items request.
        max_recent: Most recent events kept per user in the live state.
        max_users: Users kept in the in-memory state (least recently active dropped first; their
            events stay in the log).
        max_group_events: Most events validated and fsynced in one group commit.
        max_future_seconds: How far past the server's clock an event's ``ts`` may be.
        threads: Torch threads of a neural model (1 is fastest under concurrent requests).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    run: Path
    log: Path = Path("serve-events.sqlite")
    keys: Path = Path("serve-keys.json")
    forecasts: Path | None = None
    state: str = "memory"
    state_prefix: str = "shopseq:"
    pseudonymize_key: SecretBytes | None = None
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    max_batch: int = Field(default=1000, ge=1, le=10_000)
    max_k: int = Field(default=100, ge=1, le=1000)
    max_recent: int = Field(default=200, ge=1)
    max_users: int = Field(default=1_000_000, ge=1)
    max_group_events: int = Field(default=20_000, ge=1)
    max_future_seconds: float = Field(default=86_400.0, ge=0)
    threads: int = Field(default=1, ge=1)

    @field_validator("state")
    @classmethod
    def _known_state(cls, value: str) -> str:
        if value != "memory" and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                f"state must be 'memory' or a redis:// URL (e.g. redis://127.0.0.1:6379/0); "
                f"got {value!r}"
            )
        return value
