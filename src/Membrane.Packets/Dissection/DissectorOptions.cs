namespace Membrane.Packets;

/// <summary>What the first bytes of a packet are (pcap LINKTYPE_* numbers where one exists).</summary>
public enum LinkType : ushort
{
    /// <summary>LINKTYPE_ETHERNET (1): Ethernet II.</summary>
    Ethernet = 1,
    /// <summary>LINKTYPE_RAW (101): raw IPv4 or IPv6, told apart by the version nibble.</summary>
    RawIp = 101,
    /// <summary>LINKTYPE_USER0 (147): a seed frame (the datapath's event records).</summary>
    Seed = 147,
    /// <summary>LINKTYPE_IPV4 (228).</summary>
    Ipv4 = 228,
    /// <summary>LINKTYPE_IPV6 (229).</summary>
    Ipv6 = 229,
}

/// <summary>A set of UDP ports with an O(1), allocation-free lookup (a 65,536-bit map).</summary>
public sealed class PortSet
{
    private readonly ulong[] _bits = new ulong[1024];

    /// <summary>Creates a set of the given ports.</summary>
    public PortSet(params ReadOnlySpan<ushort> ports)
    {
        foreach (var p in ports)
        {
            _bits[p >> 6] |= 1UL << (p & 63);
        }
    }

    /// <summary>VXLAN's defaults: IANA 4789 and the Linux/Cilium 8472.</summary>
    public static PortSet DefaultVxlan { get; } = new(TunnelPorts.Vxlan, TunnelPorts.VxlanLinux);

    /// <summary>Geneve's default: 6081.</summary>
    public static PortSet DefaultGeneve { get; } = new(TunnelPorts.Geneve);

    /// <summary>No ports (turns a tunnel off).</summary>
    public static PortSet Empty { get; } = new();

    /// <summary>True when <paramref name="port"/> is in the set.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public bool Contains(ushort port) => ((_bits[port >> 6] >> (port & 63)) & 1) != 0;
}

/// <summary>How <see cref="PacketDissector"/> and <see cref="FlowKeyExtractor"/> treat tunnels and truncation.</summary>
public sealed class DissectorOptions
{
    /// <summary>The defaults: VXLAN on 4789/8472, Geneve on 6081, strict lengths, ICMP errors followed.</summary>
    public static DissectorOptions Default { get; } = new();

    /// <summary>UDP destination ports decoded as VXLAN.</summary>
    public PortSet VxlanPorts { get; init; } = PortSet.DefaultVxlan;

    /// <summary>UDP destination ports decoded as Geneve.</summary>
    public PortSet GenevePorts { get; init; } = PortSet.DefaultGeneve;

    /// <summary>
    /// Accept IPv4/IPv6/UDP length fields that exceed the captured bytes (snaplen-cut pcap records, the first
    /// bytes of a packet in a datapath event) and flag the layer <see cref="LayerFlags.Truncated"/>. Off by
    /// default: such a length is a <see cref="ParseErrorReason.TotalLengthBeyondCapture"/> error.
    /// </summary>
    public bool AllowTruncated { get; init; }

    /// <summary>
    /// End the walk with a <see cref="LayerKind.Payload"/> layer for the bytes after the last header. On by
    /// default; off, the walk ends at the last header, for a consumer that reads headers only.
    /// </summary>
    public bool IncludePayload { get; init; } = true;

    /// <summary>Dissect the datagram an ICMP error quotes (its IP header and what fits of its L4 header). On by default.</summary>
    public bool FollowIcmpErrors { get; init; } = true;

    /// <summary>The most tunnels (VXLAN, Geneve, IP-in-IP) followed before <see cref="ParseErrorReason.TunnelTooDeep"/>.</summary>
    public int MaxTunnelDepth { get; init; } = 4;

    /// <summary>The most IPv6 extension headers in one chain before <see cref="ParseErrorReason.ExtensionHeaderChainTooLong"/>.</summary>
    public int MaxExtensionHeaders { get; init; } = Ipv6ChainState.DefaultMaxHeaders;
}
