namespace Membrane.Packets;

/// <summary>What a <see cref="Layer"/> is.</summary>
public enum LayerKind : byte
{
    None = 0,
    Ethernet,
    /// <summary>One 802.1Q or 802.1ad tag (the TPID is the previous layer's EtherType).</summary>
    Vlan,
    Arp,
    IPv4,
    IPv6,
    Ipv6HopByHop,
    Ipv6Routing,
    Ipv6Fragment,
    Ipv6DestinationOptions,
    /// <summary>IPsec AH (RFC 4302): recognised; the walk stops here.</summary>
    Ah,
    /// <summary>IPsec ESP (RFC 4303): recognised; what follows is encrypted, the walk stops here.</summary>
    Esp,
    Tcp,
    Udp,
    Icmpv4,
    Icmpv6,
    Vxlan,
    Geneve,
    /// <summary>The seed frame's 8-byte header (DESIGN.md).</summary>
    Seed,
    /// <summary>Bytes no header claims: application data, a non-first fragment, an unknown protocol.</summary>
    Payload,
}

/// <summary>Names for <see cref="LayerKind"/>: for messages and Wireshark's protocol names.</summary>
public static class LayerNames
{
    /// <summary>A readable name for messages (<c>IPv4</c>, <c>TCP</c>, <c>IPv6 fragment</c>).</summary>
    public static string Display(LayerKind kind) => kind switch
    {
        LayerKind.Ethernet => "Ethernet",
        LayerKind.Vlan => "VLAN",
        LayerKind.Arp => "ARP",
        LayerKind.IPv4 => "IPv4",
        LayerKind.IPv6 => "IPv6",
        LayerKind.Ipv6HopByHop => "IPv6 hop-by-hop options",
        LayerKind.Ipv6Routing => "IPv6 routing",
        LayerKind.Ipv6Fragment => "IPv6 fragment",
        LayerKind.Ipv6DestinationOptions => "IPv6 destination options",
        LayerKind.Ah => "AH",
        LayerKind.Esp => "ESP",
        LayerKind.Tcp => "TCP",
        LayerKind.Udp => "UDP",
        LayerKind.Icmpv4 => "ICMP",
        LayerKind.Icmpv6 => "ICMPv6",
        LayerKind.Vxlan => "VXLAN",
        LayerKind.Geneve => "Geneve",
        LayerKind.Seed => "seed",
        LayerKind.Payload => "payload",
        _ => "packet",
    };

    /// <summary>
    /// Wireshark's protocol (display-filter) name: <c>eth vlan arp ip ipv6 tcp udp icmp icmpv6 vxlan geneve ah esp data</c>,
    /// <c>seed</c> for the seed frame, and <c>ipv6.hopopts ipv6.routing ipv6.fraghdr ipv6.dstopts</c> for the
    /// IPv6 extension headers (Wireshark dissects those inside <c>ipv6</c>).
    /// </summary>
    public static string Wireshark(LayerKind kind) => kind switch
    {
        LayerKind.Ethernet => "eth",
        LayerKind.Vlan => "vlan",
        LayerKind.Arp => "arp",
        LayerKind.IPv4 => "ip",
        LayerKind.IPv6 => "ipv6",
        LayerKind.Ipv6HopByHop => "ipv6.hopopts",
        LayerKind.Ipv6Routing => "ipv6.routing",
        LayerKind.Ipv6Fragment => "ipv6.fraghdr",
        LayerKind.Ipv6DestinationOptions => "ipv6.dstopts",
        LayerKind.Ah => "ah",
        LayerKind.Esp => "esp",
        LayerKind.Tcp => "tcp",
        LayerKind.Udp => "udp",
        LayerKind.Icmpv4 => "icmp",
        LayerKind.Icmpv6 => "icmpv6",
        LayerKind.Vxlan => "vxlan",
        LayerKind.Geneve => "geneve",
        LayerKind.Seed => "seed",
        LayerKind.Payload => "data",
        _ => "",
    };
}
