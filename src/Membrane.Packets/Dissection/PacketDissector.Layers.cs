using System.Runtime.CompilerServices;

namespace Membrane.Packets;

// One method per header kind: read it, produce its layer, decide what comes next.
public ref partial struct PacketDissector
{
    // The walk's position and what it has seen, kept apart from the packet and the options (the dissector's
    // only references): a reference-free struct whose fields the JIT keeps in registers once TryNext is inlined.
    // With the same fields directly in PacketDissector it keeps them in memory: 31-33 ns a packet instead of 26-28
    // (bench/README.md). Every field stays live across the consumer's loop, so there are as few as the walk needs:
    // its end is _next == None, and an extension header's next-header value follows from its kind.
    private struct Walk
    {
        internal LayerKind _next; // LayerKind.None once the walk has ended
        internal int _offset;
        internal int _end;
        internal byte _depth;
        internal LayerFlags _flags;
        internal int _networkOffset;
        internal bool _ipInIp;
        internal Ipv6ChainState _chain;
        internal bool _chainStarts;
        internal ParseError _error;

        private readonly bool InsideIcmpError
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => (_flags & LayerFlags.InsideIcmpError) != 0;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly bool Lenient(DissectorOptions options) => options.AllowTruncated || InsideIcmpError;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private bool Fail(ParseError relative, out Layer layer)
        {
            _error = relative.WithOffset(_offset);
            _next = LayerKind.None;
            layer = default;
            return false;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private readonly Layer Make(LayerKind kind, int length, int end) =>
            new(kind, _offset, length, end, _depth, _flags, _networkOffset);

        // After a header: what is left of the region is payload, or nothing.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void ThenPayload(DissectorOptions options)
        {
            if (_offset < _end && options.IncludePayload)
            {
                _next = LayerKind.Payload;
            }
            else
            {
                _next = LayerKind.None;
            }
        }

        // Inside an ICMP error only the first bytes of the quoted datagram are present (RFC 792: IP header + 8
        // bytes), so a transport header cut short there is a valid shorter parse: its bytes become payload.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private bool QuotedRemainder(ReadOnlySpan<byte> span, ParseError error, DissectorOptions options, out Layer layer)
        {
            if (InsideIcmpError && error.Reason is ParseErrorReason.Truncated or ParseErrorReason.HeaderLengthBeyondPacket)
            {
                if (span.IsEmpty)
                {
                    _next = LayerKind.None;
                    layer = default;
                    return false;
                }
                return Payload(span, options, out layer);
            }
            return Fail(error, out layer);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void DispatchEtherType(ushort etherType, DissectorOptions options)
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
                    ThenPayload(options);
                    break;
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void DispatchIpProtocol(byte protocol, bool ipv6, DissectorOptions options)
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
                    break;
                case IpProtocols.HopByHopOptions or IpProtocols.Routing or IpProtocols.Fragment or IpProtocols.DestinationOptions when ipv6:
                    _next = Ipv6ExtensionHeader.KindOf(protocol);
                    break;
                default:
                    ThenPayload(options);
                    break;
            }
        }

        // The common kinds (Ethernet, VLAN, IPv4, IPv6, TCP, UDP) read their fields with plain indexing after a
        // length check and validate with the readers' Measure methods: fewer nested inlines and no header view
        // passed out, which the JIT would have to keep on the stack.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Ethernet(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            if (span.Length < EthernetHeader.Length)
            {
                return Fail(new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Ethernet), out layer);
            }
            layer = Make(LayerKind.Ethernet, EthernetHeader.Length, _end);
            _offset += EthernetHeader.Length;
            _networkOffset = -1;
            DispatchEtherType((ushort)((span[12] << 8) | span[13]), options);
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Vlan(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            if (span.Length < VlanHeader.Length)
            {
                return Fail(new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Vlan), out layer);
            }
            layer = Make(LayerKind.Vlan, VlanHeader.Length, _end);
            _offset += VlanHeader.Length;
            DispatchEtherType((ushort)((span[2] << 8) | span[3]), options);
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Arp(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            if (!ArpHeader.TryRead(span, out var arp, out var e))
            {
                return Fail(e, out layer);
            }
            int length = arp.Length;
            layer = Make(LayerKind.Arp, length, _offset + length);
            // What follows ARP inside an Ethernet frame is padding to the 60-byte minimum, not a layer.
            _next = LayerKind.None;
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Ipv4(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            if (_ipInIp && _depth >= options.MaxTunnelDepth)
            {
                return Fail(new ParseError(ParseErrorReason.TunnelTooDeep, 0, LayerKind.IPv4), out layer);
            }
            int region = Ipv4Header.Measure(span, Lenient(options));
            if (region < 0)
            {
                return Fail(ParseError.FromCode(region, LayerKind.IPv4), out layer);
            }
            if (_ipInIp)
            {
                // IP-in-IP (RFC 2003 / RFC 2473): the inner datagram is one tunnel deeper.
                _depth++;
                _ipInIp = false;
            }
            // Measure saw at least 20 bytes; a constant-length view reads them without a bounds check each.
            ReadOnlySpan<byte> h = span.Slice(0, Ipv4Header.MinLength);
            if (region < ((h[2] << 8) | h[3]))
            {
                _flags |= LayerFlags.Truncated;
            }
            int hl = (h[0] & 0x0F) * 4;
            layer = Make(LayerKind.IPv4, hl, _offset + region);
            _end = _offset + region;
            _networkOffset = _offset;
            _offset += hl;
            // AH may follow IPv4 too; its chain starts here, not in an outer IPv6 header's.
            _chainStarts = true;
            if ((((h[6] << 8) | h[7]) & 0x3FFF) != 0)
            {
                // MF set or a non-zero offset: the walk does not reassemble, so a fragment's bytes (even the
                // first's) are payload.
                ThenPayload(options);
            }
            else
            {
                DispatchIpProtocol(h[9], ipv6: false, options);
            }
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Ipv6(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            if (_ipInIp && _depth >= options.MaxTunnelDepth)
            {
                return Fail(new ParseError(ParseErrorReason.TunnelTooDeep, 0, LayerKind.IPv6), out layer);
            }
            int region = Ipv6Header.Measure(span, Lenient(options));
            if (region < 0)
            {
                return Fail(ParseError.FromCode(region, LayerKind.IPv6), out layer);
            }
            if (_ipInIp)
            {
                _depth++;
                _ipInIp = false;
            }
            // Measure saw at least 40 bytes.
            ReadOnlySpan<byte> h = span.Slice(0, Ipv6Header.Length);
            if (region < Ipv6Header.Length + ((h[4] << 8) | h[5]))
            {
                _flags |= LayerFlags.Truncated;
            }
            layer = Make(LayerKind.IPv6, Ipv6Header.Length, _offset + region);
            _end = _offset + region;
            _networkOffset = _offset;
            _offset += Ipv6Header.Length;
            _chainStarts = true;
            DispatchIpProtocol(h[6], ipv6: true, options);
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Extension(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            var kind = _next;
            byte type = Ipv6ExtensionHeader.TypeOf(kind);
            if (_chainStarts)
            {
                // The first extension header after this IP header (most packets have none: no chain to set up).
                _chain = new Ipv6ChainState(options.MaxExtensionHeaders);
                _chainStarts = false;
            }
            var reason = _chain.Enter(type);
            if (reason != ParseErrorReason.None)
            {
                return Fail(new ParseError(reason, 0, kind), out layer);
            }
            if (!Ipv6ExtensionHeader.TryRead(span, type, out var ext, out var e))
            {
                return QuotedRemainder(span, e, options, out layer);
            }
            int length = ext.Length;
            layer = Make(kind, length, _end);
            _offset += length;
            if (type == IpProtocols.Ah)
            {
                // RFC 4302 AH is recognised; the walk stops (as it does for ESP).
                _next = LayerKind.None;
            }
            else if (type == IpProtocols.Fragment && (ext.FragmentOffset != 0 || ext.MoreFragments))
            {
                ThenPayload(options);
            }
            else
            {
                DispatchIpProtocol(ext.NextHeader, ipv6: true, options);
            }
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Esp(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            // RFC 4303 §2: SPI and sequence number; everything after is encrypted, so the walk stops.
            if (span.Length < 8)
            {
                return QuotedRemainder(span, new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Esp), options, out layer);
            }
            layer = Make(LayerKind.Esp, 8, _end);
            _next = LayerKind.None;
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Tcp(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            int hl = TcpHeader.Measure(span);
            if (hl < 0)
            {
                return QuotedRemainder(span, ParseError.FromCode(hl, LayerKind.Tcp), options, out layer);
            }
            layer = Make(LayerKind.Tcp, hl, _end);
            _offset += hl;
            ThenPayload(options);
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Udp(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            int region = UdpHeader.Measure(span, Lenient(options));
            if (region < 0)
            {
                return QuotedRemainder(span, ParseError.FromCode(region, LayerKind.Udp), options, out layer);
            }
            // Measure saw at least 8 bytes.
            ReadOnlySpan<byte> h = span.Slice(0, UdpHeader.Length);
            if (region < ((h[4] << 8) | h[5]))
            {
                _flags |= LayerFlags.Truncated;
            }
            layer = Make(LayerKind.Udp, UdpHeader.Length, _offset + region);
            _end = _offset + region;
            _offset += UdpHeader.Length;
            ushort port = (ushort)((h[2] << 8) | h[3]);
            if (InsideIcmpError)
            {
                ThenPayload(options);
            }
            else if (options.VxlanPorts.Contains(port))
            {
                _next = LayerKind.Vxlan;
            }
            else if (options.GenevePorts.Contains(port))
            {
                _next = LayerKind.Geneve;
            }
            else
            {
                ThenPayload(options);
            }
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Icmpv4(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            if (!Icmpv4Header.TryRead(span, out var icmp, out var e))
            {
                return QuotedRemainder(span, e, options, out layer);
            }
            layer = Make(LayerKind.Icmpv4, Icmpv4Header.Length, _end);
            _offset += Icmpv4Header.Length;
            if (icmp.IsError && !InsideIcmpError && options.FollowIcmpErrors && _offset < _end)
            {
                _flags |= LayerFlags.InsideIcmpError;
                _next = LayerKind.IPv4;
            }
            else
            {
                ThenPayload(options);
            }
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Icmpv6(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            if (!Icmpv6Header.TryRead(span, out var icmp, out var e))
            {
                return QuotedRemainder(span, e, options, out layer);
            }
            // Neighbor Discovery options belong to the message, so an ND layer spans the whole message.
            int length = Icmpv6Header.NdOptionsOffset(icmp.Type) > 0 ? span.Length : Icmpv6Header.Length;
            layer = Make(LayerKind.Icmpv6, length, _end);
            _offset += length;
            if (icmp.IsError && !InsideIcmpError && options.FollowIcmpErrors && _offset < _end)
            {
                _flags |= LayerFlags.InsideIcmpError;
                _next = LayerKind.IPv6;
            }
            else
            {
                ThenPayload(options);
            }
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Vxlan(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            if (!VxlanHeader.TryRead(span, out _, out var e))
            {
                return Fail(e, out layer);
            }
            if (_depth >= options.MaxTunnelDepth)
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

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Geneve(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            if (!GeneveHeader.TryRead(span, out var geneve, out var e))
            {
                return Fail(e, out layer);
            }
            if (_depth >= options.MaxTunnelDepth)
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
                DispatchEtherType(geneve.ProtocolType, options);
            }
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Seed(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            if (!SeedFrame.TryRead(span, out var seed, out var e))
            {
                return Fail(e, out layer);
            }
            int total = seed.Bytes.Length;
            layer = Make(LayerKind.Seed, SeedFrame.HeaderLength, _offset + total);
            _end = _offset + total;
            _offset += SeedFrame.HeaderLength;
            ThenPayload(options);
            return true;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal bool Payload(ReadOnlySpan<byte> span, DissectorOptions options, out Layer layer)
        {
            layer = Make(LayerKind.Payload, span.Length, _offset + span.Length);
            _offset += span.Length;
            _next = LayerKind.None;
            return true;
        }
    }
}
