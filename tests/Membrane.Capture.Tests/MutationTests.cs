using System.Buffers.Binary;

namespace Membrane.Capture.Tests;

/// <summary>
/// Deterministic mutations of valid captures (bit flips, 32-bit length lies, truncations): the
/// non-throwing API must never throw, and whatever it returns must be consistent.
/// </summary>
public class MutationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void NoMutationMakesReadNextThrow(bool pcapNg)
    {
        var original = pcapNg ? TestCapture.PcapNg().Bytes : TestCapture.Pcap().Bytes;
        var random = new Random(pcapNg ? 4231 : 1071);
        var outcomes = new Dictionary<CaptureErrorReason, int>();
        for (var i = 0; i < 20_000; i++)
        {
            var bytes = (byte[])original.Clone();
            var length = bytes.Length;
            switch (random.Next(4))
            {
                case 0:
                    bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    // A length-field lie: any aligned 32-bit word set to a boundary-ish value.
                    uint[] lies = [0, 1, 3, 7, 8, 11, 12, 28, 32, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFC, (uint)random.Next()];
                    BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(random.Next(bytes.Length / 4) * 4), lies[random.Next(lies.Length)]);
                    break;
                case 2:
                    length = random.Next(bytes.Length);
                    break;
                default:
                    for (var k = 0; k < 4; k++)
                    {
                        bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                    }
                    break;
            }
            var reason = ReadAllWithoutThrowing(bytes.AsMemory(0, length).ToArray());
            outcomes[reason] = outcomes.GetValueOrDefault(reason) + 1;
        }
        // The mutations must actually reach the interesting checks, not just the magic.
        Assert.True(outcomes.Count >= 6, string.Join(", ", outcomes.Select(o => $"{o.Key}={o.Value}")));
    }

    private static CaptureErrorReason ReadAllWithoutThrowing(byte[] bytes)
    {
        if (!CaptureReader.TryOpen(new MemoryStream(bytes), out var reader, out var error))
        {
            Assert.NotEqual(CaptureErrorReason.None, error.Reason);
            Assert.InRange(error.Offset, 0, bytes.Length);
            return error.Reason;
        }
        using (reader)
        {
            CaptureReadStatus status;
            while ((status = reader!.ReadNext(out var packet)) == CaptureReadStatus.Packet)
            {
                Assert.InRange(packet.CapturedLength, 0, packet.OriginalLength); // strict by default
                Assert.InRange(packet.Offset, 0, bytes.Length - packet.CapturedLength);
            }
            if (status == CaptureReadStatus.EndOfFile)
            {
                Assert.Null(reader.Error);
                return CaptureErrorReason.None;
            }
            var e = reader.Error!.Value;
            Assert.NotEqual(CaptureErrorReason.None, e.Reason);
            Assert.InRange(e.Offset, 0, bytes.Length);
            Assert.StartsWith($"at byte {e.Offset}: ", e.Message, StringComparison.Ordinal);
            return e.Reason;
        }
    }
}
