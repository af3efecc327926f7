using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>
/// An ICMPv6 message (RFC 4443): echo, errors that quote the offending packet, and Neighbor Discovery
/// (RFC 4861: router/neighbor solicitation and advertisement, redirect) with its options.
/// </summary>
public readonly ref struct Icmpv6Header
{
    /// <summary>The common header's length: type, code, checksum and 4 type-specific bytes.</summary>
    public const int Length = 8;

    private readonly ReadOnlySpan<byte> _data;

    internal Icmpv6Header(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>
    /// Reads the message (to the end of <paramref name="data"/>), checking the fixed length of ND messages and
    /// their option lengths (RFC 4861 §4.6: a zero length is invalid). Never throws.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryRead(ReadOnlySpan<byte> data, out Icmpv6Header header, out ParseError error)
    {
        header = default;
        if (data.Length < Length)
        {
            error = new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Icmpv6);
            return false;
        }
        int ndOptionsAt = NdOptionsOffset(data[0]);
        if (ndOptionsAt > 0)
        {
            if (data.Length < ndOptionsAt)
            {
                error = new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Icmpv6);
                return false;
            }
            int bad = NdOptionEnumerator.FindMalformed(data.Slice(ndOptionsAt));
            if (bad >= 0)
            {
                error = new ParseError(ParseErrorReason.BadOptionLength, ndOptionsAt + bad, LayerKind.Icmpv6);
                return false;
            }
        }
        header = new Icmpv6Header(data);
        error = default;
        return true;
    }

    /// <summary>Reads the message or throws <see cref="PacketParseException"/>.</summary>
    public static Icmpv6Header Read(ReadOnlySpan<byte> data)
    {
        if (!TryRead(data, out var h, out var e))
        {
            ThrowHelper.ThrowParse(e);
        }
        return h;
    }

    /// <summary>Where ND options start for an ND message type (RFC 4861 §4.1–4.5), or 0 for other types.</summary>
    public static int NdOptionsOffset(byte type) => type switch
    {
        Icmpv6Types.RouterSolicitation => 8,
        Icmpv6Types.RouterAdvertisement => 16,
        Icmpv6Types.NeighborSolicitation => 24,
        Icmpv6Types.NeighborAdvertisement => 24,
        Icmpv6Types.Redirect => 40,
        _ => 0,
    };

    /// <summary>True for error messages (types below 128, RFC 4443 §2.1).</summary>
    public static bool IsErrorType(byte type) => type < 128;

    /// <summary><c>icmpv6.type</c>.</summary>
    public byte Type
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _data[0];
    }

    /// <summary><c>icmpv6.code</c>.</summary>
    public byte Code
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _data[1];
    }

    /// <summary><c>icmpv6.checksum</c> as sent.</summary>
    public ushort Checksum
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(2, 2));
    }

    /// <summary>Bytes 4–7.</summary>
    public uint RestOfHeader => BinaryPrimitives.ReadUInt32BigEndian(_data.Slice(4, 4));

    /// <summary><c>icmpv6.echo.identifier</c>.</summary>
    public ushort Identifier => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(4, 2));

    /// <summary><c>icmpv6.echo.sequence_number</c>.</summary>
    public ushort SequenceNumber => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(6, 2));

    /// <summary><c>icmpv6.mtu</c> (packet too big).</summary>
    public uint Mtu => RestOfHeader;

    /// <summary><c>icmpv6.pointer</c> (parameter problem).</summary>
    public uint Pointer => RestOfHeader;

    /// <summary>True for error messages, whose body quotes the offending packet.</summary>
    public bool IsError
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => IsErrorType(Type);
    }

    /// <summary>Everything after the 8-byte header (echo data, or the quoted packet of an error).</summary>
    public ReadOnlySpan<byte> Body => _data.Slice(Length);

    /// <summary>The whole message.</summary>
    public ReadOnlySpan<byte> Message => _data;

    /// <summary>
    /// Reads the IPv6 header an error message quotes (RFC 4443 §2.4(c): as much of the invoking packet as
    /// fits the minimum MTU). False when this is not an error message (<paramref name="error"/> is then
    /// None) or the quote is malformed (a typed error, offset from the ICMPv6 header). Never throws.
    /// </summary>
    public bool TryReadQuotedPacket(out Ipv6Header quoted, out ParseError error)
    {
        if (!IsError)
        {
            quoted = default;
            error = default;
            return false;
        }
        if (!Ipv6Header.TryRead(Body, allowTruncated: true, out quoted, out error))
        {
            error = error.WithOffset(Length);
            return false;
        }
        return true;
    }

    /// <summary><c>icmpv6.nd.ns.target_address</c> / <c>icmpv6.nd.na.target_address</c> / redirect target (types 135–137).</summary>
    public Ipv6Address TargetAddress => Ipv6Address.Read(_data.Slice(8, 16));

    /// <summary>Redirect destination address (type 137).</summary>
    public Ipv6Address RedirectDestination => Ipv6Address.Read(_data.Slice(24, 16));

    /// <summary><c>icmpv6.nd.na.flag.r</c> (type 136).</summary>
    public bool RouterFlag => (_data[4] & 0x80) != 0;

    /// <summary><c>icmpv6.nd.na.flag.s</c> (type 136).</summary>
    public bool SolicitedFlag => (_data[4] & 0x40) != 0;

    /// <summary><c>icmpv6.nd.na.flag.o</c> (type 136).</summary>
    public bool OverrideFlag => (_data[4] & 0x20) != 0;

    /// <summary><c>icmpv6.nd.ra.cur_hop_limit</c> (type 134).</summary>
    public byte CurrentHopLimit => _data[4];

    /// <summary><c>icmpv6.nd.ra.flag.m</c> (type 134).</summary>
    public bool ManagedFlag => (_data[5] & 0x80) != 0;

    /// <summary><c>icmpv6.nd.ra.flag.o</c> (type 134).</summary>
    public bool OtherConfigFlag => (_data[5] & 0x40) != 0;

    /// <summary><c>icmpv6.nd.ra.router_lifetime</c> (type 134).</summary>
    public ushort RouterLifetime => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(6, 2));

    /// <summary><c>icmpv6.nd.ra.reachable_time</c> (type 134).</summary>
    public uint ReachableTime => BinaryPrimitives.ReadUInt32BigEndian(_data.Slice(8, 4));

    /// <summary><c>icmpv6.nd.ra.retrans_timer</c> (type 134).</summary>
    public uint RetransTimer => BinaryPrimitives.ReadUInt32BigEndian(_data.Slice(12, 4));

    /// <summary>Iterates the ND options of an ND message (empty for other types).</summary>
    public NdOptionEnumerator GetNdOptions()
    {
        int at = NdOptionsOffset(Type);
        return new NdOptionEnumerator(at > 0 ? _data.Slice(at) : default);
    }

    /// <summary>Verifies the checksum given the IPv6 pseudo-header sum (RFC 4443 §2.3).</summary>
    public ChecksumStatus VerifyChecksum(uint pseudoHeaderSum) =>
        InternetChecksum.IsValid(_data, pseudoHeaderSum) ? ChecksumStatus.Good : ChecksumStatus.Bad;

    /// <summary>Writes type, code, rest-of-header and a zero checksum (filled once the body is in place); returns 8.</summary>
    public static int Write(Span<byte> destination, byte type, byte code, uint restOfHeader)
    {
        if (destination.Length < Length)
        {
            ThrowHelper.ThrowDestinationTooSmall("ICMPv6 header", Length, destination.Length);
        }
        destination[0] = type;
        destination[1] = code;
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), 0);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), restOfHeader);
        return Length;
    }

    /// <summary>Writes an ND option (type, length in 8-byte units, data zero-padded); returns its length.</summary>
    public static int WriteNdOption(Span<byte> destination, byte type, ReadOnlySpan<byte> data)
    {
        int length = (data.Length + 2 + 7) & ~7;
        if (length > 255 * 8)
        {
            ThrowHelper.ThrowArgument("ND option", "data longer than 2038 bytes");
        }
        if (destination.Length < length)
        {
            ThrowHelper.ThrowDestinationTooSmall("ND option", length, destination.Length);
        }
        destination[0] = type;
        destination[1] = (byte)(length / 8);
        data.CopyTo(destination.Slice(2));
        destination.Slice(2 + data.Length, length - 2 - data.Length).Clear();
        return length;
    }
}

/// <summary>One Neighbor Discovery option (RFC 4861 §4.6).</summary>
public readonly ref struct NdOption
{
    internal NdOption(ReadOnlySpan<byte> raw) => Raw = raw;

    /// <summary>The whole option.</summary>
    public ReadOnlySpan<byte> Raw { get; }

    /// <summary><c>icmpv6.opt.type</c>.</summary>
    public byte Type
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Raw[0];
    }

    /// <summary><c>icmpv6.opt.length</c>: the length in 8-byte units.</summary>
    public byte LengthUnits => Raw[1];

    /// <summary>The data after type and length.</summary>
    public ReadOnlySpan<byte> Data => Raw.Slice(2);

    /// <summary><c>icmpv6.opt.linkaddr</c> (source/target link-layer address, Ethernet).</summary>
    public MacAddress LinkLayerAddress => MacAddress.Read(Raw.Slice(2, 6));

    /// <summary><c>icmpv6.opt.prefix.length</c> (prefix information).</summary>
    public byte PrefixLength => Raw[2];

    /// <summary><c>icmpv6.opt.prefix.flag.l</c>.</summary>
    public bool OnLinkFlag => (Raw[3] & 0x80) != 0;

    /// <summary><c>icmpv6.opt.prefix.flag.a</c>.</summary>
    public bool AutonomousFlag => (Raw[3] & 0x40) != 0;

    /// <summary><c>icmpv6.opt.prefix.valid_lifetime</c>.</summary>
    public uint ValidLifetime => BinaryPrimitives.ReadUInt32BigEndian(Raw.Slice(4, 4));

    /// <summary><c>icmpv6.opt.prefix.preferred_lifetime</c>.</summary>
    public uint PreferredLifetime => BinaryPrimitives.ReadUInt32BigEndian(Raw.Slice(8, 4));

    /// <summary><c>icmpv6.opt.prefix</c>.</summary>
    public Ipv6Address Prefix => Ipv6Address.Read(Raw.Slice(16, 16));

    /// <summary><c>icmpv6.opt.mtu</c> (MTU option).</summary>
    public uint Mtu => BinaryPrimitives.ReadUInt32BigEndian(Raw.Slice(4, 4));
}

/// <summary>Iterates ND options; stops at a malformed one (zero length or past the end).</summary>
public ref struct NdOptionEnumerator
{
    private readonly ReadOnlySpan<byte> _options;
    private int _position;
    private int _start;
    private int _length;

    internal NdOptionEnumerator(ReadOnlySpan<byte> options)
    {
        _options = options;
        _position = 0;
        _start = 0;
        _length = 0;
    }

    /// <summary>Enables <c>foreach</c>.</summary>
    public readonly NdOptionEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next option.</summary>
    public bool MoveNext()
    {
        _start = _position;
        if (_position + 2 > _options.Length)
        {
            return false;
        }
        int len = _options[_position + 1] * 8;
        if (len == 0 || _position + len > _options.Length)
        {
            _position = _options.Length;
            return false;
        }
        _length = len;
        _position += len;
        return true;
    }

    /// <summary>The current option.</summary>
    public readonly NdOption Current => new(_options.Slice(_start, _length));

    internal static int FindMalformed(ReadOnlySpan<byte> options)
    {
        int i = 0;
        while (i < options.Length)
        {
            if (i + 2 > options.Length)
            {
                return i;
            }
            int len = options[i + 1] * 8;
            if (len == 0 || i + len > options.Length)
            {
                return i;
            }
            i += len;
        }
        return -1;
    }
}
