"""Does a DHCP server still answer? The liveness probe of corral's DHCP fuzzing.

After a flood of hostile datagrams, a server that is still up but answers no
one has failed as surely as one that crashed. The probe is what a booted node
does: renew its reserved address (a REQUEST with `ciaddr` set, from that
address, client port 68) and wait for the ACK. `tests/services/test_dhcp_fuzz.py`
and `bench/fuzz_dhcp.py` both use it. It is a real client on a real socket,
not a fake; binding port 68 needs root (or CAP_NET_BIND_SERVICE).
"""

from __future__ import annotations

import socket
import time
from ipaddress import IPv4Address

from corral.protocols.dhcp import Message, MessageType, Opt, OptionValue, build, parse

PROBE_XID = 0x55
RETRY_S = 0.5  # resend the REQUEST when no ACK came within this long


def renewal_answered(target: tuple[str, int], mac: str, ip: str, timeout: float = 10.0) -> bool:
    """Whether the server at `target` ACKs the renewal of `ip` by the node with
    `mac` within `timeout` seconds (the REQUEST is resent every RETRY_S)."""
    options: dict[int, OptionValue] = {Opt.MESSAGE_TYPE: MessageType.REQUEST}
    chaddr = bytes.fromhex(mac.replace(":", ""))
    msg = build(Message(xid=PROBE_XID, ciaddr=IPv4Address(ip), chaddr=chaddr, options=options))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        client.bind((ip, 68))
        client.settimeout(RETRY_S)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            client.sendto(msg, target)
            try:
                reply = parse(client.recv(2048))
            except TimeoutError:
                continue
            if reply.xid == PROBE_XID and reply.message_type == MessageType.ACK:
                return True
    return False
