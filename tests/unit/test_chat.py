"""Chat payloads within each service's limits, registry text kept inert, webhook kinds and hosts."""
from __future__ import annotations

import json

from job.notify.chat import Item, Notice, generic, slack, teams
from job.notify.webhooks import kind_of, refusal

REPORT = "https://reports.example.com/r.html"


def notice(n: int, *, text: str = "x" * 280) -> Notice:
    items = tuple(Item(kind, f"{kind}{i}", "shop", "Deployment/web", f"{text} {i}")
                  for kind in ("exploited", "overdue", "new", "coverage") for i in range(n))
    return Notice("shop-chat", "prod", "2026-05-04T06:00:00Z", REPORT, ("shop",), items)


def test_slack_stays_within_block_kit_limits_and_links_the_rest():
    payload = slack(notice(400))
    blocks = payload["blocks"]
    assert len(blocks) <= 50 and len(blocks[0]["text"]["text"]) <= 150
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    footer = blocks[-1]["elements"][0]["text"]
    assert footer.startswith(f"{4 * 400 - sum(b['text']['text'].count(chr(8226)) for b in blocks[1:-1])} more")
    assert f"<{REPORT}|open the report>" in footer


def test_teams_stays_under_28_kb():
    payload = teams(notice(400))
    assert len(json.dumps(payload).encode()) <= 28 * 1024
    card = payload["attachments"][0]["content"]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open the report", "url": REPORT}]
    assert card["body"][-1]["text"].endswith("more in the report")


def test_registry_text_never_becomes_a_link_or_a_mention():
    hostile = "<!channel> <https://evil.example|click> [click](https://evil.example)"
    s = json.dumps(slack(notice(1, text=hostile))["blocks"][1:-1])
    assert "<!channel>" not in s and "<https://evil" not in s and "&lt;!channel&gt;" in s
    t = json.dumps(teams(notice(1, text=hostile)))
    assert "[click](" not in t


def test_generic_json_is_versioned_and_bounded():
    doc = generic(notice(200))
    assert doc["schema"] == "imvjob.webhook/v1" and len(doc["items"]) == 500 and doc["truncated"] == 300
    assert doc["counts"] == {"exploited": 200, "overdue": 200, "new": 200, "coverage": 200}


def test_kinds_by_prefix_or_host_and_allowed_hosts():
    assert kind_of("https://hooks.slack.com/services/T/B/x") == ("slack", "https://hooks.slack.com/services/T/B/x")
    assert kind_of("teams:https://chat.example/x") == ("teams", "https://chat.example/x")
    assert kind_of("https://prod-1.westeurope.logic.azure.com/workflows/x")[0] == "teams"
    assert kind_of("https://siem.corp/hook")[0] == "json"
    assert refusal("https://hooks.slack.com/x", ()) == ""
    assert "plain http" in refusal("http://siem.corp/hook", ())
    assert refusal("https://siem.corp/hook", ("hooks.slack.com",)) != ""
    assert refusal("http://127.0.0.1:8080/x", ("127.0.0.1:*",)) == ""
