"""Reading a file whose path comes from outside (configuration, secrets, feeds, saved answers):
a regular file of bounded size, and nothing else. A FIFO would hang the run, /dev/zero or a
huge file would fill its memory. Each caller turns the two refusals into its own error."""
from __future__ import annotations

import os
import stat

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISDIR, "a folder"), (stat.S_ISSOCK, "a socket"))


class NotRegularFile(Exception):
    """The path names something other than a regular file; `kind` says what, in plain words."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class TooLarge(Exception):
    """The file holds more than the bytes allowed."""


def read_regular(path: str | os.PathLike[str], *, max_bytes: int) -> bytes:
    """I/O: the bytes of a regular file of at most `max_bytes`. Raises NotRegularFile, TooLarge, or
    OSError (FileNotFoundError and the like) when it cannot be opened or read."""
    # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(next((words for test, words in _KINDS if test(mode)), "something else"))
        os.set_blocking(fd, True)
        # Read in chunks up to one byte past the cap (that byte tells a file too big): the buffer
        # follows what the file holds, not the cap.
        chunks, size = [], 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"more than {max_bytes} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)
