"""Inventory values that reach a DHCP packet are bounded when they are set.

`network set --lease-time 99999999999` used to be accepted, and then every
reply raised in the event loop. Now such values are refused at validation,
naming the field, and whatever the inventory accepts builds a reply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.cli.main import cli, register
from corral.inventory.index import Inventory
from corral.inventory.models import DNS_SERVERS_MAX, LEASE_TIME_MAX, Network
from corral.protocols.dhcp import (
    DhcpContext,
    LeaseTable,
    Message,
    MessageType,
    Opt,
    OptionValue,
    Reply,
    Reservation,
    ServerIdentity,
    StaticReservations,
    build,
    decide,
    parse,
)
from corral.services.dhcp_store import network_configs
from corral.store import schema

MAC = "52:54:00:00:00:01"


@dataclass
class Ran:
    code: int
    stdout: str
    stderr: str


def corral(home: Path, *args: str) -> Ran:
    """`corral ARGS` in-process (click's runner), as a user would type it."""
    register()
    env = {**os.environ, "CORRAL_HOME": str(home)}
    result = CliRunner().invoke(cli, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def prov(corral_home: Path) -> Path:
    out = corral(corral_home, "network", "add", "prov", "--cidr", "10.77.0.0/24")
    assert out.code == 0, out.stderr
    return corral_home


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [
        ("--lease-time", "99999999999", "lease_time"),
        ("--lease-time", str(LEASE_TIME_MAX + 1), "lease_time"),
        ("--domain", "a" * 300 + ".example", "domain"),
        ("--domain", "bad domain!", "domain"),
        ("--dns", ",".join(f"10.77.0.{i}" for i in range(1, DNS_SERVERS_MAX + 2)), "dns_servers"),
    ],
)
def test_network_set_refuses_a_value_no_dhcp_reply_can_carry(
    prov: Path, flag: str, value: str, field: str
) -> None:
    out = corral(prov, "network", "set", "prov", flag, value)
    assert out.code == 1
    [line] = out.stderr.strip().splitlines()
    assert field in line and "Traceback" not in out.stderr
    assert len(line) < 400  # the bad value is cut short, not echoed whole
    shown = corral(prov, "network", "show", "prov", "-o", "json")
    assert '"lease_time": 3600' in shown.stdout  # nothing half-applied


labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)


@st.composite
def networks(draw: st.DrawFn) -> Network:
    domain = draw(
        st.lists(labels, min_size=1, max_size=5).map(".".join).filter(lambda d: len(d) <= 253)
    )
    return Network.model_validate(
        {
            "name": "prov",
            "cidr": "10.77.0.0/24",
            "gateway": "10.77.0.1",
            "dns_servers": [f"10.77.0.{i}" for i in range(2, 2 + draw(st.integers(0, 16)))],
            "domain": domain,
            "mtu": draw(st.none() | st.integers(576, 65535)),
            "lease_time": draw(st.integers(60, LEASE_TIME_MAX)),
            "dynamic_range": "10.77.0.200-10.77.0.250",
        }
    )


@settings(max_examples=100, deadline=None)
@given(networks(), labels)
def test_every_network_the_inventory_accepts_builds_dhcp_replies(net: Network, host: str) -> None:
    inv = Inventory(networks={net.name: net})
    [config] = network_configs(inv)
    ctx = DhcpContext(
        server=ServerIdentity(IPv4Address("10.77.0.1")),
        networks=(config,),
        reservations=StaticReservations([Reservation(MAC, IPv4Address("10.77.0.11"), host)]),
        leases=LeaseTable(),
    )
    chaddr = bytes.fromhex(MAC.replace(":", ""))
    asks: list[dict[int, OptionValue]] = [
        {Opt.MESSAGE_TYPE: MessageType.DISCOVER},
        {Opt.MESSAGE_TYPE: MessageType.REQUEST, Opt.REQUESTED_IP: IPv4Address("10.77.0.11")},
    ]
    for options in asks:
        msg = Message(xid=1, chaddr=chaddr, options=options)
        reply = decide(parse(build(msg)), ctx, 1000.0)
        assert isinstance(reply, Reply)
        back = parse(build(reply.message))
        assert back.options[Opt.LEASE_TIME] == net.lease_time


def test_a_stored_lease_time_beyond_the_bound_is_lowered_so_the_inventory_loads(
    tmp_path: Path,
) -> None:
    """A database written before the bound (the bad value came in through `network set`)."""
    from alembic import command
    from alembic.config import Config

    from corral.store.db import MIGRATIONS, Store
    from corral.store.inventory import load_inventory

    store = Store(f"sqlite:///{tmp_path / 'corral.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with store.transaction() as conn:
        conn.execute(
            schema.networks.insert().values(
                name="prov",
                spec={"name": "prov", "cidr": "10.77.0.0/24", "lease_time": 99999999999},
            )
        )
    store.migrate()
    with store.transaction() as conn:
        inv = load_inventory(conn)
    assert inv.networks["prov"].lease_time == LEASE_TIME_MAX
    store.close()
