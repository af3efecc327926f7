using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>A Geneve header (RFC 8926 §3.4) with its option TLVs; the payload's type is <see cref="ProtocolType"/>.</summary>
public readonly ref struct GeneveHeader
{
    /// <summary>The fixed header's length: 8 bytes.</summary>
    public const int MinLength = 8;

    private readonly ReadOnlySpan<byte> _data;

    internal GeneveHeader(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>Reads and validates the header: version 0, options inside the packet, each option's length. Never throws.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryRead(ReadOnlySpan<byte> data, out GeneveHeader header, out ParseError error)
    {
        header = default;
        if (data.Length < MinLength)
        {
            error = new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Geneve);
            return false;
        }
        if ((data[0] >> 6) != 0)
        {
            error = new ParseError(ParseErrorReason.BadVersion, 0, LayerKind.Geneve);
            return false;
        }
        int hl = MinLength + ((data[0] & 0x3F) * 4);
        if (hl > data.Length)
        {
            error = new ParseError(ParseErrorReason.HeaderLengthBeyondPacket, 0, LayerKind.Geneve);
            return false;
        }
        int bad = GeneveOptionEnumerator.FindMalformed(data.Slice(MinLength, hl - MinLength));
        if (bad >= 0)
        {
            error = new ParseError(ParseErrorReason.BadOptionLength, MinLength + bad, LayerKind.Geneve);
            return false;
        }
        header = new GeneveHeader(data);
        error = default;
        return true;
    }

    /// <summary>Reads the header or throws <see cref="PacketParseException"/>.</summary>
    public static GeneveHeader Read(ReadOnlySpan<byte> data)
    {
        if (!TryRead(data, out var h, out var e))
        {
            ThrowHelper.ThrowParse(e);
        }
        return h;
    }

    /// <summary><c>geneve.version</c>.</summary>
    public byte Version => (byte)(_data[0] >> 6);

    /// <summary><c>geneve.options_len</c>: the options length in 4-byte units (Wireshark shows bytes in newer versions).</summary>
    public byte OptionsLengthUnits
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (byte)(_data[0] & 0x3F);
    }

    /// <summary>The options length in bytes.</summary>
    public int OptionsLength => OptionsLengthUnits * 4;

    /// <summary>The header length in bytes, options included.</summary>
    public int HeaderLength
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => MinLength + OptionsLength;
    }

    /// <summary><c>geneve.flags</c>: the byte holding O, C and the reserved bits.</summary>
    public byte FlagsByte => _data[1];

    /// <summary><c>geneve.flags.oam</c>.</summary>
    public bool Oam => (_data[1] & 0x80) != 0;

    /// <summary><c>geneve.flags.critical</c>.</summary>
    public bool Critical => (_data[1] & 0x40) != 0;

    /// <summary><c>geneve.proto_type</c> (0x6558 = Ethernet).</summary>
    public ushort ProtocolType
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(2, 2));
    }

    /// <summary><c>geneve.vni</c>.</summary>
    public uint Vni
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt32BigEndian(_data.Slice(4, 4)) >> 8;
    }

    /// <summary><c>geneve.reserved</c>: the last byte.</summary>
    public byte Reserved => _data[7];

    /// <summary>The raw options.</summary>
    public ReadOnlySpan<byte> Options => _data.Slice(MinLength, OptionsLength);

    /// <summary>Iterates option TLVs.</summary>
    public GeneveOptionEnumerator GetOptions() => new(Options);

    /// <summary>The encapsulated frame.</summary>
    public ReadOnlySpan<byte> Payload => _data.Slice(HeaderLength);

    /// <summary>Writes a header with already-encoded options (a multiple of 4 bytes, at most 252); returns the header length.</summary>
    public static int Write(Span<byte> destination, uint vni, ushort protocolType = EtherTypes.TransparentEthernetBridging,
        ReadOnlySpan<byte> options = default, bool oam = false, bool critical = false)
    {
        if (options.Length % 4 != 0 || options.Length > 63 * 4)
        {
            ThrowHelper.ThrowArgument("Geneve header", $"options length {options.Length} is not a multiple of 4 up to 252");
        }
        int hl = MinLength + options.Length;
        if (destination.Length < hl)
        {
            ThrowHelper.ThrowDestinationTooSmall("Geneve header", hl, destination.Length);
        }
        destination[0] = (byte)(options.Length / 4);
        destination[1] = (byte)((oam ? 0x80 : 0) | (critical ? 0x40 : 0));
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), protocolType);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), (vni & 0xFFFFFF) << 8);
        options.CopyTo(destination.Slice(MinLength));
        return hl;
    }

    /// <summary>Encodes one option TLV (data zero-padded to a multiple of 4, at most 124 bytes); returns its length.</summary>
    public static int WriteOption(Span<byte> destination, ushort optionClass, byte type, ReadOnlySpan<byte> data)
    {
        int dataLen = (data.Length + 3) & ~3;
        if (dataLen > 31 * 4)
        {
            ThrowHelper.ThrowArgument("Geneve option", $"data length {data.Length} exceeds 124");
        }
        if (destination.Length < 4 + dataLen)
        {
            ThrowHelper.ThrowDestinationTooSmall("Geneve option", 4 + dataLen, destination.Length);
        }
        BinaryPrimitives.WriteUInt16BigEndian(destination, optionClass);
        destination[2] = type;
        destination[3] = (byte)(dataLen / 4);
        data.CopyTo(destination.Slice(4));
        destination.Slice(4 + data.Length, dataLen - data.Length).Clear();
        return 4 + dataLen;
    }
}

/// <summary>One Geneve option TLV (RFC 8926 §3.5).</summary>
public readonly ref struct GeneveOption
{
    internal GeneveOption(ReadOnlySpan<byte> raw) => Raw = raw;

    /// <summary>The whole option.</summary>
    public ReadOnlySpan<byte> Raw { get; }

    /// <summary><c>geneve.option.class</c>.</summary>
    public ushort OptionClass => BinaryPrimitives.ReadUInt16BigEndian(Raw);

    /// <summary><c>geneve.option.type</c>: the whole type byte (its high bit is the critical bit).</summary>
    public byte Type => Raw[2];

    /// <summary><c>geneve.option.type.critical</c>.</summary>
    public bool IsCritical => (Raw[2] & 0x80) != 0;

    /// <summary>The three reserved bits before the length.</summary>
    public byte ReservedBits => (byte)(Raw[3] >> 5);

    /// <summary><c>geneve.option.length</c>: the data length in 4-byte units.</summary>
    public byte LengthUnits => (byte)(Raw[3] & 0x1F);

    /// <summary>The option data.</summary>
    public ReadOnlySpan<byte> Data => Raw.Slice(4);
}

/// <summary>Iterates Geneve options; stops at a malformed option.</summary>
public ref struct GeneveOptionEnumerator
{
    private readonly ReadOnlySpan<byte> _options;
    private int _position;
    private int _start;
    private int _length;

    internal GeneveOptionEnumerator(ReadOnlySpan<byte> options)
    {
        _options = options;
        _position = 0;
        _start = 0;
        _length = 0;
    }

    /// <summary>Enables <c>foreach</c>.</summary>
    public readonly GeneveOptionEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next option.</summary>
    public bool MoveNext()
    {
        _start = _position;
        if (_position + 4 > _options.Length)
        {
            return false;
        }
        int len = 4 + ((_options[_position + 3] & 0x1F) * 4);
        if (_position + len > _options.Length)
        {
            _position = _options.Length;
            return false;
        }
        _length = len;
        _position += len;
        return true;
    }

    /// <summary>The current option.</summary>
    public readonly GeneveOption Current => new(_options.Slice(_start, _length));

    internal static int FindMalformed(ReadOnlySpan<byte> options)
    {
        int i = 0;
        while (i < options.Length)
        {
            if (i + 4 > options.Length || i + 4 + ((options[i + 3] & 0x1F) * 4) > options.Length)
            {
                return i;
            }
            i += 4 + ((options[i + 3] & 0x1F) * 4);
        }
        return -1;
    }
}
