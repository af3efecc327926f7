using System.Buffers.Binary;
using Membrane.Packets;

namespace Membrane.Datapath.Conntrack;

/// <summary>Why <see cref="CtPacket.TryFromFrame"/> could not describe a frame.</summary>
public enum CtFrameErrorReason : byte
{
    /// <summary>No error.</summary>
    None = 0,
    /// <summary>The frame is not IPv4 or IPv6 (ARP, another EtherType); conntrack never sees it.</summary>
    NotIp,
    /// <summary>A header is malformed or cut short; <see cref="CtFrameError.Parse"/> says which and where.</summary>
    Malformed,
    /// <summary>The L4 header of a first fragment or unfragmented packet is shorter than conntrack needs (ports, flags, ICMP header).</summary>
    TransportTruncated,
}

/// <summary>A typed reason, the byte offset it refers to, and the underlying parse error when there is one.</summary>
public readonly record struct CtFrameError(CtFrameErrorReason Reason, int Offset, ParseError Parse)
{
    /// <summary>"failed to read a conntrack packet from the frame: …".</summary>
    public string Message => Reason switch
    {
        CtFrameErrorReason.None => "no error",
        CtFrameErrorReason.NotIp => $"failed to read a conntrack packet from the frame: EtherType at byte {Offset} is neither IPv4 nor IPv6",
        CtFrameErrorReason.Malformed => $"failed to read a conntrack packet from the frame: {Parse.Message}",
        CtFrameErrorReason.TransportTruncated => $"failed to read a conntrack packet from the frame: the L4 header at byte {Offset} is shorter than conntrack needs",
        _ => $"failed to read a conntrack packet from the frame: reason {Reason}",
    };

    /// <inheritdoc/>
    public override string ToString() => Message;
}

public readonly partial struct CtPacket
{
    private const byte Sctp = 132;

    /// <summary>
    /// Describes an Ethernet frame (802.1Q/802.1ad tags allowed) the way the datapath sees it: the outermost
    /// IP header (no tunnel is decapsulated: conntrack tracks what the pod sends), the IPv6 extension chain,
    /// and the L4 header; for an ICMP error also the quoted packet's tuple. <see cref="Length"/> is the frame's
    /// length (what skb->len is at tc). Never throws; false with a typed <paramref name="error"/> on frames
    /// conntrack could not classify. A malformed ICMP error quote is not an error here: the packet is an ICMP
    /// error with no usable quote, which the model finds INVALID (as the datapath drops it).
    /// </summary>
    public static bool TryFromFrame(ReadOnlySpan<byte> frame, out CtPacket packet, out CtFrameError error)
    {
        packet = default;
        if (!EthernetHeader.TryRead(frame, out _, out var parse))
        {
            error = new CtFrameError(CtFrameErrorReason.Malformed, 0, parse);
            return false;
        }
        int offset = EthernetHeader.Length;
        ushort etherType = BinaryPrimitives.ReadUInt16BigEndian(frame.Slice(12));
        while (VlanHeader.IsTagType(etherType))
        {
            if (!VlanHeader.TryRead(frame.Slice(offset), out var tag, out parse))
            {
                error = new CtFrameError(CtFrameErrorReason.Malformed, offset, parse.WithOffset(offset));
                return false;
            }
            etherType = tag.EtherType;
            offset += VlanHeader.Length;
        }

        IpAddress source, destination;
        byte protocol;
        bool laterFragment;
        ReadOnlySpan<byte> l4;
        int l4Offset;
        if (etherType == EtherTypes.IPv4)
        {
            if (!Ipv4Header.TryRead(frame.Slice(offset), out var ip, out parse))
            {
                error = new CtFrameError(CtFrameErrorReason.Malformed, offset, parse.WithOffset(offset));
                return false;
            }
            source = new IpAddress(ip.Source);
            destination = new IpAddress(ip.Destination);
            protocol = ip.Protocol;
            laterFragment = ip.FragmentOffset != 0;
            l4Offset = offset + ip.HeaderLength;
            // The reader's view ends at the total length: Ethernet padding is not L4 data.
            l4 = ip.Payload;
        }
        else if (etherType == EtherTypes.IPv6)
        {
            if (!Ipv6Header.TryRead(frame.Slice(offset), out var ip, out parse))
            {
                error = new CtFrameError(CtFrameErrorReason.Malformed, offset, parse.WithOffset(offset));
                return false;
            }
            if (!ip.TryFindUpperLayer(out var upper, out parse))
            {
                error = new CtFrameError(CtFrameErrorReason.Malformed, offset + parse.Offset, parse.WithOffset(offset));
                return false;
            }
            source = new IpAddress(ip.Source);
            destination = new IpAddress(ip.Destination);
            protocol = upper.Protocol;
            laterFragment = upper.Fragment == FragmentState.NonFirst;
            l4Offset = offset + upper.Offset;
            l4 = ip.Payload.Slice(upper.Offset - Ipv6Header.Length);
        }
        else
        {
            error = new CtFrameError(CtFrameErrorReason.NotIp, 12, default);
            return false;
        }

        uint length = (uint)frame.Length;
        if (laterFragment)
        {
            packet = LaterFragment(protocol, source, destination, length);
            error = default;
            return true;
        }

        // A first fragment carries the L4 header, which is all conntrack reads (Linux reassembles before
        // conntrack; the datapath reads the first fragment's header), so fragment or not is the same below.
        byte family = source.Version;
        switch (protocol)
        {
            case IpProtocols.Tcp:
                // Only the fixed part matters: ports and the flags byte (RFC 9293 §3.1, byte 13).
                if (l4.Length < TcpHeader.MinLength)
                {
                    return Truncated(l4Offset, out error);
                }
                packet = Tcp(source, destination, BinaryPrimitives.ReadUInt16BigEndian(l4), BinaryPrimitives.ReadUInt16BigEndian(l4.Slice(2)), l4[13], length);
                break;
            case IpProtocols.Udp or Sctp:
                if (l4.Length < 4)
                {
                    return Truncated(l4Offset, out error);
                }
                packet = Ports(protocol, source, destination, BinaryPrimitives.ReadUInt16BigEndian(l4), BinaryPrimitives.ReadUInt16BigEndian(l4.Slice(2)), length);
                break;
            case IpProtocols.Icmp when family == 4:
            case IpProtocols.Icmpv6 when family == 6:
                // The 8-byte common header is all conntrack reads (RFC 792, RFC 4443 §2.1); ND options are not its business.
                if (l4.Length < Icmpv4Header.Length)
                {
                    return Truncated(l4Offset, out error);
                }
                byte type = l4[0];
                byte code = l4[1];
                packet = IsErrorType(family, type)
                    ? IcmpError(source, destination, type, code, ReadQuote(family, l4.Slice(8)), length)
                    : Icmp(source, destination, type, code, BinaryPrimitives.ReadUInt16BigEndian(l4.Slice(4)), length);
                break;
            default:
                packet = Other(protocol, source, destination, length);
                break;
        }
        error = default;
        return true;
    }

    /// <summary>As <see cref="TryFromFrame"/>, throwing <see cref="FormatException"/> with the error's message.</summary>
    public static CtPacket FromFrame(ReadOnlySpan<byte> frame) =>
        TryFromFrame(frame, out var packet, out var error) ? packet : throw new FormatException(error.Message);

    private static bool Truncated(int offset, out CtFrameError error)
    {
        error = new CtFrameError(CtFrameErrorReason.TransportTruncated, offset, default);
        return false;
    }

    // The tuple of the packet an ICMP error quotes (RFC 792: its IP header and at least 8 bytes; RFC 4443
    // §2.4(c): as much as fits), as Linux icmp_error_message/icmpv6_error_message get it with
    // nf_ct_get_tuplepr. Null when it has none: a malformed quote, a later fragment, ports cut off, or an
    // ICMP message other than echo (an error about an error has no tuple, Linux icmp_pkt_to_tuple).
    private static CtTuple? ReadQuote(byte family, ReadOnlySpan<byte> quote)
    {
        IpAddress source, destination;
        byte protocol;
        ReadOnlySpan<byte> l4;
        if (family == 4)
        {
            if (!Ipv4Header.TryRead(quote, allowTruncated: true, out var ip, out _) || ip.FragmentOffset != 0)
            {
                return null;
            }
            source = new IpAddress(ip.Source);
            destination = new IpAddress(ip.Destination);
            protocol = ip.Protocol;
            l4 = ip.Payload;
        }
        else
        {
            if (!Ipv6Header.TryRead(quote, allowTruncated: true, out var ip, out _)
                || !ip.TryFindUpperLayer(out var upper, out _) || upper.Fragment == FragmentState.NonFirst)
            {
                return null;
            }
            source = new IpAddress(ip.Source);
            destination = new IpAddress(ip.Destination);
            protocol = upper.Protocol;
            l4 = ip.Payload.Slice(upper.Offset - Ipv6Header.Length);
        }

        switch (protocol)
        {
            case IpProtocols.Tcp or IpProtocols.Udp or Sctp:
                return l4.Length < 4 ? null
                    : new CtTuple(source, destination, BinaryPrimitives.ReadUInt16BigEndian(l4), BinaryPrimitives.ReadUInt16BigEndian(l4.Slice(2)), protocol);
            case IpProtocols.Icmp when family == 4:
            case IpProtocols.Icmpv6 when family == 6:
                if (l4.Length < 8 || !(IsEchoRequest(family, l4[0]) || IsEchoReply(family, l4[0])))
                {
                    return null;
                }
                (ushort sport, ushort dport) = EchoPorts(family, l4[0], BinaryPrimitives.ReadUInt16BigEndian(l4.Slice(4)));
                return new CtTuple(source, destination, sport, dport, protocol);
            default:
                return new CtTuple(source, destination, 0, 0, protocol);
        }
    }
}
