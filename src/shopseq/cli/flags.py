"""Turning a config's validation error into a message about the flags the user typed."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["flag_errors"]


def flag_errors(err: ValidationError, flags: dict[str, str] | None = None) -> str:
    """Render a pydantic error of a config built from flags, naming the flags.

    Args:
        err: The validation error.
        flags: Dotted field path -> flag, for nested fields whose flag is not ``--<field>``
            (e.g. ``{"series.metric": "--metric"}``); other fields are named ``--<last-part>``.

    Returns:
        One ``--flag: problem`` per error, joined with ``; ``.
    """
    parts = []
    for e in err.errors():
        names = [str(p) for p in e["loc"] if isinstance(p, str)]  # no list positions
        # A validator's own message, without pydantic's "Value error, " prefix.
        message = str(e["ctx"]["error"]) if e["type"] == "value_error" else e["msg"]
        if not names:  # a check across fields: its message names what it checked
            parts.append(message)
            continue
        flag = (flags or {}).get(".".join(names)) or "--" + names[-1].replace("_", "-")
        parts.append(f"{flag}: {message}")
    return "; ".join(parts)
