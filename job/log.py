"""Run log: task lines and the recap, as text or JSON lines; progress on a terminal."""
from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any, TextIO


class RunLog:
    def __init__(self, *, fmt: str = "text", stream: TextIO | None = None, progress: str = "auto") -> None:
        self.fmt = fmt
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)()
        self.show_progress = progress == "always" or (progress == "auto" and isatty and fmt == "text")
        self._lock = threading.Lock()
        self._last_progress = 0.0
        self.started = time.time()
        #: (task, monotonic start) of each task, for the metrics' stage durations.
        self.tasks: list[tuple[str, float]] = []

    def _emit(self, level: str, event: str, message: str, fields: dict[str, Any]) -> None:
        with self._lock:
            if self.fmt == "json":
                line = json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "level": level, "event": event, "message": message, **fields},
                                  default=str, ensure_ascii=False)
            else:
                line = message
            if self.show_progress:
                self.stream.write("\r\033[K")
            self.stream.write(line + "\n")
            self.stream.flush()

    def task(self, name: str) -> None:
        self.tasks.append((name, time.monotonic()))
        self._emit("info", "task", f"TASK [{name}]", {"task": name})

    def info(self, message: str, **fields: Any) -> None:
        self._emit("info", "info", f"  {message}", fields)

    def warn(self, message: str, **fields: Any) -> None:
        self._emit("warning", "warning", f"  warning: {message}", fields)

    def error(self, message: str, **fields: Any) -> None:
        self._emit("error", "error", f"  error: {message}", fields)

    def recap(self, message: str, **fields: Any) -> None:
        self._emit("info", "recap", message, fields)

    def progress(self, label: str, done: int, total: int) -> None:
        """A self-overwriting progress line on a terminal; nothing in logs."""
        if not self.show_progress:
            return
        now = time.monotonic()
        if done < total and now - self._last_progress < 0.1:
            return
        self._last_progress = now
        with self._lock:
            self.stream.write(f"\r\033[K  {label}: {done}/{total}")
            if done >= total:
                self.stream.write("\n")
            self.stream.flush()


class QuietLog(RunLog):
    """For library use and tests: drops everything."""

    def _emit(self, level: str, event: str, message: str, fields: dict[str, Any]) -> None:
        pass

    def progress(self, label: str, done: int, total: int) -> None:
        pass
