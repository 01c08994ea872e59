"""Raw bytes of an input file: decompressed by what the content is, with damage detected.

Compression is recognised by the file's first bytes (gzip, zstd, bzip2, xz), never by its name,
so ``FILE.CSV.GZ``, plain text named ``.gz`` and a ``.csv`` that is really gzip all read right.
Decompression goes through the codecs' incremental APIs, which report what the file-level readers
hide: a stream cut short (truncated download), trailing bytes after the last complete stream, and
corrupt data. Each of these rejects the whole file (:class:`UnreadableFileError`): rows decoded
before a cut cannot be proven complete, so none are kept.

Output is produced in bounded pieces (a few MB per call, whatever the compression ratio), so a
decompression bomb costs time, not memory.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from shopseq.errors import UnreadableFileError

__all__ = ["COMPRESSED_SUFFIXES", "Compression", "detect_compression", "iter_bytes", "sniff"]

#: Compressed bytes read per step.
_READ_BYTES = 1 << 20
#: Largest decompressed piece produced per step (bounds memory under any compression ratio).
_PIECE_BYTES = 4 << 20
# zstd's decompressobj has no output limit: feed it small inputs (a zstd block expands at most
# ~32,000x, so 1 KB in is at most ~32 MB out).
_ZSTD_IN = 1 << 10

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)
#: Suffixes of compressed files (ignored when telling the format from the name).
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".zst", ".zstd", ".bz2", ".xz")


class Compression:
    """Names of the supported compressions (``"none"`` for plain files)."""

    NONE = "none"


def sniff(path: Path, n: int = 8) -> bytes:
    """Return the first ``n`` bytes of ``path`` (fewer for a shorter file).

    Args:
        path: The file.
        n: How many bytes.

    Returns:
        The bytes.

    Raises:
        UnreadableFileError: If the file cannot be opened.
    """
    try:
        with path.open("rb") as handle:
            return handle.read(n)
    except OSError as err:
        raise UnreadableFileError(path, f"cannot be opened: {err.strerror or err}") from err


def detect_compression(path: Path) -> str:
    """Tell how ``path`` is compressed, from its first bytes.

    Args:
        path: The file.

    Returns:
        ``"gzip"``, ``"zstd"``, ``"bzip2"``, ``"xz"`` or ``"none"``.
    """
    head = sniff(path)
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return Compression.NONE


class _Decoder:
    """One incremental decompressor that can be asked for bounded output."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._obj: Any = self._new()
        self._rest = b""  # zstd: input after the end of a frame, not seen by the codec

    def _new(self) -> Any:
        if self.kind == "gzip":
            return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        if self.kind == "bzip2":
            return bz2.BZ2Decompressor()
        if self.kind == "xz":
            return lzma.LZMADecompressor()
        return zstandard.ZstdDecompressor().decompressobj()

    @property
    def eof(self) -> bool:
        return bool(self._obj.eof)

    @property
    def unused(self) -> bytes:
        return bytes(self._obj.unused_data) + self._rest

    def restart(self) -> None:
        self._obj = self._new()
        self._rest = b""

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decompress ``data`` in pieces of at most ``_PIECE_BYTES`` (zstd: see ``_ZSTD_IN``)."""
        obj = self._obj
        if self.kind == "gzip":
            out = obj.decompress(data, _PIECE_BYTES)
            yield out
            while obj.unconsumed_tail and not obj.eof:
                yield obj.decompress(obj.unconsumed_tail, _PIECE_BYTES)
        elif self.kind in ("bzip2", "xz"):
            yield obj.decompress(data, _PIECE_BYTES)
            while not obj.eof and not obj.needs_input:
                yield obj.decompress(b"", _PIECE_BYTES)
        else:
            view = memoryview(data)
            for start in range(0, len(view), _ZSTD_IN):
                yield obj.decompress(view[start : start + _ZSTD_IN].tobytes())
                if obj.eof:
                    self._rest = view[start + _ZSTD_IN :].tobytes()
                    break


def iter_bytes(path: Path) -> Iterator[bytes]:
    """Yield the decompressed content of ``path`` in pieces.

    Args:
        path: The file (plain, gzip, zstd, bzip2 or xz; several concatenated streams are read as
            one, as ``zcat`` does; zero padding after the last stream is ignored).

    Yields:
        Non-empty byte strings, in order.

    Raises:
        UnreadableFileError: If the file cannot be opened or read, or its compression is
            damaged, truncated or followed by other data.
    """
    kind = detect_compression(path)
    try:
        handle: BinaryIO = path.open("rb")
    except OSError as err:
        raise UnreadableFileError(path, f"cannot be opened: {err.strerror or err}") from err
    with handle:
        if kind == Compression.NONE:
            yield from _plain(path, handle)
            return
        yield from _decompressed(path, handle, _Decoder(kind))


def _plain(path: Path, handle: BinaryIO) -> Iterator[bytes]:
    while True:
        try:
            piece = handle.read(_PIECE_BYTES)
        except OSError as err:
            raise UnreadableFileError(path, f"cannot be read: {err.strerror or err}") from err
        if not piece:
            return
        yield piece


def _decompressed(path: Path, handle: BinaryIO, decoder: _Decoder) -> Iterator[bytes]:
    produced = 0
    pending = b""  # compressed bytes after the end of a stream, not yet inspected
    started = False  # a stream has begun and not yet ended
    while True:
        if pending:
            data, pending = pending, b""
        else:
            try:
                data = handle.read(_READ_BYTES)
            except OSError as err:
                raise UnreadableFileError(path, f"cannot be read: {err.strerror or err}") from err
            if not data:
                break
        if not started:
            # Between streams: zero padding is ignored; another stream of the same kind is read
            # on; anything else is data that does not belong to the compressed file.
            stripped = data.lstrip(b"\0")
            if not stripped:
                continue
            if not any(stripped.startswith(m) for m, k in _MAGIC if k == decoder.kind):
                if len(stripped) < 6:
                    more = handle.read(_READ_BYTES)
                    if more:
                        pending = stripped + more
                        continue
                raise UnreadableFileError(
                    path,
                    f"has {len(stripped):,}+ bytes of other data after the end of its "
                    f"{decoder.kind} stream (after {produced:,} decompressed bytes); the file is "
                    "damaged or two files were joined: nothing of it was ingested",
                    offset=produced,
                )
            data = stripped
            decoder.restart()
            started = True
        try:
            for piece in decoder.feed(data):
                if piece:
                    produced += len(piece)
                    yield piece
        except (OSError, EOFError, ValueError, zlib.error, zstandard.ZstdError) as err:
            raise UnreadableFileError(
                path,
                f"is not valid {decoder.kind} data after {produced:,} decompressed bytes "
                f"({err}); the file is damaged: nothing of it was ingested (re-download or "
                "re-compress it)",
                offset=produced,
            ) from err
        if decoder.eof:
            started = False
            pending = decoder.unused
    if started:
        raise UnreadableFileError(
            path,
            f"is a truncated {decoder.kind} file: the compressed data ends after {produced:,} "
            "decompressed bytes, before the end-of-stream marker; nothing of it was ingested "
            "(re-download or re-compress it)",
            offset=produced,
        )
