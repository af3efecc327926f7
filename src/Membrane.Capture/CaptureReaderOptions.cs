namespace Membrane.Capture;

/// <summary>Limits and strictness of a <see cref="CaptureReader"/>.</summary>
public sealed class CaptureReaderOptions
{
    /// <summary>The defaults: 256 KiB packets, 16 MiB blocks, strict length checks.</summary>
    public static CaptureReaderOptions Default { get; } = new();

    /// <summary>
    /// The largest captured length accepted (default 262,144 = 256 KiB, libpcap's
    /// MAXIMUM_SNAPLEN). A larger one is almost always a corrupt length field, and refusing it
    /// keeps a bad file from making the reader allocate gigabytes.
    /// </summary>
    public int MaxCapturedLength { get; init; } = 256 * 1024;

    /// <summary>
    /// The largest pcapng block the reader buffers whole (section headers, interface
    /// descriptions and packets with their options; default 16 MiB). Blocks the reader skips
    /// (name resolution, statistics, unknown) may be larger: they are streamed past.
    /// </summary>
    public int MaxBlockLength { get; init; } = 16 * 1024 * 1024;

    /// <summary>
    /// When true (the default) a captured length above the interface's non-zero snap length or
    /// above the packet's original length is an error: such a record is lying about something.
    /// Turn it off for files from writers known to get these fields wrong.
    /// </summary>
    public bool Strict { get; init; } = true;
}
