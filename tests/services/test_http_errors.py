"""Malformed admin bodies answer 400 with a reason, never 500 (issue 10, finding 7's bodies)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.services.conftest import LiveServer


def post_raw(server: LiveServer, path: str, body: bytes) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(server.url + path, data=body, method="POST")
    req.add_header("Authorization", f"Bearer {server.token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"name": "\xff\xfe"}', "UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nest"),
        (b'{"name": ', "JSON"),
    ],
    ids=["not-utf8", "deeply-nested", "truncated"],
)
def test_malformed_admin_bodies_are_400_with_a_reason(
    live_server: LiveServer, body: bytes, reason: str
) -> None:
    status, answer = post_raw(live_server, "/api/v1/networks", body)
    assert status == 400
    assert reason in answer["error"]
