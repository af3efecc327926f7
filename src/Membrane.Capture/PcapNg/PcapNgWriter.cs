namespace Membrane.Capture;

/// <summary>
/// Writes pcapng (draft-ietf-opsawg-pcapng) to a stream: a section header block at
/// construction (and at each <see cref="StartSection"/>), an interface description block per
/// <see cref="AddInterface(CaptureInterface)"/>, then enhanced packet blocks with optional
/// comments, in the unit of each interface's <c>if_tsresol</c>. Packets longer than their
/// interface's snap length are cut to it. Not thread-safe. <see cref="Dispose"/> flushes and
/// closes the stream unless leaveOpen.
/// </summary>
public sealed class PcapNgWriter : IDisposable
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly PcapNgBlockBuilder _builder = new();
    private readonly List<CaptureInterface> _interfaces = [];
    private int _sectionIndex = -1;
    private bool _disposed;

    /// <summary>Writes the first section header block to <paramref name="stream"/>.</summary>
    public PcapNgWriter(Stream stream, PcapNgWriterOptions? options = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
        _leaveOpen = leaveOpen;
        StartSection(options);
    }

    /// <summary>The interfaces of the current section, in id order.</summary>
    public IReadOnlyList<CaptureInterface> Interfaces => _interfaces;

    /// <summary>True when the current section is big-endian.</summary>
    public bool IsBigEndian => _builder.BigEndian;

    /// <summary>How many packets have been written (all sections).</summary>
    public long PacketCount { get; private set; }

    /// <summary>
    /// Starts a new section: writes a section header block. The new section has no interfaces
    /// until <see cref="AddInterface(CaptureInterface)"/> is called again (interface ids are per section).
    /// </summary>
    public void StartSection(PcapNgWriterOptions? options = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        options ??= new PcapNgWriterOptions();
        _builder.BigEndian = options.BigEndian;
        _builder.Begin(PcapNgFormat.SectionHeaderBlock);
        _builder.U32(PcapNgFormat.ByteOrderMagic);
        _builder.U16(PcapNgFormat.VersionMajor);
        _builder.U16(PcapNgFormat.VersionMinor);
        _builder.I64(-1); // section length: -1 = not given, so the writer can stream (§4.1)
        var optionsStart = _builder.Position;
        foreach (var comment in options.Comments)
        {
            _builder.Option(PcapNgFormat.OptComment, comment);
        }
        _builder.Option(PcapNgFormat.ShbHardware, options.Hardware);
        _builder.Option(PcapNgFormat.ShbOs, options.OperatingSystem);
        _builder.Option(PcapNgFormat.ShbUserApplication, options.Application);
        _builder.EndOfOptions(optionsStart);
        _builder.End();
        _stream.Write(_builder.Block);
        _interfaces.Clear();
        _sectionIndex++;
    }

    /// <summary>Describes a new interface and returns its id (0, 1, … within the section).</summary>
    /// <param name="linkType">The link-layer header type of its packets.</param>
    /// <param name="snapLength">The most bytes kept per packet; 0 for no limit.</param>
    /// <param name="name"><c>if_name</c>, e.g. "eth0".</param>
    /// <param name="timestampResolution"><c>if_tsresol</c>; default 10^-6 s.</param>
    /// <param name="description"><c>if_description</c>.</param>
    public int AddInterface(LinkType linkType, int snapLength = 0, string? name = null,
        TimestampResolution? timestampResolution = null, string? description = null) =>
        AddInterface(new CaptureInterface
        {
            LinkType = linkType,
            SnapLength = snapLength,
            Name = name,
            Description = description,
            TimestampResolution = timestampResolution ?? TimestampResolution.Microseconds,
        });

    /// <summary>
    /// Describes a new interface from <paramref name="description"/> (its link type, snap length,
    /// name, description, OS, filter, comments, timestamp resolution and offset; its index is
    /// ignored) and returns the id assigned.
    /// </summary>
    public int AddInterface(CaptureInterface description)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(description);
        ArgumentOutOfRangeException.ThrowIfNegative(description.SnapLength);
        if (!description.TimestampResolution.IsSupported)
        {
            throw new ArgumentException($"failed to add pcapng interface: timestamp resolution {description.TimestampResolution} is not supported", nameof(description));
        }
        _builder.Begin(PcapNgFormat.InterfaceDescriptionBlock);
        _builder.U16((ushort)description.LinkType);
        _builder.U16(0); // reserved
        _builder.U32((uint)description.SnapLength);
        var optionsStart = _builder.Position;
        foreach (var comment in description.Comments)
        {
            _builder.Option(PcapNgFormat.OptComment, comment);
        }
        _builder.Option(PcapNgFormat.IfName, description.Name);
        _builder.Option(PcapNgFormat.IfDescription, description.Description);
        if (description.Filter is not null)
        {
            // Filter kind 0: a libpcap filter expression (§4.2, if_filter).
            _builder.Option(PcapNgFormat.IfFilter, [0, .. System.Text.Encoding.UTF8.GetBytes(description.Filter)]);
        }
        _builder.Option(PcapNgFormat.IfOs, description.OperatingSystem);
        if (description.TimestampResolution != TimestampResolution.Microseconds)
        {
            _builder.Option(PcapNgFormat.IfTsResol, description.TimestampResolution.Value);
        }
        if (description.TimestampOffsetSeconds != 0)
        {
            _builder.Option(PcapNgFormat.IfTsOffset, description.TimestampOffsetSeconds);
        }
        _builder.EndOfOptions(optionsStart);
        _builder.End();
        _stream.Write(_builder.Block);
        var added = new CaptureInterface
        {
            Index = _interfaces.Count,
            SectionIndex = _sectionIndex,
            LinkType = description.LinkType,
            SnapLength = description.SnapLength,
            TimestampResolution = description.TimestampResolution,
            TimestampOffsetSeconds = description.TimestampOffsetSeconds,
            Name = description.Name,
            Description = description.Description,
            OperatingSystem = description.OperatingSystem,
            Filter = description.Filter,
            Comments = description.Comments,
        };
        _interfaces.Add(added);
        return added.Index;
    }

    /// <summary>Writes an enhanced packet block with at most one comment.</summary>
    public void WritePacket(int interfaceId, long timestampNanoseconds, ReadOnlySpan<byte> data, int? originalLength = null, string? comment = null) =>
        WritePacket(interfaceId, timestampNanoseconds, data, originalLength, comment is null ? [] : [comment]);

    /// <summary>Writes an enhanced packet block stamped with <paramref name="timestamp"/>.</summary>
    public void WritePacket(int interfaceId, DateTimeOffset timestamp, ReadOnlySpan<byte> data, int? originalLength = null, string? comment = null) =>
        WritePacket(interfaceId, CaptureTime.ToUnixNanoseconds(timestamp), data, originalLength, comment);

    /// <summary>
    /// Writes an enhanced packet block (§4.3): the timestamp in the interface's unit, the data
    /// cut to its snap length, and one <c>opt_comment</c> per comment.
    /// </summary>
    /// <param name="interfaceId">An id returned by <see cref="AddInterface(CaptureInterface)"/> in this section.</param>
    /// <param name="timestampNanoseconds">Nanoseconds since 1970-01-01T00:00:00Z.</param>
    /// <param name="data">The packet, starting with the interface's link-layer header.</param>
    /// <param name="originalLength">The length on the wire (default: data's length).</param>
    /// <param name="comments">Comments to attach (each at most 65,535 UTF-8 bytes).</param>
    public void WritePacket(int interfaceId, long timestampNanoseconds, ReadOnlySpan<byte> data, int? originalLength, IReadOnlyList<string>? comments) =>
        WritePacket(interfaceId, timestampNanoseconds, data, originalLength, comments, flags: 0);

    /// <summary>
    /// Writes an enhanced packet block with comments and, when <paramref name="flags"/> is not
    /// 0, an <c>epb_flags</c> option (§4.3.1; e.g. <c>(uint)PacketDirection.Outbound</c>).
    /// </summary>
    public void WritePacket(int interfaceId, long timestampNanoseconds, ReadOnlySpan<byte> data, int? originalLength, IReadOnlyList<string>? comments, uint flags)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var captureInterface = GetInterface(interfaceId);
        var wireLength = CheckOriginalLength(data, originalLength);
        if (captureInterface.SnapLength != 0 && data.Length > captureInterface.SnapLength)
        {
            data = data[..captureInterface.SnapLength];
        }
        var relative = timestampNanoseconds - (captureInterface.TimestampOffsetSeconds * 1_000_000_000);
        if (!captureInterface.TimestampResolution.TryFromNanoseconds(relative, out var units))
        {
            throw new ArgumentOutOfRangeException(nameof(timestampNanoseconds), timestampNanoseconds,
                $"failed to write pcapng packet: the timestamp does not fit 64 bits of {captureInterface.TimestampResolution} after 1970");
        }
        _builder.Begin(PcapNgFormat.EnhancedPacketBlock);
        _builder.U32((uint)interfaceId);
        _builder.U32((uint)(units >> 32));
        _builder.U32((uint)units);
        _builder.U32((uint)data.Length);
        _builder.U32((uint)wireLength);
        _builder.Padded(data);
        var optionsStart = _builder.Position;
        if (comments is not null)
        {
            foreach (var comment in comments)
            {
                _builder.Option(PcapNgFormat.OptComment, comment);
            }
        }
        if (flags != 0)
        {
            Span<byte> value = stackalloc byte[4];
            Internal.Endian.Write32(value, flags, _builder.BigEndian);
            _builder.Option(PcapNgFormat.EpbFlags, value);
        }
        _builder.EndOfOptions(optionsStart);
        _builder.End();
        _stream.Write(_builder.Block);
        PacketCount++;
    }

    /// <summary>Copies a packet read from another capture onto interface <paramref name="interfaceId"/>, comments and flags included.</summary>
    public void WritePacket(int interfaceId, in CapturePacket packet) =>
        WritePacket(interfaceId, packet.TimestampNanoseconds, packet.Span, packet.OriginalLength, packet.Comments, packet.Flags);

    /// <summary>
    /// Writes a simple packet block (§4.4): interface 0, no timestamp, no options. The data
    /// is cut to interface 0's snap length.
    /// </summary>
    public void WriteSimplePacket(ReadOnlySpan<byte> data, int? originalLength = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var captureInterface = GetInterface(0);
        var wireLength = CheckOriginalLength(data, originalLength);
        if (captureInterface.SnapLength != 0 && data.Length > captureInterface.SnapLength)
        {
            data = data[..captureInterface.SnapLength];
        }
        else if (data.Length < wireLength)
        {
            // A simple packet block has no captured-length field: readers take min(original
            // length, snap length), so a shorter capture is only expressible through the snap length.
            throw new ArgumentException("failed to write pcapng simple packet: a simple packet block cannot hold a truncated packet unless the snap length truncated it", nameof(data));
        }
        _builder.Begin(PcapNgFormat.SimplePacketBlock);
        _builder.U32((uint)wireLength);
        _builder.Padded(data);
        _builder.End();
        _stream.Write(_builder.Block);
        PacketCount++;
    }

    /// <summary>
    /// Writes a block of any type with <paramref name="body"/> (padded to 32 bits) between the
    /// header and the trailer, in the section's byte order: name resolution, statistics or
    /// custom blocks, which readers that do not know them skip.
    /// </summary>
    public void WriteBlock(uint blockType, ReadOnlySpan<byte> body)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (blockType is PcapNgFormat.SectionHeaderBlock or PcapNgFormat.InterfaceDescriptionBlock)
        {
            throw new ArgumentException("failed to write pcapng block: use StartSection or AddInterface for section headers and interfaces", nameof(blockType));
        }
        _builder.Begin(blockType);
        _builder.Padded(body);
        _builder.End();
        _stream.Write(_builder.Block);
    }

    /// <summary>Flushes the stream.</summary>
    public void Flush()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _stream.Flush();
    }

    /// <summary>Flushes, and closes the stream unless the writer was created with leaveOpen.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _stream.Flush();
        if (!_leaveOpen)
        {
            _stream.Dispose();
        }
    }

    private CaptureInterface GetInterface(int interfaceId)
    {
        if ((uint)interfaceId >= (uint)_interfaces.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(interfaceId), interfaceId,
                $"failed to write pcapng packet: the section has {_interfaces.Count} interface(s); call AddInterface first");
        }
        return _interfaces[interfaceId];
    }

    private static int CheckOriginalLength(ReadOnlySpan<byte> data, int? originalLength)
    {
        var wireLength = originalLength ?? data.Length;
        if (wireLength < data.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(originalLength), wireLength,
                $"failed to write pcapng packet: original length {wireLength} is less than the {data.Length} bytes given");
        }
        return wireLength;
    }
}
