using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>
/// The hot-path flow-key extractor: outer and inner 5-tuple, VLAN ids, VNI and fragment state in one
/// straight-line pass, with no allocation, no virtual call and no exception on any input. It does not
/// validate what it does not need (checksums, options); use <see cref="PacketDissector"/> for that.
/// Length fields are trusted only as far as the captured bytes go.
/// </summary>
public static class FlowKeyExtractor
{
    private const int MaxVlanTags = 4;

    /// <summary>Extracts from an Ethernet frame with the default tunnel ports. True when an outer IP header was read.</summary>
    public static bool TryExtract(ReadOnlySpan<byte> frame, out FlowKey key) =>
        TryExtract(frame, LinkType.Ethernet, DissectorOptions.Default, out key);

    /// <summary>Extracts from a frame of <paramref name="linkType"/>. True when an outer IP header was read.</summary>
    public static bool TryExtract(ReadOnlySpan<byte> frame, LinkType linkType, DissectorOptions options, out FlowKey key)
    {
        key = default;
        int offset;
        ushort etherType;
        switch (linkType)
        {
            case LinkType.Ethernet:
                if (!SkipEthernet(frame, 0, out offset, out etherType, ref key, outer: true))
                {
                    return false;
                }
                break;
            case LinkType.RawIp:
            case LinkType.Ipv4:
            case LinkType.Ipv6:
                if (frame.IsEmpty)
                {
                    return false;
                }
                offset = 0;
                etherType = (frame[0] >> 4) == 6 ? EtherTypes.IPv6 : EtherTypes.IPv4;
                break;
            default:
                return false;
        }

        if (!TryNetwork(frame, offset, etherType, ref key.Outer, out int l4, out int end))
        {
            return false;
        }

        byte proto = key.Outer.Protocol;
        if (key.Outer.Fragment != FragmentState.None)
        {
            // A tunnel inside a fragment is decapsulated only after reassembly (as the kernel does), and the
            // dissector leaves fragments as payload: the first fragment's ports are all this key reports.
            return true;
        }
        if (proto == IpProtocols.Udp)
        {
            ushort dport = key.Outer.DestinationPort;
            int tunnel = l4 + UdpHeader.Length;
            if (options.VxlanPorts.Contains(dport))
            {
                // RFC 7348 §5: 8-byte header, VNI in bytes 4–6, inner Ethernet after it.
                if (tunnel + VxlanHeader.Length > end)
                {
                    return true;
                }
                key.Tunnel = TunnelKind.Vxlan;
                key.Vni = BinaryPrimitives.ReadUInt32BigEndian(frame.Slice(tunnel + 4)) >> 8;
                var inner = frame.Slice(0, end);
                if (SkipEthernet(inner, tunnel + VxlanHeader.Length, out int innerOffset, out ushort innerType, ref key, outer: false))
                {
                    TryNetwork(inner, innerOffset, innerType, ref key.Inner, out _, out _);
                }
            }
            else if (options.GenevePorts.Contains(dport))
            {
                // RFC 8926 §3.4: 8 bytes + options (6-bit length in 4-byte words), protocol type in bytes 2–3.
                if (tunnel + GeneveHeader.MinLength > end)
                {
                    return true;
                }
                key.Tunnel = TunnelKind.Geneve;
                key.Vni = BinaryPrimitives.ReadUInt32BigEndian(frame.Slice(tunnel + 4)) >> 8;
                int payload = tunnel + GeneveHeader.MinLength + ((frame[tunnel] & 0x3F) * 4);
                ushort protocolType = BinaryPrimitives.ReadUInt16BigEndian(frame.Slice(tunnel + 2));
                var inner = frame.Slice(0, end);
                if (protocolType == EtherTypes.TransparentEthernetBridging)
                {
                    if (SkipEthernet(inner, payload, out int innerOffset, out ushort innerType, ref key, outer: false))
                    {
                        TryNetwork(inner, innerOffset, innerType, ref key.Inner, out _, out _);
                    }
                }
                else
                {
                    TryNetwork(inner, payload, protocolType, ref key.Inner, out _, out _);
                }
            }
        }
        else if (proto is IpProtocols.IPv4 or IpProtocols.IPv6)
        {
            key.Tunnel = TunnelKind.IpInIp;
            TryNetwork(frame.Slice(0, end), l4, proto == IpProtocols.IPv4 ? EtherTypes.IPv4 : EtherTypes.IPv6, ref key.Inner, out _, out _);
        }
        return true;
    }

    // Ethernet II plus up to four VLAN tags; records the first two VLAN ids of the outer frame.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool SkipEthernet(ReadOnlySpan<byte> frame, int start, out int offset, out ushort etherType, ref FlowKey key, bool outer)
    {
        offset = start + EthernetHeader.Length;
        if ((uint)offset > (uint)frame.Length)
        {
            etherType = 0;
            return false;
        }
        etherType = BinaryPrimitives.ReadUInt16BigEndian(frame.Slice(offset - 2));
        for (int tags = 0; tags < MaxVlanTags && VlanHeader.IsTagType(etherType); tags++)
        {
            if (offset + VlanHeader.Length > frame.Length)
            {
                return false;
            }
            if (outer)
            {
                ushort vid = (ushort)(BinaryPrimitives.ReadUInt16BigEndian(frame.Slice(offset)) & 0x0FFF);
                if (tags == 0)
                {
                    key.HasVlan = true;
                    key.VlanId = vid;
                }
                else if (tags == 1)
                {
                    key.InnerVlanId = vid;
                }
            }
            etherType = BinaryPrimitives.ReadUInt16BigEndian(frame.Slice(offset + 2));
            offset += VlanHeader.Length;
        }
        return true;
    }

    // Reads an IPv4/IPv6 header (and IPv6's extension-header chain) at offset and the L4 ports.
    // l4 is the upper-layer offset; end is where the datagram ends within the capture.
    private static bool TryNetwork(ReadOnlySpan<byte> p, int offset, ushort etherType, ref FiveTuple t, out int l4, out int end)
    {
        l4 = 0;
        end = 0;
        if (etherType == EtherTypes.IPv4)
        {
            if ((uint)(offset + Ipv4Header.MinLength) > (uint)p.Length)
            {
                return false;
            }
            var ip = p.Slice(offset);
            int hl = (ip[0] & 0x0F) * 4;
            if ((ip[0] >> 4) != 4 || hl < Ipv4Header.MinLength || hl > ip.Length)
            {
                return false;
            }
            t.Source = new IpAddress(new Ipv4Address(BinaryPrimitives.ReadUInt32BigEndian(ip.Slice(12))));
            t.Destination = new IpAddress(new Ipv4Address(BinaryPrimitives.ReadUInt32BigEndian(ip.Slice(16))));
            t.Protocol = ip[9];
            int total = Ipv4Header.ResolveTotalLength(BinaryPrimitives.ReadUInt16BigEndian(ip.Slice(2)), ip.Length);
            end = offset + Math.Clamp(total, hl, ip.Length);
            ushort ff = BinaryPrimitives.ReadUInt16BigEndian(ip.Slice(6));
            t.Fragment = (ff & 0x3FFF) == 0 ? FragmentState.None : (ff & 0x1FFF) == 0 ? FragmentState.First : FragmentState.NonFirst;
            l4 = offset + hl;
        }
        else if (etherType == EtherTypes.IPv6)
        {
            if ((uint)(offset + Ipv6Header.Length) > (uint)p.Length)
            {
                return false;
            }
            var ip = p.Slice(offset);
            if ((ip[0] >> 4) != 6)
            {
                return false;
            }
            t.Source = new IpAddress(Ipv6Address.Read(ip.Slice(8)));
            t.Destination = new IpAddress(Ipv6Address.Read(ip.Slice(24)));
            end = offset + Math.Min(Ipv6Header.Length + Ipv6Header.ResolvePayloadLength(BinaryPrimitives.ReadUInt16BigEndian(ip.Slice(4)), ip[6], ip.Length), ip.Length);
            byte next = ip[6];
            int at = offset + Ipv6Header.Length;
            // RFC 8200 §4: follow the chain to the upper layer, bounded so that a crafted chain costs little.
            for (int i = 0; i < Ipv6ChainState.DefaultMaxHeaders; i++)
            {
                if (next is not (IpProtocols.HopByHopOptions or IpProtocols.Routing or IpProtocols.DestinationOptions or IpProtocols.Fragment or IpProtocols.Ah))
                {
                    break;
                }
                if (at + 8 > end)
                {
                    t.Protocol = next;
                    l4 = end;
                    return true;
                }
                int len;
                if (next == IpProtocols.Fragment)
                {
                    ushort fo = BinaryPrimitives.ReadUInt16BigEndian(p.Slice(at + 2));
                    t.Fragment = (fo & 0xFFF8) != 0 ? FragmentState.NonFirst : (fo & 1) != 0 ? FragmentState.First : FragmentState.None;
                    len = Ipv6ExtensionHeader.FragmentHeaderLength;
                }
                else if (next == IpProtocols.Ah)
                {
                    // AH stops the walk (the protocol reported is AH).
                    break;
                }
                else
                {
                    len = (p[at + 1] + 1) * 8;
                }
                next = p[at];
                at += len;
                if (t.Fragment == FragmentState.NonFirst)
                {
                    // A later fragment carries no upper-layer header (RFC 8200 §4.5).
                    break;
                }
            }
            t.Protocol = next;
            l4 = Math.Min(at, end);
        }
        else
        {
            return false;
        }

        if (t.Fragment != FragmentState.NonFirst && l4 + 4 <= end
            && t.Protocol is IpProtocols.Tcp or IpProtocols.Udp or 132 /* SCTP */ or 136 /* UDP-Lite */)
        {
            t.SourcePort = BinaryPrimitives.ReadUInt16BigEndian(p.Slice(l4));
            t.DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(p.Slice(l4 + 2));
        }
        return true;
    }
}
