using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>An IPv4 header (RFC 791 §3.1) with its options and fragment fields.</summary>
public readonly ref struct Ipv4Header
{
    /// <summary>The header's length without options: 20 bytes.</summary>
    public const int MinLength = 20;

    /// <summary>The header's longest form: IHL 15, 60 bytes.</summary>
    public const int MaxLength = 60;

    // From the header's first byte to the end of the datagram (TotalLength), clipped to the capture.
    private readonly ReadOnlySpan<byte> _data;

    internal Ipv4Header(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>
    /// Reads and validates the header at the start of <paramref name="data"/>: version, IHL, total length
    /// against the capture, and the option list. Never throws.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out Ipv4Header header, out ParseError error) =>
        TryRead(data, allowTruncated: false, out header, out error);

    /// <summary>
    /// As <see cref="TryRead(ReadOnlySpan{byte}, out Ipv4Header, out ParseError)"/>; with
    /// <paramref name="allowTruncated"/> a total length beyond the capture is accepted (a snaplen-cut
    /// record, or the original datagram quoted in an ICMP error) and the payload is what was captured.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> data, bool allowTruncated, out Ipv4Header header, out ParseError error)
    {
        int total = Measure(data, allowTruncated);
        if (total < 0)
        {
            header = default;
            error = ParseError.FromCode(total, LayerKind.IPv4);
            return false;
        }
        header = new Ipv4Header(data.Slice(0, total));
        error = default;
        return true;
    }

    /// <summary>
    /// <see cref="TryRead(ReadOnlySpan{byte}, bool, out Ipv4Header, out ParseError)"/>'s checks, answering the
    /// datagram's length (20 or more, at most <c>data.Length</c>) or a <see cref="ParseError.Code"/>, for the
    /// dissector to inline.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Measure(ReadOnlySpan<byte> data, bool allowTruncated)
    {
        if (data.Length < MinLength)
        {
            return ParseError.Code(ParseErrorReason.Truncated, 0);
        }
        // data.Length >= 20 is known from here on, so the JIT drops the bounds checks on the fixed fields.
        if ((data[0] >> 4) != 4)
        {
            return ParseError.Code(ParseErrorReason.BadVersion, 0);
        }
        int hl = (data[0] & 0x0F) * 4;
        if (hl < MinLength)
        {
            return ParseError.Code(ParseErrorReason.BadHeaderLength, 0);
        }
        if (hl > data.Length)
        {
            return ParseError.Code(ParseErrorReason.HeaderLengthBeyondPacket, 0);
        }
        int total = ResolveTotalLength((data[2] << 8) | data[3], data.Length);
        if (total < hl)
        {
            return ParseError.Code(ParseErrorReason.BadTotalLength, 2);
        }
        if (total > data.Length)
        {
            if (!allowTruncated)
            {
                return ParseError.Code(ParseErrorReason.TotalLengthBeyondCapture, 2);
            }
            total = data.Length;
        }
        if (hl > MinLength)
        {
            int bad = OptionTlv.FindMalformed(data.Slice(MinLength, hl - MinLength));
            if (bad >= 0)
            {
                return ParseError.Code(ParseErrorReason.BadOptionLength, MinLength + bad);
            }
        }
        return total;
    }

    /// <summary>
    /// The datagram length a total-length field stands for, given the <paramref name="available"/> bytes
    /// from the header on. 0 is what the kernel writes into a GSO packet longer than 65,535 bytes (BIG
    /// TCP) and what TSO captures show, so the datagram is all that is available, as Wireshark presumes;
    /// any other value is itself.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ResolveTotalLength(int totalLength, int available) => totalLength == 0 ? available : totalLength;

    /// <summary>Reads the header or throws <see cref="PacketParseException"/>.</summary>
    public static Ipv4Header Read(ReadOnlySpan<byte> data)
    {
        if (!TryRead(data, out var h, out var e))
        {
            ThrowHelper.ThrowParse(e);
        }
        return h;
    }

    /// <summary><c>ip.version</c> (always 4 once read).</summary>
    public byte Version => (byte)(_data[0] >> 4);

    /// <summary>The raw IHL nibble (32-bit words).</summary>
    public byte Ihl => (byte)(_data[0] & 0x0F);

    /// <summary><c>ip.hdr_len</c>: the header length in bytes, options included.</summary>
    public int HeaderLength => Ihl * 4;

    /// <summary><c>ip.dsfield</c>: the whole former TOS byte.</summary>
    public byte TypeOfService => _data[1];

    /// <summary><c>ip.dsfield.dscp</c> (RFC 2474).</summary>
    public byte Dscp => (byte)(_data[1] >> 2);

    /// <summary><c>ip.dsfield.ecn</c> (RFC 3168).</summary>
    public byte Ecn => (byte)(_data[1] & 3);

    /// <summary><c>ip.len</c>: the total length field as sent.</summary>
    public ushort TotalLength => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(2, 2));

    /// <summary><c>ip.id</c>.</summary>
    public ushort Identification => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(4, 2));

    /// <summary>The 16 bits of flags and fragment offset.</summary>
    public ushort FlagsAndFragmentOffset => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(6, 2));

    /// <summary><c>ip.flags</c>: the three flag bits (reserved, DF, MF) as a number 0–7.</summary>
    public byte Flags => (byte)(_data[6] >> 5);

    /// <summary><c>ip.flags.rb</c>: the reserved bit.</summary>
    public bool ReservedFlag => (_data[6] & 0x80) != 0;

    /// <summary><c>ip.flags.df</c>: don't fragment.</summary>
    public bool DontFragment => (_data[6] & 0x40) != 0;

    /// <summary><c>ip.flags.mf</c>: more fragments.</summary>
    public bool MoreFragments => (_data[6] & 0x20) != 0;

    /// <summary>The fragment offset field in 8-byte units.</summary>
    public ushort FragmentOffset => (ushort)(FlagsAndFragmentOffset & 0x1FFF);

    /// <summary><c>ip.frag_offset</c>: the fragment offset in bytes (Wireshark shows bytes).</summary>
    public int FragmentOffsetBytes => FragmentOffset * 8;

    /// <summary>True when this datagram is a fragment (MF set or a non-zero offset).</summary>
    public bool IsFragment => (FlagsAndFragmentOffset & 0x3FFF) != 0;

    /// <summary>First fragment, later fragment, or not a fragment.</summary>
    public FragmentState FragmentState =>
        (FlagsAndFragmentOffset & 0x3FFF) == 0 ? FragmentState.None
        : FragmentOffset == 0 ? FragmentState.First : FragmentState.NonFirst;

    /// <summary><c>ip.ttl</c>.</summary>
    public byte TimeToLive => _data[8];

    /// <summary><c>ip.proto</c>.</summary>
    public byte Protocol => _data[9];

    /// <summary><c>ip.checksum</c> as sent.</summary>
    public ushort HeaderChecksum => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(10, 2));

    /// <summary><c>ip.src</c>.</summary>
    public Ipv4Address Source => Ipv4Address.Read(_data.Slice(12, 4));

    /// <summary><c>ip.dst</c>.</summary>
    public Ipv4Address Destination => Ipv4Address.Read(_data.Slice(16, 4));

    /// <summary>The raw options area (IHL × 4 − 20 bytes, padding included).</summary>
    public ReadOnlySpan<byte> Options => _data.Slice(MinLength, HeaderLength - MinLength);

    /// <summary>Iterates the options (<c>ip.opt.type</c>, <c>ip.opt.len</c>).</summary>
    public Ipv4OptionEnumerator GetOptions() => new(Options);

    /// <summary>The header bytes, options included.</summary>
    public ReadOnlySpan<byte> HeaderBytes => _data.Slice(0, HeaderLength);

    /// <summary>The datagram's payload: up to the total length, or to the end of the capture when that is shorter.</summary>
    public ReadOnlySpan<byte> Payload => _data.Slice(HeaderLength);

    /// <summary>True when the capture holds fewer bytes than <see cref="TotalLength"/> (only with allowTruncated).</summary>
    public bool IsTruncated => _data.Length < TotalLength;

    /// <summary>Verifies the header checksum (<c>ip.checksum.status</c>).</summary>
    public ChecksumStatus VerifyChecksum() =>
        InternetChecksum.IsValid(HeaderBytes) ? ChecksumStatus.Good : ChecksumStatus.Bad;

    /// <summary>The pseudo-header sum for this datagram's upper layer (RFC 9293 §3.1).</summary>
    public uint PseudoHeaderSum(int upperLayerLength) =>
        InternetChecksum.PseudoHeaderSum(Source, Destination, Protocol, upperLayerLength);

    /// <summary>
    /// Writes a header with its options (padded with end-of-list zeros to a multiple of 4) and its checksum;
    /// returns the header length.
    /// </summary>
    public static int Write(Span<byte> destination, Ipv4Address source, Ipv4Address destinationAddress, byte protocol,
        int payloadLength, byte ttl = 64, ushort identification = 0, bool dontFragment = false, bool moreFragments = false,
        ushort fragmentOffset = 0, byte dscp = 0, byte ecn = 0, ReadOnlySpan<byte> options = default, bool reservedFlag = false)
    {
        int hl = MinLength + ((options.Length + 3) & ~3);
        if (hl > MaxLength)
        {
            ThrowHelper.ThrowArgument("IPv4 header", $"{options.Length} option bytes exceed the 40 that fit");
        }
        if (hl + payloadLength > ushort.MaxValue)
        {
            ThrowHelper.ThrowArgument("IPv4 header", $"total length {hl + payloadLength} exceeds 65535");
        }
        if (destination.Length < hl)
        {
            ThrowHelper.ThrowDestinationTooSmall("IPv4 header", hl, destination.Length);
        }
        destination[0] = (byte)(0x40 | (hl / 4));
        destination[1] = (byte)((dscp << 2) | (ecn & 3));
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), (ushort)(hl + payloadLength));
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(4), identification);
        ushort ff = (ushort)((reservedFlag ? 0x8000 : 0) | (dontFragment ? 0x4000 : 0) | (moreFragments ? 0x2000 : 0) | (fragmentOffset & 0x1FFF));
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(6), ff);
        destination[8] = ttl;
        destination[9] = protocol;
        destination[10] = 0;
        destination[11] = 0;
        source.Write(destination.Slice(12));
        destinationAddress.Write(destination.Slice(16));
        options.CopyTo(destination.Slice(MinLength));
        destination.Slice(MinLength + options.Length, hl - MinLength - options.Length).Clear();
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(10), InternetChecksum.Compute(destination.Slice(0, hl)));
        return hl;
    }
}

/// <summary>Whether a datagram is a fragment, and which kind (first carries the L4 header; later ones do not).</summary>
public enum FragmentState : byte
{
    /// <summary>Not fragmented.</summary>
    None = 0,
    /// <summary>Offset 0 with more fragments to come: the upper-layer header is here.</summary>
    First = 1,
    /// <summary>Offset &gt; 0: no upper-layer header.</summary>
    NonFirst = 2,
}

/// <summary>One IPv4 option (RFC 791 §3.1): type, length and data (kinds 0 and 1 have no length byte).</summary>
public readonly ref struct Ipv4Option
{
    internal Ipv4Option(ReadOnlySpan<byte> raw) => Raw = raw;

    /// <summary>The whole option, type byte included.</summary>
    public ReadOnlySpan<byte> Raw { get; }

    /// <summary><c>ip.opt.type</c>: the whole type byte (copied flag, class, number).</summary>
    public byte Type => Raw[0];

    /// <summary><c>ip.opt.type.copy</c>.</summary>
    public bool Copied => (Raw[0] & 0x80) != 0;

    /// <summary><c>ip.opt.type.class</c>.</summary>
    public byte Class => (byte)((Raw[0] >> 5) & 3);

    /// <summary><c>ip.opt.type.number</c>.</summary>
    public byte Number => (byte)(Raw[0] & 0x1F);

    /// <summary><c>ip.opt.len</c>: the length byte (1 for end-of-list and no-op, which carry none).</summary>
    public int Length => Raw.Length;

    /// <summary>The option's data after type and length.</summary>
    public ReadOnlySpan<byte> Data => Raw.Length > 2 ? Raw.Slice(2) : default;
}

/// <summary>Iterates IPv4 options with <c>foreach</c>; stops at end-of-list or a malformed option.</summary>
public ref struct Ipv4OptionEnumerator
{
    private readonly ReadOnlySpan<byte> _options;
    private int _position;
    private int _start;
    private int _length;

    internal Ipv4OptionEnumerator(ReadOnlySpan<byte> options)
    {
        _options = options;
        _position = 0;
        _start = 0;
        _length = 0;
    }

    /// <summary>Enables <c>foreach</c>.</summary>
    public readonly Ipv4OptionEnumerator GetEnumerator() => this;

    /// <summary>Advances to the next option.</summary>
    public bool MoveNext() => OptionTlv.Next(_options, ref _position, out _start, out _length);

    /// <summary>The current option.</summary>
    public readonly Ipv4Option Current => new(_options.Slice(_start, _length));
}
