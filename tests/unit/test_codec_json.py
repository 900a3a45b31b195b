"""The one JSON path of the API server, registries and stage files."""
from __future__ import annotations

import gc
import json

from job.codec import decode_json, encode_json
from job.memory import gc_paused


def test_decode_takes_what_json_takes() -> None:
    assert decode_json(b'{"a": [1, 2.5, "\\u00e9"]}') == {"a": [1, 2.5, "é"]}
    # orjson refuses these; json takes them, and so does the job, as before.
    assert decode_json(b'"a\\ud800b"') == json.loads('"a\\ud800b"')
    assert decode_json(b"[NaN]")[0] != 0
    big = json.dumps({"items": [{"n": i, "s": "x" * 50} for i in range(3000)]}).encode()
    assert len(big) > 65536 and decode_json(big)["items"][-1]["n"] == 2999
    assert gc.isenabled()


def test_encode_is_compact_utf8_json() -> None:
    doc = {"b": "é\n\"", "a": [1, None, True]}
    assert encode_json(doc) == json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def test_gc_paused_turns_the_collector_back_on() -> None:
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
