using System.Buffers.Binary;

namespace Membrane.Packets;

// One method per header: write it with placeholders, record it; Finish fills lengths and checksums.
public ref partial struct PacketBuilder
{
    // ---- link layer ----

    /// <summary>An Ethernet II header; the EtherType follows from the next layer unless given.</summary>
    public void Ethernet(MacAddress destination, MacAddress source, ushort? etherType = null)
    {
        int at = Push(LayerKind.Ethernet, EthernetHeader.Length, nextField: 12, Family.EtherType, etherType is null);
        EthernetHeader.Write(_buffer.Slice(at), destination, source, etherType ?? 0);
    }

    /// <summary>
    /// An 802.1Q (TPID 0x8100) or 802.1ad (0x88a8) tag: the TPID goes into the previous header's EtherType
    /// field (Ethernet or another tag); this tag's EtherType follows from the next layer unless given.
    /// </summary>
    public void Vlan(ushort vlanId, byte priority = 0, bool dropEligible = false, ushort tpid = EtherTypes.Vlan, ushort? etherType = null)
    {
        if (_count == 0 || _layers[_count - 1].Kind is not (LayerKind.Ethernet or LayerKind.Vlan))
        {
            ThrowHelper.ThrowArgument("VLAN tag", "a tag must follow an Ethernet header or another tag");
        }
        int at = Push(LayerKind.Vlan, VlanHeader.Length, nextField: 2, Family.EtherType, etherType is null, typeCode: tpid);
        VlanHeader.Write(_buffer.Slice(at), vlanId, priority, dropEligible, etherType ?? 0);
    }

    /// <summary>An Ethernet/IPv4 ARP packet (RFC 826).</summary>
    public void Arp(ArpOperation operation, MacAddress senderMac, Ipv4Address senderIp, MacAddress targetMac, Ipv4Address targetIp)
    {
        int at = Push(LayerKind.Arp, ArpHeader.EthernetIpv4Length, nextField: -1, Family.None, false);
        ArpHeader.WriteEthernetIpv4(_buffer.Slice(at), operation, senderMac, senderIp, targetMac, targetIp);
    }

    // ---- network layer ----

    /// <summary>
    /// An IPv4 header with options (padded to a multiple of 4). The protocol follows from the next layer unless
    /// given; the total length is computed at <see cref="Finish"/> unless <paramref name="totalLength"/> overrides
    /// it (to quote a datagram in an ICMP error, or to lie in a test).
    /// </summary>
    public void Ipv4(Ipv4Address source, Ipv4Address destination, byte ttl = 64, ushort identification = 0,
        bool dontFragment = false, bool moreFragments = false, ushort fragmentOffset = 0, byte dscp = 0, byte ecn = 0,
        scoped ReadOnlySpan<byte> options = default, byte? protocol = null, ushort? totalLength = null)
    {
        int hl = Ipv4Header.MinLength + ((options.Length + 3) & ~3);
        int at = Push(LayerKind.IPv4, hl, nextField: 9, Family.IpProtocol, protocol is null, lengthOverride: totalLength);
        Ipv4Header.Write(_buffer.Slice(at), source, destination, protocol ?? IpProtocols.NoNextHeader, 0, ttl,
            identification, dontFragment, moreFragments, fragmentOffset, dscp, ecn, options);
    }

    /// <summary>An IPv6 header; the next header follows from the next layer unless given; the payload length is computed unless overridden.</summary>
    public void Ipv6(Ipv6Address source, Ipv6Address destination, byte hopLimit = 64, byte trafficClass = 0, uint flowLabel = 0,
        byte? nextHeader = null, ushort? payloadLength = null)
    {
        int at = Push(LayerKind.IPv6, Ipv6Header.Length, nextField: 6, Family.IpProtocol, nextHeader is null, lengthOverride: payloadLength);
        var d = _buffer.Slice(at);
        BinaryPrimitives.WriteUInt32BigEndian(d, (6u << 28) | ((uint)trafficClass << 20) | (flowLabel & 0xFFFFF));
        BinaryPrimitives.WriteUInt16BigEndian(d.Slice(4), 0);
        d[6] = nextHeader ?? IpProtocols.NoNextHeader;
        d[7] = hopLimit;
        source.Write(d.Slice(8));
        destination.Write(d.Slice(24));
    }

    /// <summary>A hop-by-hop options header (RFC 8200 §4.3); options are padded with Pad1/PadN to a multiple of 8.</summary>
    public void Ipv6HopByHop(scoped ReadOnlySpan<byte> options = default, byte? nextHeader = null) =>
        OptionsHeader(LayerKind.Ipv6HopByHop, options, nextHeader);

    /// <summary>A destination options header (RFC 8200 §4.6).</summary>
    public void Ipv6DestinationOptions(scoped ReadOnlySpan<byte> options = default, byte? nextHeader = null) =>
        OptionsHeader(LayerKind.Ipv6DestinationOptions, options, nextHeader);

    private void OptionsHeader(LayerKind kind, scoped ReadOnlySpan<byte> options, byte? nextHeader)
    {
        int length = (options.Length + 2 + 7) & ~7;
        int at = Push(kind, length, nextField: 0, Family.IpProtocol, nextHeader is null);
        Ipv6ExtensionHeader.WriteOptions(_buffer.Slice(at), nextHeader ?? IpProtocols.NoNextHeader, options);
    }

    /// <summary>A routing header (RFC 8200 §4.4) with type-specific data (padded to a multiple of 8).</summary>
    public void Ipv6Routing(byte routingType, byte segmentsLeft, scoped ReadOnlySpan<byte> data = default, byte? nextHeader = null)
    {
        int length = (data.Length + 4 + 7) & ~7;
        int at = Push(LayerKind.Ipv6Routing, length, nextField: 0, Family.IpProtocol, nextHeader is null);
        Ipv6ExtensionHeader.WriteRouting(_buffer.Slice(at), nextHeader ?? IpProtocols.NoNextHeader, routingType, segmentsLeft, data);
    }

    /// <summary>A fragment header (RFC 8200 §4.5); <paramref name="fragmentOffset"/> is in 8-byte units.</summary>
    public void Ipv6Fragment(ushort fragmentOffset, bool moreFragments, uint identification, byte? nextHeader = null)
    {
        int at = Push(LayerKind.Ipv6Fragment, Ipv6ExtensionHeader.FragmentHeaderLength, nextField: 0, Family.IpProtocol, nextHeader is null);
        Ipv6ExtensionHeader.WriteFragment(_buffer.Slice(at), nextHeader ?? IpProtocols.NoNextHeader, fragmentOffset, moreFragments, identification);
    }

    // ---- transport layer ----

    /// <summary>A TCP header with options (build them with <see cref="TcpOptionsWriter"/>); the checksum is computed at <see cref="Finish"/>.</summary>
    public void Tcp(ushort sourcePort, ushort destinationPort, uint sequenceNumber = 0, uint acknowledgmentNumber = 0,
        TcpFlags flags = TcpFlags.Ack, ushort window = 65535, ushort urgentPointer = 0, scoped ReadOnlySpan<byte> options = default,
        bool computeChecksum = true)
    {
        int hl = TcpHeader.MinLength + ((options.Length + 3) & ~3);
        int at = Push(LayerKind.Tcp, hl, nextField: -1, Family.None, false, checksum: computeChecksum);
        TcpHeader.Write(_buffer.Slice(at), sourcePort, destinationPort, sequenceNumber, acknowledgmentNumber, flags, window, urgentPointer, options);
    }

    /// <summary>A UDP header; length and checksum are computed at <see cref="Finish"/> (a checksum of 0 when <paramref name="computeChecksum"/> is false, as VXLAN senders often do).</summary>
    public void Udp(ushort sourcePort, ushort destinationPort, bool computeChecksum = true, ushort? length = null)
    {
        int at = Push(LayerKind.Udp, UdpHeader.Length, nextField: -1, Family.None, false, checksum: computeChecksum, lengthOverride: length);
        UdpHeader.Write(_buffer.Slice(at), sourcePort, destinationPort, 0);
    }

    /// <summary>An ICMPv4 header; for an error, follow it with the quoted IPv4 header (total length overridden) and 8 bytes.</summary>
    public void Icmpv4(byte type, byte code, uint restOfHeader = 0)
    {
        int at = Push(LayerKind.Icmpv4, Icmpv4Header.Length, nextField: -1, Family.None, false, checksum: true);
        Icmpv4Header.Write(_buffer.Slice(at), type, code, restOfHeader);
    }

    /// <summary>An ICMPv4 echo request or reply (follow with <see cref="Payload(ReadOnlySpan{byte})"/> for data).</summary>
    public void Icmpv4Echo(bool request, ushort identifier, ushort sequenceNumber) =>
        Icmpv4(request ? Icmpv4Types.EchoRequest : Icmpv4Types.EchoReply, 0, ((uint)identifier << 16) | sequenceNumber);

    /// <summary>An ICMPv6 header (RFC 4443); its checksum (with the IPv6 pseudo-header) is computed at <see cref="Finish"/>.</summary>
    public void Icmpv6(byte type, byte code, uint restOfHeader = 0)
    {
        int at = Push(LayerKind.Icmpv6, Icmpv6Header.Length, nextField: -1, Family.None, false, checksum: true);
        Icmpv6Header.Write(_buffer.Slice(at), type, code, restOfHeader);
    }

    /// <summary>An ICMPv6 echo request or reply.</summary>
    public void Icmpv6Echo(bool request, ushort identifier, ushort sequenceNumber) =>
        Icmpv6(request ? Icmpv6Types.EchoRequest : Icmpv6Types.EchoReply, 0, ((uint)identifier << 16) | sequenceNumber);

    /// <summary>A neighbor solicitation (RFC 4861 §4.3), with a source link-layer address option when given.</summary>
    public void NeighborSolicitation(Ipv6Address target, MacAddress? sourceLinkLayerAddress = null)
    {
        Icmpv6(Icmpv6Types.NeighborSolicitation, 0);
        target.Write(Append(16));
        if (sourceLinkLayerAddress is { } mac)
        {
            LinkLayerOption(NdOptionTypes.SourceLinkLayerAddress, mac);
        }
    }

    /// <summary>A neighbor advertisement (RFC 4861 §4.4), with a target link-layer address option when given.</summary>
    public void NeighborAdvertisement(Ipv6Address target, bool router, bool solicited, bool @override, MacAddress? targetLinkLayerAddress = null)
    {
        Icmpv6(Icmpv6Types.NeighborAdvertisement, 0, (router ? 0x8000_0000u : 0) | (solicited ? 0x4000_0000u : 0) | (@override ? 0x2000_0000u : 0));
        target.Write(Append(16));
        if (targetLinkLayerAddress is { } mac)
        {
            LinkLayerOption(NdOptionTypes.TargetLinkLayerAddress, mac);
        }
    }

    /// <summary>A router solicitation (RFC 4861 §4.1).</summary>
    public void RouterSolicitation(MacAddress? sourceLinkLayerAddress = null)
    {
        Icmpv6(Icmpv6Types.RouterSolicitation, 0);
        if (sourceLinkLayerAddress is { } mac)
        {
            LinkLayerOption(NdOptionTypes.SourceLinkLayerAddress, mac);
        }
    }

    /// <summary>A router advertisement (RFC 4861 §4.2).</summary>
    public void RouterAdvertisement(byte currentHopLimit, bool managed, bool otherConfig, ushort routerLifetime,
        uint reachableTime = 0, uint retransTimer = 0, MacAddress? sourceLinkLayerAddress = null)
    {
        Icmpv6(Icmpv6Types.RouterAdvertisement, 0,
            ((uint)currentHopLimit << 24) | (managed ? 0x0080_0000u : 0) | (otherConfig ? 0x0040_0000u : 0) | routerLifetime);
        var d = Append(8);
        BinaryPrimitives.WriteUInt32BigEndian(d, reachableTime);
        BinaryPrimitives.WriteUInt32BigEndian(d.Slice(4), retransTimer);
        if (sourceLinkLayerAddress is { } mac)
        {
            LinkLayerOption(NdOptionTypes.SourceLinkLayerAddress, mac);
        }
    }

    /// <summary>Appends a Neighbor Discovery option (data zero-padded to a multiple of 8 with its type and length) to the current ICMPv6 message.</summary>
    public void NdOption(byte type, scoped ReadOnlySpan<byte> data)
    {
        if (_count == 0 || _layers[_count - 1].Kind != LayerKind.Icmpv6)
        {
            ThrowHelper.ThrowArgument("ND option", "an option must follow an ICMPv6 message");
        }
        int length = (data.Length + 2 + 7) & ~7;
        Icmpv6Header.WriteNdOption(Append(length), type, data);
    }

    private void LinkLayerOption(byte type, MacAddress mac)
    {
        Span<byte> b = stackalloc byte[6];
        mac.Write(b);
        NdOption(type, b);
    }

    // ---- tunnels and the seed frame ----

    /// <summary>A VXLAN header (RFC 7348); the UDP layer before it must use a VXLAN port.</summary>
    public void Vxlan(uint vni, byte flags = VxlanHeader.VniValidFlag)
    {
        int at = Push(LayerKind.Vxlan, VxlanHeader.Length, nextField: -1, Family.None, false);
        VxlanHeader.Write(_buffer.Slice(at), vni, flags);
    }

    /// <summary>A Geneve header (RFC 8926) with encoded options (see <see cref="GeneveHeader.WriteOption"/>); the protocol type follows from the next layer unless given.</summary>
    public void Geneve(uint vni, scoped ReadOnlySpan<byte> options = default, bool oam = false, bool critical = false, ushort? protocolType = null)
    {
        int at = Push(LayerKind.Geneve, GeneveHeader.MinLength + options.Length, nextField: 2, Family.GeneveProtocol, protocolType is null);
        GeneveHeader.Write(_buffer.Slice(at), vni, protocolType ?? EtherTypes.TransparentEthernetBridging, options, oam, critical);
    }

    /// <summary>A seed frame header (DESIGN.md); its total length is computed at <see cref="Finish"/>.</summary>
    public void Seed(byte type, byte flags, uint id)
    {
        if (type > 0x0F)
        {
            ThrowHelper.ThrowArgument("seed frame", $"type {type} does not fit in 4 bits");
        }
        int at = Push(LayerKind.Seed, SeedFrame.HeaderLength, nextField: -1, Family.None, false);
        SeedFrame.WriteHeader(_buffer.Slice(at), type, flags, 0, id);
    }

    /// <summary>Raw bytes after the last header.</summary>
    public void Payload(scoped ReadOnlySpan<byte> data) => data.CopyTo(Append(data.Length));

    /// <summary><paramref name="length"/> bytes of <paramref name="fill"/> after the last header.</summary>
    public void Payload(int length, byte fill = 0) => Append(length).Fill(fill);
}
