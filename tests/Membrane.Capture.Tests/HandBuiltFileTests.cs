namespace Membrane.Capture.Tests;

/// <summary>
/// Files assembled byte by byte from the specifications, so that the reader is checked against
/// the format rather than against our own writer (whose symmetric mistakes a round trip hides).
/// </summary>
public class HandBuiltFileTests
{
    // 2023-11-14T22:13:20.123456789Z = 0x17979CFE_3D85CD15 ns; 1,700,000,000 s = 0x6553F100.
    private const long Timestamp = 1_700_000_000_123_456_789;

    [Fact]
    public void BigEndianMicrosecondPcapWithATruncatedRecord()
    {
        byte[] file =
        [
            0xA1, 0xB2, 0xC3, 0xD4, 0x00, 0x02, 0x00, 0x04, // magic, version 2.4
            0, 0, 0, 0, 0, 0, 0, 0,                         // thiszone, sigfigs
            0x00, 0x00, 0x00, 0x0A,                         // snaplen 10
            0x00, 0x00, 0x00, 0x65,                         // LINKTYPE_RAW (101)
            0x65, 0x53, 0xF1, 0x00, 0x00, 0x01, 0xE2, 0x40, // 1700000000 s, 123456 µs
            0x00, 0x00, 0x00, 0x0A, 0x00, 0x00, 0x00, 0x3C, // captured 10 of 60
            0x45, 0, 0, 60, 0, 1, 0, 0, 64, 17,
        ];
        using var reader = CaptureReader.Open(new MemoryStream(file));
        Assert.True(reader.IsBigEndian);
        Assert.True(reader.TryReadNext(out var packet));
        Assert.Equal((LinkType.RawIp, 1_700_000_000_123_456_000L, 10, 60, true), (packet.LinkType, packet.TimestampNanoseconds, packet.CapturedLength, packet.OriginalLength, packet.IsTruncated));
        Assert.Equal(new DateTimeOffset(2023, 11, 14, 22, 13, 20, TimeSpan.Zero).AddTicks(1_234_560), packet.Timestamp);
        Assert.Equal(0x45, packet.Span[0]);
        Assert.Equal(24, packet.Offset);
        Assert.False(reader.TryReadNext(out _));
    }

    [Fact]
    public void LittleEndianNanosecondPcapWithFcsBitsInTheLinkType()
    {
        byte[] file =
        [
            0x4D, 0x3C, 0xB2, 0xA1, 0x02, 0x00, 0x04, 0x00,
            0, 0, 0, 0, 0, 0, 0, 0,
            0xFF, 0xFF, 0x00, 0x00,
            0x01, 0x00, 0x00, 0x14,                         // Ethernet, F bit set with a 4-byte FCS (draft-ietf-opsawg-pcap §4)
            0x00, 0xF1, 0x53, 0x65, 0x15, 0xCD, 0x5B, 0x07, // 1700000000 s, 123456789 ns
            0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
            0xAB, 0xCD,
        ];
        using var reader = CaptureReader.Open(new MemoryStream(file));
        var pcap = Assert.IsType<PcapReader>(reader);
        Assert.Equal((LinkType.Ethernet, TimestampResolution.Nanoseconds, 65535, false), (pcap.LinkType, pcap.TimestampResolution, pcap.SnapLength, reader.IsBigEndian));
        Assert.True(reader.TryReadNext(out var packet));
        Assert.Equal(Timestamp, packet.TimestampNanoseconds);
        Assert.Equal([0xAB, 0xCD], packet.Data.ToArray());
    }

    [Fact]
    public void BigEndianPcapNgWithCustomOptionsFlagsAndComments()
    {
        byte[] file =
        [
            // Section header block, 28 bytes, no options.
            0x0A, 0x0D, 0x0D, 0x0A, 0x00, 0x00, 0x00, 0x1C, 0x1A, 0x2B, 0x3C, 0x4D, 0x00, 0x01, 0x00, 0x00,
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x1C,
            // Interface description block, 52 bytes: Ethernet, snaplen 0,
            0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x34, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x09, 0x00, 0x01, 0x09, 0x00, 0x00, 0x00,                         // if_tsresol 9
            0x0B, 0xAC, 0x00, 0x06, 0x00, 0x00, 0x7E, 0xD9, 0x61, 0x62, 0x00, 0x00, // custom string option, PEN 32473, "ab"
            0x00, 0x02, 0x00, 0x02, 0x65, 0x30, 0x00, 0x00,                         // if_name "e0"
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x34,                         // opt_endofopt, trailer
            // Enhanced packet block, 68 bytes: interface 0, 5 of 5 bytes,
            0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x44, 0x00, 0x00, 0x00, 0x00,
            0x17, 0x97, 0x9C, 0xFE, 0x3D, 0x85, 0xCD, 0x15, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x05,
            0x01, 0x02, 0x03, 0x04, 0x05, 0x00, 0x00, 0x00,
            0x00, 0x01, 0x00, 0x03, 0x68, 0x69, 0x21, 0x00,                         // opt_comment "hi!"
            0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01,                         // epb_flags: inbound
            0x0B, 0xAD, 0x00, 0x04, 0x00, 0x00, 0x7E, 0xD9,                         // custom binary option, PEN only
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x44,
        ];
        using var reader = CaptureReader.Open(new MemoryStream(file));
        Assert.True(reader.IsBigEndian);
        Assert.True(reader.TryReadNext(out var packet));
        Assert.Equal(("e0", TimestampResolution.Nanoseconds), (packet.Interface.Name, packet.Interface.TimestampResolution));
        Assert.Equal((Timestamp, 5, 5, 80L), (packet.TimestampNanoseconds, packet.CapturedLength, packet.OriginalLength, packet.Offset));
        Assert.Equal([1, 2, 3, 4, 5], packet.Data.ToArray());
        Assert.Equal(["hi!"], packet.Comments);
        Assert.Equal((1u, PacketDirection.Inbound), (packet.Flags, packet.Direction));
        Assert.False(reader.TryReadNext(out _));
    }

    [Fact]
    public void ObsoletePacketBlockIsRead()
    {
        var stream = new MemoryStream();
        using (var writer = new PcapNgWriter(stream, leaveOpen: true))
        {
            writer.AddInterface(LinkType.Ethernet, timestampResolution: TimestampResolution.PowerOfTen(3));
            // Packet block (Appendix A): interface 0 (16 bits), drops 0, ts 1700000000123 ms, 3 of 4 bytes.
            writer.WriteBlock(0x00000002, [0, 0, 0, 0, 0x8B, 0x01, 0x00, 0x00, 0x7B, 0x68, 0xE5, 0xCF, 3, 0, 0, 0, 4, 0, 0, 0, 9, 8, 7, 0]);
        }
        stream.Position = 0;
        var record = Assert.Single(CaptureReader.Open(stream).ReadAll());
        Assert.Equal((1_700_000_000_123_000_000L, 3, 4), (record.TimestampNanoseconds, record.CapturedLength, record.OriginalLength));
        Assert.Equal([9, 8, 7], record.Data.ToArray());
    }
}
