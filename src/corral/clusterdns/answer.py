"""Answering one DNS query from a `Zone`, or saying it is not ours.

Pure: a parsed query in, a reply out (or None: forward it). Authority is
strict: a name under one of our domains that we do not have is NXDOMAIN at
once (no forwarding, so no leak of internal names and no wait), and a name
we have with no record of the asked type is an empty NOERROR with our SOA.
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from corral.clusterdns.zone import Zone

TTL = 60  # seconds: an inventory change is visible to caches within a minute
A, PTR, CNAME, SOA, ANY = (
    dns.rdatatype.A,
    dns.rdatatype.PTR,
    dns.rdatatype.CNAME,
    dns.rdatatype.SOA,
    dns.rdatatype.ANY,
)
IN = dns.rdataclass.IN


def _soa(zone: Zone, origin: dns.name.Name) -> dns.rrset.RRset:
    text = f"ns.{origin} hostmaster.{origin} {zone.serial} 3600 600 86400 {TTL}"
    return dns.rrset.from_text(origin, TTL, IN, SOA, text)


def _reply(query: dns.message.Message) -> dns.message.Message:
    reply = dns.message.make_response(query, recursion_available=True)
    reply.flags |= dns.flags.AA
    return reply


def _forward_answer(
    zone: Zone, reply: dns.message.Message, qname: dns.name.Name, qtype: int
) -> bool:
    """Fill in A/CNAME answers for `qname`; False when the name does not exist."""
    target = zone.aliases.get(qname)
    if target is not None:
        reply.answer.append(dns.rrset.from_text(qname, TTL, IN, CNAME, target.to_text()))
        if qtype in (A, ANY) and target in zone.addresses:
            reply.answer.append(_a_rrset(zone, target))
        return True
    if qname not in zone.addresses:
        return False
    if qtype in (A, ANY):
        reply.answer.append(_a_rrset(zone, qname))
    return True


def _a_rrset(zone: Zone, name: dns.name.Name) -> dns.rrset.RRset:
    """The A records of `name`, made once per zone (making them is most of a miss's cost)."""
    found = zone.rrsets.get((name, A))
    if found is None:
        found = dns.rrset.from_text_list(name, TTL, IN, A, [str(ip) for ip in zone.addresses[name]])
        zone.rrsets[(name, A)] = found
    return found


def answer(zone: Zone, query: dns.message.Message) -> dns.message.Message | None:
    """The reply to `query`, or None when the name is outside our zones (forward it)."""
    if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
        reply = dns.message.make_response(query)
        reply.set_rcode(
            dns.rcode.NOTIMP if query.opcode() != dns.opcode.QUERY else dns.rcode.FORMERR
        )
        return reply
    question = query.question[0]
    qname, qtype = question.name, question.rdtype
    if question.rdclass != IN:
        return None
    origin = zone.origin_of(qname)
    if origin is not None:
        reply = _reply(query)
        exists = qname == origin or _forward_answer(zone, reply, qname, qtype)
        if qname == origin and qtype in (SOA, ANY):
            reply.answer.append(_soa(zone, origin))
        if not exists:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        if not reply.answer:
            reply.authority.append(_soa(zone, origin))
        return reply
    if zone.owns_reverse(qname):
        reply = _reply(query)
        target = zone.pointers.get(qname)
        if target is None:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        elif qtype in (PTR, ANY):
            reply.answer.append(dns.rrset.from_text(qname, TTL, IN, PTR, target.to_text()))
        return reply
    return None
