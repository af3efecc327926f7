using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>Facts about a layer beyond its kind and bounds.</summary>
[Flags]
public enum LayerFlags : byte
{
    None = 0,
    /// <summary>The layer is inside the datagram an ICMP error quotes (RFC 792 / RFC 4443 §2.4(c)).</summary>
    InsideIcmpError = 1,
    /// <summary>A length field claimed more bytes than were captured; the region was clipped (only when truncation is allowed).</summary>
    Truncated = 2,
}

/// <summary>
/// One layer found by <see cref="PacketDissector"/>: what it is, where its header starts, how long the header is,
/// and where the region it heads ends (an IPv4 layer's region ends at its total length, so Ethernet padding is
/// not mistaken for payload). A plain value: keep it, then view it over the same packet bytes with the
/// <c>As…</c> methods.
/// </summary>
public readonly struct Layer
{
    /// <summary>Creates a layer record.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Layer(LayerKind kind, int offset, int length, int end, byte depth, LayerFlags flags, int networkOffset)
    {
        Kind = kind;
        Offset = offset;
        Length = length;
        End = end;
        Depth = depth;
        Flags = flags;
        NetworkOffset = networkOffset;
    }

    /// <summary>What the layer is.</summary>
    public LayerKind Kind { get; }

    /// <summary>The header's byte offset in the packet.</summary>
    public int Offset { get; }

    /// <summary>The header's length in bytes (options included); for <see cref="LayerKind.Payload"/>, the data length.</summary>
    public int Length { get; }

    /// <summary>The end (exclusive) of the region this layer heads: its header, everything it carries, nothing after.</summary>
    public int End { get; }

    /// <summary>Tunnel depth: 0 for the outer packet, 1 inside the first VXLAN/Geneve/IP-in-IP tunnel, …</summary>
    public byte Depth { get; }

    /// <summary>Extra facts (inside an ICMP error, clipped by the capture).</summary>
    public LayerFlags Flags { get; }

    /// <summary>The offset of the IP header that carries this layer (for pseudo-header checksums), or -1.</summary>
    public int NetworkOffset { get; }

    /// <summary>The header bytes.</summary>
    public ReadOnlySpan<byte> Header(ReadOnlySpan<byte> packet) => packet.Slice(Offset, Length);

    /// <summary>The whole region: header and everything it carries.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> Region(ReadOnlySpan<byte> packet) => packet.Slice(Offset, End - Offset);

    /// <summary>What follows the header inside the region.</summary>
    public ReadOnlySpan<byte> Contents(ReadOnlySpan<byte> packet) => packet.Slice(Offset + Length, End - Offset - Length);

    /// <inheritdoc/>
    public override string ToString() => $"{LayerNames.Display(Kind)} @{Offset} len {Length} end {End} depth {Depth}{(Flags != 0 ? " " + Flags : "")}";

    // The views (and the header getters consumers call most) are forced inline: a view that a call takes by
    // reference holds a span, so the JIT keeps it on the stack and zeroes it on every call of the consumer.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Expect(LayerKind kind)
    {
        if (Kind != kind)
        {
            ThrowHelper.ThrowWrongLayer(kind, Kind);
        }
    }

    /// <summary>Views an Ethernet layer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public EthernetHeader AsEthernet(ReadOnlySpan<byte> packet) { Expect(LayerKind.Ethernet); return new(Region(packet)); }

    /// <summary>Views a VLAN tag.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public VlanHeader AsVlan(ReadOnlySpan<byte> packet) { Expect(LayerKind.Vlan); return new(Region(packet)); }

    /// <summary>Views an ARP packet.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ArpHeader AsArp(ReadOnlySpan<byte> packet) { Expect(LayerKind.Arp); return new(Region(packet)); }

    /// <summary>Views an IPv4 header.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Ipv4Header AsIpv4(ReadOnlySpan<byte> packet) { Expect(LayerKind.IPv4); return new(Region(packet)); }

    /// <summary>Views an IPv6 header.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Ipv6Header AsIpv6(ReadOnlySpan<byte> packet) { Expect(LayerKind.IPv6); return new(Region(packet)); }

    /// <summary>True for the IPv6 extension-header kinds (and AH).</summary>
    public bool IsIpv6Extension => Kind is LayerKind.Ipv6HopByHop or LayerKind.Ipv6Routing or LayerKind.Ipv6Fragment
        or LayerKind.Ipv6DestinationOptions or LayerKind.Ah;

    /// <summary>Views an IPv6 extension header (hop-by-hop, routing, fragment, destination options, AH).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Ipv6ExtensionHeader AsIpv6Extension(ReadOnlySpan<byte> packet)
    {
        if (!IsIpv6Extension)
        {
            ThrowHelper.ThrowWrongLayer(LayerKind.Ipv6HopByHop, Kind);
        }
        return new(Header(packet), Ipv6ExtensionHeader.TypeOf(Kind));
    }

    /// <summary>Views a TCP header.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TcpHeader AsTcp(ReadOnlySpan<byte> packet) { Expect(LayerKind.Tcp); return new(Region(packet)); }

    /// <summary>Views a UDP header.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public UdpHeader AsUdp(ReadOnlySpan<byte> packet) { Expect(LayerKind.Udp); return new(Region(packet)); }

    /// <summary>Views an ICMPv4 message.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Icmpv4Header AsIcmpv4(ReadOnlySpan<byte> packet) { Expect(LayerKind.Icmpv4); return new(Region(packet)); }

    /// <summary>Views an ICMPv6 message.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Icmpv6Header AsIcmpv6(ReadOnlySpan<byte> packet) { Expect(LayerKind.Icmpv6); return new(Region(packet)); }

    /// <summary>Views a VXLAN header.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public VxlanHeader AsVxlan(ReadOnlySpan<byte> packet) { Expect(LayerKind.Vxlan); return new(Region(packet)); }

    /// <summary>Views a Geneve header.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public GeneveHeader AsGeneve(ReadOnlySpan<byte> packet) { Expect(LayerKind.Geneve); return new(Region(packet)); }

    /// <summary>Views a seed frame.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public SeedFrame AsSeed(ReadOnlySpan<byte> packet) { Expect(LayerKind.Seed); return new(Region(packet)); }

    /// <summary>
    /// Verifies this layer's checksum: IPv4 header, TCP/UDP/ICMPv6 with the pseudo-header of the IP header
    /// that carries them, ICMPv4. A wrong checksum is reported, never thrown; a layer cut short by the capture
    /// or quoted inside an ICMP error is <see cref="ChecksumStatus.Unverifiable"/>.
    /// </summary>
    public ChecksumStatus VerifyChecksum(ReadOnlySpan<byte> packet) => PacketChecksums.Verify(packet, this);
}
