"""Reading a file whose path comes from outside (configuration, secrets, feeds, saved answers, the
files of an earlier run): a regular file of bounded size, and nothing else. A FIFO would hang the
run, /dev/zero or a huge file would fill its memory. Each caller turns the two refusals into its
own error."""
from __future__ import annotations

import os
import stat
from typing import IO, BinaryIO, Iterator

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISDIR, "a folder"), (stat.S_ISSOCK, "a socket"))


class NotRegularFile(Exception):
    """The path names something other than a regular file; `kind` says what, in plain words."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class TooLarge(Exception):
    """The file holds more than the bytes allowed; the message says which bound, as "more than 16 MiB"."""


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n and n % (1 << 20) == 0 else f"{n} bytes"


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """I/O: a regular file opened for reading. Raises NotRegularFile, or OSError (FileNotFoundError
    and the like) when it cannot be opened."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(next((words for test, words in _KINDS if test(mode)), "something else"))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(stream: IO[bytes], *, max_bytes: int) -> bytes:
    """What `stream` holds (a file, or the text a gzip file unzips to), if at most `max_bytes`;
    TooLarge otherwise."""
    # Read in chunks up to one byte past the cap (that byte tells a stream too long): what is held
    # follows what the stream holds, not the cap.
    chunks, size = [], 0
    while size <= max_bytes:
        chunk = stream.read(min(1 << 20, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > max_bytes:
        raise TooLarge(f"more than {_size(max_bytes)}")
    return b"".join(chunks)


def capped_lines(stream: IO[bytes], *, max_line: int, max_total: int) -> Iterator[bytes]:
    """The lines of `stream`, each of at most `max_line` bytes and all together at most `max_total`;
    TooLarge at the first that is more."""
    total = 0
    while line := stream.readline(max_line + 1):
        if len(line) > max_line:
            raise TooLarge(f"a line of more than {_size(max_line)}")
        total += len(line)
        if total > max_total:
            raise TooLarge(f"more than {_size(max_total)}")
        yield line


def read_regular(path: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """I/O: the bytes of a regular file of at most `max_bytes`. Raises NotRegularFile, TooLarge, or
    OSError (FileNotFoundError and the like) when it cannot be opened or read."""
    with open_regular(path) as fh:
        return read_capped(fh, max_bytes=max_bytes)
