using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>
/// The seed frame (DESIGN.md): an 8-byte header <c>!BBH I</c> in network byte order — version (high nibble,
/// always 1) and type (low nibble), flags, total length (header included), id — then the payload. Its
/// checksum is RFC 1071 over the whole frame; it is computed, not stored in the header. Every record the
/// datapath writes to the event ring buffer starts with this header.
/// </summary>
public readonly ref struct SeedFrame
{
    /// <summary>The header's length: 8 bytes.</summary>
    public const int HeaderLength = 8;

    /// <summary>The only version.</summary>
    public const byte CurrentVersion = 1;

    /// <summary>The largest payload the 16-bit total length allows.</summary>
    public const int MaxPayloadLength = ushort.MaxValue - HeaderLength;

    // The whole frame: header and payload, exactly TotalLength bytes.
    private readonly ReadOnlySpan<byte> _data;

    internal SeedFrame(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>
    /// Reads a frame: at least 8 bytes, version 1, total length between 8 and the bytes given (bytes after the
    /// total length are not part of the frame). Never throws.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryRead(ReadOnlySpan<byte> data, out SeedFrame frame, out ParseError error)
    {
        frame = default;
        if (data.Length < HeaderLength)
        {
            error = new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Seed);
            return false;
        }
        if ((data[0] >> 4) != CurrentVersion)
        {
            error = new ParseError(ParseErrorReason.BadVersion, 0, LayerKind.Seed);
            return false;
        }
        int total = BinaryPrimitives.ReadUInt16BigEndian(data.Slice(2));
        if (total < HeaderLength)
        {
            error = new ParseError(ParseErrorReason.BadTotalLength, 2, LayerKind.Seed);
            return false;
        }
        if (total > data.Length)
        {
            error = new ParseError(ParseErrorReason.TotalLengthBeyondCapture, 2, LayerKind.Seed);
            return false;
        }
        frame = new SeedFrame(data.Slice(0, total));
        error = default;
        return true;
    }

    /// <summary>Reads a frame or throws <see cref="PacketParseException"/>.</summary>
    public static SeedFrame Read(ReadOnlySpan<byte> data)
    {
        if (!TryRead(data, out var f, out var e))
        {
            ThrowHelper.ThrowParse(e);
        }
        return f;
    }

    /// <summary><c>seed.version</c>: the high nibble of byte 0 (always 1).</summary>
    public byte Version => (byte)(_data[0] >> 4);

    /// <summary><c>seed.type</c>: the low nibble of byte 0 (drop, trace, policy verdict, …).</summary>
    public byte Type => (byte)(_data[0] & 0x0F);

    /// <summary><c>seed.flags</c>: the event's subtype.</summary>
    public byte Flags => _data[1];

    /// <summary><c>seed.length</c>: the total length, header included.</summary>
    public ushort TotalLength => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(2, 2));

    /// <summary><c>seed.id</c>: a sequence number or flow hash.</summary>
    public uint Id => BinaryPrimitives.ReadUInt32BigEndian(_data.Slice(4, 4));

    /// <summary>The payload after the header.</summary>
    public ReadOnlySpan<byte> Payload => _data.Slice(HeaderLength);

    /// <summary>The whole frame.</summary>
    public ReadOnlySpan<byte> Bytes
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _data;
    }

    /// <summary>The frame's checksum: RFC 1071 over the whole frame.</summary>
    public ushort Checksum => InternetChecksum.Compute(_data);

    /// <summary>The frame length for a payload of <paramref name="payloadLength"/> bytes.</summary>
    public static int GetFrameLength(int payloadLength) => HeaderLength + payloadLength;

    /// <summary>Writes a frame; returns its length. Throws when the payload exceeds 65,527 bytes or the destination is too small.</summary>
    public static int Write(Span<byte> destination, byte type, byte flags, uint id, ReadOnlySpan<byte> payload)
    {
        if (type > 0x0F)
        {
            ThrowHelper.ThrowArgument("seed frame", $"type {type} does not fit in 4 bits");
        }
        if (payload.Length > MaxPayloadLength)
        {
            ThrowHelper.ThrowArgument("seed frame", $"payload of {payload.Length} bytes exceeds the {MaxPayloadLength} a 16-bit total length allows");
        }
        int total = HeaderLength + payload.Length;
        if (destination.Length < total)
        {
            ThrowHelper.ThrowDestinationTooSmall("seed frame", total, destination.Length);
        }
        WriteHeader(destination, type, flags, (ushort)total, id);
        payload.CopyTo(destination.Slice(HeaderLength));
        return total;
    }

    /// <summary>Writes a frame into a new array.</summary>
    public static byte[] Build(byte type, byte flags, uint id, ReadOnlySpan<byte> payload)
    {
        if (payload.Length > MaxPayloadLength)
        {
            ThrowHelper.ThrowArgument("seed frame", $"payload of {payload.Length} bytes exceeds the {MaxPayloadLength} a 16-bit total length allows");
        }
        var frame = new byte[HeaderLength + payload.Length];
        Write(frame, type, flags, id, payload);
        return frame;
    }

    internal static void WriteHeader(Span<byte> destination, byte type, byte flags, ushort totalLength, uint id)
    {
        destination[0] = (byte)((CurrentVersion << 4) | (type & 0x0F));
        destination[1] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), totalLength);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), id);
    }
}
