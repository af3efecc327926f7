namespace Membrane.Linux.Interop;

/// <summary>
/// Netlink and rtnetlink wire constants under their kernel names. They stay inside the
/// interop layer; the public API above (Membrane.Linux.Netlink) uses .NET names.
/// Sources: include/uapi/linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h, neighbour.h,
/// veth.h, if.h (Linux 6.x).
/// </summary>
internal static class Netlink
{
    // ---- netlink.h -------------------------------------------------------------------
    internal const int NETLINK_ROUTE = 0;
    internal const int SOL_NETLINK = 270;
    internal const int NETLINK_CAP_ACK = 10;
    internal const int NETLINK_EXT_ACK = 11;
    internal const int NETLINK_GET_STRICT_CHK = 12;

    /// <summary>sizeof(struct nlmsghdr): len u32, type u16, flags u16, seq u32, pid u32.</summary>
    internal const int NLMSG_HDRLEN = 16;
    internal const int NLMSG_ALIGNTO = 4;
    /// <summary>sizeof(struct nlattr): len u16, type u16.</summary>
    internal const int NLA_HDRLEN = 4;
    internal const int NLA_ALIGNTO = 4;
    internal const ushort NLA_F_NESTED = 0x8000;
    internal const ushort NLA_F_NET_BYTEORDER = 0x4000;
    internal const ushort NLA_TYPE_MASK = unchecked((ushort)~(NLA_F_NESTED | NLA_F_NET_BYTEORDER));

    internal const ushort NLMSG_NOOP = 1;
    internal const ushort NLMSG_ERROR = 2;
    internal const ushort NLMSG_DONE = 3;
    internal const ushort NLMSG_OVERRUN = 4;

    internal const ushort NLM_F_REQUEST = 0x01;
    internal const ushort NLM_F_MULTI = 0x02;
    internal const ushort NLM_F_ACK = 0x04;
    internal const ushort NLM_F_DUMP_INTR = 0x10;
    // GET requests
    internal const ushort NLM_F_ROOT = 0x100;
    internal const ushort NLM_F_MATCH = 0x200;
    internal const ushort NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
    // NEW requests
    internal const ushort NLM_F_REPLACE = 0x100;
    internal const ushort NLM_F_EXCL = 0x200;
    internal const ushort NLM_F_CREATE = 0x400;
    // flags of an NLMSG_ERROR acknowledgement
    internal const ushort NLM_F_CAPPED = 0x100;
    internal const ushort NLM_F_ACK_TLVS = 0x200;

    // enum nlmsgerr_attrs
    internal const ushort NLMSGERR_ATTR_MSG = 1;
    internal const ushort NLMSGERR_ATTR_OFFS = 2;

    // ---- rtnetlink.h -----------------------------------------------------------------
    internal const ushort RTM_NEWLINK = 16;
    internal const ushort RTM_DELLINK = 17;
    internal const ushort RTM_GETLINK = 18;
    internal const ushort RTM_NEWADDR = 20;
    internal const ushort RTM_DELADDR = 21;
    internal const ushort RTM_GETADDR = 22;
    internal const ushort RTM_NEWROUTE = 24;
    internal const ushort RTM_DELROUTE = 25;
    internal const ushort RTM_GETROUTE = 26;
    internal const ushort RTM_NEWNEIGH = 28;
    internal const ushort RTM_DELNEIGH = 29;
    internal const ushort RTM_GETNEIGH = 30;

    /// <summary>sizeof(struct ifinfomsg): family u8, pad u8, type u16, index s32, flags u32, change u32.</summary>
    internal const int IFINFOMSG_SIZE = 16;
    /// <summary>sizeof(struct ifaddrmsg): family u8, prefixlen u8, flags u8, scope u8, index u32.</summary>
    internal const int IFADDRMSG_SIZE = 8;
    /// <summary>sizeof(struct rtmsg): family, dst_len, src_len, tos, table, protocol, scope, type (u8), flags u32.</summary>
    internal const int RTMSG_SIZE = 12;
    /// <summary>sizeof(struct ndmsg): family u8, pad u8, pad u16, ifindex s32, state u16, flags u8, type u8.</summary>
    internal const int NDMSG_SIZE = 12;

    internal const byte AF_UNSPEC = 0;
    internal const byte AF_INET = 2;
    internal const byte AF_INET6 = 10;

    // rtm_type
    internal const byte RTN_UNICAST = 1;
    internal const byte RTN_LOCAL = 2;
    internal const byte RTN_BROADCAST = 3;
    internal const byte RTN_ANYCAST = 4;
    internal const byte RTN_MULTICAST = 5;
    internal const byte RTN_BLACKHOLE = 6;
    internal const byte RTN_UNREACHABLE = 7;
    internal const byte RTN_PROHIBIT = 8;
    internal const byte RTN_THROW = 9;

    // rtm_protocol
    internal const byte RTPROT_UNSPEC = 0;
    internal const byte RTPROT_STATIC = 4;

    // rtm_scope
    internal const byte RT_SCOPE_UNIVERSE = 0;
    internal const byte RT_SCOPE_LINK = 253;
    internal const byte RT_SCOPE_HOST = 254;
    internal const byte RT_SCOPE_NOWHERE = 255;

    // rtm_table
    internal const byte RT_TABLE_UNSPEC = 0;
    internal const byte RT_TABLE_MAIN = 254;

    /// <summary>RTNH_F_ONLINK: the gateway is on-link even if no prefix covers it.</summary>
    internal const uint RTNH_F_ONLINK = 4;

    // enum rtattr_type_t
    internal const ushort RTA_DST = 1;
    internal const ushort RTA_OIF = 4;
    internal const ushort RTA_GATEWAY = 5;
    internal const ushort RTA_PRIORITY = 6;
    internal const ushort RTA_PREFSRC = 7;
    internal const ushort RTA_TABLE = 15;

    // ---- if.h / if_link.h ------------------------------------------------------------
    internal const uint IFF_UP = 0x1;
    internal const uint IFF_LOOPBACK = 0x8;
    internal const uint IFF_RUNNING = 0x40;
    internal const uint IFF_NOARP = 0x80;
    internal const uint IFF_LOWER_UP = 0x10000;

    internal const ushort IFLA_ADDRESS = 1;
    internal const ushort IFLA_BROADCAST = 2;
    internal const ushort IFLA_IFNAME = 3;
    internal const ushort IFLA_MTU = 4;
    internal const ushort IFLA_LINK = 5;
    internal const ushort IFLA_MASTER = 10;
    internal const ushort IFLA_TXQLEN = 13;
    internal const ushort IFLA_OPERSTATE = 16;
    internal const ushort IFLA_LINKINFO = 18;
    internal const ushort IFLA_NET_NS_PID = 19;
    internal const ushort IFLA_NET_NS_FD = 28;
    internal const ushort IFLA_EXT_MASK = 29;
    internal const ushort IFLA_CARRIER = 33;
    internal const ushort IFLA_LINK_NETNSID = 37;
    internal const ushort IFLA_GSO_MAX_SIZE = 41;
    internal const ushort IFLA_GRO_MAX_SIZE = 58;
    // Linux 6.3 (BIG TCP for IPv4); older kernels skip attribute types they do not know.
    internal const ushort IFLA_GSO_IPV4_MAX_SIZE = 63;
    internal const ushort IFLA_GRO_IPV4_MAX_SIZE = 64;

    internal const ushort IFLA_INFO_KIND = 1;
    internal const ushort IFLA_INFO_DATA = 2;

    /// <summary>VETH_INFO_PEER (linux/veth.h): a struct ifinfomsg followed by the peer's IFLA_* attributes.</summary>
    internal const ushort VETH_INFO_PEER = 1;

    internal const ushort IFLA_VXLAN_ID = 1;
    internal const ushort IFLA_VXLAN_LEARNING = 7;
    internal const ushort IFLA_VXLAN_PORT = 15;
    internal const ushort IFLA_VXLAN_COLLECT_METADATA = 25;

    // ---- if_addr.h -------------------------------------------------------------------
    internal const ushort IFA_ADDRESS = 1;
    internal const ushort IFA_LOCAL = 2;
    internal const ushort IFA_LABEL = 3;
    internal const ushort IFA_FLAGS = 8;
    internal const uint IFA_F_NODAD = 0x02;
    internal const uint IFA_F_TENTATIVE = 0x40;
    internal const uint IFA_F_PERMANENT = 0x80;

    // ---- neighbour.h -----------------------------------------------------------------
    internal const ushort NDA_DST = 1;
    internal const ushort NDA_LLADDR = 2;
    internal const ushort NUD_PERMANENT = 0x80;
}
