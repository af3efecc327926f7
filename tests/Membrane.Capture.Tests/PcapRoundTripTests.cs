namespace Membrane.Capture.Tests;

public class PcapRoundTripTests
{
    public static TheoryData<bool, bool, LinkType> Layouts()
    {
        var data = new TheoryData<bool, bool, LinkType>();
        foreach (var bigEndian in new[] { false, true })
        {
            foreach (var nanoseconds in new[] { false, true })
            {
                foreach (var linkType in new[] { LinkType.Ethernet, LinkType.RawIp, LinkType.Ipv4 })
                {
                    data.Add(bigEndian, nanoseconds, linkType);
                }
            }
        }
        data.Add(false, true, LinkType.Ipv6);
        return data;
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void WrittenPacketsReadBackExactly(bool bigEndian, bool nanoseconds, LinkType linkType)
    {
        var resolution = nanoseconds ? TimestampResolution.Nanoseconds : TimestampResolution.Microseconds;
        var frames = Enumerable.Range(0, 20).Select(i => SampleFrames.EthernetUdp(42 + i * 37, i)).ToArray();
        var stream = new MemoryStream();
        using (var writer = new PcapWriter(stream, linkType, new PcapWriterOptions { BigEndian = bigEndian, TimestampResolution = resolution, SnapLength = 500 }, leaveOpen: true))
        {
            for (var i = 0; i < frames.Length; i++)
            {
                writer.WritePacket(SampleFrames.BaseTimestamp + i * 1_000_003L, frames[i]);
            }
        }
        var bytes = stream.ToArray();
        Assert.Equal(bigEndian ? 0xA1 : (nanoseconds ? 0x4D : 0xD4), bytes[0]);

        stream.Position = 0;
        using var reader = CaptureReader.Open(stream);
        var pcap = Assert.IsType<PcapReader>(reader);
        Assert.Equal(CaptureFormat.Pcap, reader.Format);
        Assert.Equal(bigEndian, reader.IsBigEndian);
        Assert.Equal(linkType, pcap.LinkType);
        Assert.Equal(500, pcap.SnapLength);
        Assert.Equal(resolution, pcap.TimestampResolution);
        var i2 = 0;
        while (reader.TryReadNext(out var packet))
        {
            var expectedTime = SampleFrames.BaseTimestamp + i2 * 1_000_003L;
            if (!nanoseconds)
            {
                expectedTime -= expectedTime % 1000;
            }
            Assert.Equal(i2 + 1, packet.Number);
            Assert.Equal(expectedTime, packet.TimestampNanoseconds);
            Assert.Equal(frames[i2].Length, packet.OriginalLength);
            Assert.Equal(Math.Min(500, frames[i2].Length), packet.CapturedLength);
            Assert.Equal(packet.CapturedLength < frames[i2].Length, packet.IsTruncated);
            Assert.True(frames[i2].AsSpan(0, packet.CapturedLength).SequenceEqual(packet.Span));
            Assert.Equal(linkType, packet.LinkType);
            Assert.Equal(0, packet.InterfaceIndex);
            Assert.Empty(packet.Comments);
            i2++;
        }
        Assert.Equal(frames.Length, i2);
        Assert.Equal(CaptureReadStatus.EndOfFile, reader.ReadNext(out _));
        Assert.Null(reader.Error);
    }

    [Fact]
    public void EmptyCaptureHasHeaderOnly()
    {
        var stream = new MemoryStream();
        new PcapWriter(stream, LinkType.Ethernet, leaveOpen: true).Dispose();
        Assert.Equal(24, stream.Length);
        stream.Position = 0;
        using var reader = CaptureReader.Open(stream);
        Assert.False(reader.TryReadNext(out _));
    }

    [Fact]
    public void DateTimeOffsetTimestampsKeepTheirTicks()
    {
        var stream = new MemoryStream();
        var when = new DateTimeOffset(2024, 2, 29, 12, 34, 56, TimeSpan.Zero).AddTicks(1234567);
        using (var writer = new PcapWriter(stream, LinkType.Ethernet, new PcapWriterOptions { TimestampResolution = TimestampResolution.Nanoseconds }, leaveOpen: true))
        {
            writer.WritePacket(when, SampleFrames.EthernetUdp(60, 1));
        }
        stream.Position = 0;
        var record = Assert.Single(CaptureReader.Open(stream).ReadAll());
        Assert.Equal(when, record.Timestamp);
    }

    [Fact]
    public void WriterRejectsAnOriginalLengthBelowTheData()
    {
        using var writer = new PcapWriter(new MemoryStream(), LinkType.Ethernet);
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WritePacket(0, new byte[60], originalLength: 59));
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WritePacket(-1, new byte[60]));
    }

    [Fact]
    public void WriterRejectsUnitsPcapCannotExpress() =>
        Assert.Throws<ArgumentException>(() => new PcapWriter(new MemoryStream(), LinkType.Ethernet,
            new PcapWriterOptions { TimestampResolution = TimestampResolution.PowerOfTen(3) }));

    [Fact]
    public void DisposeClosesTheStreamUnlessLeftOpen()
    {
        var kept = new MemoryStream();
        new PcapWriter(kept, LinkType.Ethernet, leaveOpen: true).Dispose();
        Assert.True(kept.CanWrite);
        var closed = new MemoryStream();
        new PcapWriter(closed, LinkType.Ethernet).Dispose();
        Assert.False(closed.CanWrite);
    }
}
