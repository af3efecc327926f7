using System.Net.NetworkInformation;

namespace Membrane.Linux.Netlink;

/// <summary>Interface flags (the IFF_* bits of linux/if.h, same values).</summary>
[Flags]
public enum LinkFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>Administratively up.</summary>
    Up = 0x1,
    /// <summary>Has a broadcast address.</summary>
    Broadcast = 0x2,
    /// <summary>The loopback device.</summary>
    Loopback = 0x8,
    /// <summary>Point-to-point link.</summary>
    PointToPoint = 0x10,
    /// <summary>Operationally running (RFC 2863 up).</summary>
    Running = 0x40,
    /// <summary>No ARP on this link.</summary>
    NoArp = 0x80,
    /// <summary>Receives all packets.</summary>
    Promiscuous = 0x100,
    /// <summary>Supports multicast.</summary>
    Multicast = 0x1000,
    /// <summary>The driver signals L1 up (carrier).</summary>
    LowerUp = 0x10000,
}

/// <summary>RFC 2863 operational state (IF_OPER_* in linux/if.h, same values).</summary>
public enum LinkOperationalState : byte
{
    /// <summary>Unknown.</summary>
    Unknown = 0,
    /// <summary>Not present.</summary>
    NotPresent = 1,
    /// <summary>Down.</summary>
    Down = 2,
    /// <summary>Down because a lower layer is down (e.g. a veth whose peer is down).</summary>
    LowerLayerDown = 3,
    /// <summary>Testing.</summary>
    Testing = 4,
    /// <summary>Dormant.</summary>
    Dormant = 5,
    /// <summary>Up.</summary>
    Up = 6,
}

/// <summary>A network interface as rtnetlink reports it (RTM_NEWLINK).</summary>
/// <param name="Index">The ifindex: only meaningful inside the namespace it was read from.</param>
/// <param name="Name">The interface name.</param>
/// <param name="Flags">IFF_* flags.</param>
/// <param name="Mtu">The MTU in bytes.</param>
/// <param name="MacAddress">The link-layer address, when the link has one.</param>
/// <param name="Kind">The driver kind for virtual links ("veth", "vxlan", "dummy"), else null.</param>
/// <param name="ParentIndex">IFLA_LINK: for a veth the peer's ifindex (in the peer's namespace).</param>
/// <param name="MasterIndex">The bridge/bond this link is enslaved to.</param>
/// <param name="OperationalState">RFC 2863 operational state.</param>
/// <param name="PeerNamespaceId">IFLA_LINK_NETNSID: the peer namespace's id as seen from this namespace, when the parent lives elsewhere.</param>
public sealed record LinkInfo(
    int Index,
    string Name,
    LinkFlags Flags,
    int Mtu,
    PhysicalAddress? MacAddress,
    string? Kind,
    int? ParentIndex,
    int? MasterIndex,
    LinkOperationalState OperationalState,
    int? PeerNamespaceId)
{
    /// <summary>True when the link is administratively up.</summary>
    public bool IsUp => (Flags & LinkFlags.Up) != 0;

    /// <summary>
    /// The hardware type (ifi_type, ARPHRD_* in linux/if_arp.h): 1 for Ethernet framing (veth,
    /// VXLAN, dummy), 772 for loopback (which also carries an Ethernet header), 0xFFFE for
    /// devices without a link-layer header (tun, WireGuard).
    /// </summary>
    public ushort HardwareType { get; init; }

    /// <summary>The largest GSO packet the stack builds for this link (IPv6, and IPv4 before Linux 6.3); 0 when not reported.</summary>
    public int GsoMaxSize { get; init; }

    /// <summary>The largest packet GRO builds on this link (IPv6, and IPv4 before Linux 6.3); 0 when not reported.</summary>
    public int GroMaxSize { get; init; }

    /// <summary>The largest IPv4 GSO packet (Linux 6.3+; above 65,536 bytes is BIG TCP); 0 when not reported.</summary>
    public int GsoIpv4MaxSize { get; init; }

    /// <summary>The largest IPv4 GRO packet (Linux 6.3+); 0 when not reported.</summary>
    public int GroIpv4MaxSize { get; init; }

    /// <summary>True when packets on this link start with an Ethernet header (ARPHRD_ETHER or ARPHRD_LOOPBACK).</summary>
    public bool HasEthernetHeader => HardwareType is 1 or 772;
}
