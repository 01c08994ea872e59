r"""Physical lines of a decompressed file, in blocks, with their exact line numbers.

A *physical line* ends at a line feed (``\\n``), a ``\\r\\n`` pair, or, in delimited text, a lone
carriage return (old Mac files); JSON lines end at ``\\n`` only (a lone ``\\r`` is JSON whitespace).
A final line without a terminator is a line. A UTF-8 byte-order mark at the start is dropped; a
UTF-16/32 one rejects the file.

Memory is bounded whatever the input: blocks hold about ``block_bytes`` of whole lines, and a
line longer than ``max_line_bytes`` (no terminator in sight, e.g. a 2 GB file of zero bytes) is
not buffered: its first bytes are kept for the quarantine and the rest is skipped up to the next
terminator. Peak buffer: ``max_line_bytes + block_bytes + 4 MB``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shopseq.errors import UnreadableFileError

__all__ = ["DEFAULT_MAX_LINE_BYTES", "LineBlock", "LongLine", "iter_line_blocks", "split_lines"]

#: Longest line (or multi-line CSV record) read; longer ones are quarantined as line_too_long.
DEFAULT_MAX_LINE_BYTES = 64 << 20
#: Bytes kept of a too-long line, for the quarantine.
HEAD_BYTES = 200

_BOM_UTF8 = b"\xef\xbb\xbf"
_BOM_OTHER = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)


class LineBlock:
    """Whole physical lines of a file.

    The line offsets are found only when asked for: a block whose lines all go straight to the
    CSV parser needs just their count.

    Attributes:
        data: The bytes of the lines, terminators included.
        first_line: Physical line number of the first line (1-based).
        n_lines: Number of lines.
        cr_newline: A lone carriage return ends a line.
    """

    __slots__ = ("_offsets", "cr_newline", "data", "first_line", "n_lines")

    def __init__(
        self,
        data: bytes,
        first_line: int,
        offsets: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        *,
        cr_newline: bool = True,
        n_lines: int | None = None,
    ) -> None:
        self.data = data
        self.first_line = first_line
        self.cr_newline = cr_newline
        self._offsets = offsets
        if n_lines is None:
            n_lines = int(offsets[0].size) if offsets is not None else int(self.starts.size)
        self.n_lines = n_lines

    @classmethod
    def of(cls, data: bytes, first_line: int, *, cr_newline: bool) -> LineBlock:
        """The lines of ``data`` (all of it: it ends at a terminator or the end of the file)."""
        if not (cr_newline and data.find(b"\r") != -1):
            arr = np.frombuffer(data, dtype=np.uint8)
            n = int(np.count_nonzero(arr == 10)) + (0 if not data or data[-1:] == b"\n" else 1)
            return cls(data, first_line, None, cr_newline=cr_newline, n_lines=n)
        return cls(data, first_line, split_lines(data, cr_newline=cr_newline, final=True))

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._offsets is None:
            starts, ends, nexts = split_lines(self.data, cr_newline=self.cr_newline, final=True)
            self._offsets = (starts, ends, nexts)
        return self._offsets

    @property
    def starts(self) -> np.ndarray:
        """Offset of each line's first byte in ``data``."""
        return self._arrays()[0]

    @property
    def ends(self) -> np.ndarray:
        """Offset just past each line's content (its terminator excluded)."""
        return self._arrays()[1]

    @property
    def nexts(self) -> np.ndarray:
        """Offset just past each line's terminator (the next line's start)."""
        return self._arrays()[2]

    def line(self, i: int) -> bytes:
        """Content of line ``i`` of the block (0-based), without its terminator."""
        return self.data[int(self.starts[i]) : int(self.ends[i])]

    def _with(self, data: bytes, first_line: int, offsets: tuple[np.ndarray, ...]) -> LineBlock:
        starts, ends, nexts = offsets
        return LineBlock(data, first_line, (starts, ends, nexts), cr_newline=self.cr_newline)

    def tail(self, i: int) -> LineBlock:
        """The lines from ``i`` (0-based) to the end, as a block of their own."""
        base = int(self.starts[i]) if i < self.n_lines else len(self.data)
        return self._with(
            self.data[base:],
            self.first_line + i,
            (self.starts[i:] - base, self.ends[i:] - base, self.nexts[i:] - base),
        )

    def head(self, n: int) -> LineBlock:
        """The first ``n`` lines, as a block of their own."""
        end = int(self.nexts[n - 1]) if n else 0
        return self._with(
            self.data[:end], self.first_line, (self.starts[:n], self.ends[:n], self.nexts[:n])
        )

    def then(self, other: LineBlock) -> LineBlock:
        """This block followed by ``other`` (which must start on the next line)."""
        shift = len(self.data)
        return self._with(
            self.data + other.data,
            self.first_line,
            (
                np.concatenate([self.starts, other.starts + shift]),
                np.concatenate([self.ends, other.ends + shift]),
                np.concatenate([self.nexts, other.nexts + shift]),
            ),
        )


@dataclass(frozen=True, slots=True)
class LongLine:
    """A line longer than the limit: kept as its line number and first bytes only.

    Attributes:
        line: Physical line number.
        head: Its first bytes.
        n_bytes: Bytes of it seen when it was found too long (its length, or a lower bound).
    """

    line: int
    head: bytes
    n_bytes: int


def split_lines(
    data: bytes, *, cr_newline: bool, final: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find the lines of ``data``.

    Args:
        data: Bytes.
        cr_newline: A lone carriage return ends a line.
        final: ``data`` ends the file (a trailing unterminated line is a line; a trailing CR ends
            one).

    Returns:
        ``(starts, ends, nexts)`` of every complete line; bytes after the last terminator are not
        covered unless ``final``.
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    lf = np.flatnonzero(arr == 10)
    if data.find(b"\r") == -1:
        lf_content = lf
    else:
        lf_content = lf - ((lf > 0) & (arr[np.maximum(lf - 1, 0)] == 13))
    if cr_newline and data.find(b"\r") != -1:
        cr = np.flatnonzero(arr == 13)
        if cr.size:
            nxt = np.minimum(cr + 1, max(arr.size - 1, 0))
            lone = (cr + 1 < arr.size) & (arr[nxt] != 10)
            if final and cr.size and cr[-1] == arr.size - 1:
                lone[-1] = True
            cr = cr[lone]
        if cr.size:
            nexts = np.concatenate([lf + 1, cr + 1])
            ends = np.concatenate([lf_content, cr])
            order = np.argsort(nexts, kind="stable")
            nexts, ends = nexts[order], ends[order]
        else:
            nexts, ends = lf + 1, lf_content
    else:
        nexts, ends = lf + 1, lf_content
    nexts = nexts.astype(np.int64, copy=False)
    ends = ends.astype(np.int64, copy=False)
    if final:
        covered = int(nexts[-1]) if nexts.size else 0
        if covered < arr.size:
            nexts = np.append(nexts, arr.size)
            ends = np.append(ends, arr.size)
    starts = np.concatenate([[0], nexts[:-1]]).astype(np.int64) if nexts.size else nexts.copy()
    return starts, ends, nexts


def _terminators(data: bytes | bytearray, cr_newline: bool) -> int:
    """How many line terminators ``data`` holds (CR LF counts once)."""
    n = data.count(b"\n")
    if cr_newline:
        n += data.count(b"\r") - data.count(b"\r\n")
    return n


def iter_line_blocks(
    path: Path,
    pieces: Iterable[bytes],
    *,
    cr_newline: bool,
    block_bytes: int,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    counter: list[int] | None = None,
) -> Iterator[LineBlock | LongLine]:
    """Cut a stream of bytes into blocks of whole lines and too-long lines, in file order.

    Args:
        path: The file (for messages).
        pieces: Its decompressed bytes.
        cr_newline: A lone carriage return ends a line (delimited text; not JSON lines).
        block_bytes: Approximate bytes per block.
        max_line_bytes: Longest line kept; longer ones become :class:`LongLine`.
        counter: If given, ``counter[0]`` is kept at the number of physical lines yielded.

    Yields:
        Blocks and long lines; their line numbers are consecutive.

    Raises:
        UnreadableFileError: For a UTF-16/32 file, or (from ``pieces``) a damaged one, located at
            the line where it happened.
    """
    line_no = 1
    buf = bytearray()
    first = True
    skipping = False  # inside a too-long line (already yielded): discard up to its terminator
    skip_lf = False  # a too-long line ended at a CR that may be the first half of CRLF
    source = iter(pieces)
    done = False

    def count(n: int) -> None:
        if counter is not None:
            counter[0] += n

    while not done:
        try:
            piece = next(source)
        except StopIteration:
            done = True
            piece = b""
        except UnreadableFileError as err:
            # The damage is in the line after the last complete one read so far.
            raise err.at_line(line_no + _terminators(buf, cr_newline)) from err
        if first and (piece or done):
            buf += piece
            if len(buf) < 4 and not done:
                continue
            first = False
            for bom, name in _BOM_OTHER:
                if buf.startswith(bom):
                    raise UnreadableFileError(
                        path,
                        f"is {name} text (byte-order mark {bom.hex(' ')}); expected UTF-8: "
                        f"re-encode it, e.g. iconv -f {name} -t UTF-8",
                        line=1,
                    )
            if buf.startswith(_BOM_UTF8):
                del buf[:3]
            piece = b""
        if skip_lf and piece:
            skip_lf = False
            if piece[:1] == b"\n":
                piece = piece[1:]
        if skipping:
            if not piece:
                continue
            found = _first_terminator(piece, cr_newline)
            if found is None:
                continue
            after = found[1]
            skipping = False
            if cr_newline and after == len(piece) and piece[-1:] == b"\r":
                skip_lf = True
            piece = piece[after:]
        buf += piece
        if len(buf) < block_bytes and not done:
            continue
        cut = len(buf) if done else _last_cut(buf, cr_newline)
        if cut:
            with memoryview(buf) as view:
                data = bytes(view[:cut])  # one copy (buf[:cut] would make a second)
            del buf[:cut]
            # data ends at a certain terminator (or the end of the file): all of it is lines.
            block = LineBlock.of(data, line_no, cr_newline=cr_newline)
            if block.n_lines:
                for item in _split_long(block, max_line_bytes):
                    yield item
                    n = item.n_lines if isinstance(item, LineBlock) else 1
                    count(n)
                    line_no += n
        if len(buf) > max_line_bytes:
            # No terminator within the limit: report the line now (its first bytes kept) and
            # skip the rest of it, never buffering more than the limit.
            yield LongLine(line_no, bytes(buf[:HEAD_BYTES]), len(buf))
            count(1)
            line_no += 1
            if cr_newline and buf[-1:] == b"\r":
                skip_lf = True  # _last_cut left this CR for the next piece: it ends the line
            else:
                skipping = True
            buf.clear()


def _last_cut(buf: bytearray, cr_newline: bool) -> int:
    """Offset just past the last line terminator that is certain (a final CR may be CRLF)."""
    cut = buf.rfind(b"\n") + 1
    if cr_newline:
        cr = buf.rfind(b"\r", 0, len(buf) - 1) + 1
        cut = max(cut, cr)
    return cut


def _first_terminator(piece: bytes, cr_newline: bool) -> tuple[int, int] | None:
    """(content end, next line start) of the first line ending in ``piece``, or None."""
    lf = piece.find(b"\n")
    cr = piece.find(b"\r") if cr_newline else -1
    if cr_newline and cr != -1 and (lf == -1 or cr < lf):
        if cr + 1 < len(piece) and piece[cr + 1 : cr + 2] == b"\n":
            return cr, cr + 2
        return cr, cr + 1
    if lf == -1:
        return None
    end = lf - 1 if lf > 0 and piece[lf - 1 : lf] == b"\r" else lf
    return end, lf + 1


def _split_long(block: LineBlock, max_line_bytes: int) -> Iterator[LineBlock | LongLine]:
    if len(block.data) <= max_line_bytes:  # no line of it can be too long
        yield block
        return
    lengths = block.ends - block.starts
    long = np.flatnonzero(lengths > max_line_bytes)
    if not long.size:
        yield block
        return
    at = 0
    for i in long.tolist():
        if i > at:
            yield block.tail(at).head(i - at)
        start = int(block.starts[i])
        yield LongLine(
            block.first_line + i, block.data[start : start + HEAD_BYTES], int(lengths[i])
        )
        at = i + 1
    if at < block.n_lines:
        yield block.tail(at)
