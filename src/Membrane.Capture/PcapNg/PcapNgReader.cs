using Membrane.Capture.Internal;

namespace Membrane.Capture;

/// <summary>
/// Reads pcapng (draft-ietf-opsawg-pcapng): sections in either byte order, interfaces with
/// their options, enhanced, simple and (obsolete) packet blocks, packet comments. Name
/// resolution, statistics, decryption-secrets, custom and unknown blocks are checked for a
/// sound length and skipped. Created by <see cref="CaptureReader.Open(Stream, CaptureReaderOptions?, bool)"/>.
/// </summary>
public sealed partial class PcapNgReader : CaptureReader
{
    private readonly List<CaptureInterface> _interfaces = [];
    private readonly List<string> _comments = [];
    private PcapNgSection _section = new();
    private int _sectionCount;
    private bool _bigEndian;

    internal PcapNgReader(ByteSource source, CaptureReaderOptions options)
        : base(source, options)
    {
    }

    /// <inheritdoc/>
    public override CaptureFormat Format => CaptureFormat.PcapNg;

    /// <inheritdoc/>
    public override IReadOnlyList<CaptureInterface> Interfaces => _interfaces;

    /// <inheritdoc/>
    public override bool IsBigEndian => _bigEndian;

    /// <summary>The current section (the one whose header block was read last).</summary>
    public PcapNgSection Section => _section;

    private protected override bool TryReadHeader(out CaptureError error) =>
        TryReadSectionHeader(Source.Position, first: true, out error);

    private protected override CaptureReadStatus ReadCore(long number, out CapturePacket packet, out CaptureError error)
    {
        packet = default;
        while (true)
        {
            var offset = Source.Position;
            var available = Source.Fill(PcapNgFormat.BlockHeaderLength);
            if (available == 0)
            {
                error = default;
                return CaptureReadStatus.EndOfFile;
            }
            if (available < PcapNgFormat.BlockHeaderLength)
            {
                error = CaptureError.At(CaptureErrorReason.TruncatedRecord, offset, FormattableString.Invariant(
                    $"expected an 8-byte pcapng block header, found {available} bytes (truncated file)"));
                return CaptureReadStatus.Error;
            }
            var type = Endian.U32(Source.Peek(4), IsBigEndian);
            bool ok;
            switch (type)
            {
                case PcapNgFormat.SectionHeaderBlock:
                    ok = TryReadSectionHeader(offset, first: false, out error);
                    break;
                case PcapNgFormat.InterfaceDescriptionBlock:
                    ok = TryReadInterfaceDescription(offset, out error);
                    break;
                case PcapNgFormat.EnhancedPacketBlock:
                case PcapNgFormat.PacketBlock:
                    if (!TryReadEnhancedPacket(offset, type, number, out packet, out error))
                    {
                        return CaptureReadStatus.Error;
                    }
                    return CaptureReadStatus.Packet;
                case PcapNgFormat.SimplePacketBlock:
                    if (!TryReadSimplePacket(offset, number, out packet, out error))
                    {
                        return CaptureReadStatus.Error;
                    }
                    return CaptureReadStatus.Packet;
                default:
                    ok = TrySkipBlock(offset, type, out error);
                    break;
            }
            if (!ok)
            {
                return CaptureReadStatus.Error;
            }
        }
    }

    /// <summary>
    /// Checks a block's total length and buffers the whole block: the length is a multiple of
    /// 4, at least the block's minimum, at most <see cref="CaptureReaderOptions.MaxBlockLength"/>,
    /// present in full, and repeated by the trailer (§3.1).
    /// </summary>
    private bool TryBufferBlock(long offset, uint type, int minLength, out int length, out CaptureError error)
    {
        var total = Endian.U32(Source.Peek(8)[4..], IsBigEndian);
        length = 0;
        if (!TryCheckLength(offset, type, total, minLength, out error))
        {
            return false;
        }
        if (total > (uint)Options.MaxBlockLength)
        {
            error = CaptureError.At(CaptureErrorReason.BadBlockLength, offset + 4, FormattableString.Invariant(
                $"{PcapNgFormat.BlockName(type)} total length {total} exceeds the maximum of {Options.MaxBlockLength}"));
            return false;
        }
        length = (int)total;
        var available = Source.Fill(length);
        if (available < length)
        {
            error = CaptureError.At(CaptureErrorReason.TruncatedRecord, offset, FormattableString.Invariant(
                $"expected a {length}-byte {PcapNgFormat.BlockName(type)}, found {available} bytes (truncated file)"));
            return false;
        }
        return TryCheckTrailer(offset, length, Endian.U32(Source.Peek(length)[(length - 4)..], IsBigEndian), out error);
    }

    private static bool TryCheckLength(long offset, uint type, uint total, int minLength, out CaptureError error)
    {
        error = default;
        if (total % 4 != 0)
        {
            error = CaptureError.At(CaptureErrorReason.BadBlockLength, offset + 4, FormattableString.Invariant(
                $"{PcapNgFormat.BlockName(type)} total length {total} is not a multiple of 4"));
            return false;
        }
        if (total < (uint)minLength)
        {
            error = CaptureError.At(CaptureErrorReason.BadBlockLength, offset + 4, FormattableString.Invariant(
                $"{PcapNgFormat.BlockName(type)} total length {total} is less than the minimum of {minLength}"));
            return false;
        }
        return true;
    }

    private static bool TryCheckTrailer(long offset, int length, uint trailer, out CaptureError error)
    {
        error = default;
        if (trailer != (uint)length)
        {
            error = CaptureError.At(CaptureErrorReason.BlockLengthMismatch, offset + length - 4, FormattableString.Invariant(
                $"expected pcapng block trailer length {length}, found {trailer}"));
            return false;
        }
        return true;
    }

    /// <summary>
    /// Skips a block the reader does not interpret. Small ones are buffered (so the trailer is
    /// checked in one place); larger ones are streamed past without buffering.
    /// </summary>
    private bool TrySkipBlock(long offset, uint type, out CaptureError error)
    {
        var total = Endian.U32(Source.Peek(8)[4..], IsBigEndian);
        if (total <= (uint)Options.MaxBlockLength)
        {
            if (!TryBufferBlock(offset, type, PcapNgFormat.MinBlockLength, out var length, out error))
            {
                return false;
            }
            Source.Advance(length);
            return true;
        }
        if (!TryCheckLength(offset, type, total, PcapNgFormat.MinBlockLength, out error))
        {
            return false;
        }
        Source.Advance(PcapNgFormat.BlockHeaderLength);
        var body = (long)total - PcapNgFormat.MinBlockLength;
        var skipped = Source.Skip(body);
        var available = skipped == body ? Source.Fill(4) : 0;
        if (available < 4)
        {
            error = CaptureError.At(CaptureErrorReason.TruncatedRecord, offset, FormattableString.Invariant(
                $"expected a {total}-byte {PcapNgFormat.BlockName(type)}, found {PcapNgFormat.BlockHeaderLength + skipped + available} bytes (truncated file)"));
            return false;
        }
        var trailer = Endian.U32(Source.Peek(4), IsBigEndian);
        if (trailer != total)
        {
            error = CaptureError.At(CaptureErrorReason.BlockLengthMismatch, offset + total - 4, FormattableString.Invariant(
                $"expected pcapng block trailer length {total}, found {trailer}"));
            return false;
        }
        Source.Advance(4);
        return true;
    }
}
