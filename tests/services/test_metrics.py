"""`GET /metrics` of a live `corral serve`, read back with prometheus-client's own parser."""

from __future__ import annotations

import contextlib
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from corral.inventory import ops
from corral.store.status import record_state
from tests.services.conftest import LiveServer

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(live: LiveServer, token: str | None = None) -> Samples:
    request = urllib.request.Request(f"{live.url}/metrics")
    request.add_header("Authorization", f"Bearer {token or live.token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_for(live: LiveServer, name: str, labels: dict[str, str], at_least: float) -> Samples:
    key = (name, tuple(sorted(labels.items())))
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(live)
        if samples.get(key, -1) >= at_least:
            return samples
        assert time.monotonic() < deadline, f"{key} never reached {at_least}: {samples.get(key)}"


def test_metrics_need_the_token(live_server: LiveServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        scrape(live_server, token="wrong")
    assert refused.value.code == 401


def test_nodes_are_counted_by_state(live_server: LiveServer) -> None:
    def inventory(inv: ops.Inventory) -> None:
        ops.add_network(inv, {"name": "prov", "cidr": "10.7.0.0/24"})
        ops.add_nodes(inv, ["n1", "n2"], {"networks": ["prov"]})

    live_server.corral.change(inventory)
    wait_for(live_server, "corral_nodes", {"state": "new"}, 2)


def test_a_boot_is_timed_from_its_boot_script_to_booted(live_server: LiveServer) -> None:
    def inventory(inv: ops.Inventory) -> None:
        ops.add_network(inv, {"name": "prov", "cidr": "10.7.0.0/24"})
        ops.add_nodes(inv, ["n1"], {"networks": ["prov"]})

    live_server.corral.change(inventory)
    scrape(live_server)  # the server follows events from here on
    with live_server.corral.store.transaction() as conn:
        record_state(conn, "n1", "pxe", 1000.0)
        record_state(conn, "n1", "booted", 1042.0)
    samples = wait_for(live_server, "corral_boot_duration_seconds_count", {"state": "booted"}, 1)
    assert samples[("corral_boot_duration_seconds_sum", (("state", "booted"),))] == 42.0
    assert (
        samples[("corral_boot_duration_seconds_bucket", (("le", "30.0"), ("state", "booted")))] == 0
    )
    assert (
        samples[("corral_boot_duration_seconds_bucket", (("le", "45.0"), ("state", "booted")))] == 1
    )
    assert samples[("corral_node_state_changes_total", (("state", "booted"),))] == 1
    assert samples[("corral_nodes", (("state", "booted"),))] == 1


def test_http_requests_are_counted_by_route_pattern(live_server: LiveServer) -> None:
    for mac in ("52:54:00:00:00:01", "52:54:00:00:00:02"):
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(f"{live_server.url}/boot/{mac}.ipxe", timeout=10).read()
    samples = scrape(live_server)
    routes = {
        dict(labels)["route"] for (name, labels) in samples if name == "corral_http_requests_total"
    }
    assert any("{" in r and r.startswith("/boot/") for r in routes), routes
    assert not any("52:54:00" in r for r in routes)


def test_the_services_datagram_counters_are_exposed(live_server: LiveServer) -> None:
    samples = scrape(live_server)
    assert ("corral_tftp_requests_total", ()) in samples
    assert ("corral_bytes_sent_total", (("by", "server"), ("via", "http"))) in samples
