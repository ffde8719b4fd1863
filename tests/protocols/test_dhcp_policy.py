"""Server policy, table-driven per client type, and the RFC 2131 message flows."""

from __future__ import annotations

import uuid
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

import pytest

from corral.boot.firmware import RPI_VENDOR_OPTIONS, select_boot
from corral.protocols.dhcp import (
    FLAG_BROADCAST,
    PROXY_PORT,
    Destination,
    DhcpContext,
    LeaseTable,
    Message,
    MessageType,
    NetworkConfig,
    NoReply,
    Opt,
    OptionValue,
    Pool,
    RelayAgentInfo,
    Reply,
    Reservation,
    ServerIdentity,
    StaticReservations,
    UserClass,
    build,
    decide,
    parse,
)

IP = IPv4Address
SERVER = ServerIdentity(IP("10.77.0.1"), http_port=8080)
PROV = NetworkConfig(
    "prov",
    IPv4Network("10.77.0.0/24"),
    gateway=IP("10.77.0.1"),
    dns=(IP("10.77.0.1"),),
    domain="lab.example",
    mtu=1500,
    lease_time=600,
    dynamic_range=Pool(IP("10.77.0.100"), IP("10.77.0.110")),
)
REMOTE = NetworkConfig(
    "remote",
    IPv4Network("10.88.0.0/24"),
    gateway=IP("10.88.0.1"),
    dynamic_range=Pool(IP("10.88.0.100"), IP("10.88.0.110")),
)
STATIC = NetworkConfig("static", IPv4Network("10.99.0.0/24"), gateway=IP("10.99.0.1"))
KNOWN = "52:54:00:00:00:01"
RESERVATIONS = StaticReservations(
    [
        Reservation(KNOWN, IP("10.77.0.11"), "node1", "prov"),
        Reservation("52:54:00:00:00:02", IP("10.77.0.100"), "node2", "prov"),
    ]
)


def ctx(**kw: object) -> DhcpContext:
    base = DhcpContext(
        server=SERVER,
        networks=(PROV, REMOTE, STATIC),
        reservations=RESERVATIONS,
        leases=LeaseTable(),
        boot=select_boot,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def request(
    mtype: MessageType,
    mac: str = KNOWN,
    *,
    options: dict[int, OptionValue] | None = None,
    **fields: object,
) -> Message:
    opts: dict[int, OptionValue] = {Opt.MESSAGE_TYPE: mtype, **(options or {})}
    msg = Message(xid=0xABCD, chaddr=bytes.fromhex(mac.replace(":", "")), options=opts)
    msg = replace(msg, **fields)  # type: ignore[arg-type]
    return parse(build(msg))  # every request goes through the codec


def answer(msg: Message, c: DhcpContext, now: float = 1000.0, port: int = 67) -> Reply:
    reply = decide(msg, c, now, port=port)
    assert isinstance(reply, Reply)
    parse(build(reply.message))  # every reply encodes
    return reply


PXE_BIOS = "PXEClient:Arch:00000:UNDI:002001"
CASES: list[tuple[str, str, dict[int, OptionValue], str, dict[int, OptionValue]]] = [
    (
        "bios",
        KNOWN,
        {Opt.CLIENT_ARCH: (0,), Opt.VENDOR_CLASS: PXE_BIOS},
        "undionly.kpxe",
        {Opt.TFTP_SERVER: "10.77.0.1", Opt.VENDOR_CLASS: "PXEClient"},
    ),
    (
        "uefi-bc",
        KNOWN,
        {Opt.CLIENT_ARCH: (7,), Opt.VENDOR_CLASS: "PXEClient:Arch:00007:UNDI:003016"},
        "ipxe.efi",
        {Opt.TFTP_SERVER: "10.77.0.1", Opt.VENDOR_CLASS: "PXEClient"},
    ),
    (
        "uefi-x64",
        KNOWN,
        {Opt.CLIENT_ARCH: (9,), Opt.VENDOR_CLASS: "PXEClient:Arch:00009:UNDI:003016"},
        "ipxe.efi",
        {Opt.VENDOR_CLASS: "PXEClient"},
    ),
    (
        "arm64",
        KNOWN,
        {Opt.CLIENT_ARCH: (11,), Opt.VENDOR_CLASS: "PXEClient:Arch:00011:UNDI:003000"},
        "arm64-efi/grubnetaa64.efi",
        {Opt.TFTP_SERVER: "10.77.0.1"},
    ),
    (
        "ipxe-user-class",
        KNOWN,
        {
            Opt.CLIENT_ARCH: (0,),
            Opt.VENDOR_CLASS: PXE_BIOS,
            Opt.USER_CLASS: UserClass((b"iPXE",), plain=True),
        },
        "http://10.77.0.1:8080/boot/52:54:00:00:00:01.ipxe",
        {Opt.BOOTFILE: "http://10.77.0.1:8080/boot/52:54:00:00:00:01.ipxe"},
    ),
    (
        "ipxe-175",
        KNOWN,
        {Opt.CLIENT_ARCH: (7,), Opt.IPXE_ENCAP: bytes([19, 1, 1])},
        "http://10.77.0.1:8080/boot/52:54:00:00:00:01.ipxe",
        {Opt.VENDOR_CLASS: "PXEClient"},
    ),
    # UEFI HTTP boot: the vendor class and option 93 as Debian 12's OVMF and AAVMF send
    # them; the answer (UEFI 2.x "HTTP Boot") echoes "HTTPClient" and names a URL
    (
        "uefi-http-x64",
        KNOWN,
        {Opt.CLIENT_ARCH: (16,), Opt.VENDOR_CLASS: "HTTPClient:Arch:00016:UNDI:003000"},
        "http://10.77.0.1:8080/boot/ipxe.efi",
        {Opt.VENDOR_CLASS: "HTTPClient", Opt.BOOTFILE: "http://10.77.0.1:8080/boot/ipxe.efi"},
    ),
    (
        "uefi-http-arm64",
        KNOWN,
        {Opt.CLIENT_ARCH: (19,), Opt.VENDOR_CLASS: "HTTPClient:Arch:00019:UNDI:003000"},
        "http://10.77.0.1:8080/boot/arm64-efi/boot.img",
        {
            Opt.VENDOR_CLASS: "HTTPClient",
            Opt.BOOTFILE: "http://10.77.0.1:8080/boot/arm64-efi/boot.img",
        },
    ),
    (
        "raspberry-pi",
        "dc:a6:32:0a:ef:79",
        {Opt.VENDOR_CLASS: PXE_BIOS, Opt.CLIENT_UUID: uuid.UUID(int=0x5250_6934)},
        "",
        {
            Opt.VENDOR_SPECIFIC: RPI_VENDOR_OPTIONS,
            Opt.TFTP_SERVER: "10.77.0.1",
            Opt.VENDOR_CLASS: "PXEClient",
            Opt.CLIENT_UUID: uuid.UUID(int=0x5250_6934),
        },
    ),
]


@pytest.mark.parametrize(
    ("name", "mac", "options", "file", "expect"), CASES, ids=[c[0] for c in CASES]
)
def test_boot_file_per_client_type(
    name: str, mac: str, options: dict[int, OptionValue], file: str, expect: dict[int, OptionValue]
) -> None:
    reply = answer(request(MessageType.DISCOVER, mac, options=options), ctx())
    msg = reply.message
    assert msg.message_type == MessageType.OFFER
    assert msg.file == file
    for code, value in expect.items():
        assert msg.options[code] == value, code
    if file and not file.startswith("http"):
        assert msg.siaddr == SERVER.ip


def test_uefi_http_boot_answer_has_no_pxe_parts() -> None:
    """No next server, no TFTP server, no PXE vendor class: the URL is the whole answer."""
    options = {Opt.CLIENT_ARCH: (19,), Opt.VENDOR_CLASS: "HTTPClient:Arch:00019:UNDI:003000"}
    reply = answer(request(MessageType.DISCOVER, KNOWN, options=options), ctx()).message
    wire = parse(build(reply))
    assert wire.siaddr == IP("0.0.0.0")
    assert Opt.TFTP_SERVER not in wire.options
    assert wire.vendor_class == "HTTPClient"
    assert wire.file.endswith(".img")  # EDK2 downloads a .img as a RAM disk


def test_rpi_option_43_matches_dnsmasq_pxe_service() -> None:
    # dnsmasq, pxe-service=0,"Raspberry Pi Boot": 06:01:03:0a:04:00:50:58:45:09:14:00:00:11...ff
    assert RPI_VENDOR_OPTIONS.hex() == (
        "0601030a04005058450914000011" + b"Raspberry Pi Boot".hex() + "ff"
    )


def test_x86_bios_with_same_vendor_class_is_not_a_pi() -> None:
    msg = request(MessageType.DISCOVER, options={Opt.VENDOR_CLASS: PXE_BIOS})
    reply = answer(msg, ctx()).message
    assert Opt.VENDOR_SPECIFIC not in reply.options
    assert reply.file == "undionly.kpxe"  # arch taken from the vendor class


def test_plain_os_client_gets_no_boot_file() -> None:
    reply = answer(request(MessageType.DISCOVER, options={Opt.VENDOR_CLASS: "udhcp 1.35.0"}), ctx())
    assert reply.message.file == "" and Opt.TFTP_SERVER not in reply.message.options


def test_known_mac_gets_reservation_and_network_options() -> None:
    msg = answer(request(MessageType.DISCOVER, flags=FLAG_BROADCAST), ctx()).message
    assert msg.yiaddr == IP("10.77.0.11")
    assert msg.options[Opt.HOSTNAME] == "node1"
    assert msg.options[Opt.ROUTER] == (IP("10.77.0.1"),)
    assert msg.options[Opt.DNS] == (IP("10.77.0.1"),)
    assert msg.options[Opt.DOMAIN] == "lab.example"
    assert msg.options[Opt.MTU] == 1500
    assert msg.options[Opt.SUBNET_MASK] == IP("255.255.255.0")
    assert msg.options[Opt.LEASE_TIME] == 600
    assert msg.options[Opt.SERVER_ID] == SERVER.ip


def test_ntp_option_names_the_corral_server_unless_the_network_sets_servers() -> None:
    msg = answer(request(MessageType.DISCOVER), ctx()).message
    assert msg.options[Opt.NTP] == (SERVER.ip,)
    timed = replace(PROV, ntp=(IP("10.77.0.5"), IP("10.77.0.6")))
    msg = answer(request(MessageType.DISCOVER), ctx(networks=(timed,))).message
    assert msg.options[Opt.NTP] == (IP("10.77.0.5"), IP("10.77.0.6"))


def test_dns_names_the_corral_server_only_when_it_answers_dns_and_none_is_set() -> None:
    bare = replace(PROV, dns=())
    msg = answer(request(MessageType.DISCOVER), ctx(networks=(bare,))).message
    assert Opt.DNS not in msg.options
    dns_server = replace(SERVER, dns=True)
    msg = answer(request(MessageType.DISCOVER), ctx(networks=(bare,), server=dns_server)).message
    assert msg.options[Opt.DNS] == (SERVER.ip,)
    own = replace(PROV, dns=(IP("10.77.0.53"),))
    msg = answer(request(MessageType.DISCOVER), ctx(networks=(own,), server=dns_server)).message
    assert msg.options[Opt.DNS] == (IP("10.77.0.53"),)  # the network's own list wins


def test_full_exchange_known_mac() -> None:
    c = ctx()
    offer = answer(request(MessageType.DISCOVER, flags=FLAG_BROADCAST), c)
    assert offer.destination is Destination.BROADCAST and offer.discovered is None
    req = request(
        MessageType.REQUEST,
        options={Opt.SERVER_ID: SERVER.ip, Opt.REQUESTED_IP: offer.message.yiaddr},
    )
    ack = answer(req, c)
    assert ack.message.message_type == MessageType.ACK
    assert ack.message.yiaddr == IP("10.77.0.11")
    [change] = c.leases.drain()
    assert change.lease is not None and change.lease.hostname == "node1"


def test_unknown_mac_gets_dynamic_address_and_is_discovered() -> None:
    c = ctx()
    msg = request(
        MessageType.DISCOVER,
        "52:54:00:99:99:99",
        options={Opt.CLIENT_ARCH: (7,), Opt.VENDOR_CLASS: "PXEClient:Arch:00007:UNDI:003016"},
    )
    reply = answer(msg, c)
    # .100 is reserved for node2: never handed out dynamically.
    assert reply.message.yiaddr == IP("10.77.0.101")
    assert reply.discovered is not None
    assert reply.discovered.mac == "52:54:00:99:99:99"
    assert reply.discovered.client_arch == (7,)
    assert reply.discovered.vendor_class == "PXEClient:Arch:00007:UNDI:003016"
    assert reply.destination is Destination.YIADDR
    assert decide(msg, ctx(unicast_to_yiaddr=False), 1000.0) is not None
    assert answer(msg, ctx(unicast_to_yiaddr=False)).destination is Destination.BROADCAST


def test_unknown_mac_without_dynamic_range_gets_nothing() -> None:
    c = ctx(server=ServerIdentity(IP("10.99.0.1")))
    assert decide(request(MessageType.DISCOVER, "52:54:00:99:99:99"), c, 0.0) is None


def test_relayed_request_uses_giaddr_network_and_echoes_option_82() -> None:
    info = RelayAgentInfo(((1, b"eth3"), (2, b"switch-7")))
    msg = request(
        MessageType.DISCOVER,
        "52:54:00:77:77:77",
        options={Opt.RELAY_AGENT_INFO: info},
        giaddr=IP("10.88.0.1"),
        hops=1,
    )
    reply = answer(msg, ctx())
    assert reply.destination is Destination.RELAY
    assert (reply.address, reply.port) == (IP("10.88.0.1"), 67)
    assert reply.message.giaddr == IP("10.88.0.1")
    assert reply.message.yiaddr == IP("10.88.0.100")
    assert reply.message.options[Opt.ROUTER] == (IP("10.88.0.1"),)
    assert reply.message.options[Opt.RELAY_AGENT_INFO] == info
    assert list(build(reply.message)).index(255) > 0
    assert reply.discovered is not None
    assert reply.discovered.circuit_id == b"eth3" and reply.discovered.remote_id == b"switch-7"
    assert reply.discovered.giaddr == IP("10.88.0.1")


def test_relay_from_unknown_network_is_ignored() -> None:
    msg = request(MessageType.DISCOVER, giaddr=IP("192.168.5.1"))
    assert decide(msg, ctx(), 0.0) is None


def test_request_for_another_server_drops_our_offer() -> None:
    c = ctx()
    mac = "52:54:00:99:99:98"
    offer = answer(request(MessageType.DISCOVER, mac), c)
    other = request(
        MessageType.REQUEST,
        mac,
        options={Opt.SERVER_ID: IP("10.77.0.254"), Opt.REQUESTED_IP: offer.message.yiaddr},
    )
    assert decide(other, c, 1001.0) is None
    assert c.leases.lookup(mac) is None


def test_init_reboot_wrong_address_is_nakked_and_unknown_is_silent() -> None:
    c = ctx()
    wrong = request(MessageType.REQUEST, options={Opt.REQUESTED_IP: IP("10.77.0.50")})
    nak = answer(wrong, c)
    assert nak.message.message_type == MessageType.NAK
    assert nak.destination is Destination.BROADCAST
    assert nak.message.yiaddr == IP(0)
    off_net = request(
        MessageType.REQUEST, "52:54:00:99:99:97", options={Opt.REQUESTED_IP: IP("10.1.1.1")}
    )
    assert decide(off_net, c, 0.0) is None
    relayed = request(
        MessageType.REQUEST, options={Opt.REQUESTED_IP: IP("10.77.0.50")}, giaddr=IP("10.88.0.1")
    )
    nak = answer(relayed, c)
    assert nak.destination is Destination.RELAY and nak.message.flags & FLAG_BROADCAST


def test_init_reboot_of_free_pool_address_is_acked() -> None:
    req = request(
        MessageType.REQUEST, "52:54:00:99:99:96", options={Opt.REQUESTED_IP: IP("10.77.0.105")}
    )
    assert answer(req, ctx()).message.message_type == MessageType.ACK


def test_renewing_unicasts_to_ciaddr_and_keeps_ciaddr() -> None:
    c = ctx()
    req = request(MessageType.REQUEST, ciaddr=IP("10.77.0.11"))
    ack = answer(req, c)
    assert ack.message.message_type == MessageType.ACK
    assert ack.destination is Destination.CIADDR and ack.address == IP("10.77.0.11")
    assert ack.message.ciaddr == IP("10.77.0.11")


def test_dynamic_client_cannot_renew_a_reserved_address() -> None:
    req = request(MessageType.REQUEST, "52:54:00:99:99:95", ciaddr=IP("10.77.0.100"))
    c = ctx()
    c.leases.bind("52:54:00:99:99:95", IP("10.77.0.100"), 0.0, 5000)
    assert answer(req, c).message.message_type == MessageType.NAK


def test_release_and_decline() -> None:
    c = ctx()
    mac = "52:54:00:99:99:94"
    ip = answer(request(MessageType.DISCOVER, mac), c).message.yiaddr
    answer(
        request(MessageType.REQUEST, mac, options={Opt.REQUESTED_IP: ip, Opt.SERVER_ID: SERVER.ip}),
        c,
    )
    assert (
        decide(
            request(MessageType.RELEASE, mac, ciaddr=ip, options={Opt.SERVER_ID: SERVER.ip}), c, 1.0
        )
        is None
    )
    assert c.leases.lookup(mac) is None
    ip2 = answer(request(MessageType.DISCOVER, mac), c).message.yiaddr
    assert ip2 == ip
    assert (
        decide(request(MessageType.DECLINE, mac, options={Opt.REQUESTED_IP: ip2}), c, 2.0) is None
    )
    assert answer(request(MessageType.DISCOVER, mac), c, now=3.0).message.yiaddr != ip2


def _bound(c: DhcpContext, mac: str) -> IPv4Address:
    """Run DISCOVER and REQUEST for `mac`; its bound address."""
    ip = answer(request(MessageType.DISCOVER, mac), c).message.yiaddr
    opts: dict[int, OptionValue] = {Opt.REQUESTED_IP: ip, Opt.SERVER_ID: SERVER.ip}
    assert answer(request(MessageType.REQUEST, mac, options=opts), c).message.yiaddr == ip
    return ip


def test_forged_declines_from_random_macs_do_not_lock_reserved_nodes_out() -> None:
    c = ctx()
    for forger, ip in (("02:00:00:00:00:01", "10.77.0.11"), ("02:00:00:00:00:02", "10.77.0.100")):
        verdict = decide(
            request(MessageType.DECLINE, forger, options={Opt.REQUESTED_IP: IP(ip)}), c, 1.0
        )
        assert isinstance(verdict, NoReply) and "does not hold it" in verdict.reason
    assert answer(request(MessageType.DISCOVER, KNOWN), c, 2.0).message.yiaddr == IP("10.77.0.11")
    node2 = answer(request(MessageType.DISCOVER, "52:54:00:00:00:02"), c, 2.0)
    assert node2.message.yiaddr == IP("10.77.0.100")


def test_a_decline_of_another_clients_dynamic_lease_is_ignored() -> None:
    c = ctx()
    ip = _bound(c, "52:54:00:99:99:80")
    decline = request(MessageType.DECLINE, "52:54:00:99:99:81", options={Opt.REQUESTED_IP: ip})
    assert isinstance(decide(decline, c, 1.0), NoReply)
    lease = c.leases.lookup("52:54:00:99:99:80")
    assert lease is not None and lease.ip == ip


def test_a_reserved_node_declining_its_own_address_keeps_it() -> None:
    c = ctx()
    ip = _bound(c, KNOWN)
    decline = request(MessageType.DECLINE, KNOWN, options={Opt.REQUESTED_IP: ip})
    verdict = decide(decline, c, 1.0)
    assert isinstance(verdict, NoReply) and "reserved for node1" in verdict.reason
    assert answer(request(MessageType.DISCOVER, KNOWN), c, 2.0).message.yiaddr == ip


def test_an_exhausted_pool_reports_the_unanswered_machine() -> None:
    c = ctx()
    pool = PROV.dynamic_range
    assert pool is not None
    reserved = 1  # 10.77.0.100 is node2's
    for i in range(int(pool.end) - int(pool.start) + 1 - reserved):
        answer(request(MessageType.DISCOVER, f"52:54:00:77:00:{i:02x}"), c, 1.0)
    verdict = decide(request(MessageType.DISCOVER, "52:54:00:77:01:00"), c, 1.0)
    assert isinstance(verdict, NoReply)
    assert "no free address in 10.77.0.100-10.77.0.110" in verdict.reason
    assert verdict.discovered is not None and verdict.discovered.mac == "52:54:00:77:01:00"
    # a known node is still answered from its reservation
    assert answer(request(MessageType.DISCOVER, KNOWN), c, 1.0).message.yiaddr == IP("10.77.0.11")


def test_inform_gets_options_without_lease() -> None:
    reply = answer(request(MessageType.INFORM, ciaddr=IP("10.77.0.11")), ctx())
    msg = reply.message
    assert msg.message_type == MessageType.ACK
    assert msg.yiaddr == IP(0) and Opt.LEASE_TIME not in msg.options
    assert msg.options[Opt.HOSTNAME] == "node1"
    assert reply.destination is Destination.CIADDR


def test_replies_to_bootreplies_and_other_hardware_are_silent() -> None:
    assert decide(request(MessageType.DISCOVER, op=2), ctx(), 0.0) is None
    assert decide(request(MessageType.DISCOVER, htype=32, hlen=0), ctx(), 0.0) is None
    assert decide(request(MessageType.OFFER), ctx(), 0.0) is None


# ---------------------------------------------------------------- ProxyDHCP

PXE_X64: dict[int, OptionValue] = {
    Opt.CLIENT_ARCH: (7,),
    Opt.VENDOR_CLASS: "PXEClient:Arch:00007:UNDI:003016",
}


def test_proxy_offer_has_boot_file_but_no_address() -> None:
    reply = answer(
        request(MessageType.DISCOVER, "52:54:00:99:99:93", options=PXE_X64), ctx(proxy=True)
    )
    msg = reply.message
    assert msg.message_type == MessageType.OFFER
    assert msg.yiaddr == IP(0)
    assert msg.file == "ipxe.efi" and msg.siaddr == SERVER.ip
    assert msg.options[Opt.VENDOR_CLASS] == "PXEClient"
    for code in (Opt.LEASE_TIME, Opt.SUBNET_MASK, Opt.ROUTER, Opt.RENEWAL_TIME):
        assert code not in msg.options
    assert reply.destination is Destination.BROADCAST and reply.port == 68
    assert reply.discovered is not None


def test_proxy_ignores_non_pxe_clients_and_foreign_requests() -> None:
    c = ctx(proxy=True)
    assert decide(request(MessageType.DISCOVER, "52:54:00:99:99:92"), c, 0.0) is None
    req = request(MessageType.REQUEST, options={**PXE_X64, Opt.SERVER_ID: IP("10.77.0.254")})
    assert decide(req, c, 0.0) is None


def test_proxy_answers_port_4011_requests_to_their_source() -> None:
    req = request(MessageType.REQUEST, options=PXE_X64, ciaddr=IP("10.77.0.150"))
    reply = answer(req, ctx(proxy=True), port=PROXY_PORT)
    assert reply.message.message_type == MessageType.ACK
    assert reply.destination is Destination.SOURCE
    assert reply.message.yiaddr == IP(0) and reply.message.file == "ipxe.efi"
    assert decide(req, ctx(), 0.0, port=PROXY_PORT) is None  # not in proxy mode
