"""The one exception hierarchy of shopseq.

```
ShopseqError                          base: `except ShopseqError` catches all we raise on purpose
├── InputError (also ValueError)      the user gave us something we cannot use
│   ├── SchemaMismatchError           a file lacks required columns or has wrong types
│   ├── UnreadableFileError           a file cannot be read at all (damaged, truncated, not text)
│   ├── BadRowError                   one row fails a rule (strict mode; as its quarantine record)
│   ├── ConfigError                   unknown key or invalid value in a config file or flag
│   └── UnknownIdError (also LookupError)  an id absent from the vocabulary (serve answers 404)
├── NotFittedError (also AttributeError)  model used before fit
├── ArtifactError                     run directory missing, incomplete or of another version
└── StoreError                        the event store cannot be opened or written
```

Errors keep their parts as attributes and build the message from them, so the quarantine table, the
CLI and HTTP bodies all render the same object.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ArtifactError",
    "BadRowError",
    "ConfigError",
    "InputError",
    "NotAStoreError",
    "NotFittedError",
    "SchemaMismatchError",
    "ShopseqError",
    "StoreError",
    "UnknownIdError",
    "UnreadableFileError",
    "check_is_fitted",
]


class ShopseqError(Exception):
    """Base of every error shopseq raises on purpose."""


class InputError(ShopseqError, ValueError):
    """The user gave us something we cannot use."""


class SchemaMismatchError(InputError):
    """A file lacks required columns or cannot be read with the chosen layout.

    Attributes:
        path: The file.
        missing: Required source columns that were not found.
        found: The columns the file has.
        hint: How to fix it.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        missing: list[str] | None = None,
        found: list[str] | None = None,
        hint: str = "",
        detail: str = "",
    ) -> None:
        self.path = Path(path)
        self.missing = list(missing or [])
        self.found = list(found or [])
        self.hint = hint
        parts = []
        if detail:
            parts.append(detail)
        if self.missing:
            parts.append(f"missing required columns {self.missing}; found {self.found}")
        message = f"{self.path.name}: " + "; ".join(parts)
        if hint:
            message += f"; {hint}"
        super().__init__(message)


class UnreadableFileError(InputError):
    """A file cannot be read at all, so nothing of it is ingested.

    Damaged, truncated or trailing-garbage compression, a corrupt Parquet file, a header line
    that never ends, a UTF-16 file: problems of the file, not of one row.

    Attributes:
        path: The file.
        detail: What is wrong and what to do.
        line: Physical line where the problem was found (``None`` when unknown).
        column: 1-based character column on that line (``None`` when unknown).
        offset: Decompressed byte offset where the problem was found (``None`` when unknown).
    """

    def __init__(
        self,
        path: Path | str,
        detail: str,
        *,
        line: int | None = None,
        column: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.detail = detail
        self.line = line
        self.column = column
        self.offset = offset
        where = self.path.name
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {detail}")

    def at_line(self, line: int) -> UnreadableFileError:
        """Return the same error located at ``line`` (when it did not know its line yet).

        Args:
            line: Physical line number.

        Returns:
            A new error (or this one if it already has a line).
        """
        if self.line is not None:
            return self
        return UnreadableFileError(
            self.path, self.detail, line=line, column=self.column, offset=self.offset
        )


class BadRowError(InputError):
    """One input row breaks a validation rule.

    Attributes:
        path: The file the row came from.
        line: Physical line number in the file (1-based, header included).
        column: Name of the offending source column ("" when the whole row is at fault).
        value: The raw value (or row text) that broke the rule.
        reason: Machine-readable reason code (a ``QuarantineReason`` value).
        detail: What is wrong and what was expected.
    """

    def __init__(
        self, path: Path | str, line: int, column: str, value: str, reason: str, detail: str
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.value = value
        self.reason = reason
        self.detail = detail
        super().__init__(self.render(self.path.name, line, column, value, detail))

    @staticmethod
    def render(file_name: str, line: int, column: str, value: str, detail: str) -> str:
        """Build the one message shape used by strict mode and the quarantine table.

        Args:
            file_name: File name to show.
            line: Physical line number.
            column: Source column name, or "" for a whole-row problem.
            value: The offending raw value.
            detail: What is wrong and what was expected.

        Returns:
            ``{file}:{line}: column '{name}': {value!r} {detail}``.
        """
        where = f"column '{column}': " if column else ""
        return f"{file_name}:{line}: {where}{value!r} {detail}"


class ConfigError(InputError):
    """An unknown key or invalid value in a config file or command-line flag."""


class UnknownIdError(InputError, LookupError):
    """An id that the vocabulary does not know."""


class NotFittedError(ShopseqError, AttributeError):
    """A model was used before ``fit``."""


def check_is_fitted(model: object, attribute: str) -> None:
    """Raise :class:`NotFittedError` unless ``model`` has the learned ``attribute``.

    Args:
        model: Any estimator (next-item model, forecaster, per-user model).
        attribute: A learned attribute (ends in ``_``), ``None`` or absent before ``fit``.

    Raises:
        NotFittedError: If the model was not fitted.
    """
    if getattr(model, attribute, None) is None:
        name = type(model).__name__
        raise NotFittedError(f"{name} is not fitted yet: call fit before using it")


class ArtifactError(ShopseqError):
    """A run directory is missing, incomplete, or from an incompatible version."""


class StoreError(ShopseqError):
    """The event store cannot be opened, read or written."""


class NotAStoreError(StoreError, InputError):
    """The path given as the event store is another kind of file (bad input: exit code 2)."""
