namespace Membrane.Capture;

/// <summary>
/// One packet as a reader yields it from <see cref="CaptureReader.TryReadNext"/>. It does not
/// own its bytes: <see cref="Data"/> points into the reader's reused buffer and is valid only
/// until the next read. Call <see cref="ToRecord"/> to keep a packet.
/// </summary>
public readonly struct CapturePacket
{
    internal CapturePacket(long number, long offset, CaptureInterface captureInterface, bool hasTimestamp,
        long timestampNanoseconds, int originalLength, ReadOnlyMemory<byte> data, IReadOnlyList<string> comments, uint flags = 0)
    {
        Flags = flags;
        Number = number;
        Offset = offset;
        Interface = captureInterface;
        HasTimestamp = hasTimestamp;
        TimestampNanoseconds = timestampNanoseconds;
        OriginalLength = originalLength;
        Data = data;
        Comments = comments;
    }

    /// <summary>The 1-based number of the packet in the file (tshark's <c>frame.number</c>).</summary>
    public long Number { get; }

    /// <summary>The byte offset in the file of the packet's record header or block.</summary>
    public long Offset { get; }

    /// <summary>The interface the packet was captured on.</summary>
    public CaptureInterface Interface { get; }

    /// <summary>The index of <see cref="Interface"/> in its section.</summary>
    public int InterfaceIndex => Interface.Index;

    /// <summary>The link-layer header type of <see cref="Data"/>.</summary>
    public LinkType LinkType => Interface.LinkType;

    /// <summary>False for a pcapng simple packet block, which carries no timestamp.</summary>
    public bool HasTimestamp { get; }

    /// <summary>Nanoseconds since 1970-01-01T00:00:00Z (0 when there is no timestamp).</summary>
    public long TimestampNanoseconds { get; }

    /// <summary>The timestamp, truncated to the 100 ns ticks a <see cref="DateTimeOffset"/> holds.</summary>
    public DateTimeOffset Timestamp => DateTimeOffset.UnixEpoch.AddTicks(TimestampNanoseconds / 100);

    /// <summary>The bytes captured (tshark's <c>frame.cap_len</c>).</summary>
    public int CapturedLength => Data.Length;

    /// <summary>The packet's length on the wire (tshark's <c>frame.len</c>).</summary>
    public int OriginalLength { get; }

    /// <summary>True when the capture kept fewer bytes than the wire carried (snap length).</summary>
    public bool IsTruncated => Data.Length < OriginalLength;

    /// <summary>
    /// pcapng <c>epb_flags</c> (§4.3.1): direction in bits 0–1, reception type in bits 2–4, FCS
    /// length in bits 5–8, link-layer errors in bits 16–31; 0 when absent.
    /// </summary>
    public uint Flags { get; }

    /// <summary>The direction bits of <see cref="Flags"/>.</summary>
    public PacketDirection Direction => (PacketDirection)(Flags & 0x3);

    /// <summary>pcapng <c>opt_comment</c> values; empty for pcap and for uncommented packets.</summary>
    public IReadOnlyList<string> Comments { get; }

    /// <summary>The captured bytes, valid until the reader reads again.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The captured bytes as a span, valid until the reader reads again.</summary>
    public ReadOnlySpan<byte> Span => Data.Span;

    /// <summary>Copies the packet into a <see cref="CaptureRecord"/> that owns its bytes.</summary>
    public CaptureRecord ToRecord() => new()
    {
        Number = Number,
        Offset = Offset,
        Interface = Interface,
        HasTimestamp = HasTimestamp,
        TimestampNanoseconds = TimestampNanoseconds,
        OriginalLength = OriginalLength,
        Comments = Comments,
        Flags = Flags,
        Data = Data.ToArray(),
    };
}
