namespace Membrane.Capture;

/// <summary>How a <see cref="PcapWriter"/> lays out its file.</summary>
public sealed class PcapWriterOptions
{
    /// <summary>
    /// 10^-6 s (magic 0xA1B2C3D4, the default every tool reads) or 10^-9 s (magic 0xA1B23C4D).
    /// pcap has no other units.
    /// </summary>
    public TimestampResolution TimestampResolution { get; init; } = TimestampResolution.Microseconds;

    /// <summary>The snap length recorded in the header; longer packets are cut to it (default 262,144).</summary>
    public int SnapLength { get; init; } = 256 * 1024;

    /// <summary>Write big-endian (as a SPARC or s390x host would); readers must handle both.</summary>
    public bool BigEndian { get; init; }
}
