using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>An ICMPv4 message (RFC 792): echo, and errors that quote the original IP header plus 8 bytes.</summary>
public readonly ref struct Icmpv4Header
{
    /// <summary>The header's length: type, code, checksum and the 4-byte rest of header.</summary>
    public const int Length = 8;

    private readonly ReadOnlySpan<byte> _data;

    internal Icmpv4Header(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>Reads the message at the start of <paramref name="data"/> (to its end). Never throws.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryRead(ReadOnlySpan<byte> data, out Icmpv4Header header, out ParseError error)
    {
        if (data.Length < Length)
        {
            header = default;
            error = new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Icmpv4);
            return false;
        }
        header = new Icmpv4Header(data);
        error = default;
        return true;
    }

    /// <summary>Reads the message or throws <see cref="PacketParseException"/>.</summary>
    public static Icmpv4Header Read(ReadOnlySpan<byte> data)
    {
        if (!TryRead(data, out var h, out var e))
        {
            ThrowHelper.ThrowParse(e);
        }
        return h;
    }

    /// <summary>True for the error types that quote the offending datagram (3, 4, 5, 11, 12).</summary>
    public static bool IsErrorType(byte type) => type is Icmpv4Types.DestinationUnreachable or Icmpv4Types.SourceQuench
        or Icmpv4Types.Redirect or Icmpv4Types.TimeExceeded or Icmpv4Types.ParameterProblem;

    /// <summary><c>icmp.type</c>.</summary>
    public byte Type
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _data[0];
    }

    /// <summary><c>icmp.code</c>.</summary>
    public byte Code
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _data[1];
    }

    /// <summary><c>icmp.checksum</c> as sent.</summary>
    public ushort Checksum
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(2, 2));
    }

    /// <summary>Bytes 4–7, whose meaning depends on the type.</summary>
    public uint RestOfHeader => BinaryPrimitives.ReadUInt32BigEndian(_data.Slice(4, 4));

    /// <summary><c>icmp.ident</c> (echo, timestamp).</summary>
    public ushort Identifier
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(4, 2));
    }

    /// <summary><c>icmp.seq</c> (echo, timestamp).</summary>
    public ushort SequenceNumber
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(6, 2));
    }

    /// <summary><c>icmp.mtu</c>: next-hop MTU of "fragmentation needed" (type 3 code 4, RFC 1191).</summary>
    public ushort NextHopMtu => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(6, 2));

    /// <summary><c>icmp.pointer</c> (parameter problem).</summary>
    public byte Pointer => _data[4];

    /// <summary><c>icmp.redir_gw</c> (redirect).</summary>
    public Ipv4Address Gateway => Ipv4Address.Read(_data.Slice(4, 4));

    /// <summary>True when this is an error message quoting a datagram.</summary>
    public bool IsError
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => IsErrorType(Type);
    }

    /// <summary>Everything after the 8-byte header: echo data, or the quoted IP header + 8 bytes of an error.</summary>
    public ReadOnlySpan<byte> Body => _data.Slice(Length);

    /// <summary>The whole message.</summary>
    public ReadOnlySpan<byte> Message => _data;

    /// <summary>
    /// Reads the IPv4 header an error message quotes (RFC 792: the original header plus 8 bytes, so its total
    /// length may exceed what is here). False when this is not an error message (<paramref name="error"/> is then
    /// None) or the quote is malformed (a typed error, offset from the ICMP header). Never throws.
    /// </summary>
    public bool TryReadQuotedDatagram(out Ipv4Header quoted, out ParseError error)
    {
        if (!IsError)
        {
            quoted = default;
            error = default;
            return false;
        }
        if (!Ipv4Header.TryRead(Body, allowTruncated: true, out quoted, out error))
        {
            error = error.WithOffset(Length);
            return false;
        }
        return true;
    }

    /// <summary>Verifies the checksum over the whole message (RFC 792).</summary>
    public ChecksumStatus VerifyChecksum() => InternetChecksum.IsValid(_data) ? ChecksumStatus.Good : ChecksumStatus.Bad;

    /// <summary>Writes type, code, rest-of-header and a zero checksum (filled once the body is in place); returns 8.</summary>
    public static int Write(Span<byte> destination, byte type, byte code, uint restOfHeader)
    {
        if (destination.Length < Length)
        {
            ThrowHelper.ThrowDestinationTooSmall("ICMP header", Length, destination.Length);
        }
        destination[0] = type;
        destination[1] = code;
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), 0);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), restOfHeader);
        return Length;
    }
}
