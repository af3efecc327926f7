using System.Buffers.Binary;
using Membrane.Capture.Internal;

namespace Membrane.Capture;

/// <summary>
/// Reads the classic pcap format (pcap-savefile(5); draft-ietf-opsawg-pcap): a 24-byte file
/// header, then records of a 16-byte header and the captured bytes. Both byte orders, micro-
/// and nanosecond magics. Created by <see cref="CaptureReader.Open(Stream, CaptureReaderOptions?, bool)"/>.
/// </summary>
public sealed class PcapReader : CaptureReader
{
    private CaptureInterface _interface = new();
    private CaptureInterface[] _interfaces = [];
    private bool _bigEndian;
    private uint _nanosecondsPerFractionUnit = 1000;

    internal PcapReader(ByteSource source, CaptureReaderOptions options)
        : base(source, options)
    {
    }

    /// <inheritdoc/>
    public override CaptureFormat Format => CaptureFormat.Pcap;

    /// <inheritdoc/>
    public override IReadOnlyList<CaptureInterface> Interfaces => _interfaces;

    /// <inheritdoc/>
    public override bool IsBigEndian => _bigEndian;

    /// <summary>The file header's version (2.4 in every file written since 1998).</summary>
    public Version Version { get; private set; } = new(2, 4);

    /// <summary>10^-6 s (magic 0xA1B2C3D4) or 10^-9 s (magic 0xA1B23C4D).</summary>
    public TimestampResolution TimestampResolution => _interface.TimestampResolution;

    /// <summary>The file header's snap length (0: none given).</summary>
    public int SnapLength => _interface.SnapLength;

    /// <summary>The file header's link type (the low 16 bits of its LinkType field).</summary>
    public LinkType LinkType => _interface.LinkType;

    private protected override bool TryReadHeader(out CaptureError error)
    {
        var available = Source.Fill(PcapFormat.FileHeaderLength);
        if (available < PcapFormat.FileHeaderLength)
        {
            error = CaptureError.At(CaptureErrorReason.TruncatedHeader, available, FormattableString.Invariant(
                $"expected a {PcapFormat.FileHeaderLength}-byte pcap file header, found {available} bytes (truncated file)"));
            return false;
        }
        var header = Source.Peek(PcapFormat.FileHeaderLength);
        var magic = BinaryPrimitives.ReadUInt32LittleEndian(header);
        // The magic is written in the writer's byte order; reading it little-endian gives the
        // canonical value exactly when the file is little-endian.
        _bigEndian = magic is not (PcapFormat.MagicMicroseconds or PcapFormat.MagicNanoseconds);
        var canonical = _bigEndian ? BinaryPrimitives.ReverseEndianness(magic) : magic;
        var major = Endian.U16(header[4..], _bigEndian);
        var minor = Endian.U16(header[6..], _bigEndian);
        if (major != PcapFormat.VersionMajor)
        {
            error = CaptureError.At(CaptureErrorReason.UnsupportedVersion, 4, FormattableString.Invariant(
                $"expected pcap major version 2, found {major}.{minor}"));
            return false;
        }
        Version = new Version(major, minor);
        var snapLength = Endian.U32(header[16..], _bigEndian);
        // The LinkType field's upper bits carry FCS information (draft-ietf-opsawg-pcap §4);
        // the link type proper is the low 16 bits.
        var linkType = (LinkType)(Endian.U32(header[20..], _bigEndian) & 0xFFFF);
        _interface = new CaptureInterface
        {
            Index = 0,
            LinkType = linkType,
            SnapLength = snapLength > int.MaxValue ? 0 : (int)snapLength,
            TimestampResolution = canonical == PcapFormat.MagicNanoseconds ? TimestampResolution.Nanoseconds : TimestampResolution.Microseconds,
        };
        _interfaces = [_interface];
        _nanosecondsPerFractionUnit = canonical == PcapFormat.MagicNanoseconds ? 1u : 1000u;
        Source.Advance(PcapFormat.FileHeaderLength);
        error = default;
        return true;
    }

    private protected override CaptureReadStatus ReadCore(long number, out CapturePacket packet, out CaptureError error)
    {
        packet = default;
        error = default;
        var offset = Source.Position;
        var available = Source.Fill(PcapFormat.RecordHeaderLength);
        if (available == 0)
        {
            return CaptureReadStatus.EndOfFile;
        }
        if (available < PcapFormat.RecordHeaderLength)
        {
            error = CaptureError.At(CaptureErrorReason.TruncatedRecord, offset, FormattableString.Invariant(
                $"expected a {PcapFormat.RecordHeaderLength}-byte pcap record header, found {available} bytes (truncated file)"));
            return CaptureReadStatus.Error;
        }
        var header = Source.Peek(PcapFormat.RecordHeaderLength);
        var seconds = Endian.U32(header, _bigEndian);
        var fraction = Endian.U32(header[4..], _bigEndian);
        var capturedLength = Endian.U32(header[8..], _bigEndian);
        var originalLength = Endian.U32(header[12..], _bigEndian);

        if (capturedLength > (uint)Options.MaxCapturedLength)
        {
            error = CaptureError.At(CaptureErrorReason.CapturedLengthTooLarge, offset + 8, FormattableString.Invariant(
                $"captured length {capturedLength} exceeds the maximum of {Options.MaxCapturedLength}"));
            return CaptureReadStatus.Error;
        }
        if (originalLength > int.MaxValue)
        {
            error = CaptureError.At(CaptureErrorReason.OriginalLengthTooLarge, offset + 12, FormattableString.Invariant(
                $"original length {originalLength} exceeds {int.MaxValue}"));
            return CaptureReadStatus.Error;
        }
        if (Options.Strict)
        {
            if (_interface.SnapLength != 0 && capturedLength > (uint)_interface.SnapLength)
            {
                error = CaptureError.At(CaptureErrorReason.CapturedLengthExceedsSnapLength, offset + 8, FormattableString.Invariant(
                    $"captured length {capturedLength} exceeds the file's snap length {_interface.SnapLength}"));
                return CaptureReadStatus.Error;
            }
            if (capturedLength > originalLength)
            {
                error = CaptureError.At(CaptureErrorReason.CapturedLengthExceedsOriginalLength, offset + 8, FormattableString.Invariant(
                    $"captured length {capturedLength} exceeds the original length {originalLength}"));
                return CaptureReadStatus.Error;
            }
        }

        var recordLength = PcapFormat.RecordHeaderLength + (int)capturedLength;
        available = Source.Fill(recordLength);
        if (available < recordLength)
        {
            error = CaptureError.At(CaptureErrorReason.TruncatedRecord, offset + PcapFormat.RecordHeaderLength, FormattableString.Invariant(
                $"expected {capturedLength} bytes of packet data (the record's captured length), found {available - PcapFormat.RecordHeaderLength} (truncated file)"));
            return CaptureReadStatus.Error;
        }

        // The fraction is in the magic's unit; a value of a second or more is out of spec but
        // harmless, so it is added rather than rejected (libpcap does the same).
        var nanoseconds = seconds * 1_000_000_000L + (long)fraction * _nanosecondsPerFractionUnit;
        var data = Source.PeekMemory(PcapFormat.RecordHeaderLength, (int)capturedLength);
        Source.Advance(recordLength);
        packet = new CapturePacket(number, offset, _interface, hasTimestamp: true, nanoseconds, (int)originalLength, data, []);
        return CaptureReadStatus.Packet;
    }
}
