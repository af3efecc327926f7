namespace Membrane.Capture;

/// <summary>What a <see cref="PcapNgWriter"/> puts in a section header block.</summary>
public sealed class PcapNgWriterOptions
{
    /// <summary>Write the section big-endian; readers must handle both orders.</summary>
    public bool BigEndian { get; init; }

    /// <summary><c>shb_userappl</c> (default "Membrane"); null leaves it out.</summary>
    public string? Application { get; init; } = "Membrane";

    /// <summary><c>shb_os</c>; null leaves it out.</summary>
    public string? OperatingSystem { get; init; }

    /// <summary><c>shb_hardware</c>; null leaves it out.</summary>
    public string? Hardware { get; init; }

    /// <summary><c>opt_comment</c> values for the section header block.</summary>
    public IReadOnlyList<string> Comments { get; init; } = [];
}
