using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

// One method per header kind: read it, produce its layer, decide what comes next.
public ref partial struct PacketDissector
{
    private bool InsideIcmpError => (_flags & LayerFlags.InsideIcmpError) != 0;

    private bool Lenient => _options.AllowTruncated || InsideIcmpError;

    // Error paths stay out of line so the hot per-layer methods are small enough to inline and keep in registers.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool Fail(ParseError relative, out Layer layer)
    {
        _error = relative.WithOffset(_offset);
        _done = true;
        layer = default;
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly Layer Make(LayerKind kind, int length, int end) =>
        new(kind, _offset, length, end, _depth, _flags, _networkOffset);

    // After a header: what is left of the region is payload, or nothing.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ThenPayload()
    {
        if (_offset < _end && _options.IncludePayload)
        {
            _next = LayerKind.Payload;
        }
        else
        {
            _done = true;
        }
    }

    // Inside an ICMP error only the first bytes of the quoted datagram are present (RFC 792: IP header + 8
    // bytes), so a transport header cut short there is a valid shorter parse: its bytes become payload.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool QuotedRemainder(ReadOnlySpan<byte> span, ParseError error, out Layer layer)
    {
        if (InsideIcmpError && error.Reason is ParseErrorReason.Truncated or ParseErrorReason.HeaderLengthBeyondPacket)
        {
            if (span.IsEmpty)
            {
                _done = true;
                layer = default;
                return false;
            }
            return Payload(span, out layer);
        }
        return Fail(error, out layer);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void DispatchEtherType(ushort etherType)
    {
        switch (etherType)
        {
            case EtherTypes.IPv4:
                _next = LayerKind.IPv4;
                break;
            case EtherTypes.IPv6:
                _next = LayerKind.IPv6;
                break;
            case EtherTypes.Arp:
                _next = LayerKind.Arp;
                break;
            case EtherTypes.Vlan or EtherTypes.QinQ or EtherTypes.QinQLegacy:
                _next = LayerKind.Vlan;
                break;
            default:
                ThenPayload();
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void DispatchIpProtocol(byte protocol, bool ipv6)
    {
        switch (protocol)
        {
            case IpProtocols.Tcp:
                _next = LayerKind.Tcp;
                break;
            case IpProtocols.Udp:
                _next = LayerKind.Udp;
                break;
            case IpProtocols.Icmp:
                _next = LayerKind.Icmpv4;
                break;
            case IpProtocols.Icmpv6:
                _next = LayerKind.Icmpv6;
                break;
            case IpProtocols.IPv4 when !InsideIcmpError:
                _next = LayerKind.IPv4;
                _ipInIp = true;
                break;
            case IpProtocols.IPv6 when !InsideIcmpError:
                _next = LayerKind.IPv6;
                _ipInIp = true;
                break;
            case IpProtocols.Esp:
                _next = LayerKind.Esp;
                break;
            case IpProtocols.Ah:
                _next = LayerKind.Ah;
                _nextHeader = protocol;
                break;
            case IpProtocols.HopByHopOptions or IpProtocols.Routing or IpProtocols.Fragment or IpProtocols.DestinationOptions when ipv6:
                _next = Ipv6ExtensionHeader.KindOf(protocol);
                _nextHeader = protocol;
                break;
            default:
                ThenPayload();
                break;
        }
    }

    private bool Ethernet(ReadOnlySpan<byte> span, out Layer layer)
    {
        if (!EthernetHeader.TryRead(span, out _, out var e))
        {
            return Fail(e, out layer);
        }
        layer = Make(LayerKind.Ethernet, EthernetHeader.Length, _end);
        _offset += EthernetHeader.Length;
        _networkOffset = -1;
        DispatchEtherType(BinaryPrimitives.ReadUInt16BigEndian(span.Slice(12, 2)));
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Vlan(ReadOnlySpan<byte> span, out Layer layer)
    {
        if (!VlanHeader.TryRead(span, out var tag, out var e))
        {
            return Fail(e, out layer);
        }
        layer = Make(LayerKind.Vlan, VlanHeader.Length, _end);
        _offset += VlanHeader.Length;
        DispatchEtherType(tag.EtherType);
        return true;
    }

    private bool Arp(ReadOnlySpan<byte> span, out Layer layer)
    {
        if (!ArpHeader.TryRead(span, out var arp, out var e))
        {
            return Fail(e, out layer);
        }
        int length = arp.Length;
        layer = Make(LayerKind.Arp, length, _offset + length);
        // What follows ARP inside an Ethernet frame is padding to the 60-byte minimum, not a layer.
        _done = true;
        return true;
    }

    private bool Ipv4(ReadOnlySpan<byte> span, out Layer layer)
    {
        if (_ipInIp && _depth >= _options.MaxTunnelDepth)
        {
            return Fail(new ParseError(ParseErrorReason.TunnelTooDeep, 0, LayerKind.IPv4), out layer);
        }
        if (!Ipv4Header.TryRead(span, Lenient, out var ip, out var e))
        {
            return Fail(e, out layer);
        }
        if (_ipInIp)
        {
            // IP-in-IP (RFC 2003 / RFC 2473): the inner datagram is one tunnel deeper.
            _depth++;
            _ipInIp = false;
        }
        // The fixed 20 bytes as a constant-length view, so the fields below cost no bounds checks.
        ReadOnlySpan<byte> fixedPart = span.Slice(0, Ipv4Header.MinLength);
        int region = ip.RegionLength;
        if (region < BinaryPrimitives.ReadUInt16BigEndian(fixedPart.Slice(2)))
        {
            _flags |= LayerFlags.Truncated;
        }
        int hl = (fixedPart[0] & 0x0F) * 4;
        layer = Make(LayerKind.IPv4, hl, _offset + region);
        _end = _offset + region;
        _networkOffset = _offset;
        _offset += hl;
        // AH may follow IPv4 too; its chain starts here, not in an outer IPv6 header's.
        _chainStarts = true;
        if ((BinaryPrimitives.ReadUInt16BigEndian(fixedPart.Slice(6)) & 0x3FFF) != 0)
        {
            // MF set or a non-zero offset: the walk does not reassemble, so a fragment's bytes (even the
            // first's) are payload.
            ThenPayload();
        }
        else
        {
            DispatchIpProtocol(fixedPart[9], ipv6: false);
        }
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Ipv6(ReadOnlySpan<byte> span, out Layer layer)
    {
        if (_ipInIp && _depth >= _options.MaxTunnelDepth)
        {
            return Fail(new ParseError(ParseErrorReason.TunnelTooDeep, 0, LayerKind.IPv6), out layer);
        }
        if (!Ipv6Header.TryRead(span, Lenient, out var ip, out var e))
        {
            return Fail(e, out layer);
        }
        if (_ipInIp)
        {
            _depth++;
            _ipInIp = false;
        }
        ReadOnlySpan<byte> fixedPart = span.Slice(0, Ipv6Header.Length);
        int region = ip.RegionLength;
        if (region < Ipv6Header.Length + BinaryPrimitives.ReadUInt16BigEndian(fixedPart.Slice(4)))
        {
            _flags |= LayerFlags.Truncated;
        }
        layer = Make(LayerKind.IPv6, Ipv6Header.Length, _offset + region);
        _end = _offset + region;
        _networkOffset = _offset;
        _offset += Ipv6Header.Length;
        _chainStarts = true;
        DispatchIpProtocol(fixedPart[6], ipv6: true);
        return true;
    }

    private bool Extension(ReadOnlySpan<byte> span, out Layer layer)
    {
        byte type = _nextHeader;
        var kind = Ipv6ExtensionHeader.KindOf(type);
        if (_chainStarts)
        {
            // The first extension header after this IP header (most packets have none: no chain to set up).
            _chain = new Ipv6ChainState(_options.MaxExtensionHeaders);
            _chainStarts = false;
        }
        var reason = _chain.Enter(type);
        if (reason != ParseErrorReason.None)
        {
            return Fail(new ParseError(reason, 0, kind), out layer);
        }
        if (!Ipv6ExtensionHeader.TryRead(span, type, out var ext, out var e))
        {
            return QuotedRemainder(span, e, out layer);
        }
        int length = ext.Length;
        layer = Make(kind, length, _end);
        _offset += length;
        if (type == IpProtocols.Ah)
        {
            // RFC 4302 AH is recognised; the walk stops (as it does for ESP).
            _done = true;
        }
        else if (type == IpProtocols.Fragment && (ext.FragmentOffset != 0 || ext.MoreFragments))
        {
            ThenPayload();
        }
        else
        {
            DispatchIpProtocol(ext.NextHeader, ipv6: true);
        }
        return true;
    }

    private bool Esp(ReadOnlySpan<byte> span, out Layer layer)
    {
        // RFC 4303 §2: SPI and sequence number; everything after is encrypted, so the walk stops.
        if (span.Length < 8)
        {
            return QuotedRemainder(span, new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Esp), out layer);
        }
        layer = Make(LayerKind.Esp, 8, _end);
        _done = true;
        return true;
    }

    private bool Tcp(ReadOnlySpan<byte> span, out Layer layer)
    {
        if (!TcpHeader.TryRead(span, out _, out var e))
        {
            return QuotedRemainder(span, e, out layer);
        }
        int hl = (span.Slice(0, TcpHeader.MinLength)[12] >> 4) * 4;
        layer = Make(LayerKind.Tcp, hl, _end);
        _offset += hl;
        ThenPayload();
        return true;
    }

    private bool Udp(ReadOnlySpan<byte> span, out Layer layer)
    {
        if (!UdpHeader.TryRead(span, Lenient, out var udp, out var e))
        {
            return QuotedRemainder(span, e, out layer);
        }
        ReadOnlySpan<byte> fixedPart = span.Slice(0, UdpHeader.Length);
        int region = udp.Datagram.Length;
        if (region < BinaryPrimitives.ReadUInt16BigEndian(fixedPart.Slice(4)))
        {
            _flags |= LayerFlags.Truncated;
        }
        layer = Make(LayerKind.Udp, UdpHeader.Length, _offset + region);
        _end = _offset + region;
        _offset += UdpHeader.Length;
        ushort port = BinaryPrimitives.ReadUInt16BigEndian(fixedPart.Slice(2));
        if (InsideIcmpError)
        {
            ThenPayload();
        }
        else if (_options.VxlanPorts.Contains(port))
        {
            _next = LayerKind.Vxlan;
        }
        else if (_options.GenevePorts.Contains(port))
        {
            _next = LayerKind.Geneve;
        }
        else
        {
            ThenPayload();
        }
        return true;
    }

    private bool Icmpv4(ReadOnlySpan<byte> span, out Layer layer)
    {
        if (!Icmpv4Header.TryRead(span, out var icmp, out var e))
        {
            return QuotedRemainder(span, e, out layer);
        }
        layer = Make(LayerKind.Icmpv4, Icmpv4Header.Length, _end);
        _offset += Icmpv4Header.Length;
        if (icmp.IsError && !InsideIcmpError && _options.FollowIcmpErrors && _offset < _end)
        {
            _flags |= LayerFlags.InsideIcmpError;
            _next = LayerKind.IPv4;
        }
        else
        {
            ThenPayload();
        }
        return true;
    }

    private bool Icmpv6(ReadOnlySpan<byte> span, out Layer layer)
    {
        if (!Icmpv6Header.TryRead(span, out var icmp, out var e))
        {
            return QuotedRemainder(span, e, out layer);
        }
        // Neighbor Discovery options belong to the message, so an ND layer spans the whole message.
        int length = Icmpv6Header.NdOptionsOffset(icmp.Type) > 0 ? span.Length : Icmpv6Header.Length;
        layer = Make(LayerKind.Icmpv6, length, _end);
        _offset += length;
        if (icmp.IsError && !InsideIcmpError && _options.FollowIcmpErrors && _offset < _end)
        {
            _flags |= LayerFlags.InsideIcmpError;
            _next = LayerKind.IPv6;
        }
        else
        {
            ThenPayload();
        }
        return true;
    }

    private bool Vxlan(ReadOnlySpan<byte> span, out Layer layer)
    {
        if (!VxlanHeader.TryRead(span, out _, out var e))
        {
            return Fail(e, out layer);
        }
        if (_depth >= _options.MaxTunnelDepth)
        {
            return Fail(new ParseError(ParseErrorReason.TunnelTooDeep, 0, LayerKind.Vxlan), out layer);
        }
        layer = Make(LayerKind.Vxlan, VxlanHeader.Length, _end);
        _offset += VxlanHeader.Length;
        _depth++;
        _networkOffset = -1;
        _next = LayerKind.Ethernet;
        return true;
    }

    private bool Geneve(ReadOnlySpan<byte> span, out Layer layer)
    {
        if (!GeneveHeader.TryRead(span, out var geneve, out var e))
        {
            return Fail(e, out layer);
        }
        if (_depth >= _options.MaxTunnelDepth)
        {
            return Fail(new ParseError(ParseErrorReason.TunnelTooDeep, 0, LayerKind.Geneve), out layer);
        }
        int hl = geneve.HeaderLength;
        layer = Make(LayerKind.Geneve, hl, _end);
        _offset += hl;
        _depth++;
        _networkOffset = -1;
        if (geneve.ProtocolType == EtherTypes.TransparentEthernetBridging)
        {
            _next = LayerKind.Ethernet;
        }
        else
        {
            DispatchEtherType(geneve.ProtocolType);
        }
        return true;
    }

    private bool Seed(ReadOnlySpan<byte> span, out Layer layer)
    {
        if (!SeedFrame.TryRead(span, out var seed, out var e))
        {
            return Fail(e, out layer);
        }
        int total = seed.Bytes.Length;
        layer = Make(LayerKind.Seed, SeedFrame.HeaderLength, _offset + total);
        _end = _offset + total;
        _offset += SeedFrame.HeaderLength;
        ThenPayload();
        return true;
    }

    private bool Payload(ReadOnlySpan<byte> span, out Layer layer)
    {
        layer = Make(LayerKind.Payload, span.Length, _offset + span.Length);
        _offset += span.Length;
        _done = true;
        return true;
    }
}
