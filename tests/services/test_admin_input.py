"""Admin input that used to corrupt the inventory or answer 500 (issue 10, finding 7).

Each request goes to a real `corral serve` on loopback; the answer must be a
400-class JSON error naming the problem, and the inventory must be unchanged.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.client import RemoteActions
from corral.inventory.errors import InventoryError
from tests.services.conftest import LiveServer

NESTED = b"[" * 200_000 + b"]" * 200_000


def raw(
    server: LiveServer, method: str, path: str, data: bytes | None = None
) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(server.url + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {server.token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()
        return exc.code, json.loads(text) if exc.code < 500 else {"error": text.decode()}


def seed(server: LiveServer) -> RemoteActions:
    api = RemoteActions(server.url, server.token)
    api.add_network({"name": "prov", "cidr": "10.77.0.0/24"})
    api.add_profile({"name": "rack", "networks": ["prov"]})
    api.add_nodes(["n1", "n2"], {"profiles": ["rack"]})
    return api


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/networks/prov", {"name": "prov2"}),
        ("/api/v1/profiles/rack", {"name": "other"}),
        ("/api/v1/nodes", {"names": "n1", "changes": {"name": "n2"}}),
    ],
)
def test_patch_cannot_rename_and_says_how(
    live_server: LiveServer, path: str, body: dict[str, object]
) -> None:
    api = seed(live_server)
    before = api.inventory()
    status, answer = raw(live_server, "PATCH", path, json.dumps(body).encode())
    assert status == 400
    assert "name cannot be changed" in str(answer["error"])
    assert "corral export" in str(answer["error"])
    after = api.inventory()
    assert sorted(after.nodes) == ["n1", "n2"] and sorted(after.networks) == ["prov"]
    assert after.to_cluster() == before.to_cluster()
    api.add_nodes(["n3"], {"profiles": ["rack"]})  # died with KeyError after a rename


def test_patch_with_the_same_name_is_allowed(live_server: LiveServer) -> None:
    api = seed(live_server)
    assert api.set_network("prov", {"name": "prov", "mtu": 9000}).mtu == 9000


def test_cli_set_cannot_rename_either(live_server: LiveServer) -> None:
    api = seed(live_server)
    with pytest.raises(InventoryError, match="name cannot be changed"):
        api.set_nodes(["n1"], {"name": "n2"})


@pytest.mark.parametrize(
    ("method", "path", "data", "says"),
    [
        ("GET", "/api/v1/events?format=json&limit=abc", None, "not a number"),
        ("GET", "/api/v1/events?format=json&since=" + "9" * 5000, None, None),
        ("GET", "/api/v1/events?format=json&since=1e5", None, "not a number"),
        ("GET", "/api/v1/events?format=json&since=99999999999999999999", None, None),
        ("GET", "/api/v1/events?format=json&limit=-5", None, None),
        ("POST", "/api/v1/networks", b'{"name": "\xff\xfe"}', "not UTF-8"),
        ("POST", "/api/v1/nodes", NESTED, "nests deeper"),
        ("POST", "/api/v1/apply", b'{"cluster": ' * 5000 + b"{}" + b"}" * 5000, "nests deeper"),
        ("POST", "/api/v1/nodes", b"not json", "not valid JSON"),
        ("POST", "/api/v1/nodes", b"[1, 2]", "request body"),
        ("POST", "/api/v1/nodes", b'{"names": 5}', "names"),
        ("POST", "/api/v1/nodes", b'{"names": "n9", "data": "x"}', "data"),
        ("PATCH", "/api/v1/nodes", b'{"names": "n1", "changes": [1]}', "changes"),
        ("PATCH", "/api/v1/networks/prov", b'{"mtu": {"a": 1}}', "mtu"),
        ("POST", "/api/v1/apply", b'{"cluster": "x"}', None),
        ("POST", "/api/v1/discovered/adopt", b'{"mac": 5, "name": []}', "mac"),
        ("POST", "/api/v1/power/status", b'{"names": "n1", "concurrency": "x"}', "concurrency"),
        ("POST", "/api/v1/power/fly", b'{"names": "n1"}', "fly"),
        ("POST", "/api/v1/switches", b'{"name": "s1"}', "address"),
        ("POST", "/api/v1/switches/none/ports", b'{"ports": "1", "nodes": "n1"}', "none"),
        ("POST", "/api/v1/tokens", b'{"name": "x", "role": "god"}', "role"),
    ],
)
def test_malformed_admin_requests_answer_4xx_never_500(
    live_server: LiveServer, method: str, path: str, data: bytes | None, says: str | None
) -> None:
    api = seed(live_server)
    before = api.inventory().to_cluster()
    status, answer = raw(live_server, method, path, data)
    if says is None and status == 200:  # bounded to a valid value instead
        assert isinstance(answer, list)
    else:
        assert 400 <= status < 500, answer
        assert says is None or says in str(answer["error"]), answer
    assert api.inventory().to_cluster() == before


FIELDS = ["names", "data", "changes", "mac", "ip", "name", "cidr", "profiles", "networks"]
FIELDS += ["power", "cluster", "prune", "dry_run", "concurrency", "ports", "nodes", "role", "tags"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.sampled_from(["n1", "n[1-2]", "prov", "rack", "10.77.0.9", "52:54:00:00:00:09", "admin"])
    | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
VALID = {  # values the routes accept, so that the other fields get looked at
    "names": st.sampled_from(["n1", "n[1-2]", "n9", ["n2"]]),
    "name": st.sampled_from(["sw1", "n9", "extra", "prov"]),
    "mac": st.sampled_from(["52:54:00:00:00:09", "aa:bb"]),
    "cidr": st.just("10.78.0.0/24"),
    "address": st.just("10.0.0.2"),
}
BODY = st.fixed_dictionaries(
    {}, optional={k: (VALID[k] | JSON) if k in VALID else JSON for k in [*FIELDS, "address"]}
)
ROUTES = [
    ("POST", "/api/v1/networks"),
    ("PATCH", "/api/v1/networks/prov"),
    ("POST", "/api/v1/profiles"),
    ("PATCH", "/api/v1/profiles/rack"),
    ("POST", "/api/v1/nodes"),
    ("PATCH", "/api/v1/nodes"),
    ("DELETE", "/api/v1/nodes"),
    ("POST", "/api/v1/apply"),
    ("POST", "/api/v1/discovered/adopt"),
    ("POST", "/api/v1/power/status"),
    ("POST", "/api/v1/switches"),
    ("POST", "/api/v1/switches/sw1/ports"),
    ("POST", "/api/v1/tokens"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_random_json_bodies_never_get_a_server_error(
    live_server: LiveServer, method: str, path: str
) -> None:
    seed(live_server)

    @settings(max_examples=40, deadline=None, derandomize=True, database=None)
    @given(body=BODY | JSON)
    def check(body: object) -> None:
        status, answer = raw(live_server, method, path, json.dumps(body).encode())
        assert status < 500, (body, answer)

    check()
