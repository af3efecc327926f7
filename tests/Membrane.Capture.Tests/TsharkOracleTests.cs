using Membrane.Testing;

namespace Membrane.Capture.Tests;

/// <summary>
/// tshark is the oracle: what our writers produce must open in tshark with the same frames,
/// and what tshark's tools (and scapy) write must read the same with our reader.
/// </summary>
public class TsharkOracleTests
{
    [SkippableTheory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void TsharkReadsOurPcap(bool bigEndian, bool nanoseconds)
    {
        Requires.Tool("tshark");
        using var dir = new TempDirectory();
        var path = dir.File("ours.pcap");
        var expected = new List<TsharkFrame>();
        using (var writer = new PcapWriter(File.Create(path), LinkType.Ethernet, new PcapWriterOptions
        {
            BigEndian = bigEndian,
            SnapLength = 128,
            TimestampResolution = nanoseconds ? TimestampResolution.Nanoseconds : TimestampResolution.Microseconds,
        }))
        {
            for (var i = 0; i < 6; i++)
            {
                var frame = SampleFrames.EthernetUdp(60 + i * 40, i);
                var t = SampleFrames.BaseTimestamp + i * 1_234_567_891L;
                writer.WritePacket(t, frame);
                expected.Add(new TsharkFrame(i + 1, "", nanoseconds ? t : t - t % 1000, frame.Length, Math.Min(128, frame.Length)));
            }
        }
        Assert.Equal(expected, Tshark.ReadFrames(path));
        Assert.Equal(expected, Tshark.ReadOurs(path));
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void TsharkReadsOurPcapNg(bool bigEndian)
    {
        Requires.Tool("tshark");
        using var dir = new TempDirectory();
        var path = dir.File("ours.pcapng");
        var t = SampleFrames.BaseTimestamp;
        using (var writer = new PcapNgWriter(File.Create(path), new PcapNgWriterOptions { BigEndian = bigEndian, Comments = ["written by Membrane"] }))
        {
            writer.AddInterface(LinkType.Ethernet, name: "eth0", timestampResolution: TimestampResolution.Nanoseconds);
            writer.AddInterface(LinkType.RawIp, snapLength: 64, name: "tun0");
            writer.AddInterface(LinkType.Ethernet, name: "lxc0", timestampResolution: TimestampResolution.PowerOfTwo(20));
            writer.WritePacket(0, t, SampleFrames.EthernetUdp(100, 1), comment: "hello");
            writer.WritePacket(1, t + 1_000_500, SampleFrames.RawIpv4(200, 2), originalLength: null, comments: ["one", "two"]);
            writer.WritePacket(2, t + 2_000_000_000, SampleFrames.EthernetUdp(70, 3));
            // Name resolution (198.18.0.1 = "pod-a") and interface statistics blocks: not frames.
            writer.WriteBlock(0x00000004, bigEndian
                ? [0, 1, 0, 10, 198, 18, 0, 1, .. "pod-a\0"u8, 0, 0, 0, 0, 0, 0]
                : [1, 0, 10, 0, 198, 18, 0, 1, .. "pod-a\0"u8, 0, 0, 0, 0, 0, 0]);
            writer.WriteBlock(0x00000005, new byte[12]);
            writer.WritePacket(0, t + 3, SampleFrames.EthernetUdp(1514, 4), comment: "ünïcödé");
            writer.WriteSimplePacket(SampleFrames.EthernetUdp(90, 5)); // no timestamp, interface 0
            writer.StartSection(new PcapNgWriterOptions { BigEndian = !bigEndian });
            writer.AddInterface(LinkType.Ipv4, timestampResolution: TimestampResolution.PowerOfTen(3));
            writer.WritePacket(0, t + 4_000_000_000, SampleFrames.RawIpv4(30, 6), comment: "next section");
        }
        var expected = new List<TsharkFrame>
        {
            new(1, "hello", t, 100, 100),
            new(2, "one,two", t + 1_000_500 - (t + 1_000_500) % 1000, 200, 64),
            new(3, "", InPowerOfTwoUnits(t + 2_000_000_000, 20), 70, 70),
            new(4, "ünïcödé", t + 3, 1514, 1514),
            new(5, "", null, 90, 90),
            new(6, "next section", t + 4_000_000_000 - (t + 4_000_000_000) % 1_000_000, 30, 30),
        };
        Assert.Equal(expected, Tshark.ReadFrames(path));
        Assert.Equal(expected, Tshark.ReadOurs(path));
    }

    [SkippableFact]
    public void TsharkSeesOurPacketFlags()
    {
        var tshark = Requires.Tool("tshark");
        using var dir = new TempDirectory();
        var path = dir.File("flags.pcapng");
        using (var writer = new PcapNgWriter(File.Create(path), new PcapNgWriterOptions { BigEndian = true }))
        {
            writer.AddInterface(LinkType.Ethernet);
            writer.WritePacket(0, SampleFrames.BaseTimestamp, SampleFrames.EthernetUdp(60, 1), null, null, (uint)PacketDirection.Inbound);
            writer.WritePacket(0, SampleFrames.BaseTimestamp, SampleFrames.EthernetUdp(60, 2), null, ["out"], (uint)PacketDirection.Outbound | 0x4);
            writer.WritePacket(0, SampleFrames.BaseTimestamp, SampleFrames.EthernetUdp(60, 3));
        }
        var (code, stdout, stderr) = Tools.Run(tshark, ["-r", path, "-T", "fields", "-e", "frame.packet_flags"]);
        Assert.True(code == 0, stderr);
        Assert.Equal(["0x00000001", "0x00000006", ""], stdout.Split('\n')[..3]);
        Assert.Equal([1u, 6u, 0u], CaptureReader.ReadFile(path).Select(r => r.Flags));
    }

    [SkippableFact]
    public void OurReaderAgreesWithTsharkOnFilesWrittenByScapyAndEditcap()
    {
        Requires.Tool("tshark");
        var editcap = Requires.Tool("editcap");
        Requires.That(File.Exists(Tools.DebianPython), "needs /usr/bin/python3 with scapy (make deps installs python3-scapy)");
        using var dir = new TempDirectory();
        var script = """
            import sys
            from decimal import Decimal
            from scapy.all import Ether, IP, IPv6, UDP, TCP, Raw, wrpcap
            packets = []
            for i in range(12):
                if i % 3 == 2:
                    p = Ether(src='02:00:00:00:00:01', dst='02:00:00:00:00:02') / IPv6(src='fd00:198:18::1', dst='fd00:198:18::2') / TCP(sport=40000 + i, dport=80) / Raw(bytes(range(i * 9 % 256)))
                else:
                    p = Ether(src='02:00:00:00:00:01', dst='02:00:00:00:00:02') / IP(src='198.18.0.1', dst='198.18.0.2') / UDP(sport=1000 + i, dport=53) / Raw(bytes(i * 50))
                p.time = Decimal('1700000000.123456789') + Decimal(i) * Decimal('0.750000001')
                packets.append(p)
            wrpcap(sys.argv[1], packets, nano=True)
            wrpcap(sys.argv[2], packets)
            wrpcap(sys.argv[3], [IP(bytes(p[1])) if p.haslayer(IP) else IPv6(bytes(p[1])) for p in packets], linktype=101)
            """;
        var scriptPath = dir.File("gen.py");
        File.WriteAllText(scriptPath, script);
        string nano = dir.File("nano.pcap"), micro = dir.File("micro.pcap"), raw = dir.File("raw.pcap");
        var (code, _, stderr) = Tools.Run(Tools.DebianPython, [scriptPath, nano, micro, raw]);
        Requires.That(code == 0 || !stderr.Contains("No module named 'scapy'", StringComparison.Ordinal), "needs python3-scapy");
        Assert.True(code == 0, $"scapy failed to write the captures: {stderr}");

        // editcap rewrites them as pcapng (with comments on frames 2 and 5) and cuts one to 60 bytes.
        string ng = dir.File("nano.pcapng"), cut = dir.File("cut.pcapng"), rawNg = dir.File("raw.pcapng");
        Run(editcap, ["-F", "pcapng", "-a", "2:first comment", "-a", "5:another, with a comma", nano, ng]);
        Run(editcap, ["-F", "pcapng", "-s", "60", micro, cut]);
        Run(editcap, ["-F", "pcapng", raw, rawNg]);
        // mergecap interleaves an Ethernet and a raw-IP capture by time: one interface each.
        var merged = dir.File("merged.pcapng");
        Run(Requires.Tool("mergecap"), ["-F", "pcapng", "-w", merged, ng, raw]);

        foreach (var path in new[] { nano, micro, raw, ng, cut, rawNg, merged })
        {
            var theirs = Tshark.ReadFrames(path);
            Assert.Equal(path == merged ? 24 : 12, theirs.Count);
            Assert.Equal(theirs, Tshark.ReadOurs(path));
        }
        var mergedRecords = CaptureReader.ReadFile(merged).ToList();
        Assert.Equal([LinkType.Ethernet, LinkType.RawIp], mergedRecords.Select(r => r.LinkType).Distinct().Order());
        Assert.Equal(mergedRecords.Select(r => r.LinkType == LinkType.Ethernet ? 0 : 1), mergedRecords.Select(r => r.InterfaceIndex));
        Assert.Contains(Tshark.ReadOurs(cut), f => f.CapturedLength == 60 && f.Length > 60);
        Assert.Equal("first comment", Tshark.ReadOurs(ng)[1].Comment);
        using var rawReader = CaptureReader.Open(rawNg);
        Assert.True(rawReader.TryReadNext(out var first));
        Assert.Equal(LinkType.RawIp, first.LinkType);
    }

    /// <summary>What a 2^-n s clock records for <paramref name="ns"/> (truncated), back in nanoseconds (truncated).</summary>
    private static long InPowerOfTwoUnits(long ns, int exponent)
    {
        var units = ((UInt128)ns << exponent) / 1_000_000_000;
        return (long)((units * 1_000_000_000) >> exponent);
    }

    private static void Run(string tool, string[] args)
    {
        var (code, _, stderr) = Tools.Run(tool, args);
        Assert.True(code == 0, $"{Path.GetFileName(tool)} {string.Join(' ', args)} failed: {stderr}");
    }
}
