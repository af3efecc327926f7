using Membrane.Testing;

namespace Membrane.Packets.Tests;

// An oracle beats a hand-written expectation: scapy builds the same headers with the same field values, and
// our builder must produce the very same bytes — lengths, padding, next-protocol fields and checksums included.
public class ScapyOracleTests
{
    private const string Script = """
        import sys
        from scapy.all import (Ether, Dot1Q, Dot1AD, ARP, IP, IPOption, IPv6, IPv6ExtHdrHopByHop, RouterAlert,
            IPv6ExtHdrDestOpt, IPv6ExtHdrRouting, IPv6ExtHdrFragment, TCP, UDP, ICMP, ICMPv6EchoRequest,
            ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6ND_RA, ICMPv6NDOptSrcLLAddr, ICMPv6NDOptDstLLAddr, ICMPv6NDOptMTU,
            ICMPv6PacketTooBig, IPv6ExtHdrSegmentRouting, Raw, raw)
        from scapy.layers.vxlan import VXLAN
        from scapy.contrib.geneve import GENEVE, GeneveOptions
        A, B = "02:42:0a:f4:00:02", "02:42:0a:f4:00:03"
        P1, P2 = "198.18.0.2", "198.18.1.7"
        Q1, Q2 = "fd00:198:18::2", "fd00:198:18:1::7"
        pay = b"\xde\xad\xbe\xef\x01\x02\x03"
        frames = {
          "qinq-ipv4options-tcpoptions": Ether(dst=B, src=A)/Dot1AD(vlan=100, prio=5)/Dot1Q(vlan=200, id=1)
              /IP(src=P1, dst=P2, ttl=3, id=4321, flags="DF", tos=0xb9, options=[IPOption(b"\x07\x0b\x04" + b"\x00" * 8)])
              /TCP(sport=40000, dport=80, seq=1000, ack=0, flags="S", window=64240,
                   options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (16909060, 168496141)), ("NOP", None), ("WScale", 7)])/pay,
          "ipv6-ext-chain-udp": Ether(dst=B, src=A)/IPv6(src=Q1, dst=Q2, tc=0xb8, fl=0xabcde, hlim=64)
              /IPv6ExtHdrHopByHop(options=[RouterAlert()])/IPv6ExtHdrDestOpt()/IPv6ExtHdrRouting(type=0, addresses=[])
              /IPv6ExtHdrFragment(id=0xcafebabe, m=0, offset=0)/UDP(sport=1000, dport=2000)/pay,
          "vxlan-inner-tcp": Ether(dst=B, src=A)/IP(src="198.19.0.1", dst="198.19.0.2", id=1, ttl=64)/UDP(sport=51000, dport=4789)
              /VXLAN(vni=0x123456, flags=0x08)/Ether(dst=A, src=B)/IP(src=P1, dst=P2, id=1, ttl=64)
              /TCP(sport=40000, dport=8080, seq=5, ack=6, flags="PA", window=65535)/pay,
          "geneve-inner-ipv6-icmpv6": Ether(dst=B, src=A)/IP(src="198.19.0.1", dst="198.19.0.2", id=1, ttl=64)/UDP(sport=52000, dport=6081)
              /GENEVE(vni=0xabcdef, proto=0x6558, critical=1, options=[GeneveOptions(classid=0x0102, type=0x80, data=b"\x01\x02\x03\x04")])
              /Ether(dst=A, src=B)/IPv6(src=Q1, dst=Q2, hlim=64)/ICMPv6EchoRequest(id=1, seq=2)/pay,
          "ns": Ether(dst=B, src=A)/IPv6(src=Q1, dst="ff02::1:ff00:7", hlim=255)/ICMPv6ND_NS(tgt=Q2)/ICMPv6NDOptSrcLLAddr(lladdr=A),
          "na": Ether(dst=B, src=A)/IPv6(src=Q2, dst=Q1, hlim=255)/ICMPv6ND_NA(tgt=Q2, R=0, S=1, O=1)/ICMPv6NDOptDstLLAddr(lladdr=B),
          "ra": Ether(dst=B, src=A)/IPv6(src="fe80::1", dst="ff02::1", hlim=255)
              /ICMPv6ND_RA(chlim=64, M=1, O=0, prf=0, routerlifetime=1800, reachabletime=30000, retranstimer=1000)
              /ICMPv6NDOptSrcLLAddr(lladdr=B)/ICMPv6NDOptMTU(mtu=1500),
          "icmp-error-udp": Ether(dst=B, src=A)/IP(src=P2, dst=P1, id=1, ttl=64)/ICMP(type=3, code=3)
              /IP(src=P1, dst=P2, id=1, ttl=64, len=120)/UDP(sport=33434, dport=33435, len=100),
          "ipv6-srh-udp": Ether(dst=B, src=A)/IPv6(src=Q1, dst=Q2, hlim=64)
              /IPv6ExtHdrSegmentRouting(addresses=["fd00:198:18:2::9", Q2], segleft=1, lastentry=1)/UDP(sport=5, dport=6)/pay,
          "arp": Ether(dst="ff:ff:ff:ff:ff:ff", src=A)/ARP(op=1, hwsrc=A, psrc=P1, hwdst="00:00:00:00:00:00", pdst=P2),
        }
        for name, p in frames.items():
            print(name, raw(p).hex())
        """;

    private static byte[] Ours(string name)
    {
        var a = SampleFrames.MacA;
        var b2 = SampleFrames.MacB;
        var p1 = SampleFrames.Pod1;
        var p2 = SampleFrames.Pod2;
        var q1 = SampleFrames.Pod6a;
        var q2 = SampleFrames.Pod6b;
        byte[] pay = [0xde, 0xad, 0xbe, 0xef, 1, 2, 3];
        var o1 = Ipv4Address.Parse("198.19.0.1");
        var o2 = Ipv4Address.Parse("198.19.0.2");
        return name switch
        {
            "qinq-ipv4options-tcpoptions" => SampleFrames.Make((ref PacketBuilder b) =>
            {
                b.Ethernet(b2, a);
                b.Vlan(100, priority: 5, tpid: EtherTypes.QinQ);
                b.Vlan(200, dropEligible: true);
                b.Ipv4(p1, p2, ttl: 3, identification: 4321, dontFragment: true, dscp: 0xb9 >> 2, ecn: 0xb9 & 3,
                    options: [7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
                b.Tcp(40000, 80, 1000, 0, TcpFlags.Syn, 64240, options: SampleFrames.TcpOptions());
                b.Payload(pay);
            }),
            "ipv6-ext-chain-udp" => SampleFrames.Make((ref PacketBuilder b) =>
            {
                b.Ethernet(b2, a);
                b.Ipv6(q1, q2, 64, 0xb8, 0xabcde);
                b.Ipv6HopByHop([5, 2, 0, 0]);
                b.Ipv6DestinationOptions();
                b.Ipv6Routing(0, 0);
                b.Ipv6Fragment(0, false, 0xcafebabe);
                b.Udp(1000, 2000);
                b.Payload(pay);
            }),
            "vxlan-inner-tcp" => SampleFrames.Make((ref PacketBuilder b) =>
            {
                b.Ethernet(b2, a);
                b.Ipv4(o1, o2, identification: 1);
                b.Udp(51000, TunnelPorts.Vxlan);
                b.Vxlan(0x123456);
                b.Ethernet(a, b2);
                b.Ipv4(p1, p2, identification: 1);
                b.Tcp(40000, 8080, 5, 6, TcpFlags.Psh | TcpFlags.Ack, 65535);
                b.Payload(pay);
            }),
            "geneve-inner-ipv6-icmpv6" => SampleFrames.Make((ref PacketBuilder b) =>
            {
                b.Ethernet(b2, a);
                b.Ipv4(o1, o2, identification: 1);
                b.Udp(52000, TunnelPorts.Geneve);
                var opt = new byte[8];
                GeneveHeader.WriteOption(opt, 0x0102, 0x80, [1, 2, 3, 4]);
                b.Geneve(0xabcdef, opt, critical: true);
                b.Ethernet(a, b2);
                b.Ipv6(q1, q2);
                b.Icmpv6Echo(true, 1, 2);
                b.Payload(pay);
            }),
            "ns" => SampleFrames.Make((ref PacketBuilder b) =>
            {
                b.Ethernet(b2, a);
                b.Ipv6(q1, Ipv6Address.Parse("ff02::1:ff00:7"), hopLimit: 255);
                b.NeighborSolicitation(q2, a);
            }),
            "na" => SampleFrames.Make((ref PacketBuilder b) =>
            {
                b.Ethernet(b2, a);
                b.Ipv6(q2, q1, hopLimit: 255);
                b.NeighborAdvertisement(q2, router: false, solicited: true, @override: true, b2);
            }),
            "ra" => SampleFrames.Make((ref PacketBuilder b) =>
            {
                b.Ethernet(b2, a);
                b.Ipv6(Ipv6Address.Parse("fe80::1"), Ipv6Address.Parse("ff02::1"), hopLimit: 255);
                b.RouterAdvertisement(64, managed: true, otherConfig: false, 1800, 30000, 1000, b2);
                b.NdOption(NdOptionTypes.Mtu, [0, 0, 0, 0, 0x05, 0xdc]);
            }),
            "icmp-error-udp" => SampleFrames.Make((ref PacketBuilder b) =>
            {
                b.Ethernet(b2, a);
                b.Ipv4(p2, p1, identification: 1);
                b.Icmpv4(Icmpv4Types.DestinationUnreachable, 3);
                b.Ipv4(p1, p2, identification: 1, totalLength: 120);
                b.Udp(33434, 33435, length: 100);
            }),
            "ipv6-srh-udp" => SampleFrames.Make((ref PacketBuilder b) =>
            {
                // RFC 8754 segment routing header: last entry, flags, tag, then the segment list (final destination first).
                b.Ethernet(b2, a);
                b.Ipv6(q1, q2);
                byte[] data = [1, 0, 0, 0, .. new byte[32]];
                Ipv6Address.Parse("fd00:198:18:2::9").Write(data.AsSpan(4));
                q2.Write(data.AsSpan(20));
                b.Ipv6Routing(4, 1, data);
                b.Udp(5, 6);
                b.Payload(pay);
            }),
            "arp" => SampleFrames.Make((ref PacketBuilder b) =>
            {
                b.Ethernet(MacAddress.Broadcast, a);
                b.Arp(ArpOperation.Request, a, p1, default, p2);
            }),
            _ => throw new ArgumentOutOfRangeException(nameof(name)),
        };
    }

    [SkippableFact]
    public void BuilderProducesTheBytesScapyProduces()
    {
        var python = Requires.Tool(Tools.DebianPython);
        var probe = Tools.Run(python, ["-c", "import scapy.all"]);
        Requires.That(probe.ExitCode == 0, "needs python3-scapy (make deps installs it)");

        var script = Path.Combine(Path.GetTempPath(), $"membrane-packets-oracle-{Environment.ProcessId}.py");
        File.WriteAllText(script, Script);
        try
        {
            var (exit, stdout, stderr) = Tools.Run(python, [script]);
            Assert.True(exit == 0, $"failed to run scapy: {stderr}");
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(10, lines.Length);
            foreach (var line in lines)
            {
                var parts = line.Split(' ');
                var expected = Convert.FromHexString(parts[1]);
                var ours = Ours(parts[0]);
                Assert.True(expected.AsSpan().SequenceEqual(ours),
                    $"{parts[0]}:\n scapy {parts[1]}\n ours  {Convert.ToHexString(ours).ToLowerInvariant()}\n first difference at byte {expected.AsSpan().CommonPrefixLength(ours)}");

                // And the dissector accepts what scapy built, with every checksum good.
                var d = new PacketDissector(expected);
                while (d.TryNext(out var layer))
                {
                    Assert.NotEqual(ChecksumStatus.Bad, layer.VerifyChecksum(expected));
                }
                Assert.False(d.HasError, $"{parts[0]}: {d.Error.Message}");
            }
        }
        finally
        {
            File.Delete(script);
        }
    }
}
