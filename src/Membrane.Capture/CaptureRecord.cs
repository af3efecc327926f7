namespace Membrane.Capture;

/// <summary>
/// A packet that owns its bytes: what <see cref="CaptureReader.ReadAll"/> yields, convenient for
/// code off the hot path. The fields mean what they mean on <see cref="CapturePacket"/>.
/// </summary>
public sealed record CaptureRecord
{
    /// <summary>The 1-based number of the packet in the file.</summary>
    public long Number { get; init; }

    /// <summary>The byte offset of the packet's record header or block.</summary>
    public long Offset { get; init; }

    /// <summary>The interface the packet was captured on.</summary>
    public required CaptureInterface Interface { get; init; }

    /// <summary>The index of <see cref="Interface"/> in its section.</summary>
    public int InterfaceIndex => Interface.Index;

    /// <summary>The link-layer header type of <see cref="Data"/>.</summary>
    public LinkType LinkType => Interface.LinkType;

    /// <summary>False for a pcapng simple packet block.</summary>
    public bool HasTimestamp { get; init; } = true;

    /// <summary>Nanoseconds since 1970-01-01T00:00:00Z.</summary>
    public long TimestampNanoseconds { get; init; }

    /// <summary>The timestamp, truncated to 100 ns ticks.</summary>
    public DateTimeOffset Timestamp => DateTimeOffset.UnixEpoch.AddTicks(TimestampNanoseconds / 100);

    /// <summary>The bytes captured.</summary>
    public int CapturedLength => Data.Length;

    /// <summary>The packet's length on the wire.</summary>
    public int OriginalLength { get; init; }

    /// <summary>True when fewer bytes were captured than the wire carried.</summary>
    public bool IsTruncated => Data.Length < OriginalLength;

    /// <summary>pcapng <c>epb_flags</c>; 0 when absent.</summary>
    public uint Flags { get; init; }

    /// <summary>The direction bits of <see cref="Flags"/>.</summary>
    public PacketDirection Direction => (PacketDirection)(Flags & 0x3);

    /// <summary>pcapng <c>opt_comment</c> values.</summary>
    public IReadOnlyList<string> Comments { get; init; } = [];

    /// <summary>The captured bytes.</summary>
    public ReadOnlyMemory<byte> Data { get; init; }
}
