namespace Membrane.Capture;

/// <summary>Why a capture file could not be read further.</summary>
public enum CaptureErrorReason
{
    /// <summary>No error.</summary>
    None = 0,

    /// <summary>The file starts with neither a pcap magic number nor a pcapng section header block.</summary>
    BadMagic,

    /// <summary>A pcapng byte-order magic is neither 0x1A2B3C4D nor its byte swap.</summary>
    BadByteOrderMagic,

    /// <summary>A pcap major version other than 2 or a pcapng major version other than 1.</summary>
    UnsupportedVersion,

    /// <summary>The file ends inside its pcap file header or the first section header block.</summary>
    TruncatedHeader,

    /// <summary>The file ends inside a pcap record or a pcapng block.</summary>
    TruncatedRecord,

    /// <summary>A pcapng block total length is not a multiple of 4, below the block's minimum or above the limit.</summary>
    BadBlockLength,

    /// <summary>A pcapng block's trailing total length differs from its leading one.</summary>
    BlockLengthMismatch,

    /// <summary>A captured length above <see cref="CaptureReaderOptions.MaxCapturedLength"/>.</summary>
    CapturedLengthTooLarge,

    /// <summary>A captured length above the interface's snap length.</summary>
    CapturedLengthExceedsSnapLength,

    /// <summary>A captured length above the packet's original length.</summary>
    CapturedLengthExceedsOriginalLength,

    /// <summary>A pcapng packet's captured length runs past the end of its block.</summary>
    CapturedLengthExceedsBlock,

    /// <summary>An original length that does not fit a 32-bit signed integer.</summary>
    OriginalLengthTooLarge,

    /// <summary>A pcapng option header or value runs past the end of its block.</summary>
    BadOption,

    /// <summary>A pcapng packet names an interface its section has not described.</summary>
    UnknownInterface,

    /// <summary>An <c>if_tsresol</c> whose unit cannot be represented (beyond 10^-19 or 2^-63 s).</summary>
    UnsupportedTimestampResolution,

    /// <summary>A timestamp that does not fit 64-bit nanoseconds since 1970 (after the year 2262).</summary>
    TimestampOutOfRange,
}

/// <summary>
/// What stopped a reader: a reason code, the byte offset in the file where the reader found
/// the problem, and a message "at byte N: …" saying what it expected and what it found.
/// </summary>
/// <param name="Reason">The kind of problem.</param>
/// <param name="Offset">The byte offset of the field that is wrong or of the missing bytes.</param>
/// <param name="Message">"at byte 1234: block total length 7 is not a multiple of 4".</param>
public readonly record struct CaptureError(CaptureErrorReason Reason, long Offset, string Message)
{
    internal static CaptureError At(CaptureErrorReason reason, long offset, string what) =>
        new(reason, offset, FormattableString.Invariant($"at byte {offset}: {what}"));

    /// <inheritdoc/>
    public override string ToString() => $"{Reason}: {Message}";
}
