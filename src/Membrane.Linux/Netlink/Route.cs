using System.Net;

namespace Membrane.Linux.Netlink;

/// <summary>Route type (RTN_* in linux/rtnetlink.h, same values).</summary>
public enum RouteType : byte
{
    /// <summary>Unspecified (only in queries).</summary>
    Unspecified = 0,
    /// <summary>A gateway or direct route.</summary>
    Unicast = 1,
    /// <summary>A local address (the local table).</summary>
    Local = 2,
    /// <summary>Broadcast: accepted locally, sent as broadcast.</summary>
    Broadcast = 3,
    /// <summary>Anycast: accepted locally, sent as unicast.</summary>
    Anycast = 4,
    /// <summary>Multicast.</summary>
    Multicast = 5,
    /// <summary>Silently dropped.</summary>
    Blackhole = 6,
    /// <summary>Dropped with ICMP destination unreachable (host unreachable; EHOSTUNREACH locally).</summary>
    Unreachable = 7,
    /// <summary>Dropped with ICMP administratively prohibited (EACCES locally).</summary>
    Prohibit = 8,
    /// <summary>Lookup continues in the next rule's table.</summary>
    Throw = 9,
}

/// <summary>Scope of a route or address (RT_SCOPE_* in linux/rtnetlink.h, same values).</summary>
public enum RouteScope : byte
{
    /// <summary>Valid everywhere (via a gateway, or any global address).</summary>
    Universe = 0,
    /// <summary>Site-local (IPv6 only, deprecated).</summary>
    Site = 200,
    /// <summary>Directly on the link: no gateway.</summary>
    Link = 253,
    /// <summary>This host only.</summary>
    Host = 254,
    /// <summary>Nowhere (also "any scope" when deleting).</summary>
    Nowhere = 255,
}

/// <summary>Who installed a route (RTPROT_* in linux/rtnetlink.h, same values).</summary>
public enum RouteProtocol : byte
{
    /// <summary>Unknown.</summary>
    Unspecified = 0,
    /// <summary>ICMP redirect.</summary>
    Redirect = 1,
    /// <summary>The kernel (prefix routes of addresses).</summary>
    Kernel = 2,
    /// <summary>During boot (iproute2's default).</summary>
    Boot = 3,
    /// <summary>An administrator or agent: Membrane's routes.</summary>
    Static = 4,
}

/// <summary>
/// A route, both for adding and as rtnetlink reports it (RTM_NEWROUTE). For adding, only
/// <see cref="Destination"/> is required; the rest defaults to what <c>ip route add</c> does.
/// </summary>
public sealed record Route
{
    /// <summary>The main table (RT_TABLE_MAIN), where routes go by default.</summary>
    public const uint MainTable = 254;

    /// <summary>The local table (RT_TABLE_LOCAL): local and broadcast addresses.</summary>
    public const uint LocalTable = 255;

    /// <summary>The destination prefix (0.0.0.0/0 or ::/0 for a default route).</summary>
    public required IPNetwork Destination { get; init; }

    /// <summary>The next hop, or null for a route straight onto the link.</summary>
    public IPAddress? Gateway { get; init; }

    /// <summary>The output interface index (in the namespace of the Rtnetlink used).</summary>
    public int? OutputInterface { get; init; }

    /// <summary>The route type: unicast, blackhole, unreachable, ...</summary>
    public RouteType Type { get; init; } = RouteType.Unicast;

    /// <summary>
    /// The scope; null picks iproute2's choice when adding: link for a unicast route with
    /// neither gateway, universe otherwise (host for local routes).
    /// </summary>
    public RouteScope? Scope { get; init; }

    /// <summary>The gateway is on the link even if no prefix of the interface covers it (RTNH_F_ONLINK).</summary>
    public bool OnLink { get; init; }

    /// <summary>The routing table; null is the main table.</summary>
    public uint? Table { get; init; }

    /// <summary>The metric (RTA_PRIORITY); null leaves the kernel default (0 for IPv4, 1024 for IPv6).</summary>
    public uint? Metric { get; init; }

    /// <summary>The preferred source address for traffic using this route.</summary>
    public IPAddress? PreferredSource { get; init; }

    /// <summary>Who installed it; routes added through Membrane are <see cref="RouteProtocol.Static"/>.</summary>
    public RouteProtocol Protocol { get; init; } = RouteProtocol.Static;
}
