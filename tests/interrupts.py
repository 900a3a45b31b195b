"""A script run in a process of its own that interrupts itself with a real SIGINT, as Ctrl-C does in
a terminal: for the tests that an interrupted run exits at once, whatever it was waiting for."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: As in a terminal: a process started in the background (nohup, &) inherits SIGINT ignored.
PRELUDE = ("import os, signal, sys, threading\n"
           "signal.signal(signal.SIGINT, signal.default_int_handler)\n")


#: What `imvjob` does on an interrupt: says so, exits with 130.
EPILOGUE = ("try:\n"
            "    main()\n"
            "except KeyboardInterrupt:\n"
            "    print('interrupted', flush=True)\n"
            "    sys.exit(130)\n")


def run_interrupted(tmp_path: Path, body: str, *, waiting_for: str) -> tuple[int, list[str]]:
    """(exit status, words printed) of `body` (which defines main(), which sends the process a
    SIGINT), with this checkout importable. The test fails if the process has not exited after
    30 s: it waited for `waiting_for`."""
    script = tmp_path / "interrupted.py"
    script.write_text(PRELUDE + body + EPILOGUE)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"the interrupted process waited for {waiting_for}")
    return proc.returncode, out.split()
