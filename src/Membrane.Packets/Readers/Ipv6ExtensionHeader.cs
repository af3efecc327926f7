using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>
/// One IPv6 extension header (RFC 8200 §4): hop-by-hop options, routing, fragment, destination options,
/// or AH (RFC 4302, length in 4-byte units). The type is the previous header's next-header value.
/// </summary>
public readonly ref struct Ipv6ExtensionHeader
{
    /// <summary>The fragment header's length: 8 bytes.</summary>
    public const int FragmentHeaderLength = 8;

    private readonly ReadOnlySpan<byte> _data;

    internal Ipv6ExtensionHeader(ReadOnlySpan<byte> data, byte type)
    {
        _data = data;
        Type = type;
    }

    /// <summary>True for next-header values that are extension headers this library walks or recognises.</summary>
    public static bool IsExtensionHeader(byte nextHeader) => nextHeader is IpProtocols.HopByHopOptions or IpProtocols.Routing
        or IpProtocols.Fragment or IpProtocols.DestinationOptions or IpProtocols.Ah or IpProtocols.Esp;

    /// <summary>The layer kind for an extension-header next-header value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static LayerKind KindOf(byte nextHeader) => nextHeader switch
    {
        IpProtocols.HopByHopOptions => LayerKind.Ipv6HopByHop,
        IpProtocols.Routing => LayerKind.Ipv6Routing,
        IpProtocols.Fragment => LayerKind.Ipv6Fragment,
        IpProtocols.DestinationOptions => LayerKind.Ipv6DestinationOptions,
        IpProtocols.Ah => LayerKind.Ah,
        IpProtocols.Esp => LayerKind.Esp,
        _ => LayerKind.None,
    };

    /// <summary>The next-header value of an extension-header kind (<see cref="KindOf"/> the other way; AH for any other kind).</summary>
    internal static byte TypeOf(LayerKind kind) => kind switch
    {
        LayerKind.Ipv6HopByHop => IpProtocols.HopByHopOptions,
        LayerKind.Ipv6Routing => IpProtocols.Routing,
        LayerKind.Ipv6Fragment => IpProtocols.Fragment,
        LayerKind.Ipv6DestinationOptions => IpProtocols.DestinationOptions,
        _ => IpProtocols.Ah,
    };

    /// <summary>
    /// Reads an extension header of the given <paramref name="type"/> at the start of <paramref name="data"/>,
    /// validating its length and (for hop-by-hop and destination options) its option TLVs. Never throws on the
    /// bytes; <paramref name="type"/> must be 0, 43, 44, 51 or 60 (see <see cref="IsExtensionHeader"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryRead(ReadOnlySpan<byte> data, byte type, out Ipv6ExtensionHeader header, out ParseError error)
    {
        header = default;
        var kind = KindOf(type);
        if (kind is LayerKind.None or LayerKind.Esp)
        {
            // A caller bug, not malformed input: ESP has no extension-header shape and other values are not headers.
            ThrowHelper.ThrowNotExtensionHeader(type);
        }
        if (data.Length < 8)
        {
            error = new ParseError(ParseErrorReason.Truncated, 0, kind);
            return false;
        }
        int length = type switch
        {
            IpProtocols.Fragment => FragmentHeaderLength,
            IpProtocols.Ah => (data[1] + 2) * 4,
            _ => (data[1] + 1) * 8,
        };
        if (length > data.Length)
        {
            error = new ParseError(ParseErrorReason.HeaderLengthBeyondPacket, 1, kind);
            return false;
        }
        if (type is IpProtocols.HopByHopOptions or IpProtocols.DestinationOptions)
        {
            int bad = Ipv6OptionEnumerator.FindMalformed(data.Slice(2, length - 2));
            if (bad >= 0)
            {
                error = new ParseError(ParseErrorReason.BadOptionLength, 2 + bad, kind);
                return false;
            }
        }
        header = new Ipv6ExtensionHeader(data.Slice(0, length), type);
        error = default;
        return true;
    }

    /// <summary>This header's type (the next-header value that announced it).</summary>
    public byte Type { get; }

    /// <summary>The layer kind of this header.</summary>
    public LayerKind Kind => KindOf(Type);

    /// <summary><c>ipv6.*.nxt</c>: the next header after this one.</summary>
    public byte NextHeader
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _data[0];
    }

    /// <summary><c>ipv6.*.len</c>: the raw header-extension-length byte (0 and reserved for the fragment header).</summary>
    public byte HeaderExtensionLength => _data[1];

    /// <summary>The header's length in bytes.</summary>
    public int Length
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _data.Length;
    }

    /// <summary>The whole header.</summary>
    public ReadOnlySpan<byte> Bytes => _data;

    /// <summary>Everything after next-header and length (options, routing data, …).</summary>
    public ReadOnlySpan<byte> Data => _data.Slice(2);

    /// <summary>Iterates hop-by-hop or destination options (meaningful for those two types).</summary>
    public Ipv6OptionEnumerator GetOptions() => new(Data);

    /// <summary><c>ipv6.routing.type</c> (routing header).</summary>
    public byte RoutingType => _data[2];

    /// <summary><c>ipv6.routing.segleft</c> (routing header).</summary>
    public byte SegmentsLeft => _data[3];

    /// <summary>The type-specific routing data after the first four bytes (routing header).</summary>
    public ReadOnlySpan<byte> RoutingData => _data.Slice(4);

    /// <summary>The fragment offset in 8-byte units (fragment header).</summary>
    public ushort FragmentOffset
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (ushort)(BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(2, 2)) >> 3);
    }

    /// <summary><c>ipv6.fragment.offset</c>: the fragment offset in bytes (Wireshark shows bytes).</summary>
    public int FragmentOffsetBytes => FragmentOffset * 8;

    /// <summary><c>ipv6.fragment.more</c> (fragment header).</summary>
    public bool MoreFragments
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_data[3] & 1) != 0;
    }

    /// <summary><c>ipv6.fragment.res</c>: the two reserved bits next to M (fragment header).</summary>
    public byte FragmentReservedBits => (byte)((_data[3] >> 1) & 3);

    /// <summary><c>ipv6.fragment.id</c> (fragment header).</summary>
    public uint Identification => BinaryPrimitives.ReadUInt32BigEndian(_data.Slice(4, 4));

    /// <summary>The AH security parameters index (AH).</summary>
    public uint AhSpi => BinaryPrimitives.ReadUInt32BigEndian(_data.Slice(4, 4));

    /// <summary>
    /// Writes a hop-by-hop or destination-options header, padding the options with Pad1/PadN to a multiple of
    /// 8 bytes (RFC 8200 §4.2); returns its length.
    /// </summary>
    public static int WriteOptions(Span<byte> destination, byte nextHeader, ReadOnlySpan<byte> options)
    {
        int length = (options.Length + 2 + 7) & ~7;
        if (length > 2048)
        {
            ThrowHelper.ThrowArgument("IPv6 options header", "options longer than 2046 bytes");
        }
        if (destination.Length < length)
        {
            ThrowHelper.ThrowDestinationTooSmall("IPv6 options header", length, destination.Length);
        }
        destination[0] = nextHeader;
        destination[1] = (byte)((length / 8) - 1);
        options.CopyTo(destination.Slice(2));
        WritePadding(destination.Slice(2 + options.Length, length - 2 - options.Length));
        return length;
    }

    /// <summary>Writes a routing header with the given type-specific data (padded with zeros to a multiple of 8); returns its length.</summary>
    public static int WriteRouting(Span<byte> destination, byte nextHeader, byte routingType, byte segmentsLeft, ReadOnlySpan<byte> data)
    {
        int length = (data.Length + 4 + 7) & ~7;
        if (length > 2048)
        {
            ThrowHelper.ThrowArgument("IPv6 routing header", "routing data longer than 2044 bytes");
        }
        if (destination.Length < length)
        {
            ThrowHelper.ThrowDestinationTooSmall("IPv6 routing header", length, destination.Length);
        }
        destination[0] = nextHeader;
        destination[1] = (byte)((length / 8) - 1);
        destination[2] = routingType;
        destination[3] = segmentsLeft;
        data.CopyTo(destination.Slice(4));
        destination.Slice(4 + data.Length, length - 4 - data.Length).Clear();
        return length;
    }

    /// <summary>Writes a fragment header (RFC 8200 §4.5); returns 8.</summary>
    public static int WriteFragment(Span<byte> destination, byte nextHeader, ushort fragmentOffset, bool moreFragments, uint identification)
    {
        if (destination.Length < FragmentHeaderLength)
        {
            ThrowHelper.ThrowDestinationTooSmall("IPv6 fragment header", FragmentHeaderLength, destination.Length);
        }
        destination[0] = nextHeader;
        destination[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), (ushort)(((fragmentOffset & 0x1FFF) << 3) | (moreFragments ? 1 : 0)));
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), identification);
        return FragmentHeaderLength;
    }

    /// <summary>Fills with Pad1 (one byte) or one PadN option (RFC 8200 §4.2).</summary>
    internal static void WritePadding(Span<byte> pad)
    {
        if (pad.Length == 1)
        {
            pad[0] = 0;
        }
        else if (pad.Length >= 2)
        {
            pad[0] = 1;
            pad[1] = (byte)(pad.Length - 2);
            pad.Slice(2).Clear();
        }
    }
}

/// <summary>One hop-by-hop / destination option (RFC 8200 §4.2): type, data length, data. Pad1 has no length byte.</summary>
public readonly ref struct Ipv6Option
{
    internal Ipv6Option(ReadOnlySpan<byte> raw) => Raw = raw;

    /// <summary>The whole option.</summary>
    public ReadOnlySpan<byte> Raw { get; }

    /// <summary>The option type (0 = Pad1, 1 = PadN, 5 = router alert, 0xC2 = jumbo payload…).</summary>
    public byte Type => Raw[0];

    /// <summary>The option data length (0 for Pad1).</summary>
    public int DataLength => Raw.Length > 1 ? Raw[1] : 0;

    /// <summary>The option data.</summary>
    public ReadOnlySpan<byte> Data => Raw.Length > 2 ? Raw.Slice(2) : default;
}

/// <summary>Iterates IPv6 TLV options; stops at a malformed option.</summary>
public ref struct Ipv6OptionEnumerator
{
    private readonly ReadOnlySpan<byte> _options;
    private int _position;
    private int _start;
    private int _length;

    internal Ipv6OptionEnumerator(ReadOnlySpan<byte> options)
    {
        _options = options;
        _position = 0;
        _start = 0;
        _length = 0;
    }

    /// <summary>Enables <c>foreach</c>.</summary>
    public readonly Ipv6OptionEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next option.</summary>
    public bool MoveNext()
    {
        _start = _position;
        if ((uint)_position >= (uint)_options.Length)
        {
            return false;
        }
        if (_options[_position] == 0)
        {
            _length = 1;
            _position++;
            return true;
        }
        if (_position + 1 >= _options.Length || _position + 2 + _options[_position + 1] > _options.Length)
        {
            _position = _options.Length;
            return false;
        }
        _length = 2 + _options[_position + 1];
        _position += _length;
        return true;
    }

    /// <summary>The current option.</summary>
    public readonly Ipv6Option Current => new(_options.Slice(_start, _length));

    /// <summary>Offset of the first malformed option, or -1.</summary>
    internal static int FindMalformed(ReadOnlySpan<byte> options)
    {
        int i = 0;
        while (i < options.Length)
        {
            if (options[i] == 0)
            {
                i++;
                continue;
            }
            if (i + 1 >= options.Length || i + 2 + options[i + 1] > options.Length)
            {
                return i;
            }
            i += 2 + options[i + 1];
        }
        return -1;
    }
}
