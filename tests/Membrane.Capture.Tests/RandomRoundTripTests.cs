namespace Membrane.Capture.Tests;

/// <summary>Seeded random captures (many shapes at once), read back through a trickling stream.</summary>
public class RandomRoundTripTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void RandomPcapNgRoundTrips(int seed)
    {
        var random = new Random(seed);
        var stream = new MemoryStream();
        var expected = new List<(int Section, int Interface, long Time, byte[] Data, int Original, string[] Comments)>();
        var resolutions = new byte[] { 6, 9, 0x80 | 30 };
        using (var writer = new PcapNgWriter(stream, new PcapNgWriterOptions { BigEndian = random.Next(2) == 0 }, leaveOpen: true))
        {
            var section = 0;
            var interfaces = new List<int>();
            for (var i = 0; i < 300; i++)
            {
                var roll = random.Next(100);
                if (roll < 3)
                {
                    writer.StartSection(new PcapNgWriterOptions { BigEndian = random.Next(2) == 0 });
                    section++;
                    interfaces.Clear();
                }
                if (interfaces.Count == 0 || roll < 8)
                {
                    var snap = random.Next(3) == 0 ? random.Next(20, 200) : 0;
                    writer.AddInterface(LinkType.Ethernet, snapLength: snap, timestampResolution: new TimestampResolution(resolutions[random.Next(resolutions.Length)]));
                    interfaces.Add(snap);
                    continue;
                }
                if (roll < 12)
                {
                    writer.WriteBlock(0x00000BAD, new byte[random.Next(0, 40)]);
                    continue;
                }
                var id = random.Next(interfaces.Count);
                var frame = SampleFrames.EthernetUdp(random.Next(42, 400), i);
                var original = frame.Length + (random.Next(4) == 0 ? random.Next(1, 1000) : 0);
                var comments = Enumerable.Range(0, random.Next(4) == 0 ? random.Next(1, 3) : 0).Select(c => $"packet {i} note {c}").ToArray();
                var time = SampleFrames.BaseTimestamp + random.NextInt64(0, 1_000_000_000_000L);
                var resolution = writer.Interfaces[id].TimestampResolution;
                writer.WritePacket(id, time, frame, original, comments);
                var kept = interfaces[id] != 0 ? frame[..Math.Min(frame.Length, interfaces[id])] : frame;
                var expectedTime = resolution == TimestampResolution.Microseconds ? time - time % 1000 : time;
                expected.Add((section, id, expectedTime, kept, original, comments));
            }
        }
        using var reader = CaptureReader.Open(new TrickleStream(stream.ToArray(), random.Next(1, 5000)));
        var n = 0;
        while (reader.TryReadNext(out var packet))
        {
            var e = expected[n++];
            Assert.Equal((e.Section, e.Interface, e.Time, e.Original), (packet.Interface.SectionIndex, packet.InterfaceIndex, packet.TimestampNanoseconds, packet.OriginalLength));
            Assert.True(e.Data.AsSpan().SequenceEqual(packet.Span));
            Assert.Equal(e.Comments, packet.Comments);
        }
        Assert.Equal(expected.Count, n);
    }
}
