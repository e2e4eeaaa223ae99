"""A bounded, sequential little-endian reader over a seekable binary file.

It reads ahead in chunks of ``CHUNK_SIZE`` bytes, never past the file's size, and raises
:class:`~.errors.Truncated` instead of reading past the end.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Callable

from .errors import ADVICE_CORRUPT, ADVICE_LIMIT, ADVICE_TRUNCATED, FileProblem, Truncated
from .limits import GGUF_MAX_STRING_LENGTH, MAX_STRING_VALUE, MAX_TOKEN_LENGTH

# Read-ahead. The string walk relies on it: no single read is longer than CHUNK_SIZE (the longest
# are kept strings, keys, small arrays and vocabulary tokens, all at most 1 MiB), so the buffer never
# holds more than CHUNK_SIZE bytes and a string found whole in it is at most MAX_TOKEN_LENGTH long.
CHUNK_SIZE = 1 << 20

_UINT32 = struct.Struct("<I").unpack_from
_UINT64 = struct.Struct("<Q").unpack_from
# unpack_from raises struct.error past the buffer's end, OverflowError when a huge length pushed
# the offset beyond ssize_t
_PAST_THE_BUFFER = (struct.error, OverflowError)


class Reader:
    """Reads the file in order; ``where`` names the part being read, for messages."""

    __slots__ = ("file", "size", "buffer", "buffer_offset", "position", "where")

    def __init__(self, file: BinaryIO, size: int) -> None:
        self.file = file
        self.size = size
        self.buffer = b""
        self.buffer_offset = 0  # file offset of buffer[0]
        self.position = 0  # index into buffer
        self.where = "the GGUF header"

    def tell(self) -> int:
        return self.buffer_offset + self.position

    def remaining(self) -> int:
        return self.size - self.buffer_offset - self.position

    def fill(self, count: int) -> None:
        """Make buffer[position:position + count] available (reading ahead up to CHUNK_SIZE)."""
        offset = self.buffer_offset + self.position
        if count > self.size - offset:
            raise Truncated()
        kept = self.buffer[self.position :]
        wanted = min(max(count, CHUNK_SIZE), self.size - offset)
        self.file.seek(offset + len(kept))
        missing = wanted - len(kept)
        parts = [kept]
        while missing > 0:
            data = self.file.read(missing)
            if not data:  # the file shrank while being read
                raise Truncated()
            parts.append(data)
            missing -= len(data)
        self.buffer = b"".join(parts)
        self.buffer_offset = offset
        self.position = 0

    def skip(self, count: int) -> None:
        position = self.position + count
        if position <= len(self.buffer):
            self.position = position
            return
        offset = self.buffer_offset + position
        if offset > self.size:
            raise Truncated()
        self.buffer = b""
        self.buffer_offset = offset
        self.position = 0

    def read(self, count: int) -> bytes:
        if self.position + count > len(self.buffer):
            self.fill(count)
        start = self.position
        self.position = start + count
        return self.buffer[start : start + count]

    def unpack(self, unpack_from: Callable[[bytes, int], tuple], count: int) -> tuple:
        """``unpack_from`` applied to the next ``count`` bytes."""
        if self.position + count > len(self.buffer):
            self.fill(count)
        start = self.position
        self.position = start + count
        return unpack_from(self.buffer, start)

    def uint32(self) -> int:
        return self.unpack(_UINT32, 4)[0]

    def uint64(self) -> int:
        return self.unpack(_UINT64, 8)[0]

    def string_length(self, what: str, limit: int, limit_reason: str) -> int:
        """Read a uint64 string length and check it against ``limit`` and the rest of the file."""
        length = self.uint64()
        if length > limit:
            raise FileProblem(f"{what} has an absurd length of {length:,} bytes ({limit_reason})", ADVICE_CORRUPT)
        remaining = self.remaining()
        if length > remaining:
            raise FileProblem(
                f"the file is truncated or corrupted: {what} at byte {self.tell() - 8:,} claims "
                f"{length:,} bytes but only {remaining:,} bytes remain in the file",
                ADVICE_TRUNCATED,
            )
        return length

    def read_strings(self, count: int, keep: bool, what: str) -> list[bytes] | None:
        """Read ``count`` length-prefixed strings; return them when ``keep``.

        The hot loop of the check: vocabularies and BPE merges hold hundreds of thousands of
        strings. The strings lying whole in the buffer are taken without a check each
        (:meth:`_strings_in_buffer`); the one that straddles the buffer's end is read with every
        check (:meth:`_read_one_string`), and the walk goes on in the next buffer.
        """
        strings: list[bytes] | None = [] if keep else None
        index = 0
        while index < count:
            if self.position + 8 > len(self.buffer):
                self.fill(8)
            index = self._strings_in_buffer(index, count, strings)
            if index < count:
                self._read_one_string(index, strings, what)
                index += 1
        return strings

    def _strings_in_buffer(self, first: int, count: int, strings: list[bytes] | None) -> int:
        """Walk strings ``first``.. while they lie whole in the buffer; returns the index of the
        first one that does not (``count`` when all do), with ``position`` at its start.

        No length is tested per string: ``unpack_from`` raises once a length is not wholly
        buffered, and a string that ran past the end is found by the position afterwards and
        taken back. Strings go four to a pass while whole blocks of four fit (unrolled: 8% less
        time on a 262k-token vocabulary, benchmarks/bench_gguf_check.py); the rest, and a block that
        did not fit, one at a time. A string found whole in a buffer of at most CHUNK_SIZE bytes is
        within every length limit.
        """
        buffer = self.buffer
        end = len(buffer)
        unpack_length = _UINT64
        position = self.position
        index = first
        kept_before = len(strings) if strings is not None else 0

        block_start = position
        try:
            if strings is None:
                while index + 4 <= count:
                    block_start = position
                    position += 8 + unpack_length(buffer, position)[0]
                    position += 8 + unpack_length(buffer, position)[0]
                    position += 8 + unpack_length(buffer, position)[0]
                    position += 8 + unpack_length(buffer, position)[0]
                    if position > end:
                        break
                    index += 4
            else:
                append = strings.append
                while index + 4 <= count:
                    block_start = position
                    start = position + 8
                    position = start + unpack_length(buffer, position)[0]
                    append(buffer[start:position])
                    start = position + 8
                    position = start + unpack_length(buffer, position)[0]
                    append(buffer[start:position])
                    start = position + 8
                    position = start + unpack_length(buffer, position)[0]
                    append(buffer[start:position])
                    start = position + 8
                    position = start + unpack_length(buffer, position)[0]
                    append(buffer[start:position])
                    if position > end:
                        break
                    index += 4
        except _PAST_THE_BUFFER:
            pass
        if position > end or index + 4 <= count:  # the block that did not fit: one at a time below
            position = block_start
            if strings is not None:
                del strings[kept_before + index - first :]

        last_start = position
        single_first = index
        try:
            if strings is None:
                for index in range(single_first, count):  # noqa: B007 (read after the loop)
                    length = unpack_length(buffer, position)[0]
                    last_start = position
                    position += 8 + length
            else:
                append = strings.append
                for index in range(single_first, count):  # noqa: B007
                    length = unpack_length(buffer, position)[0]
                    last_start = position
                    position += 8 + length
                    append(buffer[last_start + 8 : position])
            index = count
        except _PAST_THE_BUFFER:
            pass  # the length of string `index` is not wholly buffered; position is its start
        if position > end:  # the string before `index` runs past the buffer: take it back
            index -= 1
            position = last_start
            if strings is not None:
                strings.pop()
        self.position = position
        return index

    def _read_one_string(self, index: int, strings: list[bytes] | None, what: str) -> None:
        """Element ``index`` of a string array, with every length check, reading as needed."""
        length = self.uint64()
        remaining = self.remaining()
        if length > GGUF_MAX_STRING_LENGTH:
            raise FileProblem(
                f"{what} element #{index} has an absurd length of {length:,} bytes (llama.cpp's "
                f"limit is {GGUF_MAX_STRING_LENGTH:,})",
                ADVICE_CORRUPT,
            )
        if length > remaining:
            raise FileProblem(
                f"the file is truncated or corrupted: {what} element #{index} at byte "
                f"{self.tell() - 8:,} claims {length:,} bytes but only {remaining:,} bytes remain",
                ADVICE_TRUNCATED,
            )
        if length > MAX_STRING_VALUE:
            raise FileProblem(
                f"{what} element #{index} is a string of {length:,} bytes (validator limit: {MAX_STRING_VALUE:,})",
                ADVICE_LIMIT,
            )
        if strings is None:
            self.skip(length)
            return
        if length > MAX_TOKEN_LENGTH:
            raise FileProblem(
                f"{what} element #{index} is {length:,} bytes long (validator limit: "
                f"{MAX_TOKEN_LENGTH:,} bytes per vocabulary token)",
                ADVICE_LIMIT,
            )
        strings.append(self.read(length))
