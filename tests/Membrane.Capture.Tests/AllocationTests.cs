namespace Membrane.Capture.Tests;

/// <summary>The hot read path reuses one buffer: no allocation per packet (comments aside).</summary>
public class AllocationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadingPacketsAllocatesNothing(bool pcapNg)
    {
        var stream = new MemoryStream();
        if (pcapNg)
        {
            using var writer = new PcapNgWriter(stream, new PcapNgWriterOptions { BigEndian = true }, leaveOpen: true);
            writer.AddInterface(LinkType.Ethernet, timestampResolution: TimestampResolution.Nanoseconds);
            writer.AddInterface(LinkType.RawIp, timestampResolution: TimestampResolution.PowerOfTwo(32));
            for (var i = 0; i < 5000; i++)
            {
                writer.WritePacket(i % 2, SampleFrames.BaseTimestamp + i, SampleFrames.EthernetUdp(60 + i % 1400, i));
            }
        }
        else
        {
            using var writer = new PcapWriter(stream, LinkType.Ethernet, leaveOpen: true);
            for (var i = 0; i < 5000; i++)
            {
                writer.WritePacket(SampleFrames.BaseTimestamp + i, SampleFrames.EthernetUdp(60 + i % 1400, i));
            }
        }
        stream.Position = 0;
        using var reader = CaptureReader.Open(stream);
        Assert.Equal(CaptureReadStatus.Packet, reader.ReadNext(out _)); // warm up: JIT and first buffer fill
        long bytes = 0;
        var before = GC.GetAllocatedBytesForCurrentThread();
        while (reader.ReadNext(out var packet) == CaptureReadStatus.Packet)
        {
            bytes += packet.Span.Length;
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(4999, reader.PacketCount - 1);
        Assert.True(bytes > 0);
        Assert.Equal(0, allocated);
    }
}
