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
        // Three passes over the file, the least allocation counts: the first pass may meet a
        // path (a buffer refill, a tier-1 recompilation or on-stack replacement of this loop)
        // for the first time, which allocates once in the runtime, not in the reader.
        var file = stream.ToArray();
        var allocated = long.MaxValue;
        for (var pass = 0; pass < 3; pass++)
        {
            using var reader = CaptureReader.Open(new MemoryStream(file)); // the reader owns (and closes) its stream
            Assert.Equal(CaptureReadStatus.Packet, reader.ReadNext(out _)); // warm up: JIT and first buffer fill
            long bytes = 0;
            var before = GC.GetAllocatedBytesForCurrentThread();
            while (reader.ReadNext(out var packet) == CaptureReadStatus.Packet)
            {
                bytes += packet.Span.Length;
            }
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
            Assert.Equal(4999, reader.PacketCount - 1);
            Assert.True(bytes > 0);
        }
        Assert.Equal(0, allocated);
    }
}
