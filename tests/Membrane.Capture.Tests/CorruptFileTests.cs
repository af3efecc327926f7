namespace Membrane.Capture.Tests;

/// <summary>
/// Corrupt and truncated files: every good packet before the break is returned, then an error
/// with a reason code, the byte offset and what was expected (Kestrel-style: every prefix).
/// </summary>
public class CorruptFileTests
{
    private static readonly TestCapture s_pcap = TestCapture.Pcap();
    private static readonly TestCapture s_pcapNg = TestCapture.PcapNg();

    public static TheoryData<int> PcapPrefixes() => Prefixes(s_pcap);

    public static TheoryData<int> PcapNgPrefixes() => Prefixes(s_pcapNg);

    [Theory]
    [MemberData(nameof(PcapPrefixes))]
    public void PcapTruncatedAtEveryByte(int length) => CheckTruncation(s_pcap, length, pcap: true);

    [Theory]
    [MemberData(nameof(PcapNgPrefixes))]
    public void PcapNgTruncatedAtEveryByte(int length) => CheckTruncation(s_pcapNg, length, pcap: false);

    [Fact]
    public void TruncationIsFoundThroughAStreamThatReturnsFewBytesPerRead()
    {
        var cut = s_pcapNg.Records[3].Start + 30;
        using var reader = CaptureReader.Open(new TrickleStream(s_pcapNg.Bytes[..cut], 3));
        var status = Drain(reader, out var count);
        Assert.Equal((CaptureReadStatus.Error, 1), (status, count));
        Assert.Equal((CaptureErrorReason.TruncatedRecord, (long)s_pcapNg.Records[3].Start), (reader.Error!.Value.Reason, reader.Error.Value.Offset));
    }

    [Fact]
    public void BadMagicIsNamed()
    {
        var bytes = "GET / HTTP/1.1\r\n\r\n"u8.ToArray();
        var ex = Assert.Throws<CaptureFormatException>(() => CaptureReader.Open(new MemoryStream(bytes)));
        Assert.Equal((CaptureErrorReason.BadMagic, 0L, null), (ex.Reason, ex.Offset, ex.Format));
        Assert.Contains("at byte 0: expected a pcap magic number", ex.Message, StringComparison.Ordinal);
        Assert.Contains("found 0x47455420", ex.Message, StringComparison.Ordinal);
        Assert.StartsWith("failed to read capture file: ", ex.Message, StringComparison.Ordinal);

        Assert.False(CaptureReader.TryOpen(new MemoryStream(bytes), out var reader, out var error));
        Assert.Null(reader);
        Assert.Equal(CaptureErrorReason.BadMagic, error.Reason);
    }

    [Fact]
    public void PcapUnsupportedVersion()
    {
        var bytes = s_pcap.Patched16(4, 3);
        var ex = Assert.Throws<CaptureFormatException>(() => CaptureReader.Open(new MemoryStream(bytes)));
        Assert.Equal((CaptureErrorReason.UnsupportedVersion, 4L, CaptureFormat.Pcap), (ex.Reason, ex.Offset, ex.Format));
        Assert.Contains("expected pcap major version 2, found 3.4", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PcapCapturedLengthAboveTheLimit()
    {
        var second = s_pcap.Records[1].Start;
        var error = ReadExpectingError(s_pcap.Patched(second + 8, 300_000), goodPackets: 1);
        Assert.Equal((CaptureErrorReason.CapturedLengthTooLarge, second + 8L), (error.Reason, error.Offset));
        Assert.Equal($"at byte {second + 8}: captured length 300000 exceeds the maximum of 262144", error.Message);
    }

    [Fact]
    public void PcapCapturedLengthAboveSnapLengthIsALieUnlessLenient()
    {
        var capture = TestCapture.Pcap(snapLength: 48);
        // The writer cut the 50- and 61-byte packets to 48; make the third claim 61 captured bytes.
        var third = capture.Records[2].Start;
        var lying = capture.Patched(third + 8, 49);
        var error = ReadExpectingError(lying, goodPackets: 2);
        Assert.Equal((CaptureErrorReason.CapturedLengthExceedsSnapLength, third + 8L), (error.Reason, error.Offset));
        Assert.Contains("captured length 49 exceeds the file's snap length 48", error.Message, StringComparison.Ordinal);

        // Lenient readers accept it; the record then runs one byte past the file.
        using var lenient = CaptureReader.Open(new MemoryStream(lying), new CaptureReaderOptions { Strict = false });
        Assert.Equal(CaptureReadStatus.Error, Drain(lenient, out var count));
        Assert.Equal((2, CaptureErrorReason.TruncatedRecord), (count, lenient.Error!.Value.Reason));
    }

    [Fact]
    public void PcapCapturedLengthAboveOriginalLength()
    {
        var first = s_pcap.Records[0].Start;
        var error = ReadExpectingError(s_pcap.Patched(first + 12, 41), goodPackets: 0);
        Assert.Equal((CaptureErrorReason.CapturedLengthExceedsOriginalLength, first + 8L), (error.Reason, error.Offset));
        Assert.Contains("captured length 42 exceeds the original length 41", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PcapOriginalLengthBeyondInt()
    {
        var first = s_pcap.Records[0].Start;
        var error = ReadExpectingError(s_pcap.Patched(first + 12, 0x80000000), goodPackets: 0);
        Assert.Equal((CaptureErrorReason.OriginalLengthTooLarge, first + 12L), (error.Reason, error.Offset));
    }

    [Fact]
    public void PcapNgBadByteOrderMagic()
    {
        var ex = Assert.Throws<CaptureFormatException>(() => CaptureReader.Open(new MemoryStream(s_pcapNg.Patched(8, 0x11223344))));
        Assert.Equal((CaptureErrorReason.BadByteOrderMagic, 8L, CaptureFormat.PcapNg), (ex.Reason, ex.Offset, ex.Format));
        Assert.Contains("found 0x11223344", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PcapNgUnsupportedVersion()
    {
        var ex = Assert.Throws<CaptureFormatException>(() => CaptureReader.Open(new MemoryStream(s_pcapNg.Patched16(12, 2))));
        Assert.Equal((CaptureErrorReason.UnsupportedVersion, 12L), (ex.Reason, ex.Offset));
    }

    [Theory]
    [InlineData(7, "is not a multiple of 4")]
    [InlineData(8, "is less than the minimum of 32")]
    [InlineData(0x7FFFFFFC, "exceeds the maximum of 16777216")]
    public void PcapNgBadBlockLength(uint length, string expected)
    {
        var epb = s_pcapNg.Records[2].Start;
        var error = ReadExpectingError(s_pcapNg.Patched(epb + 4, length), goodPackets: 0);
        Assert.Equal((CaptureErrorReason.BadBlockLength, epb + 4L), (error.Reason, error.Offset));
        Assert.Equal($"at byte {epb + 4}: enhanced packet block total length {length} {expected}", error.Message);
    }

    [Fact]
    public void PcapNgTrailerMismatch()
    {
        var (start, end, _) = s_pcapNg.Records[3];
        var error = ReadExpectingError(s_pcapNg.Patched(end - 4, (uint)(end - start - 4)), goodPackets: 1);
        Assert.Equal((CaptureErrorReason.BlockLengthMismatch, end - 4L), (error.Reason, error.Offset));
        Assert.Equal($"at byte {end - 4}: expected pcapng block trailer length {end - start}, found {end - start - 4}", error.Message);
    }

    [Fact]
    public void PcapNgTrailerMismatchInASkippedBlock()
    {
        var (start, end, _) = s_pcapNg.Records[1]; // the name resolution block
        var error = ReadExpectingError(s_pcapNg.Patched(end - 4, 0), goodPackets: 0);
        Assert.Equal((CaptureErrorReason.BlockLengthMismatch, end - 4L), (error.Reason, error.Offset));
        Assert.Contains($"expected pcapng block trailer length {end - start}, found 0", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PcapNgSkippedBlockLongerThanTheFile()
    {
        var start = s_pcapNg.Records[1].Start;
        var error = ReadExpectingError(s_pcapNg.Patched(start + 4, 0x40000000), goodPackets: 0);
        Assert.Equal((CaptureErrorReason.TruncatedRecord, (long)start), (error.Reason, error.Offset));
        Assert.Contains("expected a 1073741824-byte name resolution block", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PcapNgCapturedLengthPastTheBlock()
    {
        var epb = s_pcapNg.Records[2].Start;
        var error = ReadExpectingError(s_pcapNg.Patched(epb + 20, 45), goodPackets: 0);
        Assert.Equal((CaptureErrorReason.CapturedLengthExceedsBlock, epb + 20L), (error.Reason, error.Offset));
    }

    [Fact]
    public void PcapNgCapturedLengthAboveTheConfiguredMaximum()
    {
        var epb = s_pcapNg.Records[3].Start;
        using var reader = CaptureReader.Open(new MemoryStream(s_pcapNg.Bytes), new CaptureReaderOptions { MaxCapturedLength = 44 });
        Assert.Equal(CaptureReadStatus.Error, Drain(reader, out var count));
        Assert.Equal((1, CaptureErrorReason.CapturedLengthTooLarge, epb + 20L), (count, reader.Error!.Value.Reason, reader.Error.Value.Offset));
    }

    [Fact]
    public void PcapNgCapturedLengthAbove256KiB()
    {
        var stream = new MemoryStream();
        int epb;
        using (var writer = new PcapNgWriter(stream, leaveOpen: true))
        {
            writer.AddInterface(LinkType.Ethernet);
            writer.WritePacket(0, 1, SampleFrames.EthernetUdp(100, 1));
            epb = (int)stream.Position;
            writer.WritePacket(0, 2, new byte[300_000]);
        }
        var error = ReadExpectingError(stream.ToArray(), goodPackets: 1);
        Assert.Equal((CaptureErrorReason.CapturedLengthTooLarge, epb + 20L), (error.Reason, error.Offset));
        Assert.Equal($"at byte {epb + 20}: captured length 300000 exceeds the maximum of 262144", error.Message);
    }

    [Fact]
    public void TryOpenReportsATruncatedHeaderWithoutThrowing()
    {
        Assert.False(CaptureReader.TryOpen(new MemoryStream(s_pcapNg.Bytes[..20]), out var reader, out var error));
        Assert.Null(reader);
        Assert.Equal(CaptureErrorReason.TruncatedHeader, error.Reason);
        Assert.False(CaptureReader.TryOpen(new MemoryStream([]), out _, out error));
        Assert.Equal("at byte 0: expected a 4-byte magic number, found 0 bytes (truncated file)", error.Message);
    }

    [Fact]
    public void PcapNgUnknownInterface()
    {
        var epb = s_pcapNg.Records[2].Start;
        var error = ReadExpectingError(s_pcapNg.Patched(epb + 8, 5), goodPackets: 0);
        Assert.Equal((CaptureErrorReason.UnknownInterface, epb + 8L), (error.Reason, error.Offset));
        Assert.Contains("names interface 5, but section 0 has described 1 interface(s)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PcapNgSimplePacketBeforeAnyInterface()
    {
        var stream = new MemoryStream();
        using (var writer = new PcapNgWriter(stream, leaveOpen: true))
        {
            writer.WriteBlock(0x00000003, [42, 0, 0, 0, .. SampleFrames.EthernetUdp(42, 0)]);
        }
        var error = ReadExpectingError(stream.ToArray(), goodPackets: 0);
        Assert.Equal(CaptureErrorReason.UnknownInterface, error.Reason);
    }

    [Fact]
    public void PcapNgOptionRunningPastTheBlock()
    {
        // The comment option of the second EPB sits right after its 45 (+3 padding) data bytes.
        var epb = s_pcapNg.Records[3].Start;
        var option = epb + 28 + 48;
        var error = ReadExpectingError(s_pcapNg.Patched(option, 1 | (200u << 16)), goodPackets: 1);
        Assert.Equal((CaptureErrorReason.BadOption, (long)option), (error.Reason, error.Offset));
        Assert.Contains("option 1 has length 200", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PcapNgUnsupportedTimestampResolution()
    {
        var stream = new MemoryStream();
        new PcapNgWriter(stream, leaveOpen: true).Dispose();
        // IDB by hand: Ethernet, snaplen 0, if_tsresol 0x7F (10^-127 s), no opt_endofopt.
        var bytes = stream.ToArray().Concat(new byte[]
        {
            1, 0, 0, 0, 28, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 0x7F, 0, 0, 0, 28, 0, 0, 0,
        }).ToArray();
        var error = ReadExpectingError(bytes, goodPackets: 0);
        Assert.Equal(CaptureErrorReason.UnsupportedTimestampResolution, error.Reason);
        Assert.Contains("10^-127 s", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PcapNgTimestampBeyond2262()
    {
        var epb = s_pcapNg.Records[2].Start;
        var bytes = s_pcapNg.Patched(epb + 12, 0xFFFFFFFF);
        var error = ReadExpectingError(bytes, goodPackets: 0);
        Assert.Equal((CaptureErrorReason.TimestampOutOfRange, epb + 12L), (error.Reason, error.Offset));
    }

    [Fact]
    public void ErrorsAreStickyAndTheThrowingApisAgree()
    {
        var epb = s_pcapNg.Records[3].Start;
        var bytes = s_pcapNg.Patched(epb + 4, 7);
        using var reader = CaptureReader.Open(new MemoryStream(bytes));
        Assert.True(reader.TryReadNext(out _));
        var first = Assert.Throws<CaptureFormatException>(() => reader.TryReadNext(out _));
        var second = Assert.Throws<CaptureFormatException>(() => reader.TryReadNext(out _));
        Assert.Equal(first.Error, second.Error);
        Assert.Equal(CaptureReadStatus.Error, reader.ReadNext(out _));
        Assert.Equal(first.Error, reader.Error);
        Assert.Equal(CaptureFormat.PcapNg, first.Format);
        Assert.StartsWith("failed to read pcapng file: at byte ", first.Message, StringComparison.Ordinal);

        var yielded = new List<CaptureRecord>();
        var thrown = Assert.Throws<CaptureFormatException>(() =>
        {
            foreach (var record in CaptureReader.Open(new MemoryStream(bytes)).ReadAll())
            {
                yielded.Add(record);
            }
        });
        Assert.Single(yielded);
        Assert.Equal(first.Error, thrown.Error);
    }

    private static TheoryData<int> Prefixes(TestCapture capture)
    {
        var data = new TheoryData<int>();
        for (var length = 0; length < capture.Bytes.Length; length++)
        {
            data.Add(length);
        }
        return data;
    }

    private static void CheckTruncation(TestCapture capture, int length, bool pcap)
    {
        var bytes = capture.Bytes[..length];
        if (length < capture.HeaderEnd)
        {
            var ex = Assert.Throws<CaptureFormatException>(() => CaptureReader.Open(new MemoryStream(bytes)));
            Assert.Equal(CaptureErrorReason.TruncatedHeader, ex.Reason);
            Assert.Contains("(truncated file)", ex.Message, StringComparison.Ordinal);
            return;
        }
        var completePackets = capture.Records.Count(r => r.IsPacket && r.End <= length);
        var broken = capture.Records.FirstOrDefault(r => r.Start < length && length < r.End);

        using var reader = CaptureReader.Open(new MemoryStream(bytes));
        var status = Drain(reader, out var count);
        Assert.Equal(completePackets, count);
        if (broken == default)
        {
            Assert.Equal(CaptureReadStatus.EndOfFile, status);
            return;
        }
        Assert.Equal(CaptureReadStatus.Error, status);
        var error = reader.Error!.Value;
        Assert.Equal(CaptureErrorReason.TruncatedRecord, error.Reason);
        // pcap names the record header, or the data once the header is whole; pcapng names the block.
        var expectedOffset = pcap && length - broken.Start >= 16 ? broken.Start + 16 : broken.Start;
        Assert.Equal(expectedOffset, error.Offset);
        Assert.StartsWith($"at byte {expectedOffset}: expected ", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("(truncated file)", error.Message, StringComparison.Ordinal);
    }

    private static CaptureError ReadExpectingError(byte[] bytes, int goodPackets)
    {
        using var reader = CaptureReader.Open(new MemoryStream(bytes));
        var status = Drain(reader, out var count);
        Assert.Equal(CaptureReadStatus.Error, status);
        Assert.Equal(goodPackets, count);
        return reader.Error!.Value;
    }

    private static CaptureReadStatus Drain(CaptureReader reader, out int count)
    {
        count = 0;
        CaptureReadStatus status;
        while ((status = reader.ReadNext(out _)) == CaptureReadStatus.Packet)
        {
            count++;
        }
        return status;
    }
}
