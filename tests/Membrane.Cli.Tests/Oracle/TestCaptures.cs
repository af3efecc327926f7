using System.Buffers.Binary;
using Membrane.Capture;
using Membrane.Packets;
using Membrane.Testing;

namespace Membrane.Cli.Tests.Oracle;

/// <summary>
/// The captures the oracle compares on, made once per test run in a temporary directory:
/// scapy's corpus (tests/corpus/make_corpus.py: pcap, pcapng, raw IP, Linux cooked v1 and v2), frames built by
/// Membrane.Packets' <see cref="PacketBuilder"/> written by Membrane.Capture's <see cref="PcapWriter"/>,
/// the same frames cut by a 70-byte snap length, and a file of seed frames.
/// </summary>
internal static class TestCaptures
{
    private static readonly Lazy<string> s_directory = new(Create);

    /// <summary>Every capture tshark can read (the seed file is not one of them).</summary>
    public static readonly string[] OracleFiles = ["corpus.pcap", "corpus.pcapng", "rawip.pcap", "cooked.pcap", "cooked2.pcap", "builders.pcap", "snaplen.pcap"];

    public const string SeedFile = "seed.pcap";

    /// <summary>The directory, created on first use; tests call <see cref="RequireTools"/> first.</summary>
    public static string Directory => s_directory.Value;

    public static string PathOf(string name) => Path.Combine(Directory, name);

    /// <summary>Scapy's python and tshark: skip outside CI, fail under CI=true.</summary>
    public static void RequireTools()
    {
        Requires.Tool(Tools.DebianPython);
        Requires.Tool("tshark");
    }

    private static string Create()
    {
        var dir = Path.Combine(Path.GetTempPath(), "membrane-cli-tests-" + RunPrefix.Value);
        System.IO.Directory.CreateDirectory(dir);
        var script = Path.Combine(Tools.RepoRoot, "tests", "corpus", "make_corpus.py");
        var (code, stdout, stderr) = Tools.Run(Tools.DebianPython, [script, dir]);
        if (code != 0)
        {
            throw new InvalidOperationException($"failed to generate the corpus with {script}: exit {code}\n{stdout}\n{stderr}");
        }
        WriteBuilderCaptures(dir);
        if (Environment.GetEnvironmentVariable("MEMBRANE_KEEP_TEST_CAPTURES") == "1")
        {
            return dir; // for looking at the files with tshark or `membrane pcap decode` after a failure
        }
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                System.IO.Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // best effort: a temp dir left behind is harmless
            }
        };
        return dir;
    }

    private const long BaseTime = 1_700_000_100L * 1_000_000_000L;

    private static void WriteBuilderCaptures(string dir)
    {
        var frames = BuilderFrames();
        using (var file = File.Create(Path.Combine(dir, "builders.pcap")))
        using (var writer = new PcapWriter(file, Capture.LinkType.Ethernet, new PcapWriterOptions { TimestampResolution = TimestampResolution.Nanoseconds }))
        {
            for (var i = 0; i < frames.Count; i++)
            {
                writer.WritePacket(BaseTime + (i * 1_000_123L), frames[i]);
            }
        }
        // The same frames cut at 70 bytes: length fields now claim more than was captured.
        using (var file = File.Create(Path.Combine(dir, "snaplen.pcap")))
        using (var writer = new PcapWriter(file, Capture.LinkType.Ethernet, new PcapWriterOptions { SnapLength = 70 }))
        {
            for (var i = 0; i < frames.Count; i++)
            {
                writer.WritePacket(BaseTime + (i * 1_000_000L), frames[i]);
            }
        }
        using (var file = File.Create(Path.Combine(dir, SeedFile)))
        using (var writer = new PcapWriter(file, (Capture.LinkType)147))
        {
            writer.WritePacket(BaseTime, SeedFrame.Build(2, 1, 42, "trace event"u8));
            writer.WritePacket(BaseTime + 1000, SeedFrame.Build(1, 0, 0xDEADBEEF, []));
        }
    }

    private static readonly MacAddress MacA = MacAddress.Parse("02:42:c6:12:00:01");
    private static readonly MacAddress MacB = MacAddress.Parse("02:42:c6:12:00:02");
    private static readonly Ipv4Address NodeA = Ipv4Address.Parse("198.18.0.1");
    private static readonly Ipv4Address NodeB = Ipv4Address.Parse("198.18.0.2");
    private static readonly Ipv4Address PodA = Ipv4Address.Parse("198.19.1.10");
    private static readonly Ipv4Address PodB = Ipv4Address.Parse("198.19.2.20");
    private static readonly Ipv6Address V6A = Ipv6Address.Parse("fd00:198:18::1");
    private static readonly Ipv6Address V6B = Ipv6Address.Parse("fd00:198:18:0:1::abcd");
    private static readonly Ipv6Address LinkLocal = Ipv6Address.Parse("fe80::42:c6ff:fe12:1");

    /// <summary>Frames from our own builders: what Membrane will put on the wire.</summary>
    internal static List<byte[]> BuilderFrames()
    {
        var frames = new List<byte[]>();
        Span<byte> buffer = stackalloc byte[2048];
        Span<byte> scratch = stackalloc byte[64];

        // VXLAN on Cilium's port, IPv4 options (NOP + router alert) outside, an IPv6 SYN with every common option inside.
        var b = new PacketBuilder(buffer);
        b.Ethernet(MacB, MacA);
        b.Ipv4(NodeA, NodeB, identification: 0x4242, dontFragment: true, options: [1, 148, 4, 0, 0]);
        b.Udp(40001, TunnelPorts.VxlanLinux);
        b.Vxlan(0x123);
        b.Ethernet(MacA, MacB);
        b.Ipv6(V6A, V6B, trafficClass: 0xB8, flowLabel: 0xABCDE);
        var options = new TcpOptionsWriter(scratch);
        options.MaximumSegmentSize(1410);
        options.SackPermitted();
        options.Timestamps(0x01020304, 0);
        options.NoOperation();
        options.WindowScale(9);
        b.Tcp(51000, 443, 0xFEEDFACE, 0, TcpFlags.Syn, 64800, options: options.WrittenSpan);
        frames.Add(Finish(ref b));

        // Geneve over IPv6 with two options, carrying an inner IPv4/UDP datagram.
        b = new PacketBuilder(buffer);
        b.Ethernet(MacB, MacA);
        b.Ipv6(V6A, V6B, hopLimit: 3);
        b.Udp(50000, TunnelPorts.Geneve);
        var geneveOptions = scratch;
        var n = GeneveHeader.WriteOption(geneveOptions, 0x0102, 0x81, [0, 0, 1, 0]);
        n += GeneveHeader.WriteOption(geneveOptions.Slice(n), 0x0300, 0x05, [1, 2, 3, 4, 5, 6, 7, 8]);
        b.Geneve(0xABCDEF, geneveOptions.Slice(0, n), critical: true);
        b.Ethernet(MacA, MacB);
        b.Ipv4(PodA, PodB, ttl: 63, identification: 7);
        b.Udp(53000, 5001);
        b.Payload("geneve inner"u8);
        frames.Add(Finish(ref b));

        // QinQ: an 802.1ad service tag over an 802.1Q tag, IPv6 with hop-by-hop options, ICMPv6 echo.
        b = new PacketBuilder(buffer);
        b.Ethernet(MacB, MacA);
        b.Vlan(300, priority: 2, dropEligible: true, tpid: EtherTypes.QinQ);
        b.Vlan(30, priority: 6);
        b.Ipv6(V6A, V6B);
        b.Ipv6HopByHop([5, 2, 0, 0, 1, 0]);
        b.Icmpv6Echo(request: true, identifier: 0x0102, sequenceNumber: 9);
        b.Payload("ping6"u8);
        frames.Add(Finish(ref b));

        // Router advertisement with a source link-layer option, router solicitation.
        b = new PacketBuilder(buffer);
        b.Ethernet(MacAddress.Parse("33:33:00:00:00:01"), MacA);
        b.Ipv6(LinkLocal, Ipv6Address.Parse("ff02::1"), hopLimit: 255);
        b.RouterAdvertisement(64, managed: true, otherConfig: false, routerLifetime: 1800, reachableTime: 30000, retransTimer: 1000, sourceLinkLayerAddress: MacA);
        // Prefix information (fd00:198:18::/64, on-link, autonomous), MTU and a recursive DNS server.
        Span<byte> prefix = stackalloc byte[30];
        prefix[0] = 64;
        prefix[1] = 0xC0;
        BinaryPrimitives.WriteUInt32BigEndian(prefix.Slice(2), 86400);
        BinaryPrimitives.WriteUInt32BigEndian(prefix.Slice(6), 14400);
        Ipv6Address.Parse("fd00:198:18::").Write(prefix.Slice(14));
        b.NdOption(NdOptionTypes.PrefixInformation, prefix);
        b.NdOption(NdOptionTypes.Mtu, [0, 0, 0, 0, 0x05, 0xDC]);
        Span<byte> rdnss = stackalloc byte[22];
        BinaryPrimitives.WriteUInt32BigEndian(rdnss.Slice(2), 600);
        V6A.Write(rdnss.Slice(6));
        b.NdOption(25, rdnss);
        frames.Add(Finish(ref b));
        b = new PacketBuilder(buffer);
        b.Ethernet(MacAddress.Parse("33:33:00:00:00:02"), MacB);
        b.Ipv6(Ipv6Address.Parse("fe80::1"), Ipv6Address.Parse("ff02::2"), hopLimit: 255);
        b.RouterSolicitation(MacB);
        frames.Add(Finish(ref b));

        // Neighbour solicitation and advertisement (router flag set).
        b = new PacketBuilder(buffer);
        b.Ethernet(MacAddress.Parse("33:33:ff:00:ab:cd"), MacA);
        b.Ipv6(V6A, Ipv6Address.Parse("ff02::1:ff00:abcd"), hopLimit: 255);
        b.NeighborSolicitation(V6B, MacA);
        frames.Add(Finish(ref b));
        b = new PacketBuilder(buffer);
        b.Ethernet(MacA, MacB);
        b.Ipv6(V6B, V6A, hopLimit: 255);
        b.NeighborAdvertisement(V6B, router: true, solicited: true, @override: false, MacB);
        frames.Add(Finish(ref b));

        // ARP reply, ICMP echo reply, a 0x9100 tag with a TCP segment carrying SACK blocks and data.
        b = new PacketBuilder(buffer);
        b.Ethernet(MacA, MacB);
        b.Arp(ArpOperation.Reply, MacB, NodeB, MacA, NodeA);
        frames.Add(Finish(ref b));
        b = new PacketBuilder(buffer);
        b.Ethernet(MacA, MacB);
        b.Ipv4(NodeB, NodeA, ttl: 255, ecn: 2, dscp: 10);
        b.Icmpv4Echo(request: false, identifier: 0xBEEF, sequenceNumber: 0x0102);
        b.Payload(56, 0xA5);
        frames.Add(Finish(ref b));
        b = new PacketBuilder(buffer);
        b.Ethernet(MacB, MacA);
        b.Vlan(4094, tpid: EtherTypes.QinQLegacy);
        b.Ipv4(NodeA, NodeB);
        options = new TcpOptionsWriter(scratch);
        options.NoOperation();
        options.NoOperation();
        options.Sack([(1000u, 2000u), (3000u, 4000u), (0xFFFFFF00u, 0x10u)]);
        b.Tcp(443, 51000, 5, 6, TcpFlags.Ack | TcpFlags.Psh | TcpFlags.Ece | TcpFlags.Cwr, 512, options: options.WrittenSpan);
        b.Payload(600, 0x42);
        frames.Add(Finish(ref b));

        // The first fragment of an IPv6 datagram (UDP header inside), and a bare VXLAN on 4789 with a zero UDP checksum.
        b = new PacketBuilder(buffer);
        b.Ethernet(MacB, MacA);
        b.Ipv6(V6A, V6B);
        b.Ipv6Fragment(0, moreFragments: true, identification: 0x11223344);
        b.Udp(7000, 7001, computeChecksum: false, length: 1200);
        b.Payload(64, 1);
        frames.Add(Finish(ref b));
        b = new PacketBuilder(buffer);
        b.Ethernet(MacB, MacA);
        b.Ipv4(NodeA, NodeB, dontFragment: true);
        b.Udp(40002, TunnelPorts.Vxlan, computeChecksum: false);
        b.Vxlan(1);
        b.Ethernet(MacA, MacB);
        b.Arp(ArpOperation.Request, MacA, PodA, MacAddress.Parse("00:00:00:00:00:00"), PodB);
        frames.Add(Finish(ref b));
        // A TCP segment as a capture on the sending host shows a BIG TCP or TSO packet: IPv4 total
        // length 0, which tshark presumes to mean "everything captured" and shows as such in ip.len.
        b = new PacketBuilder(buffer);
        b.Ethernet(MacA, MacB);
        b.Ipv4(PodA, PodB, dontFragment: true, totalLength: 0);
        b.Tcp(40000, 8080, 1000, 2000, TcpFlags.Ack);
        b.Payload(300, 0x5A);
        frames.Add(Finish(ref b));

        return frames;
    }

    private static byte[] Finish(ref PacketBuilder builder)
    {
        var length = builder.Finish();
        return builder.Written.Slice(0, length).ToArray();
    }
}
