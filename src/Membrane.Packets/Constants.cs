namespace Membrane.Packets;

/// <summary>EtherType values (IEEE 802 numbers, IANA "ieee-802-numbers" registry).</summary>
public static class EtherTypes
{
    /// <summary>Values below this are an IEEE 802.3 length, not an EtherType (IEEE 802.3 §3.2.6).</summary>
    public const ushort MinEtherType = 0x0600;
    public const ushort IPv4 = 0x0800;
    public const ushort Arp = 0x0806;
    /// <summary>Transparent Ethernet bridging: the protocol type Geneve uses for an inner Ethernet frame.</summary>
    public const ushort TransparentEthernetBridging = 0x6558;
    /// <summary>IEEE 802.1Q customer VLAN tag.</summary>
    public const ushort Vlan = 0x8100;
    /// <summary>IEEE 802.1ad service VLAN tag (QinQ outer tag).</summary>
    public const ushort QinQ = 0x88A8;
    /// <summary>Pre-standard QinQ tag some switches still send.</summary>
    public const ushort QinQLegacy = 0x9100;
    public const ushort IPv6 = 0x86DD;
}

/// <summary>IP protocol / IPv6 next-header numbers (IANA "protocol-numbers").</summary>
public static class IpProtocols
{
    public const byte HopByHopOptions = 0;
    public const byte Icmp = 1;
    public const byte Tcp = 6;
    public const byte Udp = 17;
    /// <summary>IPv6 encapsulated in IP (RFC 2473).</summary>
    public const byte IPv6 = 41;
    /// <summary>IPv4 encapsulated in IP (RFC 2003).</summary>
    public const byte IPv4 = 4;
    public const byte Routing = 43;
    public const byte Fragment = 44;
    /// <summary>IPsec Encapsulating Security Payload (RFC 4303).</summary>
    public const byte Esp = 50;
    /// <summary>IPsec Authentication Header (RFC 4302).</summary>
    public const byte Ah = 51;
    public const byte Icmpv6 = 58;
    public const byte NoNextHeader = 59;
    public const byte DestinationOptions = 60;
}

/// <summary>UDP ports of the tunnels Membrane recognises.</summary>
public static class TunnelPorts
{
    /// <summary>IANA VXLAN port (RFC 7348 §5).</summary>
    public const ushort Vxlan = 4789;
    /// <summary>The Linux kernel's historical VXLAN default, which Cilium uses.</summary>
    public const ushort VxlanLinux = 8472;
    /// <summary>IANA Geneve port (RFC 8926 §3.3).</summary>
    public const ushort Geneve = 6081;
}

/// <summary>TCP header flags (RFC 9293 §3.1; NS from RFC 3540, CWR/ECE from RFC 3168), as the 9 low bits of bytes 12–13.</summary>
[Flags]
public enum TcpFlags : ushort
{
    None = 0,
    Fin = 0x001,
    Syn = 0x002,
    Rst = 0x004,
    Psh = 0x008,
    Ack = 0x010,
    Urg = 0x020,
    Ece = 0x040,
    Cwr = 0x080,
    /// <summary>ECN-nonce (RFC 3540, historic); Wireshark calls it <c>tcp.flags.ae</c> in newer versions.</summary>
    Ns = 0x100,
}

/// <summary>TCP option kinds (IANA "tcp-parameters").</summary>
public enum TcpOptionKind : byte
{
    EndOfOptionList = 0,
    NoOperation = 1,
    MaximumSegmentSize = 2,
    WindowScale = 3,
    SackPermitted = 4,
    Sack = 5,
    Timestamps = 8,
}

/// <summary>ARP operations (RFC 826).</summary>
public enum ArpOperation : ushort
{
    Request = 1,
    Reply = 2,
}

/// <summary>ICMPv4 message types (RFC 792).</summary>
public static class Icmpv4Types
{
    public const byte EchoReply = 0;
    public const byte DestinationUnreachable = 3;
    public const byte SourceQuench = 4;
    public const byte Redirect = 5;
    public const byte EchoRequest = 8;
    public const byte TimeExceeded = 11;
    public const byte ParameterProblem = 12;
}

/// <summary>ICMPv6 message types (RFC 4443, RFC 4861).</summary>
public static class Icmpv6Types
{
    public const byte DestinationUnreachable = 1;
    public const byte PacketTooBig = 2;
    public const byte TimeExceeded = 3;
    public const byte ParameterProblem = 4;
    public const byte EchoRequest = 128;
    public const byte EchoReply = 129;
    public const byte RouterSolicitation = 133;
    public const byte RouterAdvertisement = 134;
    public const byte NeighborSolicitation = 135;
    public const byte NeighborAdvertisement = 136;
    public const byte Redirect = 137;
}

/// <summary>Neighbor Discovery option types (RFC 4861 §4.6).</summary>
public static class NdOptionTypes
{
    public const byte SourceLinkLayerAddress = 1;
    public const byte TargetLinkLayerAddress = 2;
    public const byte PrefixInformation = 3;
    public const byte RedirectedHeader = 4;
    public const byte Mtu = 5;
}
