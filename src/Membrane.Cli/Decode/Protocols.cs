namespace Membrane.Cli.Decode;

/// <summary>
/// Layer names: Wireshark's protocol filter names (what <c>tshark -G protocols</c> lists in its
/// third column and what <c>frame.protocols</c> and <c>-z io,phs</c> print), and their full titles
/// for the text tree. An 802.1ad service tag is Wireshark's <c>ieee8021ad</c>, not <c>vlan</c>.
/// </summary>
internal static class Protocols
{
    public const string LinuxCooked = "sll";
    public const string Eth = "eth";
    public const string Vlan = "vlan";
    public const string Ieee8021ad = "ieee8021ad";
    public const string Arp = "arp";
    public const string Ip = "ip";
    public const string Ipv6 = "ipv6";

    // Wireshark dissects each IPv6 extension header as a protocol of its own (frame.protocols lists them).
    public const string Ipv6HopByHop = "ipv6.hopopts";
    public const string Ipv6Routing = "ipv6.routing";
    public const string Ipv6Fragment = "ipv6.fraghdr";
    public const string Ipv6DestinationOptions = "ipv6.dstopts";
    public const string Ah = "ah";
    public const string Esp = "esp";

    public const string Tcp = "tcp";
    public const string Udp = "udp";
    public const string Icmp = "icmp";
    public const string Icmpv6 = "icmpv6";
    public const string Vxlan = "vxlan";
    public const string Geneve = "geneve";
    public const string Seed = "seed";

    public static string Title(string protocol) => protocol switch
    {
        LinuxCooked => "Linux cooked capture",
        Eth => "Ethernet II",
        Vlan => "802.1Q Virtual LAN",
        Ieee8021ad => "IEEE 802.1ad",
        Arp => "Address Resolution Protocol",
        Ip => "Internet Protocol Version 4",
        Ipv6 => "Internet Protocol Version 6",
        Ipv6HopByHop => "IPv6 Hop-by-Hop Option",
        Ipv6Routing => "Routing Header for IPv6",
        Ipv6Fragment => "Fragment Header for IPv6",
        Ipv6DestinationOptions => "Destination Options for IPv6",
        Ah => "Authentication Header",
        Esp => "Encapsulating Security Payload",
        Tcp => "Transmission Control Protocol",
        Udp => "User Datagram Protocol",
        Icmp => "Internet Control Message Protocol",
        Icmpv6 => "Internet Control Message Protocol v6",
        Vxlan => "Virtual eXtensible Local Area Network",
        Geneve => "Generic Network Virtualization Encapsulation",
        Seed => "Membrane seed frame",
        _ => protocol,
    };
}
