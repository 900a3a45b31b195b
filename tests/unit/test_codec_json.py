"""The one JSON path of the API server, registries and the job's own files."""
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


def _as_json_writes_it(doc, *, sort_keys: bool) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys).encode("utf-8", "replace")


def test_encode_writes_every_string_and_key_order_as_json_does() -> None:
    # The content hashes are taken of these bytes: a byte of difference would rewrite every object
    # of a cluster once, on the first run of a new version.
    import random

    rnd = random.Random(5)
    alphabet = [chr(c) for c in range(0x00, 0x80)] + ["é", "\u2028", "\u2029", "\ufeff", "\u00ad", "😀", "中"]
    for _ in range(300):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40)))
        doc = {text: [text, rnd.randint(-2**63, 2**63 - 1)], "z" + text: {"a": text, "B": None}, "": True}
        for sort_keys in (False, True):
            assert encode_json(doc, sort_keys=sort_keys) == _as_json_writes_it(doc, sort_keys=sort_keys)
    # What orjson refuses is still written, as json writes it: lone surrogates, huge ints, deep nesting.
    deep: list = []
    for _ in range(300):
        deep = [deep]
    for doc in ({"b": "a\ud800b", "a": 1}, {"b": 2**70, "a": 1}, {"b": deep, "a": 1}):
        assert encode_json(doc, sort_keys=True) == _as_json_writes_it(doc, sort_keys=True)
