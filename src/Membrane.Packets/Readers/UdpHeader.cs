using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>A UDP header (RFC 768).</summary>
public readonly ref struct UdpHeader
{
    /// <summary>The header's length: 8 bytes.</summary>
    public const int Length = 8;

    // From the header to the end of the datagram (the length field), clipped to the capture.
    private readonly ReadOnlySpan<byte> _data;

    internal UdpHeader(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>Reads and validates the header: the length field against the header and the capture. Never throws.</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out UdpHeader header, out ParseError error) =>
        TryRead(data, allowTruncated: false, out header, out error);

    /// <summary>As <see cref="TryRead(ReadOnlySpan{byte}, out UdpHeader, out ParseError)"/>; <paramref name="allowTruncated"/> accepts a datagram cut short by the capture.</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, bool allowTruncated, out UdpHeader header, out ParseError error)
    {
        int len = Measure(data, allowTruncated);
        if (len < 0)
        {
            header = default;
            error = ParseError.FromCode(len, LayerKind.Udp);
            return false;
        }
        header = new UdpHeader(data.Slice(0, len));
        error = default;
        return true;
    }

    /// <summary>
    /// <see cref="TryRead(ReadOnlySpan{byte}, bool, out UdpHeader, out ParseError)"/>'s checks, answering the
    /// datagram's length (8 or more, at most <c>data.Length</c>) or a <see cref="ParseError.Code"/>, for the
    /// dissector to inline.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Measure(ReadOnlySpan<byte> data, bool allowTruncated)
    {
        if (data.Length < Length)
        {
            return ParseError.Code(ParseErrorReason.Truncated, 0);
        }
        int len = (data[4] << 8) | data[5];
        if (len < Length)
        {
            return ParseError.Code(ParseErrorReason.BadTotalLength, 4);
        }
        if (len > data.Length)
        {
            if (!allowTruncated)
            {
                return ParseError.Code(ParseErrorReason.TotalLengthBeyondCapture, 4);
            }
            len = data.Length;
        }
        return len;
    }

    /// <summary>Reads the header or throws <see cref="PacketParseException"/>.</summary>
    public static UdpHeader Read(ReadOnlySpan<byte> data)
    {
        if (!TryRead(data, out var h, out var e))
        {
            ThrowHelper.ThrowParse(e);
        }
        return h;
    }

    /// <summary><c>udp.srcport</c>.</summary>
    public ushort SourcePort => BinaryPrimitives.ReadUInt16BigEndian(_data);

    /// <summary><c>udp.dstport</c>.</summary>
    public ushort DestinationPort => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(2, 2));

    /// <summary><c>udp.length</c> as sent.</summary>
    public ushort LengthField => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(4, 2));

    /// <summary><c>udp.checksum</c> as sent (0 = none over IPv4).</summary>
    public ushort Checksum => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(6, 2));

    /// <summary>The datagram's data.</summary>
    public ReadOnlySpan<byte> Payload => _data.Slice(Length);

    /// <summary>The whole datagram as held.</summary>
    public ReadOnlySpan<byte> Datagram => _data;

    /// <summary>True when the capture holds fewer bytes than the length field says (only with allowTruncated).</summary>
    public bool IsTruncated => _data.Length < LengthField;

    /// <summary>Verifies the checksum given the enclosing IP pseudo-header sum; a zero checksum is <see cref="ChecksumStatus.Absent"/> (RFC 768).</summary>
    public ChecksumStatus VerifyChecksum(uint pseudoHeaderSum) =>
        IsTruncated ? ChecksumStatus.Unverifiable
        : Checksum == 0 ? ChecksumStatus.Absent
        : InternetChecksum.IsValid(_data, pseudoHeaderSum) ? ChecksumStatus.Good : ChecksumStatus.Bad;

    /// <summary>Writes a header for <paramref name="payloadLength"/> bytes of data, checksum 0 (fill it once the payload is in place); returns 8.</summary>
    public static int Write(Span<byte> destination, ushort sourcePort, ushort destinationPort, int payloadLength)
    {
        if (destination.Length < Length)
        {
            ThrowHelper.ThrowDestinationTooSmall("UDP header", Length, destination.Length);
        }
        if (payloadLength + Length > ushort.MaxValue)
        {
            ThrowHelper.ThrowArgument("UDP header", $"length {payloadLength + Length} exceeds 65535");
        }
        BinaryPrimitives.WriteUInt16BigEndian(destination, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(4), (ushort)(payloadLength + Length));
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(6), 0);
        return Length;
    }

    /// <summary>
    /// The value to store in a UDP checksum field: the computed checksum, or 0xFFFF when it computes to 0
    /// (RFC 768: zero means "no checksum", so a real zero is sent as all ones).
    /// </summary>
    public static ushort ChecksumFieldValue(uint pseudoHeaderSum, ReadOnlySpan<byte> datagramWithZeroChecksum)
    {
        ushort c = InternetChecksum.Finish(InternetChecksum.Sum(datagramWithZeroChecksum, pseudoHeaderSum));
        return c == 0 ? (ushort)0xFFFF : c;
    }
}
