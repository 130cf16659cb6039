"""POST /v1/dialogue/plan on the real server with bodies a hostile or broken client sends: each is a 4xx
that says what to send, never a 500."""

import json

import pytest
import requests

from exomni_blender.core import contract as C

SCRIPT = "BOB\nHello there.\n"


@pytest.mark.parametrize("raw, words", [
    ('{"script": "BOB\\nHello.\\n", "fps": ' + "9" * 400 + '}', "fps must be a number from 1 to 240"),
    ('{"script": "BOB\\nHello.\\n", "fps": "fast"}', "fps must be a number"),
    ('{"script": "BOB\\nHello.\\n", "seed": 1e400}', "seed must be a whole number"),
    ('{"script": "BOB\\nHello.\\n", "format": 5}', "format must be one of"),
    (json.dumps({"script": "character,line\nBOB," + "x" * 140_000 + "\n", "format": "csv"}), "not a CSV"),
    ('{"script": "BOB\\nHello.\\n", "voices": {"BOB": "en\\ud800"}}', "voices maps each character"),
    ('{"script": "BOB\\nHello.\\n", "cast": {"BOB": {"voice": "en-gb"}}}', "cast maps each character"),
    ('{"script": "BOB\\nHel\\udc00lo.\\n"}', "broken character"),
    ("[" * 100_000, "not valid JSON"),
    (json.dumps({"script": "[" * 5000 + "]" * 5000, "format": "json"}), ""),
])
def test_a_bad_plan_body_is_a_4xx_in_words(live_server, raw, words):
    r = requests.post(live_server + C.DIALOGUE_PLAN, data=raw.encode(), timeout=30,
                      headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert words in r.json()["error"]["message"]


def test_a_good_plan_still_plans(live_server):
    r = requests.post(live_server + C.DIALOGUE_PLAN, json={"script": SCRIPT, "fps": 24, "seed": 3}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["fps"] == 24 and r.json()["lines"][0]["character"] == "BOB"
