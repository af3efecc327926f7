#!/usr/bin/env python3
"""A small, deterministic capture of container-network traffic for `make demo`.

What a node running Membrane sees on its uplink and its pod veths: pods resolving names
(DNS over UDP), TCP conversations (handshake, requests, responses, teardown) between pods
on this node and pods on other nodes carried over VXLAN (Cilium's port 8472) or Geneve,
pings, ARP and IPv6 neighbour discovery, a VLAN-tagged host flow and a fragmented datagram.
The frame builders come from tests/corpus/make_corpus.py; a seeded RNG picks the mix, so a
given N always gives the same file.

    /usr/bin/python3 scripts/gen_demo_capture.py N OUT.pcap
"""
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "corpus"))
import make_corpus as mc  # noqa: E402  (path set just above)

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, ICMPv6ND_NA, ICMPv6ND_NS,  # noqa: E402
                       ICMPv6NDOptSrcLLAddr, IPv6, Raw, raw)
from scapy.contrib.geneve import GENEVE  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402

rng = random.Random(1071)
NODES = ["198.18.0.%d" % i for i in (1, 2, 3)]  # node addresses (the overlay's underlay)
PODS = ["198.19.%d.%d" % (n, h) for n in (1, 2, 3) for h in (10, 11, 12)]  # pod CIDR 198.19.N.0/24 per node
DNS_VIP = "198.19.255.10"


def mac():
    return "0a:58:%02x:%02x:%02x:%02x" % tuple(rng.randrange(256) for _ in range(4))


def node_of(pod):
    return NODES[int(pod.split(".")[2]) - 1]


def encap(inner, src_pod, dst_pod):
    """Wrap a pod frame for the wire: VXLAN 8472 mostly, Geneve sometimes, bare when both pods share a node."""
    s, d = node_of(src_pod), node_of(dst_pod)
    if s == d:
        return inner
    outer = Ether(src=mc.MAC_A, dst=mc.MAC_B) / IP(src=s, dst=d, flags="DF", id=rng.randrange(65536))
    # A stable per-pair source port, as the kernel derives it from the inner flow hash.
    sport = 32768 + (sum(map(int, (src_pod + "." + dst_pod).split("."))) * 97 & 0x3fff)
    if rng.random() < 0.8:
        return outer / UDP(sport=sport, dport=mc.CILIUM_VXLAN_PORT) / VXLAN(vni=256 + rng.randrange(8), flags=0x08) / inner
    return outer / UDP(sport=sport, dport=mc.GENEVE_PORT) / GENEVE(vni=256 + rng.randrange(8), proto=0x6558) / inner


def tcp_conversation():
    """A short HTTP-ish exchange: handshake, request, response, ACK, FIN/ACK both ways."""
    c, s = rng.sample(PODS, 2)
    cm, sm = mac(), mac()
    cp, sp = rng.randrange(32768, 61000), rng.choice([80, 8080, 443, 5432, 6379])
    cs, ss = rng.randrange(1 << 32), rng.randrange(1 << 32)
    ts = rng.randrange(1 << 31)
    req = b"GET /healthz HTTP/1.1\r\nHost: svc\r\n\r\n"
    resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    m = 1 << 32

    def seg(fwd, flags, seq, ack, payload=b"", opts=None):
        src, dst, smac, dmac, spt, dpt = (c, s, cm, sm, cp, sp) if fwd else (s, c, sm, cm, sp, cp)
        options = opts if opts is not None else [("NOP", None), ("NOP", None), ("Timestamp", (ts, ts))]
        p = Ether(src=smac, dst=dmac) / IP(src=src, dst=dst, flags="DF", id=rng.randrange(65536), ttl=64) / \
            TCP(sport=spt, dport=dpt, flags=flags, seq=seq % m, ack=ack % m, window=502, options=options)
        if payload:
            p = p / Raw(payload)
        return encap(p, src, dst)

    syn_opts = [("MSS", 1410), ("SAckOK", b""), ("Timestamp", (ts, 0)), ("NOP", None), ("WScale", 7)]
    return [
        seg(True, "S", cs, 0, opts=syn_opts),
        seg(False, "SA", ss, cs + 1, opts=syn_opts),
        seg(True, "A", cs + 1, ss + 1),
        seg(True, "PA", cs + 1, ss + 1, req),
        seg(False, "A", ss + 1, cs + 1 + len(req)),
        seg(False, "PA", ss + 1, cs + 1 + len(req), resp),
        seg(True, "A", cs + 1 + len(req), ss + 1 + len(resp)),
        seg(True, "FA", cs + 1 + len(req), ss + 1 + len(resp)),
        seg(False, "FA", ss + 1 + len(resp), cs + 2 + len(req)),
        seg(True, "A", cs + 2 + len(req), ss + 2 + len(resp)),
    ]


def dns_lookup():
    pod = rng.choice(PODS)
    port, qid = rng.randrange(32768, 61000), rng.randrange(65536)
    name = rng.choice([b"\x0akubernetes\x07default\x03svc\x07cluster\x05local\x00", b"\x05redis\x04prod\x03svc\x00"])
    query = qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name + b"\x00\x01\x00\x01"
    answer = qid.to_bytes(2, "big") + b"\x85\x80\x00\x01\x00\x01\x00\x00\x00\x00" + name + b"\x00\x01\x00\x01" + \
        b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x1e\x00\x04" + bytes([198, 19, rng.randrange(1, 4), 10])
    pm = mac()
    return [Ether(src=pm, dst=mc.MAC_D) / IP(src=pod, dst=DNS_VIP) / UDP(sport=port, dport=53) / Raw(query),
            Ether(src=mc.MAC_D, dst=pm) / IP(src=DNS_VIP, dst=pod) / UDP(sport=53, dport=port) / Raw(answer)]


def ping():
    a, b = rng.sample(PODS, 2)
    ident, seq = rng.randrange(65536), rng.randrange(1, 100)
    req = Ether(src=mc.MAC_C, dst=mc.MAC_D) / IP(src=a, dst=b) / ICMP(type=8, id=ident, seq=seq) / Raw(mc.PAYLOAD)
    rep = Ether(src=mc.MAC_D, dst=mc.MAC_C) / IP(src=b, dst=a) / ICMP(type=0, id=ident, seq=seq) / Raw(mc.PAYLOAD)
    return [encap(req, a, b), encap(rep, b, a)]


def neighbours():
    m = mac()
    return [Ether(src=m, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=m, psrc=rng.choice(PODS), pdst=rng.choice(PODS)),
            Ether(src=m, dst="33:33:ff:00:00:02") / IPv6(src="fd00:198:18::1", dst="ff02::1:ff00:2", hlim=255) /
            ICMPv6ND_NS(tgt="fd00:198:18::2") / ICMPv6NDOptSrcLLAddr(lladdr=m),
            Ether(src=mc.MAC_B, dst=m) / IPv6(src="fd00:198:18::2", dst="fd00:198:18::1", hlim=255) /
            ICMPv6ND_NA(tgt="fd00:198:18::2", S=1, O=1)]


def host_vlan():
    return [Ether(src=mc.MAC_A, dst=mc.MAC_B) / Dot1Q(vlan=100) / IP(src=NODES[0], dst=NODES[1]) /
            TCP(sport=rng.randrange(32768, 61000), dport=6443, flags="PA", seq=rng.randrange(1 << 32), ack=1) /
            Raw(b"\x17\x03\x03\x00\x10" + bytes(16))]


def fragments():
    return mc.ipv4_frames()[3:]


MIX = [(45, tcp_conversation), (20, dns_lookup), (12, ping), (8, neighbours), (10, host_vlan), (5, fragments)]


def main(argv):
    if len(argv) != 3:
        print("usage: gen_demo_capture.py N OUT.pcap", file=sys.stderr)
        return 2
    n, out = int(argv[1]), Path(argv[2])
    weights, builders = [w for w, _ in MIX], [b for _, b in MIX]
    frames = []
    while len(frames) < n:
        frames.extend(raw(f) for f in rng.choices(builders, weights)[0]())
    mc.write_pcap(out, frames[:n], step_us=250)
    print(f"wrote {n} packets to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
