using System.Buffers.Binary;

namespace Membrane.Packets.Tests;

// The seed's five tests, ported, plus the frame's validation rules.
public class SeedFrameTests
{
    [Fact]
    public void BuiltFrameParsesBackToTheSameFields()
    {
        byte[] payload = [1, 2, 3, 4, 5];
        var frame = SeedFrame.Build(type: 3, flags: 0x42, id: 0xDEADBEEF, payload);

        Assert.True(SeedFrame.TryRead(frame, out var parsed, out var error), error.Message);
        Assert.Equal(1, parsed.Version);
        Assert.Equal(3, parsed.Type);
        Assert.Equal(0x42, parsed.Flags);
        Assert.Equal(13, parsed.TotalLength);
        Assert.Equal(0xDEADBEEFu, parsed.Id);
        Assert.Equal(payload, parsed.Payload.ToArray());
    }

    [Fact]
    public void TruncatedInputIsRejectedWithATypedReason()
    {
        var frame = SeedFrame.Build(1, 0, 7, [9, 9, 9, 9]);
        for (int cut = 0; cut < frame.Length; cut++)
        {
            Assert.False(SeedFrame.TryRead(frame.AsSpan(0, cut), out _, out var error));
            var expected = cut < SeedFrame.HeaderLength ? ParseErrorReason.Truncated : ParseErrorReason.TotalLengthBeyondCapture;
            Assert.Equal(expected, error.Reason);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(7)]
    [InlineData(100)]
    public void ChecksumOfDataPlusItsOwnChecksumIsZero(int payloadLength)
    {
        var payload = Enumerable.Range(0, payloadLength).Select(i => (byte)(i * 37 + 11)).ToArray();
        var frame = SeedFrame.Build(2, 1, 99, payload);
        ushort checksum = SeedFrame.Read(frame).Checksum;

        // RFC 1071: appending the checksum (at an even offset) makes the data sum to all ones, whose checksum is 0.
        var padded = frame.Length % 2 == 0 ? frame : [.. frame, 0];
        var withChecksum = new byte[padded.Length + 2];
        padded.CopyTo(withChecksum, 0);
        BinaryPrimitives.WriteUInt16BigEndian(withChecksum.AsSpan(padded.Length), checksum);
        Assert.Equal(0, InternetChecksum.Compute(withChecksum));
    }

    [Fact]
    public void EmptyPayloadGivesLengthEight()
    {
        var frame = SeedFrame.Build(0, 0, 0, []);
        Assert.Equal(8, frame.Length);
        Assert.Equal(8, SeedFrame.Read(frame).TotalLength);
        Assert.True(SeedFrame.Read(frame).Payload.IsEmpty);
    }

    [Fact]
    public void TenThousandBytePayloadRoundTrips()
    {
        var payload = new byte[10_000];
        new Random(1071).NextBytes(payload);
        var frame = SeedFrame.Build(5, 0x80, 123456, payload);

        var parsed = SeedFrame.Read(frame);
        Assert.Equal(10_008, parsed.TotalLength);
        Assert.True(parsed.Payload.SequenceEqual(payload));
    }

    [Fact]
    public void VersionOtherThanOneIsRejected()
    {
        var frame = SeedFrame.Build(1, 0, 1, [1]);
        frame[0] = (byte)(0x20 | (frame[0] & 0x0F));
        Assert.False(SeedFrame.TryRead(frame, out _, out var error));
        Assert.Equal(ParseErrorReason.BadVersion, error.Reason);
        Assert.Equal(0, error.Offset);
    }

    [Fact]
    public void TotalLengthBelowTheHeaderIsRejected()
    {
        var frame = SeedFrame.Build(1, 0, 1, [1, 2]);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), 7);
        Assert.False(SeedFrame.TryRead(frame, out _, out var error));
        Assert.Equal(ParseErrorReason.BadTotalLength, error.Reason);
        Assert.Equal(2, error.Offset);
    }

    [Fact]
    public void PayloadBeyondTheSixteenBitLengthIsRefusedByTheBuilder()
    {
        var e = Assert.Throws<ArgumentException>(() => SeedFrame.Build(1, 0, 0, new byte[SeedFrame.MaxPayloadLength + 1]));
        Assert.StartsWith("failed to build seed frame", e.Message);
    }

    [Fact]
    public void HeaderIsNetworkOrderBBHI()
    {
        var frame = SeedFrame.Build(0xA, 0xBC, 0x01020304, [0xFF]);
        Assert.Equal(new byte[] { 0x1A, 0xBC, 0x00, 0x09, 0x01, 0x02, 0x03, 0x04, 0xFF }, frame);
    }

    [Fact]
    public void DissectorWalksASeedFrameAndItsPayload()
    {
        var frame = SeedFrame.Build(4, 2, 77, [1, 2, 3]);
        var d = new PacketDissector(frame, LinkType.Seed);
        Assert.True(d.TryNext(out var seed));
        Assert.Equal(LayerKind.Seed, seed.Kind);
        Assert.Equal(4, seed.AsSeed(frame).Type);
        Assert.True(d.TryNext(out var payload));
        Assert.Equal((LayerKind.Payload, 8, 3), (payload.Kind, payload.Offset, payload.Length));
        Assert.False(d.TryNext(out _));
        Assert.False(d.HasError);
    }
}
