using Membrane.Capture.Internal;

namespace Membrane.Capture;

// The parsers of the blocks the reader interprets (draft-ietf-opsawg-pcapng §4). Each one
// is called with the 8-byte block header buffered and the block's file offset, checks and
// buffers the block, and consumes it only when it is sound.
public sealed partial class PcapNgReader
{
    /// <summary>Section header block (§4.1): byte-order magic, version, section length, options.</summary>
    private bool TryReadSectionHeader(long offset, bool first, out CaptureError error)
    {
        var available = Source.Fill(12);
        if (available < 12)
        {
            error = CaptureError.At(first ? CaptureErrorReason.TruncatedHeader : CaptureErrorReason.TruncatedRecord, offset, FormattableString.Invariant(
                $"expected a section header block of at least 12 bytes, found {available} bytes (truncated file)"));
            return false;
        }
        var byteOrderMagic = Endian.U32(Source.Peek(12)[8..], bigEndian: false);
        if (byteOrderMagic == PcapNgFormat.ByteOrderMagic)
        {
            _bigEndian = false;
        }
        else if (byteOrderMagic == System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(PcapNgFormat.ByteOrderMagic))
        {
            _bigEndian = true;
        }
        else
        {
            error = CaptureError.At(CaptureErrorReason.BadByteOrderMagic, offset + 8, FormattableString.Invariant(
                $"expected the section header's byte-order magic 0x1A2B3C4D in either byte order, found 0x{byteOrderMagic:X8}"));
            return false;
        }
        if (!TryBufferBlock(offset, PcapNgFormat.SectionHeaderBlock, PcapNgFormat.SectionHeaderMinLength, out var length, out error))
        {
            if (first && error.Reason == CaptureErrorReason.TruncatedRecord)
            {
                error = error with { Reason = CaptureErrorReason.TruncatedHeader };
            }
            return false;
        }
        var block = Source.Peek(length);
        var major = Endian.U16(block[12..], _bigEndian);
        var minor = Endian.U16(block[14..], _bigEndian);
        if (major != PcapNgFormat.VersionMajor)
        {
            error = CaptureError.At(CaptureErrorReason.UnsupportedVersion, offset + 12, FormattableString.Invariant(
                $"expected pcapng major version 1, found {major}.{minor}"));
            return false;
        }
        string? hardware = null, os = null, application = null;
        _comments.Clear();
        var options = new PcapNgOptionReader(block[24..(length - 4)], offset + 24, _bigEndian);
        while (options.TryRead(out error))
        {
            switch (options.Code)
            {
                case PcapNgFormat.OptComment:
                    _comments.Add(options.ValueAsString());
                    break;
                case PcapNgFormat.ShbHardware:
                    hardware = options.ValueAsString();
                    break;
                case PcapNgFormat.ShbOs:
                    os = options.ValueAsString();
                    break;
                case PcapNgFormat.ShbUserApplication:
                    application = options.ValueAsString();
                    break;
            }
        }
        if (error.Reason != CaptureErrorReason.None)
        {
            return false;
        }
        // A new section starts a new interface list: interface ids are per section (§4.2).
        _interfaces.Clear();
        _section = new PcapNgSection
        {
            Index = _sectionCount++,
            Offset = offset,
            IsBigEndian = _bigEndian,
            Version = new Version(major, minor),
            Hardware = hardware,
            OperatingSystem = os,
            Application = application,
            Comments = TakeComments(),
        };
        Source.Advance(length);
        return true;
    }

    /// <summary>Interface description block (§4.2): link type, snap length, options.</summary>
    private bool TryReadInterfaceDescription(long offset, out CaptureError error)
    {
        if (!TryBufferBlock(offset, PcapNgFormat.InterfaceDescriptionBlock, PcapNgFormat.InterfaceDescriptionMinLength, out var length, out error))
        {
            return false;
        }
        var block = Source.Peek(length);
        var linkType = (LinkType)Endian.U16(block[8..], _bigEndian);
        var snapLength = Endian.U32(block[12..], _bigEndian);
        var resolution = TimestampResolution.Microseconds;
        long tsOffset = 0;
        string? name = null, description = null, os = null, filter = null;
        _comments.Clear();
        var options = new PcapNgOptionReader(block[16..(length - 4)], offset + 16, _bigEndian);
        while (options.TryRead(out error))
        {
            switch (options.Code)
            {
                case PcapNgFormat.OptComment:
                    _comments.Add(options.ValueAsString());
                    break;
                case PcapNgFormat.IfName:
                    name = options.ValueAsString();
                    break;
                case PcapNgFormat.IfDescription:
                    description = options.ValueAsString();
                    break;
                case PcapNgFormat.IfOs:
                    os = options.ValueAsString();
                    break;
                case PcapNgFormat.IfFilter when options.Value.Length > 0 && options.Value[0] == 0:
                    // Filter kind 0 is a libpcap filter string; other kinds (BPF bytecode) are not text.
                    filter = System.Text.Encoding.UTF8.GetString(options.Value[1..]).TrimEnd('\0');
                    break;
                case PcapNgFormat.IfTsResol:
                    if (options.Value.Length != 1)
                    {
                        error = CaptureError.At(CaptureErrorReason.BadOption, options.Offset, FormattableString.Invariant(
                            $"expected if_tsresol of length 1, found length {options.Value.Length}"));
                        return false;
                    }
                    resolution = new TimestampResolution(options.Value[0]);
                    if (!resolution.IsSupported)
                    {
                        error = CaptureError.At(CaptureErrorReason.UnsupportedTimestampResolution, options.Offset + 4, FormattableString.Invariant(
                            $"if_tsresol 0x{options.Value[0]:X2} ({resolution}) is finer than the 64-bit timestamp can count"));
                        return false;
                    }
                    break;
                case PcapNgFormat.IfTsOffset:
                    if (options.Value.Length != 8)
                    {
                        error = CaptureError.At(CaptureErrorReason.BadOption, options.Offset, FormattableString.Invariant(
                            $"expected if_tsoffset of length 8, found length {options.Value.Length}"));
                        return false;
                    }
                    tsOffset = Endian.I64(options.Value, _bigEndian);
                    break;
            }
        }
        if (error.Reason != CaptureErrorReason.None)
        {
            return false;
        }
        _interfaces.Add(new CaptureInterface
        {
            Index = _interfaces.Count,
            SectionIndex = _section.Index,
            LinkType = linkType,
            // 0 means "no limit" (§4.2); a value beyond int is no limit in practice either.
            SnapLength = snapLength > int.MaxValue ? 0 : (int)snapLength,
            TimestampResolution = resolution,
            TimestampOffsetSeconds = tsOffset,
            Name = name,
            Description = description,
            OperatingSystem = os,
            Filter = filter,
            Comments = TakeComments(),
        });
        Source.Advance(length);
        return true;
    }

    /// <summary>
    /// Enhanced packet block (§4.3) and the obsolete packet block (Appendix A), which differ
    /// only in a 16-bit interface id followed by a 16-bit drop count.
    /// </summary>
    private bool TryReadEnhancedPacket(long offset, uint type, long number, out CapturePacket packet, out CaptureError error)
    {
        packet = default;
        if (!TryBufferBlock(offset, type, PcapNgFormat.EnhancedPacketMinLength, out var length, out error))
        {
            return false;
        }
        var block = Source.Peek(length);
        var interfaceId = type == PcapNgFormat.PacketBlock ? Endian.U16(block[8..], _bigEndian) : Endian.U32(block[8..], _bigEndian);
        if (!TryGetInterface(offset + 8, type, interfaceId, out var captureInterface, out error))
        {
            return false;
        }
        var units = ((ulong)Endian.U32(block[12..], _bigEndian) << 32) | Endian.U32(block[16..], _bigEndian);
        var capturedLength = Endian.U32(block[20..], _bigEndian);
        var originalLength = Endian.U32(block[24..], _bigEndian);
        var room = (uint)(length - PcapNgFormat.EnhancedPacketMinLength);
        if (capturedLength > room)
        {
            error = CaptureError.At(CaptureErrorReason.CapturedLengthExceedsBlock, offset + 20, FormattableString.Invariant(
                $"captured length {capturedLength} runs past the end of the {length}-byte {PcapNgFormat.BlockName(type)} (room for {room})"));
            return false;
        }
        if (!TryCheckLengths(offset + 20, offset + 24, capturedLength, originalLength, captureInterface, out error))
        {
            return false;
        }
        if (!TryConvertTimestamp(offset + 12, units, captureInterface, out var nanoseconds, out error))
        {
            return false;
        }
        var optionsStart = 28 + PcapNgFormat.Pad4((int)capturedLength);
        _comments.Clear();
        uint flags = 0;
        var options = new PcapNgOptionReader(block[optionsStart..(length - 4)], offset + optionsStart, _bigEndian);
        while (options.TryRead(out error))
        {
            // epb_hash, epb_dropcount, epb_packetid, epb_queue, epb_verdict and custom options
            // (§3.5.1) are valid and ignored; comments and flags are surfaced. The obsolete
            // packet block's code 2 is pack_flags, with the same layout (Appendix A).
            if (options.Code == PcapNgFormat.OptComment)
            {
                _comments.Add(options.ValueAsString());
            }
            else if (options.Code == PcapNgFormat.EpbFlags && options.Value.Length == 4)
            {
                flags = Endian.U32(options.Value, _bigEndian);
            }
        }
        if (error.Reason != CaptureErrorReason.None)
        {
            return false;
        }
        var data = Source.PeekMemory(28, (int)capturedLength);
        Source.Advance(length);
        packet = new CapturePacket(number, offset, captureInterface, hasTimestamp: true, nanoseconds, (int)originalLength, data, TakeComments(), flags);
        return true;
    }

    /// <summary>
    /// Simple packet block (§4.4): interface 0, no timestamp; the captured length is the
    /// original length cut to the interface's snap length and to the block.
    /// </summary>
    private bool TryReadSimplePacket(long offset, long number, out CapturePacket packet, out CaptureError error)
    {
        packet = default;
        if (!TryBufferBlock(offset, PcapNgFormat.SimplePacketBlock, PcapNgFormat.SimplePacketMinLength, out var length, out error))
        {
            return false;
        }
        if (!TryGetInterface(offset, PcapNgFormat.SimplePacketBlock, 0, out var captureInterface, out error))
        {
            return false;
        }
        var block = Source.Peek(length);
        var originalLength = Endian.U32(block[8..], _bigEndian);
        var capturedLength = Math.Min(originalLength, (uint)(length - PcapNgFormat.SimplePacketMinLength));
        if (captureInterface.SnapLength != 0)
        {
            capturedLength = Math.Min(capturedLength, (uint)captureInterface.SnapLength);
        }
        if (!TryCheckLengths(offset + 8, offset + 8, capturedLength, originalLength, captureInterface, out error))
        {
            return false;
        }
        var data = Source.PeekMemory(12, (int)capturedLength);
        Source.Advance(length);
        packet = new CapturePacket(number, offset, captureInterface, hasTimestamp: false, 0, (int)originalLength, data, []);
        return true;
    }

    private bool TryGetInterface(long fieldOffset, uint type, uint interfaceId, out CaptureInterface captureInterface, out CaptureError error)
    {
        error = default;
        if (interfaceId < (uint)_interfaces.Count)
        {
            captureInterface = _interfaces[(int)interfaceId];
            return true;
        }
        captureInterface = null!;
        error = CaptureError.At(CaptureErrorReason.UnknownInterface, fieldOffset, FormattableString.Invariant(
            $"{PcapNgFormat.BlockName(type)} names interface {interfaceId}, but section {_section.Index} has described {_interfaces.Count} interface(s)"));
        return false;
    }

    private bool TryCheckLengths(long capturedOffset, long originalOffset, uint capturedLength, uint originalLength,
        CaptureInterface captureInterface, out CaptureError error)
    {
        error = default;
        if (capturedLength > (uint)Options.MaxCapturedLength)
        {
            error = CaptureError.At(CaptureErrorReason.CapturedLengthTooLarge, capturedOffset, FormattableString.Invariant(
                $"captured length {capturedLength} exceeds the maximum of {Options.MaxCapturedLength}"));
            return false;
        }
        if (originalLength > int.MaxValue)
        {
            error = CaptureError.At(CaptureErrorReason.OriginalLengthTooLarge, originalOffset, FormattableString.Invariant(
                $"original length {originalLength} exceeds {int.MaxValue}"));
            return false;
        }
        if (!Options.Strict)
        {
            return true;
        }
        if (captureInterface.SnapLength != 0 && capturedLength > (uint)captureInterface.SnapLength)
        {
            error = CaptureError.At(CaptureErrorReason.CapturedLengthExceedsSnapLength, capturedOffset, FormattableString.Invariant(
                $"captured length {capturedLength} exceeds interface {captureInterface.Index}'s snap length {captureInterface.SnapLength}"));
            return false;
        }
        if (capturedLength > originalLength)
        {
            error = CaptureError.At(CaptureErrorReason.CapturedLengthExceedsOriginalLength, capturedOffset, FormattableString.Invariant(
                $"captured length {capturedLength} exceeds the original length {originalLength}"));
            return false;
        }
        return true;
    }

    private static bool TryConvertTimestamp(long fieldOffset, ulong units, CaptureInterface captureInterface, out long nanoseconds, out CaptureError error)
    {
        error = default;
        if (captureInterface.TimestampResolution.TryToNanoseconds(units, out nanoseconds))
        {
            var offsetNanoseconds = (Int128)captureInterface.TimestampOffsetSeconds * 1_000_000_000;
            var total = nanoseconds + offsetNanoseconds;
            if (total >= long.MinValue && total <= long.MaxValue)
            {
                nanoseconds = (long)total;
                return true;
            }
        }
        error = CaptureError.At(CaptureErrorReason.TimestampOutOfRange, fieldOffset, FormattableString.Invariant(
            $"timestamp {units} in units of {captureInterface.TimestampResolution} (offset {captureInterface.TimestampOffsetSeconds} s) is beyond the year 2262"));
        return false;
    }

    private IReadOnlyList<string> TakeComments()
    {
        if (_comments.Count == 0)
        {
            return [];
        }
        var comments = _comments.ToArray();
        _comments.Clear();
        return comments;
    }
}
