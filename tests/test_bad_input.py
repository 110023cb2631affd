"""Malformed and hostile input never causes a 500: every answer is a 4xx in the error shape.

Every body below is invalid, so nothing reaches a worker."""

import json

import pytest

pytestmark = pytest.mark.django_db

BODIES = [
    [],
    "x",
    123,
    None,
    {"voice": None, "text": None},
    {"voice": ["a"], "text": {"a": 1}},
    {"voice": "stock-joe", "text": "hi", "speed": "fast"},
    {"voice": "stock-joe", "text": "hi", "speed": 1e309},
    {"voice": "stock-joe", "text": "hi", "sample_rate": "abc"},
    {"voice": "stock-joe", "text": "hi", "sample_rate": 10**20},
    {"voice": "x" * 500, "text": "hi"},
    {"voice": "stock-joe", "text": "\x00bad"},
    {"voice": "stock-joe", "text": "<speak><prosody rate='abc'>x</prosody></speak>"},
    {"voice": "stock-joe", "text": "<speak>" * 1000},
    {"voice": "stock-joe", "text": "<!DOCTYPE x [<!ENTITY a 'b'>]><speak>&a;</speak>"},
    {"voice": "stock-joe", "text": "hi", "webhook_url": "file:///etc/passwd", "mode": "async"},
    {"voice": "stock-joe", "text": "hi", "emotion": 5},
    {"voice": "stock-joe", "text": "hi", "intensity": -1},
]
PATHS = ["/api/v1/synthesize", "/v1/audio/speech", "/api/v1/keys", "/api/v1/members"]


def test_hostile_input_gets_a_4xx_in_the_error_shape(api):
    for path in PATHS:
        for body in BODIES:
            r = api.post(path, json.dumps(body), content_type="application/json")
            assert r.status_code < 500, (path, body, r.content[:300])
            assert "error" in r.json(), (path, body, r.content[:200])
    for path in [
        "/api/v1/keys/00000000-0000-0000-0000-000000000000",
        "/api/v1/synthesis-requests/zzz",
        "/api/v1/voices/nope",
        "/api/v1/usage?start=notadate",
        "/api/v1/audit-events?since=bad",
        "/api/v1/keys?page=999",
        "/api/v1/keys?page_size=-1",
    ]:
        r = api.get(path)
        assert r.status_code < 500, (path, r.content[:300])
    r = api.patch(
        "/api/v1/keys/00000000-0000-0000-0000-000000000000", "[]", content_type="application/json"
    )
    assert r.status_code < 500
    r = api.post("/api/v1/watermark/detect", "{}", content_type="application/json")
    assert 400 <= r.status_code < 500 and "error" in r.json()
