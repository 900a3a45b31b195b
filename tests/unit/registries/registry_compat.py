"""Where the real upstream samples are (../shared/compat next to the repository)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

COMPAT = Path(__file__).resolve().parents[3] / ".." / "shared" / "compat"


def compat_json(*parts: str) -> Any:
    """A sample, parsed; skip (fail under CI=true) when the samples are not there."""
    path = COMPAT.joinpath(*parts)
    if not path.exists():
        message = f"compat sample {path} not found (the ../shared/compat folder is absent)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return json.loads(path.read_text(encoding="utf-8"))
