using System.Buffers.Binary;
using System.Diagnostics;
using Membrane.Cli.Decode;
using Membrane.Cli.Tests.Oracle;
using Xunit.Abstractions;

namespace Membrane.Cli.Tests;

/// <summary>
/// The decoder reads fields out of every layer the dissector accepts, so it must survive whatever
/// the dissector lets through: deterministic mutations of real frames (bit flips, truncations,
/// length fields that lie) through both writers, and every one must still produce valid output.
/// </summary>
public class DecoderRobustnessTests(ITestOutputHelper output)
{
    private const int Mutations = 200_000;

    [Fact]
    public void MutatedFramesNeverThrowAndAlwaysRenderAPacket()
    {
        var frames = TestCaptures.BuilderFrames();
        var random = new Random(1071); // fixed seed: a failure reproduces
        using var json = new CountingStream();
        using var text = new CountingStream();
        using var jsonWriter = DecodeWriter.Create(json, DecodeFormat.Json);
        using var textWriter = DecodeWriter.Create(text, DecodeFormat.Text);
        var stats = new CaptureStatistics();
        var buffer = new byte[4096];
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < Mutations; i++)
        {
            var frame = frames[i % frames.Count];
            frame.CopyTo(buffer, 0);
            var length = frame.Length;
            switch (random.Next(4))
            {
                case 0: // flip a few bits
                    for (var n = random.Next(1, 4); n > 0; n--)
                    {
                        buffer[random.Next(length)] ^= (byte)(1 << random.Next(8));
                    }
                    break;
                case 1: // cut anywhere
                    length = random.Next(length + 1);
                    break;
                case 2: // a 16-bit length or port field that lies (IPv4/IPv6/UDP/Geneve lengths are all 16-bit)
                    var at = random.Next(Math.Max(1, length - 1));
                    BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(at), (ushort)random.Next(65536));
                    break;
                default: // overwrite a byte with a boundary value
                    buffer[random.Next(length)] = (byte)(random.Next(2) == 0 ? 0 : 0xFF);
                    break;
            }
            var data = buffer.AsSpan(0, length);
            var original = random.Next(8) == 0 ? length + random.Next(1, 2000) : length; // sometimes snaplen-cut
            // Mostly Ethernet; sometimes the same bytes read as another link type the decoder starts from.
            var linkType = random.Next(8) switch
            {
                0 => Capture.LinkType.RawIp,
                1 => Capture.LinkType.LinuxSll,
                2 => Capture.LinkType.LinuxSll2,
                3 => (Capture.LinkType)147, // seed frames
                _ => Capture.LinkType.Ethernet,
            };
            var before = json.Lines;
            jsonWriter.WritePacket(i + 1, i, original, linkType, data);
            textWriter.WritePacket(i + 1, i, original, linkType, data);
            stats.WritePacket(i + 1, i, original, linkType, data);
            Assert.Equal(before + 1, json.Lines);
        }
        jsonWriter.Flush();
        output.WriteLine($"{Mutations} mutated frames decoded three ways in {watch.Elapsed.TotalSeconds:F1} s; {stats.PacketsWithErrors} with errors");
        Assert.Equal(Mutations, stats.Packets);
        Assert.InRange(stats.PacketsWithErrors, Mutations / 20, Mutations - 1); // mutations do break headers, not all of them
    }

    /// <summary>Counts newlines (one per JSON packet) without keeping the bytes.</summary>
    private sealed class CountingStream : Stream
    {
        public long Lines { get; private set; }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => 0;
        public override long Position { get; set; }

        public override void Write(ReadOnlySpan<byte> buffer) => Lines += buffer.Count((byte)'\n');

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void WriteByte(byte value) => Lines += value == '\n' ? 1 : 0;

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
