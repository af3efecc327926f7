using Membrane.Capture.Internal;

namespace Membrane.Capture;

/// <summary>
/// Writes the classic pcap format (pcap-savefile(5); draft-ietf-opsawg-pcap) to a stream: the
/// 24-byte file header at construction, then one record per <see cref="WritePacket(long, ReadOnlySpan{byte}, int?)"/>.
/// Packets longer than the snap length are cut to it and keep their original length.
/// Not thread-safe. <see cref="Dispose"/> flushes and closes the stream unless leaveOpen.
/// </summary>
public sealed class PcapWriter : IDisposable
{
    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly bool _bigEndian;
    private readonly bool _nanoseconds;
    private bool _disposed;

    /// <summary>Writes the file header for <paramref name="linkType"/> to <paramref name="stream"/>.</summary>
    /// <exception cref="ArgumentException">The options ask for a unit other than 10^-6 or 10^-9 s, or a snap length ≤ 0.</exception>
    public PcapWriter(Stream stream, LinkType linkType, PcapWriterOptions? options = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= new PcapWriterOptions();
        if (options.TimestampResolution != TimestampResolution.Microseconds && options.TimestampResolution != TimestampResolution.Nanoseconds)
        {
            throw new ArgumentException($"failed to create pcap writer: pcap timestamps are in 10^-6 or 10^-9 s, not {options.TimestampResolution}", nameof(options));
        }
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.SnapLength);
        _stream = stream;
        _leaveOpen = leaveOpen;
        _bigEndian = options.BigEndian;
        _nanoseconds = options.TimestampResolution == TimestampResolution.Nanoseconds;
        LinkType = linkType;
        SnapLength = options.SnapLength;
        TimestampResolution = options.TimestampResolution;

        Span<byte> header = stackalloc byte[PcapFormat.FileHeaderLength];
        Endian.Write32(header, _nanoseconds ? PcapFormat.MagicNanoseconds : PcapFormat.MagicMicroseconds, _bigEndian);
        Endian.Write16(header[4..], PcapFormat.VersionMajor, _bigEndian);
        Endian.Write16(header[6..], PcapFormat.VersionMinor, _bigEndian);
        Endian.Write32(header[8..], 0, _bigEndian);  // thiszone: always 0 (timestamps are UTC)
        Endian.Write32(header[12..], 0, _bigEndian); // sigfigs: always 0
        Endian.Write32(header[16..], (uint)SnapLength, _bigEndian);
        Endian.Write32(header[20..], (uint)linkType, _bigEndian);
        _stream.Write(header);
    }

    /// <summary>The file's link type.</summary>
    public LinkType LinkType { get; }

    /// <summary>The file's snap length.</summary>
    public int SnapLength { get; }

    /// <summary>10^-6 or 10^-9 s.</summary>
    public TimestampResolution TimestampResolution { get; }

    /// <summary>How many packets have been written.</summary>
    public long PacketCount { get; private set; }

    /// <summary>
    /// Writes one packet. <paramref name="originalLength"/> defaults to the length of
    /// <paramref name="data"/>; data beyond <see cref="SnapLength"/> is cut off.
    /// </summary>
    /// <param name="timestampNanoseconds">Nanoseconds since 1970-01-01T00:00:00Z, up to the year 2106.</param>
    /// <param name="data">The packet, starting with the link-layer header.</param>
    /// <param name="originalLength">The length on the wire, at least <paramref name="data"/>'s length.</param>
    public void WritePacket(long timestampNanoseconds, ReadOnlySpan<byte> data, int? originalLength = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var wireLength = originalLength ?? data.Length;
        if (wireLength < data.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(originalLength), wireLength,
                $"failed to write pcap record: original length {wireLength} is less than the {data.Length} bytes given");
        }
        if (timestampNanoseconds < 0 || timestampNanoseconds / 1_000_000_000 > uint.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(timestampNanoseconds), timestampNanoseconds,
                "failed to write pcap record: pcap timestamps are unsigned 32-bit seconds since 1970");
        }
        if (data.Length > SnapLength)
        {
            data = data[..SnapLength];
        }
        var seconds = (uint)(timestampNanoseconds / 1_000_000_000);
        var fraction = (uint)(timestampNanoseconds % 1_000_000_000);
        if (!_nanoseconds)
        {
            fraction /= 1000;
        }
        Span<byte> header = stackalloc byte[PcapFormat.RecordHeaderLength];
        Endian.Write32(header, seconds, _bigEndian);
        Endian.Write32(header[4..], fraction, _bigEndian);
        Endian.Write32(header[8..], (uint)data.Length, _bigEndian);
        Endian.Write32(header[12..], (uint)wireLength, _bigEndian);
        _stream.Write(header);
        _stream.Write(data);
        PacketCount++;
    }

    /// <summary>Writes one packet stamped with <paramref name="timestamp"/> (100 ns ticks).</summary>
    public void WritePacket(DateTimeOffset timestamp, ReadOnlySpan<byte> data, int? originalLength = null) =>
        WritePacket(CaptureTime.ToUnixNanoseconds(timestamp), data, originalLength);

    /// <summary>Copies a packet read from another capture (its timestamp, bytes and original length).</summary>
    public void WritePacket(in CapturePacket packet) =>
        WritePacket(packet.TimestampNanoseconds, packet.Span, packet.OriginalLength);

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
}
