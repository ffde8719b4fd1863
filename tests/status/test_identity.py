"""Node identity over a live server (issue 10, finding 1): a node proves who it is with
the credential its boot token bought, never with its address."""

from __future__ import annotations

import time

import sqlalchemy as sa

from corral.actions import LocalActions
from corral.store import schema
from corral.store.credentials import mint_boot_token, spend_boot_token
from corral.store.status import events_since, get_status
from tests.services.conftest import LiveServer
from tests.status.conftest import MAC1, MAC2, N001, N002, boot_as, boot_token, request, spend
from tests.status.test_events import events


def alarms(server: LiveServer) -> list[dict[str, object]]:
    with server.corral.store.transaction() as conn:
        return [e for e in events_since(conn) if e["kind"] == "alarm"]


def test_a_host_that_takes_a_nodes_address_gets_nothing_private(cluster: LiveServer) -> None:
    # the old server trusted the source address: n001's overlay and state went to anyone at N001
    for path in ("/api/v1/boot/self", "/api/v1/boot/self/overlay", "/api/v1/boot/n001/overlay"):
        reply = request(cluster, "GET", path, source=N001)
        assert reply.status == 401, path
        assert b"n001" not in reply.body
    posted = request(cluster, "POST", "/api/v1/boot/self/state", N001, {"state": "failed"})
    assert posted.status == 401
    with cluster.corral.store.transaction() as conn:
        assert get_status(conn, "n001") is None


def test_spending_the_boot_token_buys_the_credential_and_starts_the_boot(
    cluster: LiveServer,
) -> None:
    credential = boot_as(cluster, MAC1, N001)
    with cluster.corral.store.transaction() as conn:
        status = get_status(conn, "n001")
        stored = conn.execute(sa.select(schema.node_credentials)).all()
    assert status is not None and (status["state"], status["ip"]) == ("pxe", N001)
    assert [r.node for r in stored] == ["n001"] and credential not in str(stored)
    reply = request(cluster, "GET", "/api/v1/boot/self/overlay", source=N001)
    assert reply.status == 200
    # the credential, not the address: it works from anywhere, the address alone does not
    auth = {"Authorization": f"Bearer {credential}"}
    elsewhere = request(cluster, "GET", "/api/v1/boot/self", source="127.0.0.98", headers=auth)
    assert elsewhere.status == 200 and elsewhere.json()["node"] == "n001"


def test_a_second_use_of_a_boot_token_is_refused_and_raises_an_alarm(cluster: LiveServer) -> None:
    token = boot_token(cluster, MAC1, N001)
    assert token
    assert spend(cluster, token, N001).status == 200
    again = spend(cluster, token, N001)
    assert again.status == 403
    assert "already spent" in again.json()["error"]
    (event,) = alarms(cluster)
    assert event["node"] == "n001"
    assert "used again" in str(event["data"])


def test_a_boot_token_is_spent_only_from_the_address_it_was_minted_for(
    cluster: LiveServer,
) -> None:
    token = boot_token(cluster, MAC1, N001)
    assert token
    stolen = spend(cluster, token, "127.0.0.99")
    assert stolen.status == 403
    assert len(alarms(cluster)) == 1
    assert spend(cluster, token, N001).status == 200  # the real node still boots


def test_a_later_boot_script_supersedes_the_earlier_token(cluster: LiveServer) -> None:
    first, second = boot_token(cluster, MAC1, N001), boot_token(cluster, MAC1, N001)
    assert first and second and first != second
    assert spend(cluster, first, N001).status == 403
    assert "superseded" in str(alarms(cluster)[0]["data"])
    assert spend(cluster, second, N001).status == 200


def test_unknown_and_missing_tokens_are_401(cluster: LiveServer) -> None:
    assert spend(cluster, "not-a-token", N001).status == 401
    bare = request(cluster, "POST", "/api/v1/boot/self/credential", source=N001)
    assert bare.status == 401 and "corral.token" in bare.json()["error"]
    assert alarms(cluster) == []


def test_each_boot_replaces_the_credential(cluster: LiveServer) -> None:
    old = boot_as(cluster, MAC1, N001)
    boot_as(cluster, MAC1, N001)
    auth = {"Authorization": f"Bearer {old}"}
    assert request(cluster, "GET", "/api/v1/boot/self", source=N001, headers=auth).status == 401
    assert request(cluster, "GET", "/api/v1/boot/self", source=N001).status == 200


def test_a_node_cannot_act_as_another(cluster: LiveServer) -> None:
    boot_as(cluster, MAC1, N001)
    boot_as(cluster, MAC2, N002)
    assert request(cluster, "GET", "/api/v1/boot/n002/overlay", source=N001).status == 403
    other = request(cluster, "POST", "/api/v1/boot/n002/state", N001, {"state": "failed"})
    assert other.status == 403
    with cluster.corral.store.transaction() as conn:
        status = get_status(conn, "n002")
    assert status is not None and status["state"] == "pxe"


def test_a_boot_token_expires(cluster: LiveServer) -> None:
    now = time.time()
    with cluster.corral.store.transaction() as conn:
        token = mint_boot_token(conn, "n001", MAC1, N001, now, ttl=60)
        late = spend_boot_token(conn, token, N001, now + 61)
        in_time = spend_boot_token(conn, token, N001, now + 59)
    assert getattr(late, "status", None) == 403 and "expired" in getattr(late, "reason", "")
    assert getattr(in_time, "node", None) == "n001"


def test_the_state_body_is_not_read_without_a_credential_nor_over_its_limit(
    cluster: LiveServer,
) -> None:
    big = b'{"state": "pxe", "message": "' + b"x" * 300_000 + b'"}'
    anonymous = request(cluster, "POST", "/api/v1/boot/self/state", N001, raw=big)
    assert anonymous.status == 413  # refused from its Content-Length, before anything is read
    small = request(cluster, "POST", "/api/v1/boot/self/state", N001, raw=b'{"state": "pxe"}')
    assert small.status == 401
    boot_as(cluster, MAC1, N001)
    too_big = request(cluster, "POST", "/api/v1/boot/self/state", N001, raw=big)
    assert too_big.status == 413
    bad = request(cluster, "POST", "/api/v1/boot/self/state", N001, raw=b"\xff\xfe")
    assert bad.status == 400


def test_an_ipv4_mapped_source_is_compared_as_ipv4() -> None:
    from corral.services.http.nodeauth import normal_ip

    assert normal_ip("::ffff:10.0.0.2") == "10.0.0.2"
    assert normal_ip("10.0.0.2") == "10.0.0.2"
    assert normal_ip("fe80::1") == "fe80::1"
    assert normal_ip(None) == ""


def test_a_deleted_node_loses_its_credential_even_if_its_name_returns(cluster: LiveServer) -> None:
    boot_as(cluster, MAC1, N001)
    actions = LocalActions(cluster.corral)
    actions.delete_nodes(["n001"])
    actions.add_nodes(["n001"], {"profiles": ["compute"]}, MAC1, N001)
    assert request(cluster, "GET", "/api/v1/boot/self", source=N001).status == 401
    with cluster.corral.store.transaction() as conn:
        assert conn.execute(sa.select(schema.boot_tokens)).all() == []


def test_a_replayed_token_reaches_an_open_event_stream_as_an_alarm(cluster: LiveServer) -> None:
    token = boot_token(cluster, MAC1, N001)
    assert token
    with events(cluster) as stream:
        assert spend(cluster, token, N001).status == 200
        started = stream.next()
        assert (started["kind"], started["data"]["state"]) == ("state", "pxe")
        assert spend(cluster, token, N001).status == 403
        alarm = stream.next()
    assert (alarm["kind"], alarm["node"]) == ("alarm", "n001")
