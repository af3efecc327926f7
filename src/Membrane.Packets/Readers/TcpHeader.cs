using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>A TCP header (RFC 9293 §3.1) with every flag and its options.</summary>
public readonly ref struct TcpHeader
{
    /// <summary>The header's length without options: 20 bytes.</summary>
    public const int MinLength = 20;

    /// <summary>The longest header: data offset 15, 60 bytes.</summary>
    public const int MaxLength = 60;

    // From the header's first byte to the end of the segment.
    private readonly ReadOnlySpan<byte> _data;

    internal TcpHeader(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>Reads and validates the header: data offset and the option list. Never throws.</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out TcpHeader header, out ParseError error)
    {
        int hl = Measure(data);
        if (hl < 0)
        {
            header = default;
            error = ParseError.FromCode(hl, LayerKind.Tcp);
            return false;
        }
        header = new TcpHeader(data);
        error = default;
        return true;
    }

    /// <summary>
    /// <see cref="TryRead"/>'s checks, answering the header's length (20 or more, at most <c>data.Length</c>)
    /// or a <see cref="ParseError.Code"/>, for the dissector to inline.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Measure(ReadOnlySpan<byte> data)
    {
        if (data.Length < MinLength)
        {
            return ParseError.Code(ParseErrorReason.Truncated, 0);
        }
        int hl = (data[12] >> 4) * 4;
        if (hl < MinLength)
        {
            return ParseError.Code(ParseErrorReason.BadHeaderLength, 12);
        }
        if (hl > data.Length)
        {
            return ParseError.Code(ParseErrorReason.HeaderLengthBeyondPacket, 12);
        }
        // Most segments carry one of the layouts Linux sends, well formed without a walk: none; NOP, NOP,
        // Timestamps on every segment of a timestamped connection (RFC 7323 App. A), alone or followed by NOP,
        // NOP and one SACK block; MSS, SACK-permitted, Timestamps, NOP, window scale on a SYN.
        if (hl == MinLength || IsLinuxLayout(data, hl))
        {
            return hl;
        }
        int bad = FindMalformedOption(data.Slice(MinLength, hl - MinLength));
        return bad < 0 ? hl : ParseError.Code(ParseErrorReason.BadOptionLength, MinLength + bad);
    }

    /// <summary>Reads the header or throws <see cref="PacketParseException"/>.</summary>
    public static TcpHeader Read(ReadOnlySpan<byte> data)
    {
        if (!TryRead(data, out var h, out var e))
        {
            ThrowHelper.ThrowParse(e);
        }
        return h;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsLinuxLayout(ReadOnlySpan<byte> data, int hl)
    {
        if (hl == 40)
        {
            return data[20] == 2 && data[21] == 4 && data[24] == 4 && data[25] == 2 && data[26] == 8 && data[27] == 10
                && data[36] == 1 && data[37] == 3 && data[38] == 3;
        }
        bool timestamps = (hl == 32 || hl == 44) && data[20] == 1 && data[21] == 1 && data[22] == 8 && data[23] == 10;
        return timestamps && (hl == 32 || (data[32] == 1 && data[33] == 1 && data[34] == 5 && data[35] == 10));
    }

    // Generic TLV rules plus the fixed lengths RFC 9293 §3.2 / RFC 7323 / RFC 2018 give known kinds, in one
    // pass so that the first bad option is the one reported.
    private static int FindMalformedOption(ReadOnlySpan<byte> options)
    {
        int i = 0;
        while (i < options.Length)
        {
            byte kind = options[i];
            if (kind == 0)
            {
                return -1;
            }
            if (kind == 1)
            {
                i++;
                continue;
            }
            if (i + 1 >= options.Length)
            {
                return i;
            }
            int len = options[i + 1];
            bool ok = len >= 2 && i + len <= options.Length && (TcpOptionKind)kind switch
            {
                TcpOptionKind.MaximumSegmentSize => len == 4,
                TcpOptionKind.WindowScale => len == 3,
                TcpOptionKind.SackPermitted => len == 2,
                TcpOptionKind.Sack => len >= 10 && (len - 2) % 8 == 0,
                TcpOptionKind.Timestamps => len == 10,
                _ => true,
            };
            if (!ok)
            {
                return i;
            }
            i += len;
        }
        return -1;
    }

    /// <summary><c>tcp.srcport</c>.</summary>
    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(_data);

    /// <summary><c>tcp.dstport</c>.</summary>
    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(2, 2));

    /// <summary><c>tcp.seq_raw</c>: the raw sequence number (Wireshark's <c>tcp.seq</c> is relative).</summary>
    public uint SequenceNumber => BinaryPrimitives.ReadUInt32BigEndian(_data.Slice(4, 4));

    /// <summary><c>tcp.ack_raw</c>: the raw acknowledgment number.</summary>
    public uint AcknowledgmentNumber => BinaryPrimitives.ReadUInt32BigEndian(_data.Slice(8, 4));

    /// <summary>The data-offset nibble (32-bit words).</summary>
    public byte DataOffset => (byte)(_data[12] >> 4);

    /// <summary><c>tcp.hdr_len</c>: the header length in bytes, options included.</summary>
    public int HeaderLength => DataOffset * 4;

    /// <summary><c>tcp.flags.res</c>: the three reserved bits.</summary>
    public byte ReservedBits => (byte)((_data[12] >> 1) & 7);

    /// <summary><c>tcp.flags</c>: the 9 flag bits NS..FIN (Wireshark's <c>tcp.flags</c> also includes the reserved bits above them).</summary>
    public TcpFlags Flags => (TcpFlags)(BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(12, 2)) & 0x1FF);

    /// <summary>The 12 bits after the data offset: reserved bits and flags, as Wireshark's <c>tcp.flags</c> shows them.</summary>
    public ushort FlagsField => (ushort)(BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(12, 2)) & 0x0FFF);

    /// <summary><c>tcp.flags.ns</c> / <c>tcp.flags.ae</c>.</summary>
    public bool Ns => (Flags & TcpFlags.Ns) != 0;
    /// <summary><c>tcp.flags.cwr</c>.</summary>
    public bool Cwr => (Flags & TcpFlags.Cwr) != 0;
    /// <summary><c>tcp.flags.ece</c>.</summary>
    public bool Ece => (Flags & TcpFlags.Ece) != 0;
    /// <summary><c>tcp.flags.urg</c>.</summary>
    public bool Urg => (Flags & TcpFlags.Urg) != 0;
    /// <summary><c>tcp.flags.ack</c>.</summary>
    public bool Ack => (Flags & TcpFlags.Ack) != 0;
    /// <summary><c>tcp.flags.push</c>.</summary>
    public bool Psh => (Flags & TcpFlags.Psh) != 0;
    /// <summary><c>tcp.flags.reset</c>.</summary>
    public bool Rst => (Flags & TcpFlags.Rst) != 0;
    /// <summary><c>tcp.flags.syn</c>.</summary>
    public bool Syn => (Flags & TcpFlags.Syn) != 0;
    /// <summary><c>tcp.flags.fin</c>.</summary>
    public bool Fin => (Flags & TcpFlags.Fin) != 0;

    /// <summary><c>tcp.window_size_value</c>: the raw window field.</summary>
    public ushort Window => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(14, 2));

    /// <summary><c>tcp.checksum</c> as sent.</summary>
    public ushort Checksum => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(16, 2));

    /// <summary><c>tcp.urgent_pointer</c>.</summary>
    public ushort UrgentPointer => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(18, 2));

    /// <summary>The raw options area, padding included.</summary>
    public ReadOnlySpan<byte> Options => _data.Slice(MinLength, HeaderLength - MinLength);

    /// <summary>Iterates the options (<c>tcp.option_kind</c>, <c>tcp.option_len</c>, typed values).</summary>
    public TcpOptionEnumerator GetOptions() => new(Options);

    /// <summary>The header bytes.</summary>
    public ReadOnlySpan<byte> HeaderBytes => _data.Slice(0, HeaderLength);

    /// <summary>The segment's data (<c>tcp.len</c> bytes when the segment was fully captured).</summary>
    public ReadOnlySpan<byte> Payload => _data.Slice(HeaderLength);

    /// <summary>The whole segment as held (header and data).</summary>
    public ReadOnlySpan<byte> Segment => _data;

    /// <summary>Verifies the checksum given the pseudo-header sum of the enclosing IP header.</summary>
    public ChecksumStatus VerifyChecksum(uint pseudoHeaderSum) =>
        InternetChecksum.IsValid(_data, pseudoHeaderSum) ? ChecksumStatus.Good : ChecksumStatus.Bad;

    /// <summary>
    /// Writes a header with options (padded with end-of-list zeros to a multiple of 4). The checksum is
    /// left 0: the caller  fills it once the payload is in place.
    /// Returns the header length.
    /// </summary>
    public static int Write(Span<byte> destination, ushort sourcePort, ushort destinationPort, uint sequenceNumber,
        uint acknowledgmentNumber, TcpFlags flags, ushort window, ushort urgentPointer = 0, ReadOnlySpan<byte> options = default,
        byte reservedBits = 0)
    {
        int hl = MinLength + ((options.Length + 3) & ~3);
        if (hl > MaxLength)
        {
            ThrowHelper.ThrowArgument("TCP header", $"{options.Length} option bytes exceed the 40 that fit");
        }
        if (destination.Length < hl)
        {
            ThrowHelper.ThrowDestinationTooSmall("TCP header", hl, destination.Length);
        }
        BinaryPrimitives.WriteUInt16BigEndian(destination, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), destinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), sequenceNumber);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(8), acknowledgmentNumber);
        ushort off = (ushort)(((hl / 4) << 12) | ((reservedBits & 7) << 9) | ((ushort)flags & 0x1FF));
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(12), off);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(14), window);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(16), 0);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(18), urgentPointer);
        options.CopyTo(destination.Slice(MinLength));
        destination.Slice(MinLength + options.Length, hl - MinLength - options.Length).Clear();
        return hl;
    }
}

/// <summary>One TCP option: kind, length, raw data, and typed values for the kinds RFC 9293/7323/2018 define.</summary>
public readonly ref struct TcpOption
{
    internal TcpOption(ReadOnlySpan<byte> raw) => Raw = raw;

    /// <summary>The whole option, kind byte included.</summary>
    public ReadOnlySpan<byte> Raw { get; }

    /// <summary><c>tcp.option_kind</c>.</summary>
    public TcpOptionKind Kind => (TcpOptionKind)Raw[0];

    /// <summary><c>tcp.option_len</c> (1 for end-of-list and no-op, which carry no length byte).</summary>
    public int Length => Raw.Length;

    /// <summary>The data after kind and length (unknown kinds are kept raw here).</summary>
    public ReadOnlySpan<byte> Data => Raw.Length > 2 ? Raw.Slice(2) : default;

    /// <summary><c>tcp.options.mss_val</c> (kind 2).</summary>
    public ushort MaximumSegmentSize => BinaryPrimitives.ReadUInt16BigEndian(Raw.Slice(2, 2));

    /// <summary><c>tcp.options.wscale.shift</c> (kind 3).</summary>
    public byte WindowScaleShift => Raw[2];

    /// <summary><c>tcp.options.wscale.multiplier</c>: 2^shift (RFC 7323 caps the shift at 14).</summary>
    public int WindowScaleMultiplier => 1 << Math.Min((int)WindowScaleShift, 14);

    /// <summary>The number of SACK blocks (kind 5).</summary>
    public int SackBlockCount => (Raw.Length - 2) / 8;

    /// <summary><c>tcp.options.sack_le</c> / <c>sack_re</c> (raw) of block <paramref name="index"/> (kind 5).</summary>
    public (uint Left, uint Right) GetSackBlock(int index) =>
        (BinaryPrimitives.ReadUInt32BigEndian(Raw.Slice(2 + (8 * index))), BinaryPrimitives.ReadUInt32BigEndian(Raw.Slice(6 + (8 * index))));

    /// <summary><c>tcp.options.timestamp.tsval</c> (kind 8).</summary>
    public uint TimestampValue => BinaryPrimitives.ReadUInt32BigEndian(Raw.Slice(2, 4));

    /// <summary><c>tcp.options.timestamp.tsecr</c> (kind 8).</summary>
    public uint TimestampEchoReply => BinaryPrimitives.ReadUInt32BigEndian(Raw.Slice(6, 4));
}

/// <summary>Iterates TCP options with <c>foreach</c>; zero allocations; stops at end-of-list (reported once) or a malformed option.</summary>
public ref struct TcpOptionEnumerator
{
    private readonly ReadOnlySpan<byte> _options;
    private int _position;
    private int _start;
    private int _length;

    internal TcpOptionEnumerator(ReadOnlySpan<byte> options)
    {
        _options = options;
        _position = 0;
        _start = 0;
        _length = 0;
    }

    /// <summary>Enables <c>foreach</c>.</summary>
    public readonly TcpOptionEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next option.</summary>
    public bool MoveNext() => OptionTlv.Next(_options, ref _position, out _start, out _length);

    /// <summary>The current option.</summary>
    public readonly TcpOption Current => new(_options.Slice(_start, _length));
}

/// <summary>Writes TCP options into a span (no padding: <see cref="TcpHeader.Write"/> pads).</summary>
public ref struct TcpOptionsWriter
{
    private readonly Span<byte> _buffer;

    /// <summary>Writes into <paramref name="buffer"/> (40 bytes is the most a header holds).</summary>
    public TcpOptionsWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        Written = 0;
    }

    /// <summary>Bytes written so far.</summary>
    public int Written { get; private set; }

    /// <summary>The options written so far.</summary>
    public readonly ReadOnlySpan<byte> WrittenSpan => _buffer.Slice(0, Written);

    private Span<byte> Take(int n)
    {
        if (Written + n > _buffer.Length)
        {
            ThrowHelper.ThrowDestinationTooSmall("TCP option", n, _buffer.Length - Written);
        }
        var s = _buffer.Slice(Written, n);
        Written += n;
        return s;
    }

    /// <summary>Kind 1.</summary>
    public void NoOperation() => Take(1)[0] = 1;

    /// <summary>Kind 0.</summary>
    public void EndOfList() => Take(1)[0] = 0;

    /// <summary>Kind 2 (RFC 9293 §3.7.1).</summary>
    public void MaximumSegmentSize(ushort mss)
    {
        var s = Take(4);
        s[0] = 2;
        s[1] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(s.Slice(2), mss);
    }

    /// <summary>Kind 3 (RFC 7323 §2).</summary>
    public void WindowScale(byte shift)
    {
        var s = Take(3);
        s[0] = 3;
        s[1] = 3;
        s[2] = shift;
    }

    /// <summary>Kind 4 (RFC 2018).</summary>
    public void SackPermitted()
    {
        var s = Take(2);
        s[0] = 4;
        s[1] = 2;
    }

    /// <summary>Kind 5 with 1–4 blocks (RFC 2018 §3).</summary>
    public void Sack(ReadOnlySpan<(uint Left, uint Right)> blocks)
    {
        var s = Take(2 + (8 * blocks.Length));
        s[0] = 5;
        s[1] = (byte)(2 + (8 * blocks.Length));
        for (int i = 0; i < blocks.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(s.Slice(2 + (8 * i)), blocks[i].Left);
            BinaryPrimitives.WriteUInt32BigEndian(s.Slice(6 + (8 * i)), blocks[i].Right);
        }
    }

    /// <summary>Kind 8 (RFC 7323 §3).</summary>
    public void Timestamps(uint value, uint echoReply)
    {
        var s = Take(10);
        s[0] = 8;
        s[1] = 10;
        BinaryPrimitives.WriteUInt32BigEndian(s.Slice(2), value);
        BinaryPrimitives.WriteUInt32BigEndian(s.Slice(6), echoReply);
    }

    /// <summary>Any kind with raw data (length byte = 2 + data length).</summary>
    public void Raw(byte kind, ReadOnlySpan<byte> data)
    {
        var s = Take(2 + data.Length);
        s[0] = kind;
        s[1] = (byte)(2 + data.Length);
        data.CopyTo(s.Slice(2));
    }
}
