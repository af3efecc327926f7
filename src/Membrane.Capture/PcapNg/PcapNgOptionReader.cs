using System.Text;
using Membrane.Capture.Internal;

namespace Membrane.Capture;

/// <summary>
/// Walks the options of one pcapng block (draft-ietf-opsawg-pcapng §3.5): each is a 16-bit
/// code, a 16-bit length and a value padded to 32 bits; opt_endofopt or the end of the span
/// ends the list. Never throws: a header or value that runs past the block is an error with
/// its file offset.
/// </summary>
internal ref struct PcapNgOptionReader
{
    private readonly ReadOnlySpan<byte> _options;
    private readonly long _fileOffset;
    private readonly bool _bigEndian;
    private int _position;

    /// <param name="options">The block's options region (after the fixed fields, before the trailer).</param>
    /// <param name="fileOffset">The file offset of <paramref name="options"/>[0], for error messages.</param>
    /// <param name="bigEndian">The section's byte order.</param>
    public PcapNgOptionReader(ReadOnlySpan<byte> options, long fileOffset, bool bigEndian)
    {
        _options = options;
        _fileOffset = fileOffset;
        _bigEndian = bigEndian;
    }

    /// <summary>The current option's code.</summary>
    public ushort Code { get; private set; }

    /// <summary>The current option's value, without padding.</summary>
    public ReadOnlySpan<byte> Value { get; private set; }

    /// <summary>The file offset of the current option's header.</summary>
    public long Offset { get; private set; }

    /// <summary>
    /// Moves to the next option. Returns false at the end of the list (error.Reason is None)
    /// or when the list is malformed (error says where).
    /// </summary>
    public bool TryRead(out CaptureError error)
    {
        error = default;
        var remaining = _options.Length - _position;
        if (remaining == 0)
        {
            return false;
        }
        Offset = _fileOffset + _position;
        if (remaining < 4)
        {
            error = CaptureError.At(CaptureErrorReason.BadOption, Offset, FormattableString.Invariant(
                $"expected a 4-byte option header, found {remaining} bytes before the end of the block"));
            return false;
        }
        Code = Endian.U16(_options[_position..], _bigEndian);
        var length = Endian.U16(_options[(_position + 2)..], _bigEndian);
        if (Code == PcapNgFormat.OptEndOfOptions)
        {
            _position = _options.Length;
            return false;
        }
        if (length > remaining - 4)
        {
            error = CaptureError.At(CaptureErrorReason.BadOption, Offset, FormattableString.Invariant(
                $"option {Code} has length {length}, but only {remaining - 4} bytes remain in the block"));
            return false;
        }
        Value = _options.Slice(_position + 4, length);
        // The last option's padding may be missing in files from sloppy writers; do not fail on it.
        _position = Math.Min(_options.Length, _position + 4 + PcapNgFormat.Pad4(length));
        return true;
    }

    /// <summary>The current value as UTF-8 text, with trailing NULs (from C writers) removed.</summary>
    public readonly string ValueAsString()
    {
        var value = Value;
        while (value.Length > 0 && value[^1] == 0)
        {
            value = value[..^1];
        }
        return Encoding.UTF8.GetString(value);
    }
}
