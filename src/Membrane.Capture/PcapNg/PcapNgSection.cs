namespace Membrane.Capture;

/// <summary>
/// One pcapng section, described by its section header block (draft-ietf-opsawg-pcapng §4.1).
/// A file may hold several, each with its own byte order and interfaces.
/// </summary>
public sealed class PcapNgSection
{
    /// <summary>0 for the first section of the file.</summary>
    public int Index { get; init; }

    /// <summary>The file offset of the section header block.</summary>
    public long Offset { get; init; }

    /// <summary>True when the section is written big-endian.</summary>
    public bool IsBigEndian { get; init; }

    /// <summary>The section's format version (1.0).</summary>
    public Version Version { get; init; } = new(1, 0);

    /// <summary><c>shb_hardware</c>.</summary>
    public string? Hardware { get; init; }

    /// <summary><c>shb_os</c>.</summary>
    public string? OperatingSystem { get; init; }

    /// <summary><c>shb_userappl</c>: the application that wrote the section.</summary>
    public string? Application { get; init; }

    /// <summary><c>opt_comment</c> values of the section header block.</summary>
    public IReadOnlyList<string> Comments { get; init; } = [];
}
