#!/usr/bin/env python3
"""Deterministic packet captures for the pcap analyzer's oracle test (tshark vs Membrane).

Every frame below is built by scapy with fixed field values (no randomness, no wall clock),
so two runs write byte-identical files. The frames cover each header the decoder dissects:
IPv4 options and fragments, IP-in-IP, IPv6 extension headers (segment routing too), every TCP
flag and option, UDP, ICMPv4/ICMPv6 echo, errors with the offending packet embedded, redirects
and neighbour discovery, IPsec ESP, ARP, 802.1Q and 802.1ad stacks, VXLAN on 4789 and on Cilium's 8472, and Geneve with
several option TLVs. A few frames carry a wrong checksum on purpose.

Run with Debian's python (the one that can import scapy):
    /usr/bin/python3 tests/corpus/make_corpus.py OUTDIR
It writes OUTDIR/corpus.pcap (Ethernet, microsecond), OUTDIR/corpus.pcapng (the same frames),
OUTDIR/rawip.pcap (LINKTYPE_RAW: bare IPv4/IPv6 packets, nanosecond resolution) and the same
packets behind Linux cooked headers, OUTDIR/cooked.pcap (SLL) and OUTDIR/cooked2.pcap (SLL2).
scripts/gen_demo_capture.py imports this module for its frame builders.
"""
import struct
import sys
from pathlib import Path

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, ICMPv6DestUnreach, ICMPv6EchoReply,
                       ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6ND_Redirect, ICMPv6NDOptDstLLAddr,
                       ICMPv6NDOptSrcLLAddr, ICMPv6PacketTooBig, ICMPv6ParamProblem, ICMPv6TimeExceeded, IPerror,
                       IPerror6, IPOption, IPOption_EOL, IPOption_NOP, IPOption_Router_Alert, IPOption_RR,
                       IPOption_Timestamp, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                       IPv6ExtHdrRouting, IPv6ExtHdrSegmentRouting, Pad1, PadN, Raw, RouterAlert, raw)
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.vxlan import VXLAN

# Addresses: the documentation/benchmark ranges the project uses (198.18.0.0/15, fd00:198:18::/48).
MAC_A, MAC_B, MAC_C, MAC_D = "02:42:c6:12:00:01", "02:42:c6:12:00:02", "0a:58:c6:12:01:0a", "0a:58:c6:12:01:0b"
A4, B4, R4, R4B = "198.18.0.1", "198.18.0.2", "198.18.0.254", "198.18.1.254"
POD1, POD2 = "198.19.1.10", "198.19.2.20"
A6, B6, R6 = "fd00:198:18::1", "fd00:198:18::2", "fd00:198:18:ff::fe"
LL6 = "fe80::42:c6ff:fe12:1"

VXLAN_PORT, CILIUM_VXLAN_PORT, GENEVE_PORT = 4789, 8472, 6081

PAYLOAD = bytes(range(32))  # a fixed payload recognisable in hex dumps


def eth(src=MAC_A, dst=MAC_B):
    return Ether(src=src, dst=dst)


def inner_tcp(sport=40000, dport=80, flags="PA", payload=b"GET / HTTP/1.1\r\n\r\n"):
    """A pod-to-pod TCP segment as it looks inside a tunnel."""
    return (Ether(src=MAC_C, dst=MAC_D) / IP(src=POD1, dst=POD2, id=0x1234, flags="DF", ttl=63) /
            TCP(sport=sport, dport=dport, seq=1000, ack=2000, flags=flags, window=502,
                options=[("NOP", None), ("NOP", None), ("Timestamp", (111, 222))]) / Raw(payload))


def inner_icmp():
    return (Ether(src=MAC_C, dst=MAC_D) / IP(src=POD1, dst=POD2, id=7, ttl=63) /
            ICMP(type=8, id=0x77, seq=3) / Raw(PAYLOAD))


def ipv4_frames():
    frames = [
        # Options: NOP, record route (3 slots, one used), timestamp (flag 0: timestamps only), EOL.
        eth() / IP(src=A4, dst=B4, id=1, ttl=64, tos=0xb8,
                   options=[IPOption_NOP(), IPOption_RR(pointer=8, routers=[R4, "0.0.0.0", "0.0.0.0"]),
                            IPOption_Timestamp(flg=0, pointer=9, timestamp=[0x01020304, 0]), IPOption_EOL()])
        / UDP(sport=5000, dport=5001) / Raw(PAYLOAD),
        # DF, ECN CE, no options.
        eth() / IP(src=A4, dst=B4, id=2, ttl=1, tos=0x03, flags="DF") / UDP(sport=53, dport=33000) / Raw(b"\x00" * 12),
        # Evil bit (reserved flag) set.
        eth() / IP(src=B4, dst=A4, id=3, flags="evil") / UDP(sport=7, dport=7) / Raw(PAYLOAD[:4]),
        # Router alert (RFC 2113) and a timestamp option with address/timestamp pairs (flag 1), one slot filled.
        eth() / IP(src=A4, dst=B4, id=4, options=[IPOption_Router_Alert(),
                                                  IPOption(b"\x44\x14\x0d\x01" + bytes([198, 18, 0, 254]) +
                                                           struct.pack("!I", 123456) + bytes(8))])
        / UDP(sport=5002, dport=5003) / Raw(PAYLOAD[:6]),
        # IP in IP (RFC 2003) and IPv6 in IPv4 (RFC 4213): the inner header is one tunnel deeper.
        eth() / IP(src=A4, dst=B4, id=5) / IP(src=POD1, dst=POD2, id=6) / ICMP(type=8, id=1, seq=1) / Raw(PAYLOAD[:8]),
        eth() / IP(src=A4, dst=B4, id=7) / IPv6(src=A6, dst=B6) / UDP(sport=5004, dport=5005) / Raw(PAYLOAD[:8]),
    ]
    # Fragments: a 1,200-byte UDP datagram cut into three (MF set on all but the last).
    whole = IP(src=A4, dst=B4, id=0xbeef, ttl=64) / UDP(sport=4317, dport=4318) / Raw(bytes(i & 0xff for i in range(1200)))
    whole = IP(raw(whole))  # fill in lengths and checksums before cutting
    body = raw(whole.payload)
    for off in range(0, len(body), 400):
        chunk = body[off:off + 400]
        mf = off + 400 < len(body)
        frames.append(eth() / IP(src=A4, dst=B4, id=0xbeef, ttl=64, proto=17, flags="MF" if mf else 0,
                                 frag=off // 8) / Raw(chunk))
    return frames


def ipv6_frames():
    return [
        # Hop-by-hop (router alert + PadN), routing type 0, destination options, then UDP.
        eth() / IPv6(src=A6, dst=B6, hlim=64, tc=0x28, fl=0x12345) /
        IPv6ExtHdrHopByHop(options=[RouterAlert(value=0), PadN(optdata=b"\x00\x00")]) /
        IPv6ExtHdrRouting(type=0, segleft=1, addresses=[R6]) /
        IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\x00\x00\x00\x00")]) /
        UDP(sport=6000, dport=6001) / Raw(PAYLOAD),
        # A first fragment (M set) and the last one (offset 1 = 8 bytes, M clear).
        eth() / IPv6(src=A6, dst=B6, nh=44) / IPv6ExtHdrFragment(nh=17, offset=0, m=1, id=0xcafe) /
        Raw(raw(UDP(sport=6000, dport=6002, len=24, chksum=0x1111) / Raw(b"x" * 8))[:8]),
        eth() / IPv6(src=A6, dst=B6, nh=44) / IPv6ExtHdrFragment(nh=17, offset=1, m=0, id=0xcafe) / Raw(b"y" * 16),
        # Segment routing header (RFC 8754) with two segments, and destination options with Pad1 + PadN.
        eth() / IPv6(src=A6, dst=R6) / IPv6ExtHdrSegmentRouting(addresses=[B6, R6], segleft=1, tag=7) /
        UDP(sport=6003, dport=6004) / Raw(PAYLOAD[:8]),
        eth() / IPv6(src=A6, dst=B6) / IPv6ExtHdrDestOpt(options=[Pad1(), PadN(optdata=b"\x00\x00\x00")]) /
        UDP(sport=6005, dport=6006) / Raw(PAYLOAD[:8]),
        # Plain UDP over IPv6 with a link-local source.
        eth() / IPv6(src=LL6, dst="ff02::1", hlim=1) / UDP(sport=546, dport=547) / Raw(PAYLOAD[:10]),
    ]


def tcp_frames():
    base = eth() / IP(src=A4, dst=B4, id=10, flags="DF")
    return [
        # SYN with MSS, SACK-permitted, timestamps, NOP, window scale.
        base / TCP(sport=40000, dport=443, seq=0xdeadbeef, flags="S", window=64240,
                   options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (123456, 0)), ("NOP", None), ("WScale", 7)]),
        # SYN-ACK with the same plus an unknown option kind (99) carrying two bytes.
        base / TCP(sport=443, dport=40000, seq=0x01020304, ack=0xdeadbef0, flags="SA", window=65160,
                   options=[("MSS", 1410), ("NOP", None), ("WScale", 14), ("SAckOK", b""), (99, b"\xab\xcd"),
                            ("EOL", None)]),
        # Duplicate ACK with two SACK blocks and timestamps.
        base / TCP(sport=40000, dport=443, seq=100, ack=200, flags="A", window=501,
                   options=[("NOP", None), ("NOP", None), ("Timestamp", (1000, 2000)), ("NOP", None), ("NOP", None),
                            ("SAck", (3000, 4000, 5000, 6000))]),
        # Every flag at once (FIN SYN RST PSH ACK URG ECE CWR NS) and an urgent pointer.
        base / TCP(sport=1, dport=2, seq=1, ack=1, flags="FSRPAUECN", window=1, urgptr=7) / Raw(b"urgent!"),
        # Data segment over IPv6 with a payload.
        eth() / IPv6(src=A6, dst=B6) / TCP(sport=50000, dport=8080, seq=42, ack=43, flags="PA", window=1024) / Raw(PAYLOAD),
        # RST alone, FIN-ACK.
        base / TCP(sport=443, dport=40000, seq=5, flags="R", window=0),
        base / TCP(sport=40000, dport=443, seq=6, ack=7, flags="FA", window=100),
    ]


def icmp_frames():
    offending_udp = IP(src=B4, dst=A4, id=99, ttl=64) / UDP(sport=33434, dport=33435) / Raw(b"probe")
    offending_tcp = IP(src=A4, dst=POD2, id=100, ttl=1, flags="DF") / TCP(sport=40001, dport=443, seq=77, flags="S",
                                                                         window=64240, options=[("MSS", 1460)])
    return [
        eth() / IP(src=A4, dst=B4, id=20) / ICMP(type=8, id=0x1234, seq=1) / Raw(PAYLOAD),
        eth(MAC_B, MAC_A) / IP(src=B4, dst=A4, id=21) / ICMP(type=0, id=0x1234, seq=1) / Raw(PAYLOAD),
        # Destination unreachable, port unreachable: the original IP header and its first 8 bytes.
        eth(MAC_B, MAC_A) / IP(src=B4, dst=A4, id=22) / ICMP(type=3, code=3) /
        Raw(raw(offending_udp)[:28]),
        # Time exceeded in transit, carrying the whole original TCP SYN (as Linux does).
        eth(MAC_B, MAC_A) / IP(src=R4, dst=A4, id=23) / ICMP(type=11, code=0) / IPerror(raw(offending_tcp)),
        # Redirect for host (type 5 code 1) with the better gateway, parameter problem with a pointer,
        # and a timestamp request (RFC 792).
        eth(MAC_B, MAC_A) / IP(src=R4, dst=A4, id=25) / ICMP(type=5, code=1, gw=R4B) / IPerror(raw(offending_udp)[:28]),
        eth(MAC_B, MAC_A) / IP(src=R4, dst=A4, id=26) / ICMP(type=12, code=0, ptr=9) / IPerror(raw(offending_udp)[:28]),
        eth() / IP(src=A4, dst=B4, id=27) / ICMP(type=13, id=0x55, seq=2, ts_ori=1000, ts_rx=0, ts_tx=0),
        # Fragmentation needed (type 3 code 4) with the next-hop MTU.
        eth(MAC_B, MAC_A) / IP(src=R4, dst=A4, id=24) / ICMP(type=3, code=4, nexthopmtu=1400) /
        IPerror(raw(offending_udp)),
    ]


def icmpv6_frames():
    offending6 = IPv6(src=A6, dst=B6, hlim=64) / UDP(sport=33434, dport=33435) / Raw(b"probe6")
    return [
        eth() / IPv6(src=A6, dst=B6) / ICMPv6EchoRequest(id=0x4242, seq=1, data=PAYLOAD),
        eth(MAC_B, MAC_A) / IPv6(src=B6, dst=A6) / ICMPv6EchoReply(id=0x4242, seq=1, data=PAYLOAD),
        eth(MAC_B, MAC_A) / IPv6(src=B6, dst=A6) / ICMPv6DestUnreach(code=4) / IPerror6(raw(offending6)),
        eth(MAC_B, MAC_A) / IPv6(src=R6, dst=A6) / ICMPv6PacketTooBig(mtu=1280) / IPerror6(raw(offending6)),
        eth(MAC_B, MAC_A) / IPv6(src=R6, dst=A6) / ICMPv6TimeExceeded(code=0) / IPerror6(raw(offending6)),
        eth(MAC_B, MAC_A) / IPv6(src=R6, dst=A6) / ICMPv6ParamProblem(code=1, ptr=40) / IPerror6(raw(offending6)),
        # Redirect (RFC 4861 §4.5): a better first hop for a destination, with its link-layer address.
        eth(MAC_B, MAC_A) / IPv6(src=LL6, dst=A6, hlim=255) / ICMPv6ND_Redirect(tgt=R6, dst=B6) /
        ICMPv6NDOptDstLLAddr(lladdr=MAC_C),
        # Neighbour solicitation to the solicited-node multicast group, with the source link-layer option.
        Ether(src=MAC_A, dst="33:33:ff:00:00:02") / IPv6(src=A6, dst="ff02::1:ff00:2", hlim=255) /
        ICMPv6ND_NS(tgt=B6) / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A),
        # Neighbour advertisement (solicited, override) with the target link-layer option.
        eth(MAC_B, MAC_A) / IPv6(src=B6, dst=A6, hlim=255) / ICMPv6ND_NA(tgt=B6, R=0, S=1, O=1) /
        ICMPv6NDOptDstLLAddr(lladdr=MAC_B),
    ]


def arp_frames():
    return [
        Ether(src=MAC_A, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=MAC_A, psrc=A4, hwdst="00:00:00:00:00:00", pdst=B4),
        eth(MAC_B, MAC_A) / ARP(op=2, hwsrc=MAC_B, psrc=B4, hwdst=MAC_A, pdst=A4),
    ]


def vlan_frames():
    return [
        eth() / Dot1Q(vlan=100, prio=5) / IP(src=A4, dst=B4, id=30) / TCP(sport=1000, dport=22, flags="S", window=1000),
        # 802.1ad service tag over an 802.1Q customer tag (QinQ), drop-eligible bit on the outer one.
        eth() / Dot1AD(vlan=200, prio=1, id=1) / Dot1Q(vlan=100, prio=3) / IP(src=A4, dst=B4, id=31) /
        UDP(sport=5000, dport=5001) / Raw(PAYLOAD[:8]),
        eth() / Dot1Q(vlan=4000) / IPv6(src=A6, dst=B6) / UDP(sport=1, dport=2) / Raw(b"v6vlan"),
        eth() / Dot1Q(vlan=10) / ARP(op=1, hwsrc=MAC_A, psrc=A4, pdst=B4),
    ]


def tunnel_frames():
    def outer4(dport, sport=51000):
        return eth() / IP(src=A4, dst=B4, id=40, flags="DF", ttl=64) / UDP(sport=sport, dport=dport)

    # Geneve options: three TLVs of different lengths (0, 4 and 8 bytes of data), critical bit on one type.
    geneve_opts = [GeneveOptions(classid=0x0102, type=0x80, data=b"\x00\x00\x00\x2a"),
                   GeneveOptions(classid=0x0104, type=0x01, data=b""),
                   GeneveOptions(classid=0xffff, type=0x7f, data=b"\x01\x02\x03\x04\x05\x06\x07\x08")]
    return [
        outer4(VXLAN_PORT) / VXLAN(vni=42, flags=0x08) / inner_tcp(),
        outer4(CILIUM_VXLAN_PORT, 52000) / VXLAN(vni=0x00fffe, flags=0x08) / inner_icmp(),
        # VXLAN over IPv6 with the group-policy extension bit and a policy id (VXLAN-GBP).
        eth() / IPv6(src=A6, dst=B6) / UDP(sport=53000, dport=VXLAN_PORT) /
        VXLAN(flags=0x88, gpid=0x1234, vni=7) / inner_tcp(flags="S", payload=b""),
        # VXLAN-GBP with every flag: G, I, D (don't learn), A (policy applied).
        outer4(VXLAN_PORT, 51002) / VXLAN(flags=0x88, gpflags=0x48, gpid=0x00ff, vni=99) / inner_icmp(),
        outer4(GENEVE_PORT) / GENEVE(vni=0x123456, proto=0x6558, options=geneve_opts) / inner_tcp(),
        outer4(GENEVE_PORT, 51001) / GENEVE(vni=1, proto=0x6558, oam=1) / inner_icmp(),
    ]


def ipsec_frames():
    # ESP (RFC 4303): SPI and sequence number in the clear, the rest opaque; the dissectors stop there.
    esp = struct.pack("!II", 0x00001000, 5) + bytes(range(24))
    return [
        eth() / IP(src=A4, dst=B4, id=70, proto=50) / Raw(esp),
        eth() / IPv6(src=A6, dst=B6, nh=50) / Raw(esp),
    ]


def bad_checksum_frames():
    return [
        eth() / IP(src=A4, dst=B4, id=50, chksum=0xbad0) / UDP(sport=9, dport=9) / Raw(b"bad ip csum"),
        eth() / IP(src=A4, dst=B4, id=51) / TCP(sport=9, dport=9, chksum=0x0bad, flags="A") / Raw(b"bad tcp csum"),
        eth() / IPv6(src=A6, dst=B6) / UDP(sport=9, dport=9, chksum=0x0bad) / Raw(b"bad udp6 csum"),
    ]


def all_frames():
    """Every corpus frame as bytes, in a fixed order."""
    groups = [ipv4_frames, ipv6_frames, tcp_frames, udp_frames, icmp_frames, icmpv6_frames, arp_frames,
              vlan_frames, tunnel_frames, ipsec_frames, bad_checksum_frames]
    return [raw(f) for g in groups for f in g()]


def udp_frames():
    return [
        eth() / IP(src=A4, dst=B4, id=60) / UDP(sport=12345, dport=9999) / Raw(PAYLOAD),
        eth() / IP(src=A4, dst=B4, id=61) / UDP(sport=12345, dport=9999, chksum=0),  # no checksum (allowed in IPv4)
        eth() / IPv6(src=A6, dst=B6) / UDP(sport=12345, dport=9999) / Raw(PAYLOAD[:3]),  # odd length
    ]


# --- writers: plain struct packing, so the bytes do not depend on scapy's writer versions ---

BASE_SECONDS = 1_700_000_000
LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 = 1, 101, 113, 276


def write_pcap(path, frames, linktype=LINKTYPE_ETHERNET, nanos=False, step_us=1000):
    """Classic libpcap file, little-endian; timestamps start at BASE_SECONDS and advance by step_us."""
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, linktype))
        for i, b in enumerate(frames):
            us = i * step_us
            frac = (us % 1_000_000) * (1000 if nanos else 1)
            f.write(struct.pack("<IIII", BASE_SECONDS + us // 1_000_000, frac, len(b), len(b)))
            f.write(b)


def cooked(packets, v2):
    """Linux cooked headers (tcpdump -i any) in front of IP packets: SLL (16 bytes) or SLL2 (20 bytes).

    The packet type, hardware type and address vary: a received and a sent Ethernet frame, loopback,
    and a device without link-layer addresses (ARPHRD_NONE, as on a tun device).
    """
    kinds = [(0, 1, 6, bytes.fromhex("0242c6120001")), (4, 1, 6, bytes.fromhex("0242c6120002")),
             (0, 772, 6, bytes(6)), (3, 65534, 0, b"")]
    out = []
    for i, p in enumerate(packets):
        pkttype, hatype, halen, addr = kinds[i % len(kinds)]
        proto = 0x86DD if p[0] >> 4 == 6 else 0x0800
        addr8 = addr + bytes(8 - len(addr))
        if v2:
            header = struct.pack("!HHIHBB8s", proto, 0, 2 + i % 3, hatype, pkttype, halen, addr8)
        else:
            header = struct.pack("!HHH8sH", pkttype, hatype, halen, addr8, proto)
        out.append(header + p)
    return out


def _pad4(b):
    return b + b"\x00" * (-len(b) % 4)


def write_pcapng(path, frames, step_us=1000):
    """pcapng: a section header, one Ethernet interface (default microsecond resolution), enhanced packet blocks."""
    def block(btype, body):
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    with open(path, "wb") as f:
        f.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        f.write(block(0x00000001, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, 262144)))
        for i, b in enumerate(frames):
            ts = BASE_SECONDS * 1_000_000 + i * step_us
            f.write(block(0x00000006, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(b), len(b)) + _pad4(b)))


def main(argv):
    if len(argv) != 2:
        print("usage: make_corpus.py OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    frames = all_frames()
    write_pcap(out / "corpus.pcap", frames)
    write_pcapng(out / "corpus.pcapng", frames)
    # LINKTYPE_RAW: the IP packets of the corpus without their Ethernet (and VLAN) headers.
    ip_only = [raw(Ether(f).getlayer(IP) or Ether(f).getlayer(IPv6)) for f in frames
               if Ether(f).type in (0x0800, 0x86DD)]
    write_pcap(out / "rawip.pcap", ip_only, linktype=LINKTYPE_RAW, nanos=True)
    write_pcap(out / "cooked.pcap", cooked(ip_only, v2=False), linktype=LINKTYPE_LINUX_SLL)
    write_pcap(out / "cooked2.pcap", cooked(ip_only, v2=True), linktype=LINKTYPE_LINUX_SLL2)
    print(f"wrote {len(frames)} frames to {out}/corpus.pcap and corpus.pcapng, "
          f"{len(ip_only)} to rawip.pcap, cooked.pcap and cooked2.pcap")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
