namespace Membrane.Packets.Tests;

/// <summary>Frames of every header kind, built with <see cref="PacketBuilder"/>, shared by several tests.</summary>
public static class SampleFrames
{
    public static readonly MacAddress MacA = MacAddress.Parse("02:42:0a:f4:00:02");
    public static readonly MacAddress MacB = MacAddress.Parse("02:42:0a:f4:00:03");
    public static readonly Ipv4Address Pod1 = Ipv4Address.Parse("198.18.0.2");
    public static readonly Ipv4Address Pod2 = Ipv4Address.Parse("198.18.1.7");
    public static readonly Ipv6Address Pod6a = Ipv6Address.Parse("fd00:198:18::2");
    public static readonly Ipv6Address Pod6b = Ipv6Address.Parse("fd00:198:18:1::7");

    public delegate void Build(ref PacketBuilder b);

    public static byte[] Make(Build build)
    {
        var buffer = new byte[4096];
        var b = new PacketBuilder(buffer);
        build(ref b);
        return buffer.AsSpan(0, b.Finish()).ToArray();
    }

    public static byte[] TcpOptions()
    {
        var opts = new byte[40];
        var w = new TcpOptionsWriter(opts);
        w.MaximumSegmentSize(1460);
        w.SackPermitted();
        w.Timestamps(0x01020304, 0x0A0B0C0D);
        w.NoOperation();
        w.WindowScale(7);
        return w.WrittenSpan.ToArray();
    }

    public static byte[] GeneveOptions()
    {
        var opts = new byte[64];
        int n = GeneveHeader.WriteOption(opts, 0x0102, 0x80, [1, 2, 3, 4]);
        n += GeneveHeader.WriteOption(opts.AsSpan(n), 0xFFFF, 0x05, [9, 8, 7, 6, 5, 4, 3, 2]);
        return opts[..n];
    }

    /// <summary>Named frames: one per interesting combination of headers.</summary>
    public static IReadOnlyList<(string Name, byte[] Frame, LinkType Link)> All { get; } = Create();

    private static List<(string, byte[], LinkType)> Create()
    {
        var list = new List<(string, byte[], LinkType)>();
        void Add(string name, Build build, LinkType link = LinkType.Ethernet) => list.Add((name, Make(build), link));
        byte[] payload = [0xde, 0xad, 0xbe, 0xef, 1, 2, 3];

        Add("eth-ipv4-tcp-options", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv4(Pod1, Pod2, identification: 4321, dontFragment: true);
            b.Tcp(40000, 80, 1000, 0, TcpFlags.Syn, 64240, options: TcpOptions());
        });
        Add("eth-ipv4options-udp", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            // Record route (RFC 791): type 7, length 11, pointer 4, two empty slots.
            b.Ipv4(Pod1, Pod2, ttl: 3, options: [1, 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            b.Udp(5353, 53);
            b.Payload(payload);
        });
        Add("qinq-ipv4-icmp-echo", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Vlan(100, priority: 5, tpid: EtherTypes.QinQ);
            b.Vlan(200, dropEligible: true);
            b.Ipv4(Pod1, Pod2);
            b.Icmpv4Echo(true, 0x1234, 7);
            b.Payload(payload);
        });
        Add("eth-arp", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacAddress.Broadcast, MacA);
            b.Arp(ArpOperation.Request, MacA, Pod1, default, Pod2);
        });
        Add("eth-ipv6-ext-chain-udp", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv6(Pod6a, Pod6b, flowLabel: 0xABCDE, trafficClass: 0xB8);
            b.Ipv6HopByHop([5, 2, 0, 0]); // router alert (RFC 2711)
            b.Ipv6DestinationOptions();
            b.Ipv6Routing(4, 0, new byte[20]);
            b.Ipv6Fragment(0, false, 0xCAFEBABE);
            b.Udp(1000, 2000);
            b.Payload(payload);
        });
        Add("eth-ipv6-tcp", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv6(Pod6a, Pod6b);
            b.Tcp(443, 50000, 1, 2, TcpFlags.Ack | TcpFlags.Psh | TcpFlags.Ece | TcpFlags.Cwr | TcpFlags.Ns, 501,
                options: [1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
            b.Payload(payload);
        });
        Add("eth-ipv4-first-fragment", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv4(Pod1, Pod2, identification: 9, moreFragments: true, protocol: IpProtocols.Udp);
            b.Payload(new byte[24]);
        });
        Add("eth-ipv6-later-fragment", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv6(Pod6a, Pod6b);
            b.Ipv6Fragment(185, false, 77, nextHeader: IpProtocols.Udp);
            b.Payload(new byte[16]);
        });
        Add("eth-ipv4-icmp-error-udp", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv4(Pod2, Pod1);
            b.Icmpv4(Icmpv4Types.DestinationUnreachable, 3);
            b.Ipv4(Pod1, Pod2, totalLength: 120);
            b.Udp(33434, 33435, length: 100);
        });
        Add("eth-ipv4-icmp-error-tcp", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv4(Pod2, Pod1);
            b.Icmpv4(Icmpv4Types.TimeExceeded, 0);
            b.Ipv4(Pod1, Pod2, totalLength: 60, protocol: IpProtocols.Tcp);
            b.Payload([0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 1]);
        });
        Add("eth-ipv6-icmpv6-ns", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv6(Pod6a, Ipv6Address.Parse("ff02::1:ff00:7"), hopLimit: 255);
            b.NeighborSolicitation(Pod6b, MacA);
        });
        Add("eth-ipv6-icmpv6-na", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv6(Pod6b, Pod6a, hopLimit: 255);
            b.NeighborAdvertisement(Pod6b, router: false, solicited: true, @override: true, MacB);
        });
        Add("eth-ipv6-icmpv6-ra", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv6(Ipv6Address.Parse("fe80::1"), Ipv6Address.Parse("ff02::1"), hopLimit: 255);
            b.RouterAdvertisement(64, managed: true, otherConfig: false, 1800, 30000, 1000, MacB);
            b.NdOption(NdOptionTypes.Mtu, [0, 0, 0, 0, 0x05, 0xdc]);
        });
        Add("eth-ipv6-icmpv6-packet-too-big", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv6(Pod6b, Pod6a);
            b.Icmpv6(Icmpv6Types.PacketTooBig, 0, 1280);
            b.Ipv6(Pod6a, Pod6b, payloadLength: 1400);
            b.Tcp(1, 2);
        });
        Add("eth-ipv6-icmpv6-echo", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv6(Pod6a, Pod6b);
            b.Icmpv6Echo(true, 1, 2);
            b.Payload(payload);
        });
        Add("vxlan-4789-inner-tcp", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv4(Ipv4Address.Parse("198.19.0.1"), Ipv4Address.Parse("198.19.0.2"));
            b.Udp(51000, TunnelPorts.Vxlan, computeChecksum: false);
            b.Vxlan(0x123456);
            b.Ethernet(MacA, MacB);
            b.Ipv4(Pod1, Pod2);
            b.Tcp(40000, 8080, 5, 6, TcpFlags.Ack | TcpFlags.Psh);
            b.Payload(payload);
        });
        Add("vxlan-8472-inner-ipv6-udp", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Vlan(10);
            b.Ipv4(Ipv4Address.Parse("198.19.0.1"), Ipv4Address.Parse("198.19.0.2"));
            b.Udp(51001, TunnelPorts.VxlanLinux);
            b.Vxlan(256);
            b.Ethernet(MacA, MacB);
            b.Ipv6(Pod6a, Pod6b);
            b.Udp(7000, 7001);
            b.Payload(payload);
        });
        Add("geneve-options-inner-icmp", (ref PacketBuilder b) =>
        {
            b.Ethernet(MacB, MacA);
            b.Ipv6(Ipv6Address.Parse("fd00:198:18:ff::1"), Ipv6Address.Parse("fd00:198:18:ff::2"));
            b.Udp(52000, TunnelPorts.Geneve);
            b.Geneve(0xABCDEF, GeneveOptions(), critical: true);
            b.Ethernet(MacA, MacB);
            b.Ipv4(Pod1, Pod2);
            b.Icmpv4Echo(false, 3, 4);
        });
        Add("ipip-raw", (ref PacketBuilder b) =>
        {
            b.Ipv4(Ipv4Address.Parse("198.19.0.1"), Ipv4Address.Parse("198.19.0.2"));
            b.Ipv4(Pod1, Pod2);
            b.Udp(1, 2);
        }, LinkType.RawIp);
        Add("raw-ipv6-esp", (ref PacketBuilder b) =>
        {
            b.Ipv6(Pod6a, Pod6b, nextHeader: IpProtocols.Esp);
            b.Payload([0, 0, 1, 0, 0, 0, 0, 1, 0xAA, 0xBB]);
        }, LinkType.RawIp);
        Add("seed-with-packet", (ref PacketBuilder b) =>
        {
            b.Seed(1, 3, 0x01020304);
            b.Payload(payload);
        }, LinkType.Seed);
        return list;
    }
}
