using System.Buffers.Binary;
using System.Globalization;
using System.Net.NetworkInformation;
using Membrane.Linux.Namespaces;
using static Membrane.Linux.Interop.Netlink;

namespace Membrane.Linux.Netlink;

public sealed partial class Rtnetlink
{
    /// <summary>The IANA-assigned VXLAN port (RFC 7348 section 5).</summary>
    public const ushort VxlanDefaultPort = 4789;

    /// <summary>
    /// Creates a veth pair <paramref name="name"/> ↔ <paramref name="peerName"/> (the kernel
    /// names the peer when null). With <paramref name="peerNamespace"/> the peer is created
    /// straight inside that namespace (IFLA_NET_NS_FD inside VETH_INFO_PEER,
    /// drivers/net/veth.c veth_newlink), so it never appears here. <paramref name="mtu"/> and
    /// <paramref name="gsoMaxSize"/> (when not 0) are given to both ends in the same request:
    /// the largest GSO/GRO packet, IPv6 and IPv4 (above 65,536 bytes this is BIG TCP).
    /// Returns this end; its <see cref="LinkInfo.ParentIndex"/> is the peer's ifindex in the
    /// peer's namespace.
    /// </summary>
    public LinkInfo CreateVeth(string name, string? peerName = null, NetNs? peerNamespace = null, int mtu = 0, int gsoMaxSize = 0)
    {
        ValidateInterfaceName(name, nameof(name));
        if (peerName is not null)
        {
            ValidateInterfaceName(peerName, nameof(peerName));
        }
        ArgumentOutOfRangeException.ThrowIfNegative(mtu);
        ArgumentOutOfRangeException.ThrowIfNegative(gsoMaxSize);
        var operation = $"create veth {name}";
        var addedRef = false;
        try
        {
            peerNamespace?.Handle.DangerousAddRef(ref addedRef);
            Span<byte> buffer = stackalloc byte[RequestBufferSize];
            var msg = new NetlinkMessageBuilder(buffer, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
            msg.AppendHeader(IFINFOMSG_SIZE);
            msg.AddString(IFLA_IFNAME, name);
            AddLinkSizes(ref msg, mtu, gsoMaxSize);
            var linkInfo = msg.BeginNested(IFLA_LINKINFO);
            msg.AddString(IFLA_INFO_KIND, "veth");
            var data = msg.BeginNested(IFLA_INFO_DATA);
            var peer = msg.BeginNested(VETH_INFO_PEER);
            // The peer's attributes follow its own (zeroed) struct ifinfomsg.
            msg.AppendHeader(IFINFOMSG_SIZE);
            if (peerName is not null)
            {
                msg.AddString(IFLA_IFNAME, peerName);
            }
            if (peerNamespace is not null)
            {
                msg.AddU32(IFLA_NET_NS_FD, (uint)peerNamespace.Handle.Fd);
            }
            AddLinkSizes(ref msg, mtu, gsoMaxSize);
            msg.EndNested(peer);
            msg.EndNested(data);
            msg.EndNested(linkInfo);
            _socket.Execute(operation, buffer.Slice(0, msg.Written.Length));
        }
        finally
        {
            if (addedRef)
            {
                peerNamespace!.Handle.DangerousRelease();
            }
        }
        return GetLink(name);
    }

    // The attributes net/core/rtnetlink.c rtnl_create_link applies to a new device.
    private static void AddLinkSizes(ref NetlinkMessageBuilder msg, int mtu, int gsoMaxSize)
    {
        if (mtu > 0)
        {
            msg.AddU32(IFLA_MTU, (uint)mtu);
        }
        if (gsoMaxSize > 0)
        {
            msg.AddU32(IFLA_GSO_MAX_SIZE, (uint)gsoMaxSize);
            msg.AddU32(IFLA_GRO_MAX_SIZE, (uint)gsoMaxSize);
            msg.AddU32(IFLA_GSO_IPV4_MAX_SIZE, (uint)gsoMaxSize);
            msg.AddU32(IFLA_GRO_IPV4_MAX_SIZE, (uint)gsoMaxSize);
        }
    }

    /// <summary>Creates a dummy link (drivers/net/dummy.c): a local sink, handy to hold addresses and routes.</summary>
    public LinkInfo CreateDummy(string name)
    {
        ValidateInterfaceName(name, nameof(name));
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        msg.AppendHeader(IFINFOMSG_SIZE);
        msg.AddString(IFLA_IFNAME, name);
        var linkInfo = msg.BeginNested(IFLA_LINKINFO);
        msg.AddString(IFLA_INFO_KIND, "dummy");
        msg.EndNested(linkInfo);
        _socket.Execute($"create dummy {name}", buffer.Slice(0, msg.Written.Length));
        return GetLink(name);
    }

    /// <summary>
    /// Creates a VXLAN device in external (collect-metadata) mode: one device for every VNI and
    /// remote, the tunnel key set per packet by a BPF program (bpf_skb_set_tunnel_key), as
    /// Cilium's cilium_vxlan. Learning is off; UDP destination port <paramref name="port"/>.
    /// </summary>
    public LinkInfo CreateVxlanExternal(string name, ushort port = VxlanDefaultPort)
    {
        ValidateInterfaceName(name, nameof(name));
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        msg.AppendHeader(IFINFOMSG_SIZE);
        msg.AddString(IFLA_IFNAME, name);
        var linkInfo = msg.BeginNested(IFLA_LINKINFO);
        msg.AddString(IFLA_INFO_KIND, "vxlan");
        var data = msg.BeginNested(IFLA_INFO_DATA);
        msg.AddU8(IFLA_VXLAN_COLLECT_METADATA, 1);
        msg.AddU8(IFLA_VXLAN_LEARNING, 0);
        // IFLA_VXLAN_PORT is __be16 (drivers/net/vxlan/vxlan_core.c vxlan_nl2conf: nla_get_be16).
        msg.AddU16BigEndian(IFLA_VXLAN_PORT, port);
        msg.EndNested(data);
        msg.EndNested(linkInfo);
        _socket.Execute($"create vxlan {name}", buffer.Slice(0, msg.Written.Length));
        return GetLink(name);
    }

    /// <summary>Sets a link administratively up.</summary>
    public void SetUp(int index) => ChangeFlags(index, LinkFlags.Up, LinkFlags.Up, $"set link {index} up");

    /// <summary>Sets a link administratively down.</summary>
    public void SetDown(int index) => ChangeFlags(index, LinkFlags.None, LinkFlags.Up, $"set link {index} down");

    /// <summary>Sets a link's MTU.</summary>
    public void SetMtu(int index, int mtu)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mtu);
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = StartSetLink(buffer, index);
        msg.AddU32(IFLA_MTU, (uint)mtu);
        _socket.Execute($"set mtu {mtu} on link {index}", buffer.Slice(0, msg.Written.Length));
    }

    /// <summary>Sets a link's MAC address.</summary>
    public void SetMacAddress(int index, PhysicalAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = StartSetLink(buffer, index);
        msg.Add(IFLA_ADDRESS, address.GetAddressBytes());
        _socket.Execute($"set mac {address} on link {index}", buffer.Slice(0, msg.Written.Length));
    }

    /// <summary>Renames a link (kernels before 6.x refuse with EBUSY while it is up; set it down first to be portable).</summary>
    public void Rename(int index, string newName)
    {
        ValidateInterfaceName(newName, nameof(newName));
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = StartSetLink(buffer, index);
        msg.AddString(IFLA_IFNAME, newName);
        _socket.Execute($"rename link {index} to {newName}", buffer.Slice(0, msg.Written.Length));
    }

    /// <summary>Moves a link into another namespace, where it gets a new ifindex (and goes down).</summary>
    public void MoveToNamespace(int index, NetNs ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        var addedRef = false;
        try
        {
            ns.Handle.DangerousAddRef(ref addedRef);
            Span<byte> buffer = stackalloc byte[RequestBufferSize];
            var msg = StartSetLink(buffer, index);
            msg.AddU32(IFLA_NET_NS_FD, (uint)ns.Handle.Fd);
            _socket.Execute($"move link {index} to network namespace {ns}", buffer.Slice(0, msg.Written.Length));
        }
        finally
        {
            if (addedRef)
            {
                ns.Handle.DangerousRelease();
            }
        }
    }

    /// <summary>Deletes a link (for a veth, both ends go).</summary>
    public void DeleteLink(int index)
    {
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_DELLINK, 0);
        BinaryPrimitives.WriteInt32LittleEndian(msg.AppendHeader(IFINFOMSG_SIZE).Slice(4), index);
        _socket.Execute($"delete link {index}", buffer.Slice(0, msg.Written.Length));
    }

    /// <summary>Deletes a link by name.</summary>
    public void DeleteLink(string name)
    {
        ValidateInterfaceName(name, nameof(name));
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_DELLINK, 0);
        msg.AppendHeader(IFINFOMSG_SIZE);
        msg.AddString(IFLA_IFNAME, name);
        _socket.Execute($"delete link {name}", buffer.Slice(0, msg.Written.Length));
    }

    /// <summary>Looks a link up by name; throws <see cref="NetlinkException"/> (ENODEV) when there is none.</summary>
    public LinkInfo GetLink(string name)
    {
        ValidateInterfaceName(name, nameof(name));
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_GETLINK, 0);
        msg.AppendHeader(IFINFOMSG_SIZE);
        msg.AddString(IFLA_IFNAME, name);
        return _socket.Get<LinkInfo>($"get link {name}", buffer.Slice(0, msg.Written.Length), TryParseLink);
    }

    /// <summary>Looks a link up by index; throws <see cref="NetlinkException"/> (ENODEV) when there is none.</summary>
    public LinkInfo GetLink(int index)
    {
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_GETLINK, 0);
        BinaryPrimitives.WriteInt32LittleEndian(msg.AppendHeader(IFINFOMSG_SIZE).Slice(4), index);
        return _socket.Get<LinkInfo>($"get link {index.ToString(CultureInfo.InvariantCulture)}", buffer.Slice(0, msg.Written.Length), TryParseLink);
    }

    /// <summary>Looks a link up by name; null when there is none.</summary>
    public LinkInfo? FindLink(string name)
    {
        try
        {
            return GetLink(name);
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENODEV)
        {
            return null;
        }
    }

    /// <summary>Every link in the namespace (a dump).</summary>
    public IReadOnlyList<LinkInfo> GetLinks()
    {
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_GETLINK, 0);
        msg.AppendHeader(IFINFOMSG_SIZE);
        return _socket.Dump<LinkInfo>("list links", buffer.Slice(0, msg.Written.Length), TryParseLink);
    }

    private static NetlinkMessageBuilder StartSetLink(Span<byte> buffer, int index)
    {
        // RTM_NEWLINK without NLM_F_CREATE on an existing index changes it (rtnl_newlink → do_setlink).
        var msg = new NetlinkMessageBuilder(buffer, RTM_NEWLINK, 0);
        BinaryPrimitives.WriteInt32LittleEndian(msg.AppendHeader(IFINFOMSG_SIZE).Slice(4), index);
        return msg;
    }

    private void ChangeFlags(int index, LinkFlags flags, LinkFlags change, string operation)
    {
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_NEWLINK, 0);
        var header = msg.AppendHeader(IFINFOMSG_SIZE);
        BinaryPrimitives.WriteInt32LittleEndian(header.Slice(4), index);
        BinaryPrimitives.WriteUInt32LittleEndian(header.Slice(8), (uint)flags);   // ifi_flags
        BinaryPrimitives.WriteUInt32LittleEndian(header.Slice(12), (uint)change); // ifi_change: which bits to apply
        _socket.Execute(operation, buffer.Slice(0, msg.Written.Length));
    }

    /// <summary>Parses RTM_NEWLINK: struct ifinfomsg then IFLA_* attributes.</summary>
    internal static bool TryParseLink(NetlinkMessage message, out LinkInfo link)
    {
        link = null!;
        var payload = message.Payload;
        if (message.Type != RTM_NEWLINK || payload.Length < IFINFOMSG_SIZE)
        {
            return false;
        }
        var hardwareType = BinaryPrimitives.ReadUInt16LittleEndian(payload.Slice(2));
        var index = BinaryPrimitives.ReadInt32LittleEndian(payload.Slice(4));
        var flags = (LinkFlags)BinaryPrimitives.ReadUInt32LittleEndian(payload.Slice(8));
        string? name = null;
        string? kind = null;
        PhysicalAddress? mac = null;
        int mtu = 0;
        int? parent = null, master = null, netnsId = null;
        int gso = 0, gro = 0, gso4 = 0, gro4 = 0;
        var operState = LinkOperationalState.Unknown;
        var attrs = new NetlinkAttributeReader(payload.Slice(IFINFOMSG_SIZE));
        while (attrs.TryRead(out var type, out var value))
        {
            switch (type)
            {
                case IFLA_IFNAME:
                    name = ReadString(value);
                    break;
                case IFLA_MTU:
                    mtu = (int)ReadU32(value);
                    break;
                case IFLA_ADDRESS:
                    mac = new PhysicalAddress(value.ToArray());
                    break;
                case IFLA_LINK:
                    parent = (int)ReadU32(value);
                    break;
                case IFLA_MASTER:
                    master = (int)ReadU32(value);
                    break;
                case IFLA_OPERSTATE when value.Length >= 1:
                    operState = (LinkOperationalState)value[0];
                    break;
                case IFLA_LINK_NETNSID:
                    netnsId = (int)ReadU32(value);
                    break;
                case IFLA_GSO_MAX_SIZE:
                    gso = (int)ReadU32(value);
                    break;
                case IFLA_GRO_MAX_SIZE:
                    gro = (int)ReadU32(value);
                    break;
                case IFLA_GSO_IPV4_MAX_SIZE:
                    gso4 = (int)ReadU32(value);
                    break;
                case IFLA_GRO_IPV4_MAX_SIZE:
                    gro4 = (int)ReadU32(value);
                    break;
                case IFLA_LINKINFO:
                    var info = new NetlinkAttributeReader(value);
                    while (info.TryRead(out var infoType, out var infoValue))
                    {
                        if (infoType == IFLA_INFO_KIND)
                        {
                            kind = ReadString(infoValue);
                        }
                    }
                    break;
            }
        }
        if (name is null)
        {
            return false;
        }
        link = new LinkInfo(index, name, flags, mtu, mac, kind, parent, master, operState, netnsId) 
        {
            HardwareType = hardwareType,
            GsoMaxSize = gso,
            GroMaxSize = gro,
            GsoIpv4MaxSize = gso4,
            GroIpv4MaxSize = gro4,
        };
        return true;
    }
}
