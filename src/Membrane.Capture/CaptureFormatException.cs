namespace Membrane.Capture;

/// <summary>
/// A capture file is corrupt or truncated. Thrown by the throwing read APIs after every good
/// packet before the problem has been returned; <see cref="Error"/> carries the reason code
/// and byte offset.
/// </summary>
public sealed class CaptureFormatException : IOException
{
    /// <summary>Creates the exception for <paramref name="error"/> found in a file of <paramref name="format"/>.</summary>
    public CaptureFormatException(CaptureFormat? format, CaptureError error)
        : base($"failed to read {FormatName(format)}: {error.Message}")
    {
        Format = format;
        Error = error;
    }

    /// <summary>The file's format, when the magic number was recognised.</summary>
    public CaptureFormat? Format { get; }

    /// <summary>The reason code, offset and message.</summary>
    public CaptureError Error { get; }

    /// <summary>Shorthand for <c>Error.Reason</c>.</summary>
    public CaptureErrorReason Reason => Error.Reason;

    /// <summary>Shorthand for <c>Error.Offset</c>.</summary>
    public long Offset => Error.Offset;

    private static string FormatName(CaptureFormat? format) => format switch
    {
        CaptureFormat.Pcap => "pcap file",
        CaptureFormat.PcapNg => "pcapng file",
        _ => "capture file",
    };
}
