"""Files planted where the job reads the files of an earlier run: a FIFO (read, it would wait for a
writer for ever), a sparse file of a GiB, a gzip bomb; and the memory peak of reading them."""
from __future__ import annotations

import gzip
import os
import tracemalloc
from pathlib import Path
from typing import Callable, TypeVar

GIB = 1 << 30
T = TypeVar("T")


def fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def sparse(path: Path, size: int = GIB) -> None:
    """A file of `size` zero bytes that takes no disk."""
    path.unlink(missing_ok=True)
    with path.open("wb") as fh:
        fh.truncate(size)


def plant(path: Path, kind: str) -> None:
    """`kind`: "fifo" or "huge" (a sparse GiB)."""
    (fifo if kind == "fifo" else sparse)(path)


def gzip_bomb(path: Path, size: int = GIB, head: bytes = b"") -> None:
    """A gzip file (about a MB) that unzips to `head` and then `size` spaces, no line break among them:
    one gzip member of a MiB of spaces, repeated (gzip readers read members one after another)."""
    member = gzip.compress(b" " * (1 << 20), compresslevel=9)
    with path.open("wb") as fh:
        fh.write(gzip.compress(head))
        for _ in range(size >> 20):
            fh.write(member)


def peak_while(fn: Callable[[], T]) -> tuple[T, int]:
    """fn()'s result, and the most memory Python held meanwhile (tracemalloc)."""
    tracemalloc.start()
    try:
        return fn(), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
