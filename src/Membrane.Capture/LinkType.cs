namespace Membrane.Capture;

/// <summary>
/// A capture's link-layer header type: the LINKTYPE_ values of the tcpdump.org registry
/// (https://www.tcpdump.org/linktypes.html), shared by pcap's file header and pcapng's
/// interface description block. Values not named here are kept as their number.
/// </summary>
public enum LinkType : ushort
{
    /// <summary>LINKTYPE_NULL: BSD loopback, a 4-byte protocol family in host byte order.</summary>
    Null = 0,

    /// <summary>LINKTYPE_ETHERNET: IEEE 802.3 Ethernet (DIX and 802.3 frames).</summary>
    Ethernet = 1,

    /// <summary>LINKTYPE_RAW: raw IP; the version nibble says IPv4 or IPv6.</summary>
    RawIp = 101,

    /// <summary>LINKTYPE_LOOP: OpenBSD loopback, protocol family in network byte order.</summary>
    Loop = 108,

    /// <summary>LINKTYPE_LINUX_SLL: Linux "cooked" capture, version 1.</summary>
    LinuxSll = 113,

    /// <summary>LINKTYPE_IPV4: raw IPv4.</summary>
    Ipv4 = 228,

    /// <summary>LINKTYPE_IPV6: raw IPv6.</summary>
    Ipv6 = 229,

    /// <summary>LINKTYPE_LINUX_SLL2: Linux "cooked" capture, version 2.</summary>
    LinuxSll2 = 276,
}
