using System.Buffers.Binary;
using Membrane.Capture.Internal;

namespace Membrane.Capture;

/// <summary>The outcome of <see cref="CaptureReader.ReadNext"/>.</summary>
public enum CaptureReadStatus
{
    /// <summary>A packet was read.</summary>
    Packet,

    /// <summary>The file ended cleanly at a record boundary.</summary>
    EndOfFile,

    /// <summary>The file is corrupt or truncated here; <see cref="CaptureReader.Error"/> says how.</summary>
    Error,
}

/// <summary>
/// A streaming reader of pcap and pcapng files. <see cref="Open(Stream, CaptureReaderOptions?, bool)"/>
/// detects the format from the magic number. Three ways to read, from fastest to easiest:
/// <list type="bullet">
/// <item><see cref="ReadNext"/>: never throws on bad data; returns a status and sets <see cref="Error"/>.</item>
/// <item><see cref="TryReadNext"/>: false at the end; throws <see cref="CaptureFormatException"/> on bad data.</item>
/// <item><see cref="ReadAll"/>: an enumerable of owned <see cref="CaptureRecord"/>s.</item>
/// </list>
/// The first two reuse one internal buffer and allocate nothing per packet (except comment
/// strings). All three return every good packet before reporting the first problem.
/// </summary>
public abstract class CaptureReader : IDisposable
{
    private readonly ByteSource _source;
    private CaptureError? _error;
    private bool _endOfFile;
    private bool _disposed;
    private long _packetCount;

    private protected CaptureReader(ByteSource source, CaptureReaderOptions options)
    {
        _source = source;
        Options = options;
    }

    /// <summary>pcap or pcapng.</summary>
    public abstract CaptureFormat Format { get; }

    /// <summary>
    /// The interfaces known so far: pcap's single one, or those of the current pcapng section
    /// (a new section header block starts a new list).
    /// </summary>
    public abstract IReadOnlyList<CaptureInterface> Interfaces { get; }

    /// <summary>True when the file (for pcapng: the current section) is big-endian.</summary>
    public abstract bool IsBigEndian { get; }

    /// <summary>The problem that stopped the reader, once <see cref="ReadNext"/> returned <see cref="CaptureReadStatus.Error"/>.</summary>
    public CaptureError? Error => _error;

    /// <summary>The file offset of the next unread byte.</summary>
    public long Position => _source.Position;

    /// <summary>How many packets have been read so far.</summary>
    public long PacketCount => _packetCount;

    private protected ByteSource Source => _source;

    private protected CaptureReaderOptions Options { get; }

    /// <summary>
    /// Opens a capture from <paramref name="stream"/> (which need not be seekable), reading the
    /// magic number and file or section header.
    /// </summary>
    /// <exception cref="CaptureFormatException">The stream holds neither format, or its header is corrupt.</exception>
    public static CaptureReader Open(Stream stream, CaptureReaderOptions? options = null, bool leaveOpen = false)
    {
        if (!TryOpenCore(stream, options, leaveOpen, out var reader, out var format, out var error))
        {
            ThrowHelper.ThrowFormat(format, error);
        }
        return reader!;
    }

    /// <summary>Opens the capture file at <paramref name="path"/>.</summary>
    /// <exception cref="CaptureFormatException">The file holds neither format, or its header is corrupt.</exception>
    public static CaptureReader Open(string path, CaptureReaderOptions? options = null)
    {
        // ReadWrite sharing: a capture that tcpdump or dumpcap is still writing can be read.
        // Buffer size 1 turns off FileStream's buffer; ByteSource reads in 64 KiB chunks itself.
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.SequentialScan);
        try
        {
            return Open(stream, options, leaveOpen: false);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens a capture without throwing on bad data. On false, <paramref name="error"/> says
    /// why, and the stream has been disposed unless <paramref name="leaveOpen"/>.
    /// </summary>
    public static bool TryOpen(Stream stream, out CaptureReader? reader, out CaptureError error,
        CaptureReaderOptions? options = null, bool leaveOpen = false) =>
        TryOpenCore(stream, options, leaveOpen, out reader, out _, out error);

    private static bool TryOpenCore(Stream stream, CaptureReaderOptions? options, bool leaveOpen,
        out CaptureReader? reader, out CaptureFormat? format, out CaptureError error)
    {
        options ??= CaptureReaderOptions.Default;
        format = null;
        var source = new ByteSource(stream, leaveOpen);
        reader = null;
        var available = source.Fill(4);
        if (available < 4)
        {
            error = CaptureError.At(CaptureErrorReason.TruncatedHeader, available,
                FormattableString.Invariant($"expected a 4-byte magic number, found {available} bytes (truncated file)"));
            source.Dispose();
            return false;
        }
        var magic = BinaryPrimitives.ReadUInt32LittleEndian(source.Peek(4));
        CaptureReader? candidate = null;
        switch (magic)
        {
            case PcapFormat.MagicMicroseconds:
            case PcapFormat.MagicNanoseconds:
            case 0xD4C3B2A1: // the same two magics written big-endian
            case 0x4D3CB2A1:
                candidate = new PcapReader(source, options);
                break;
            case PcapNgFormat.SectionHeaderBlock: // 0x0A0D0D0A reads the same in both orders
                candidate = new PcapNgReader(source, options);
                break;
        }
        if (candidate is null)
        {
            error = CaptureError.At(CaptureErrorReason.BadMagic, 0, FormattableString.Invariant(
                $"expected a pcap magic number (0xA1B2C3D4, 0xA1B23C4D or either swapped) or a pcapng section header block (0x0A0D0D0A), found 0x{BinaryPrimitives.ReadUInt32BigEndian(source.Peek(4)):X8}"));
            source.Dispose();
            return false;
        }
        format = candidate.Format;
        if (!candidate.TryReadHeader(out error))
        {
            candidate.Dispose();
            return false;
        }
        reader = candidate;
        return true;
    }

    /// <summary>Reads every packet of the file at <paramref name="path"/>, disposing the reader at the end.</summary>
    /// <exception cref="CaptureFormatException">After the last good packet, when the file is corrupt.</exception>
    public static IEnumerable<CaptureRecord> ReadFile(string path, CaptureReaderOptions? options = null)
    {
        using var reader = Open(path, options);
        foreach (var record in reader.ReadAll())
        {
            yield return record;
        }
    }

    /// <summary>
    /// Reads the next packet. Never throws for bad data: returns <see cref="CaptureReadStatus.Error"/>
    /// and sets <see cref="Error"/> (and keeps returning it). <paramref name="packet"/>'s bytes
    /// are valid until the next read.
    /// </summary>
    public CaptureReadStatus ReadNext(out CapturePacket packet)
    {
        if (_disposed)
        {
            ThrowHelper.ThrowObjectDisposed(this);
        }
        packet = default;
        if (_error is not null)
        {
            return CaptureReadStatus.Error;
        }
        if (_endOfFile)
        {
            return CaptureReadStatus.EndOfFile;
        }
        var status = ReadCore(_packetCount + 1, out packet, out var error);
        switch (status)
        {
            case CaptureReadStatus.Packet:
                _packetCount++;
                break;
            case CaptureReadStatus.EndOfFile:
                _endOfFile = true;
                break;
            default:
                _error = error;
                break;
        }
        return status;
    }

    /// <summary>
    /// Reads the next packet; false at the clean end of the file. <paramref name="packet"/>'s
    /// bytes are valid until the next read.
    /// </summary>
    /// <exception cref="CaptureFormatException">The file is corrupt or truncated here.</exception>
    public bool TryReadNext(out CapturePacket packet)
    {
        var status = ReadNext(out packet);
        if (status == CaptureReadStatus.Error)
        {
            ThrowHelper.ThrowFormat(Format, _error!.Value);
        }
        return status == CaptureReadStatus.Packet;
    }

    /// <summary>Reads the remaining packets as owned records.</summary>
    /// <exception cref="CaptureFormatException">After the last good packet, when the file is corrupt.</exception>
    public IEnumerable<CaptureRecord> ReadAll()
    {
        while (TryReadNext(out var packet))
        {
            yield return packet.ToRecord();
        }
    }

    /// <summary>Disposes the underlying stream unless the reader was opened with leaveOpen.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the stream.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (!_disposed && disposing)
        {
            _source.Dispose();
        }
        _disposed = true;
    }

    /// <summary>Reads and checks the file header (pcap) or first section header block (pcapng).</summary>
    private protected abstract bool TryReadHeader(out CaptureError error);

    /// <summary>Reads the next packet, skipping non-packet records; never throws for bad data.</summary>
    private protected abstract CaptureReadStatus ReadCore(long number, out CapturePacket packet, out CaptureError error);
}
