namespace Membrane.Capture;

/// <summary>
/// An interface a capture was taken on. A pcapng file describes each one with an interface
/// description block (draft-ietf-opsawg-pcapng §4.2); a pcap file has exactly one, made from
/// its file header. Readers create these; writers accept them to describe new interfaces.
/// </summary>
public sealed class CaptureInterface
{
    /// <summary>The interface's index within its section (the interface id packets name).</summary>
    public int Index { get; init; }

    /// <summary>The pcapng section the interface belongs to (0 for pcap and for a first section).</summary>
    public int SectionIndex { get; init; }

    /// <summary>The link-layer header type of the interface's packets.</summary>
    public LinkType LinkType { get; init; } = LinkType.Ethernet;

    /// <summary>The most bytes captured per packet; 0 means no limit.</summary>
    public int SnapLength { get; init; }

    /// <summary>The unit of the interface's timestamps (default 10^-6 s).</summary>
    public TimestampResolution TimestampResolution { get; init; } = TimestampResolution.Microseconds;

    /// <summary>pcapng <c>if_tsoffset</c>: seconds added to every timestamp of the interface.</summary>
    public long TimestampOffsetSeconds { get; init; }

    /// <summary>pcapng <c>if_name</c>, e.g. "eth0".</summary>
    public string? Name { get; init; }

    /// <summary>pcapng <c>if_description</c>.</summary>
    public string? Description { get; init; }

    /// <summary>pcapng <c>if_os</c>.</summary>
    public string? OperatingSystem { get; init; }

    /// <summary>pcapng <c>if_filter</c> as text (the first byte, the filter kind, removed), when it is a string filter.</summary>
    public string? Filter { get; init; }

    /// <summary>pcapng <c>opt_comment</c> values of the interface description block.</summary>
    public IReadOnlyList<string> Comments { get; init; } = [];

    /// <inheritdoc/>
    public override string ToString() => $"#{Index} {Name ?? "(unnamed)"} {LinkType} snaplen {SnapLength} {TimestampResolution}";
}
