namespace Membrane.Capture.Tests;

public class PcapNgRoundTripTests
{
    public static TheoryData<bool, byte> Resolutions()
    {
        var data = new TheoryData<bool, byte>();
        foreach (var bigEndian in new[] { false, true })
        {
            // 10^-6 (default, no option), 10^-9, 10^-3, 10^-12, 2^-10, 2^-20, 2^-30, 2^-40.
            foreach (var resolution in new byte[] { 6, 9, 3, 12, 0x80 | 10, 0x80 | 20, 0x80 | 30, 0x80 | 40 })
            {
                data.Add(bigEndian, resolution);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Resolutions))]
    public void TimestampsSurviveInEachUnit(bool bigEndian, byte tsresol)
    {
        var resolution = new TimestampResolution(tsresol);
        var stream = new MemoryStream();
        long[] candidates = [0L, 1L, 999_999_999L, 86_400_000_000_001L, SampleFrames.BaseTimestamp, SampleFrames.BaseTimestamp + 1, 4_102_444_800_000_000_001L];
        var times = new List<long>();
        using (var writer = new PcapNgWriter(stream, new PcapNgWriterOptions { BigEndian = bigEndian }, leaveOpen: true))
        {
            writer.AddInterface(LinkType.Ethernet, timestampResolution: resolution);
            foreach (var t in candidates)
            {
                // 64 bits of picoseconds (or 2^-40 s) reach only months past 1970: the writer must refuse, not wrap.
                var fits = (UInt128)t * resolution.UnitsPerSecond / 1_000_000_000 <= ulong.MaxValue;
                if (fits)
                {
                    writer.WritePacket(0, t, SampleFrames.EthernetUdp(60, (int)(t % 100)));
                    times.Add(t);
                }
                else
                {
                    Assert.Throws<ArgumentOutOfRangeException>(() => writer.WritePacket(0, t, SampleFrames.EthernetUdp(60, 0)));
                }
            }
        }
        Assert.True(times.Count >= 4);
        stream.Position = 0;
        using var reader = CaptureReader.Open(stream);
        var records = reader.ReadAll().ToList();
        Assert.Equal(times.Count, records.Count);
        Assert.Equal(resolution, reader.Interfaces[0].TimestampResolution);
        var unitNanoseconds = 1e9 / resolution.UnitsPerSecond;
        for (var i = 0; i < times.Count; i++)
        {
            if (unitNanoseconds <= 1)
            {
                Assert.Equal(times[i], records[i].TimestampNanoseconds); // finer than 1 ns: exact
            }
            else
            {
                // Coarser: the writer truncates to a unit, the reader converts back exactly
                // (10^-n) or truncating (2^-n): within one unit, never later than the original.
                Assert.InRange(times[i] - records[i].TimestampNanoseconds, 0, (long)Math.Ceiling(unitNanoseconds));
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SeveralInterfacesCommentsAndSnapLengthsRoundTrip(bool bigEndian)
    {
        var stream = new MemoryStream();
        using (var writer = new PcapNgWriter(stream, new PcapNgWriterOptions
        {
            BigEndian = bigEndian,
            Application = "capture tests",
            OperatingSystem = "Linux",
            Hardware = "x86_64",
            Comments = ["section one"],
        }, leaveOpen: true))
        {
            Assert.Equal(0, writer.AddInterface(LinkType.Ethernet, snapLength: 0, name: "eth0", timestampResolution: TimestampResolution.Nanoseconds, description: "the uplink"));
            Assert.Equal(1, writer.AddInterface(LinkType.RawIp, snapLength: 64, name: "tun0"));
            Assert.Equal(2, writer.AddInterface(new CaptureInterface
            {
                LinkType = LinkType.Ipv6,
                SnapLength = 128,
                Name = "lxc1",
                OperatingSystem = "Linux 6.18",
                Filter = "ip6 and udp",
                TimestampResolution = TimestampResolution.PowerOfTwo(24),
                TimestampOffsetSeconds = 1_600_000_000,
                Comments = ["pod veth"],
            }));
            writer.WritePacket(0, SampleFrames.BaseTimestamp, SampleFrames.EthernetUdp(1500, 1), comment: "first, with a comma");
            writer.WritePacket(1, SampleFrames.BaseTimestamp + 10, SampleFrames.RawIpv4(200, 2), originalLength: 1400, comments: ["two", "comments ✓"]);
            writer.WritePacket(2, SampleFrames.BaseTimestamp + 20, SampleFrames.RawIpv4(100, 3));
            writer.WritePacket(0, SampleFrames.BaseTimestamp + 30, SampleFrames.EthernetUdp(42, 4), originalLength: null, comments: []);
        }

        stream.Position = 0;
        using var reader = CaptureReader.Open(stream);
        var ng = Assert.IsType<PcapNgReader>(reader);
        Assert.Equal(bigEndian, reader.IsBigEndian);
        Assert.Equal("capture tests", ng.Section.Application);
        Assert.Equal("Linux", ng.Section.OperatingSystem);
        Assert.Equal("x86_64", ng.Section.Hardware);
        Assert.Equal(["section one"], ng.Section.Comments);
        var records = reader.ReadAll().ToList();
        Assert.Equal(3, reader.Interfaces.Count);
        var (eth, tun, lxc) = (reader.Interfaces[0], reader.Interfaces[1], reader.Interfaces[2]);
        Assert.Equal(("eth0", "the uplink", LinkType.Ethernet, 0, TimestampResolution.Nanoseconds), (eth.Name, eth.Description, eth.LinkType, eth.SnapLength, eth.TimestampResolution));
        Assert.Equal(("tun0", LinkType.RawIp, 64, TimestampResolution.Microseconds), (tun.Name, tun.LinkType, tun.SnapLength, tun.TimestampResolution));
        Assert.Equal(("lxc1", "Linux 6.18", "ip6 and udp", 1_600_000_000L, 128), (lxc.Name, lxc.OperatingSystem, lxc.Filter, lxc.TimestampOffsetSeconds, lxc.SnapLength));
        Assert.Equal(["pod veth"], lxc.Comments);

        Assert.Equal(4, records.Count);
        Assert.Equal((0, 1500, 1500, SampleFrames.BaseTimestamp), (records[0].InterfaceIndex, records[0].CapturedLength, records[0].OriginalLength, records[0].TimestampNanoseconds));
        Assert.Equal(["first, with a comma"], records[0].Comments);
        Assert.True(SampleFrames.EthernetUdp(1500, 1).AsSpan().SequenceEqual(records[0].Data.Span));

        Assert.Equal((1, 64, 1400, LinkType.RawIp), (records[1].InterfaceIndex, records[1].CapturedLength, records[1].OriginalLength, records[1].LinkType));
        Assert.Equal(SampleFrames.BaseTimestamp + 10 - 799, records[1].TimestampNanoseconds); // µs interface truncates
        Assert.Equal(["two", "comments ✓"], records[1].Comments);
        Assert.True(SampleFrames.RawIpv4(200, 2).AsSpan(0, 64).SequenceEqual(records[1].Data.Span));
        Assert.True(records[1].IsTruncated);

        Assert.Equal((2, 100, 100), (records[2].InterfaceIndex, records[2].CapturedLength, records[2].OriginalLength));
        Assert.InRange(SampleFrames.BaseTimestamp + 20 - records[2].TimestampNanoseconds, 0, 60); // 2^-24 s ≈ 60 ns
        Assert.Empty(records[2].Comments);
        Assert.Equal(4, records[3].Number);
        Assert.Empty(records[3].Comments);
    }

    [Fact]
    public void SectionsMayChangeByteOrderAndInterfaces()
    {
        var stream = new MemoryStream();
        using (var writer = new PcapNgWriter(stream, leaveOpen: true))
        {
            writer.AddInterface(LinkType.Ethernet, name: "a0");
            writer.AddInterface(LinkType.Ethernet, name: "a1");
            writer.WritePacket(1, 1_000, SampleFrames.EthernetUdp(60, 1));
            writer.StartSection(new PcapNgWriterOptions { BigEndian = true, Comments = ["second"] });
            Assert.Empty(writer.Interfaces);
            writer.AddInterface(LinkType.RawIp, name: "b0", timestampResolution: TimestampResolution.Nanoseconds);
            writer.WritePacket(0, 2_000, SampleFrames.RawIpv4(40, 2));
            writer.StartSection();
            writer.AddInterface(LinkType.Ipv4, name: "c0");
            writer.WritePacket(0, 3_000, SampleFrames.RawIpv4(40, 3));
        }
        stream.Position = 0;
        using var reader = (PcapNgReader)CaptureReader.Open(stream);
        Assert.True(reader.TryReadNext(out var p1));
        Assert.Equal(("a1", 0, false), (p1.Interface.Name, p1.Interface.SectionIndex, reader.IsBigEndian));
        Assert.True(reader.TryReadNext(out var p2));
        Assert.Equal(("b0", 1, true, LinkType.RawIp), (p2.Interface.Name, p2.Interface.SectionIndex, reader.IsBigEndian, p2.LinkType));
        Assert.Equal(["second"], reader.Section.Comments);
        Assert.Equal(2_000, p2.TimestampNanoseconds);
        Assert.True(reader.TryReadNext(out var p3));
        Assert.Equal(("c0", 2, false, 0), (p3.Interface.Name, p3.Interface.SectionIndex, reader.IsBigEndian, p3.InterfaceIndex));
        Assert.Single(reader.Interfaces);
        Assert.False(reader.TryReadNext(out _));
        Assert.Equal(3, reader.PacketCount);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SimplePacketsTakeInterfaceZeroAndItsSnapLength(bool bigEndian)
    {
        var stream = new MemoryStream();
        using (var writer = new PcapNgWriter(stream, new PcapNgWriterOptions { BigEndian = bigEndian }, leaveOpen: true))
        {
            writer.AddInterface(LinkType.Ethernet, snapLength: 100);
            writer.WriteSimplePacket(SampleFrames.EthernetUdp(61, 1));
            writer.WriteSimplePacket(SampleFrames.EthernetUdp(300, 2));
            Assert.Throws<ArgumentException>(() => writer.WriteSimplePacket(SampleFrames.EthernetUdp(60, 3), originalLength: 80));
        }
        stream.Position = 0;
        var records = CaptureReader.Open(stream).ReadAll().ToList();
        Assert.Equal(2, records.Count);
        Assert.False(records[0].HasTimestamp);
        Assert.Equal((61, 61), (records[0].CapturedLength, records[0].OriginalLength));
        Assert.True(SampleFrames.EthernetUdp(61, 1).AsSpan().SequenceEqual(records[0].Data.Span));
        Assert.Equal((100, 300), (records[1].CapturedLength, records[1].OriginalLength));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BlocksTheReaderDoesNotInterpretAreSkipped(bool bigEndian)
    {
        var stream = new MemoryStream();
        using (var writer = new PcapNgWriter(stream, new PcapNgWriterOptions { BigEndian = bigEndian }, leaveOpen: true))
        {
            // Name resolution: one IPv4 record (198.18.0.1 "pod-a"), then nrb_record_end.
            writer.WriteBlock(0x00000004, [.. U16(1, bigEndian), .. U16(10, bigEndian), 198, 18, 0, 1, .. "pod-a\0"u8, 0, 0, 0, 0]);
            writer.AddInterface(LinkType.Ethernet);
            writer.WritePacket(0, 5_000, SampleFrames.EthernetUdp(60, 1));
            // Interface statistics for interface 0 with a zero timestamp and no options.
            writer.WriteBlock(0x00000005, new byte[12]);
            writer.WriteBlock(0x00000BAD, [0x00, 0x00, 0x7E, 0xD9, 1, 2, 3]); // custom block, PEN 32473 (example PEN, RFC 5612)
            writer.WriteBlock(0x0000000A, new byte[16]);  // decryption secrets
            writer.WriteBlock(0x12345678, []);             // a type nobody defined
            writer.WritePacket(0, 6_000, SampleFrames.EthernetUdp(70, 2));
        }
        stream.Position = 0;
        var records = CaptureReader.Open(stream).ReadAll().ToList();
        Assert.Equal([60, 70], records.Select(r => r.CapturedLength));
        Assert.Equal([1L, 2L], records.Select(r => r.Number));
    }

    [Fact]
    public void BlocksLargerThanTheBufferLimitAreStreamedPast()
    {
        var stream = new MemoryStream();
        using (var writer = new PcapNgWriter(stream, leaveOpen: true))
        {
            writer.AddInterface(LinkType.Ethernet);
            writer.WriteBlock(0x00000BAD, new byte[100_000]);
            writer.WritePacket(0, 5_000, SampleFrames.EthernetUdp(60, 1));
        }
        stream.Position = 0;
        var options = new CaptureReaderOptions { MaxBlockLength = 4096 };
        using var reader = CaptureReader.Open(new TrickleStream(stream.ToArray(), 700), options);
        Assert.Single(reader.ReadAll());
    }

    [Fact]
    public void WriterCopiesPacketsFromAReader()
    {
        var source = new MemoryStream();
        using (var writer = new PcapNgWriter(source, leaveOpen: true))
        {
            writer.AddInterface(LinkType.Ethernet, timestampResolution: TimestampResolution.Nanoseconds);
            writer.WritePacket(0, SampleFrames.BaseTimestamp, SampleFrames.EthernetUdp(80, 1), originalLength: null, comments: ["kept"], flags: (uint)PacketDirection.Outbound | 0x4 /* unicast */);
        }
        source.Position = 0;
        var copy = new MemoryStream();
        using (var reader = CaptureReader.Open(source))
        using (var writer = new PcapNgWriter(copy, leaveOpen: true))
        {
            writer.AddInterface(reader.Interfaces.Count > 0 ? reader.Interfaces[0] : new CaptureInterface { TimestampResolution = TimestampResolution.Nanoseconds });
            while (reader.TryReadNext(out var packet))
            {
                writer.WritePacket(0, packet);
            }
        }
        copy.Position = 0;
        var record = Assert.Single(CaptureReader.Open(copy).ReadAll());
        Assert.Equal((SampleFrames.BaseTimestamp, 80, "kept"), (record.TimestampNanoseconds, record.CapturedLength, record.Comments.Single()));
        Assert.Equal((0x6u, PacketDirection.Outbound), (record.Flags, record.Direction));
    }

    [Fact]
    public void WriterRejectsMisuse()
    {
        using var writer = new PcapNgWriter(new MemoryStream());
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WritePacket(0, 0, new byte[10]));
        writer.AddInterface(LinkType.Ethernet);
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WritePacket(1, 0, new byte[10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WritePacket(0, -5, new byte[10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WritePacket(0, 0, new byte[10], originalLength: 9));
        Assert.Throws<ArgumentException>(() => writer.WritePacket(0, 0, new byte[10], comment: new string('x', 70_000)));
        Assert.Throws<ArgumentException>(() => writer.WriteBlock(0x0A0D0D0A, []));
        writer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => writer.WritePacket(0, 0, new byte[10]));
    }

    private static byte[] U16(ushort value, bool bigEndian) =>
        bigEndian ? [(byte)(value >> 8), (byte)value] : [(byte)value, (byte)(value >> 8)];
}
