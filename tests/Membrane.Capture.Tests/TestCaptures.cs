using System.Buffers.Binary;

namespace Membrane.Capture.Tests;

/// <summary>A small capture built by our writers, with the file offset where each record starts and ends.</summary>
internal sealed record TestCapture(byte[] Bytes, int HeaderEnd, IReadOnlyList<(int Start, int End, bool IsPacket)> Records)
{
    public int PacketCount => Records.Count(r => r.IsPacket);

    public byte[] Patched(int offset, uint value, bool bigEndian = false)
    {
        var copy = (byte[])Bytes.Clone();
        if (bigEndian)
        {
            BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(offset), value);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(copy.AsSpan(offset), value);
        }
        return copy;
    }

    public byte[] Patched16(int offset, ushort value)
    {
        var copy = (byte[])Bytes.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(copy.AsSpan(offset), value);
        return copy;
    }

    /// <summary>pcap, little-endian, µs: three packets of 42, 50 and 61 bytes.</summary>
    public static TestCapture Pcap(bool bigEndian = false, int snapLength = 256 * 1024)
    {
        var stream = new MemoryStream();
        var records = new List<(int, int, bool)>();
        using var writer = new PcapWriter(stream, LinkType.Ethernet, new PcapWriterOptions { BigEndian = bigEndian, SnapLength = snapLength }, leaveOpen: true);
        var headerEnd = (int)stream.Position;
        foreach (var (length, i) in new[] { 42, 50, 61 }.Select((l, i) => (l, i)))
        {
            var start = (int)stream.Position;
            writer.WritePacket(SampleFrames.BaseTimestamp + i, SampleFrames.EthernetUdp(length, i));
            records.Add((start, (int)stream.Position, true));
        }
        return new TestCapture(stream.ToArray(), headerEnd, records);
    }

    /// <summary>
    /// pcapng, little-endian: SHB with a comment, IDB with options, name resolution block,
    /// EPB, EPB with a comment, simple packet block, a second section (big-endian) with its own
    /// interface and one EPB.
    /// </summary>
    public static TestCapture PcapNg()
    {
        var stream = new MemoryStream();
        var records = new List<(int, int, bool)>();
        using var writer = new PcapNgWriter(stream, new PcapNgWriterOptions { Comments = ["truncation corpus"] }, leaveOpen: true);
        var headerEnd = (int)stream.Position;
        void Record(bool isPacket, Action write)
        {
            var start = (int)stream.Position;
            write();
            records.Add((start, (int)stream.Position, isPacket));
        }
        Record(false, () => writer.AddInterface(LinkType.Ethernet, name: "eth0", timestampResolution: TimestampResolution.Nanoseconds));
        Record(false, () => writer.WriteBlock(0x00000004, [1, 0, 8, 0, 198, 18, 0, 1, (byte)'a', 0, 0, 0, 0, 0, 0, 0]));
        Record(true, () => writer.WritePacket(0, SampleFrames.BaseTimestamp, SampleFrames.EthernetUdp(42, 1)));
        Record(true, () => writer.WritePacket(0, SampleFrames.BaseTimestamp + 1, SampleFrames.EthernetUdp(45, 2), comment: "second"));
        Record(true, () => writer.WriteSimplePacket(SampleFrames.EthernetUdp(43, 3)));
        Record(false, () => writer.StartSection(new PcapNgWriterOptions { BigEndian = true }));
        Record(false, () => writer.AddInterface(LinkType.RawIp));
        Record(true, () => writer.WritePacket(0, SampleFrames.BaseTimestamp + 2, SampleFrames.RawIpv4(20, 4)));
        return new TestCapture(stream.ToArray(), headerEnd, records);
    }
}
