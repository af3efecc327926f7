using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>An IPv6 fixed header (RFC 8200 §3).</summary>
public readonly ref struct Ipv6Header
{
    /// <summary>The fixed header's length: 40 bytes.</summary>
    public const int Length = 40;

    // From the header's first byte to the end of the payload (40 + payload length), clipped to the capture.
    private readonly ReadOnlySpan<byte> _data;

    internal Ipv6Header(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>Reads and validates the header: version and payload length against the capture. Never throws.</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out Ipv6Header header, out ParseError error) =>
        TryRead(data, allowTruncated: false, out header, out error);

    /// <summary>As <see cref="TryRead(ReadOnlySpan{byte}, out Ipv6Header, out ParseError)"/>; <paramref name="allowTruncated"/> accepts a payload cut short by the capture.</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, bool allowTruncated, out Ipv6Header header, out ParseError error)
    {
        int end = Measure(data, allowTruncated);
        if (end < 0)
        {
            header = default;
            error = ParseError.FromCode(end, LayerKind.IPv6);
            return false;
        }
        header = new Ipv6Header(data.Slice(0, end));
        error = default;
        return true;
    }

    /// <summary>
    /// <see cref="TryRead(ReadOnlySpan{byte}, bool, out Ipv6Header, out ParseError)"/>'s checks, answering the
    /// datagram's length (40 or more, at most <c>data.Length</c>) or a <see cref="ParseError.Code"/>, for the
    /// dissector to inline.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int Measure(ReadOnlySpan<byte> data, bool allowTruncated)
    {
        if (data.Length < Length)
        {
            return ParseError.Code(ParseErrorReason.Truncated, 0);
        }
        if ((data[0] >> 4) != 6)
        {
            return ParseError.Code(ParseErrorReason.BadVersion, 0);
        }
        int end = Length + ResolvePayloadLength((data[4] << 8) | data[5], data[6], data.Length);
        if (end > data.Length)
        {
            if (!allowTruncated)
            {
                return ParseError.Code(ParseErrorReason.TotalLengthBeyondCapture, 4);
            }
            end = data.Length;
        }
        return end;
    }

    /// <summary>
    /// The payload length a payload-length field stands for, given the <paramref name="available"/> bytes
    /// from the header on. 0 before anything but "no next header" is a GSO packet longer than 65,535
    /// bytes (BIG TCP) or a jumbogram (RFC 2675), so the payload is all that is available after the fixed
    /// header; any other value is itself.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ResolvePayloadLength(int payloadLength, byte nextHeader, int available) =>
        payloadLength == 0 && nextHeader != IpProtocols.NoNextHeader ? Math.Max(available - Length, 0) : payloadLength;

    /// <summary>Reads the header or throws <see cref="PacketParseException"/>.</summary>
    public static Ipv6Header Read(ReadOnlySpan<byte> data)
    {
        if (!TryRead(data, out var h, out var e))
        {
            ThrowHelper.ThrowParse(e);
        }
        return h;
    }

    /// <summary><c>ipv6.version</c>.</summary>
    public byte Version
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (byte)(_data[0] >> 4);
    }

    /// <summary><c>ipv6.tclass</c>: the 8-bit traffic class.</summary>
    public byte TrafficClass
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (byte)((BinaryPrimitives.ReadUInt16BigEndian(_data) >> 4) & 0xFF);
    }

    /// <summary><c>ipv6.tclass.dscp</c>.</summary>
    public byte Dscp => (byte)(TrafficClass >> 2);

    /// <summary><c>ipv6.tclass.ecn</c>.</summary>
    public byte Ecn => (byte)(TrafficClass & 3);

    /// <summary><c>ipv6.flow</c>: the 20-bit flow label.</summary>
    public uint FlowLabel
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt32BigEndian(_data) & 0xFFFFF;
    }

    /// <summary><c>ipv6.plen</c>: the payload length field as sent.</summary>
    public ushort PayloadLength
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(4, 2));
    }

    /// <summary><c>ipv6.nxt</c>: the first next-header value.</summary>
    public byte NextHeader
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _data[6];
    }

    /// <summary><c>ipv6.hlim</c>.</summary>
    public byte HopLimit
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _data[7];
    }

    /// <summary><c>ipv6.src</c>.</summary>
    public Ipv6Address Source
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Ipv6Address.Read(_data.Slice(8, 16));
    }

    /// <summary><c>ipv6.dst</c>.</summary>
    public Ipv6Address Destination
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Ipv6Address.Read(_data.Slice(24, 16));
    }

    /// <summary>The payload (extension headers included), clipped to the capture.</summary>
    public ReadOnlySpan<byte> Payload => _data.Slice(Length);

    /// <summary>True when the capture holds fewer bytes than the payload length says (only with allowTruncated).</summary>
    public bool IsTruncated => _data.Length < Length + PayloadLength;

    /// <summary>The pseudo-header sum for an upper layer (RFC 8200 §8.1) with the given next header and length.</summary>
    public uint PseudoHeaderSum(byte upperLayerProtocol, int upperLayerLength) =>
        InternetChecksum.PseudoHeaderSum(Source, Destination, upperLayerProtocol, upperLayerLength);

    /// <summary>
    /// Walks the extension-header chain to the upper-layer protocol (RFC 8200 §4). Fails with
    /// <see cref="ParseErrorReason.ExtensionHeaderLoop"/> or <see cref="ParseErrorReason.ExtensionHeaderChainTooLong"/>
    /// on a malformed chain; offsets are relative to the IPv6 header. Never throws.
    /// </summary>
    public bool TryFindUpperLayer(out Ipv6UpperLayer upperLayer, out ParseError error, int maxExtensionHeaders = Ipv6ChainState.DefaultMaxHeaders)
    {
        var chain = new Ipv6ChainState(maxExtensionHeaders);
        byte next = NextHeader;
        int offset = Length;
        var frag = FragmentState.None;
        while (Ipv6ExtensionHeader.IsExtensionHeader(next) && next != IpProtocols.Esp)
        {
            var reason = chain.Enter(next);
            if (reason != ParseErrorReason.None)
            {
                upperLayer = default;
                error = new ParseError(reason, offset, Ipv6ExtensionHeader.KindOf(next));
                return false;
            }
            if (!Ipv6ExtensionHeader.TryRead(_data.Slice(offset), next, out var ext, out error))
            {
                upperLayer = default;
                error = error.WithOffset(offset);
                return false;
            }
            if (next == IpProtocols.Fragment)
            {
                frag = ext.FragmentOffset == 0 && ext.MoreFragments ? FragmentState.First
                    : ext.FragmentOffset == 0 ? FragmentState.None : FragmentState.NonFirst;
            }
            if (next == IpProtocols.Ah)
            {
                // RFC 4302: AH is recognised but the walk stops, as for ESP.
                break;
            }
            next = ext.NextHeader;
            offset += ext.Length;
        }
        upperLayer = new Ipv6UpperLayer(next, offset, frag);
        error = default;
        return true;
    }
}

/// <summary>Where the IPv6 extension-header chain ends: the upper-layer protocol and its offset from the IPv6 header.</summary>
public readonly struct Ipv6UpperLayer
{
    internal Ipv6UpperLayer(byte protocol, int offset, FragmentState fragment)
    {
        Protocol = protocol;
        Offset = offset;
        Fragment = fragment;
    }

    /// <summary>The upper-layer protocol (or 50/51 when the chain stops at ESP/AH, 59 for no next header).</summary>
    public byte Protocol { get; }

    /// <summary>The upper-layer header's offset from the start of the IPv6 header.</summary>
    public int Offset { get; }

    /// <summary>The fragment state given by a fragment header in the chain.</summary>
    public FragmentState Fragment { get; }
}

/// <summary>
/// Tracks an extension-header chain against RFC 8200 §4.1: hop-by-hop only first, each header at most once
/// except destination options (twice: before routing and before the upper layer), and a length cap.
/// </summary>
public struct Ipv6ChainState
{
    /// <summary>The default cap on extension headers in one chain.</summary>
    public const int DefaultMaxHeaders = 8;

    private readonly int _max;
    private int _count;
    private int _destinationOptions;
    private uint _seen;

    /// <summary>Starts a chain with the given cap.</summary>
    public Ipv6ChainState(int maxHeaders)
    {
        _max = maxHeaders;
        _count = 0;
        _destinationOptions = 0;
        _seen = 0;
    }

    /// <summary>Records the next header of the chain; returns the reason it is not allowed, or None.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ParseErrorReason Enter(byte type)
    {
        if (++_count > _max)
        {
            return ParseErrorReason.ExtensionHeaderChainTooLong;
        }
        switch (type)
        {
            case IpProtocols.HopByHopOptions:
                // RFC 8200 §4.3: hop-by-hop must immediately follow the IPv6 header.
                return _count == 1 ? ParseErrorReason.None : ParseErrorReason.ExtensionHeaderLoop;
            case IpProtocols.DestinationOptions:
                return ++_destinationOptions <= 2 ? ParseErrorReason.None : ParseErrorReason.ExtensionHeaderLoop;
            default:
                uint bit = type switch { IpProtocols.Routing => 1u, IpProtocols.Fragment => 2u, IpProtocols.Ah => 4u, _ => 8u };
                if ((_seen & bit) != 0)
                {
                    return ParseErrorReason.ExtensionHeaderLoop;
                }
                _seen |= bit;
                return ParseErrorReason.None;
        }
    }
}
