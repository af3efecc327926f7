using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using static Membrane.Linux.Interop.Netlink;

namespace Membrane.Linux.Netlink;

public sealed partial class Rtnetlink
{
    /// <summary>Adds a route (fails with EEXIST if the same route exists).</summary>
    public void AddRoute(Route route) => SendRoute(route, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, $"add route {Describe(route)}");

    /// <summary>Adds a route or replaces the one with the same destination, table and metric.</summary>
    public void ReplaceRoute(Route route) => SendRoute(route, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, $"replace route {Describe(route)}");

    /// <summary>
    /// Deletes a route. Destination, table and type must match; gateway, interface and
    /// metric narrow the match when set (net/ipv4/fib_trie.c fib_table_delete).
    /// </summary>
    public void DeleteRoute(Route route) => SendRoute(route, RTM_DELROUTE, 0, $"delete route {Describe(route)}");

    /// <summary>Lists routes of one family (IPv4 or IPv6), optionally of one table only.</summary>
    public IReadOnlyList<Route> GetRoutes(AddressFamily family, uint? table = null)
    {
        if (family is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            throw new ArgumentException($"routes are listed per family (IPv4 or IPv6), not {family}", nameof(family));
        }
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_GETROUTE, 0);
        var header = msg.AppendHeader(RTMSG_SIZE);
        header[0] = FamilyOf(family);
        if (table is { } t)
        {
            // Filtered in the kernel under strict checking (inet_valid_dump_route_req), and here.
            msg.AddU32(RTA_TABLE, t);
        }
        var all = _socket.Dump<Route>("list routes", buffer.Slice(0, msg.Written.Length), TryParseRoute);
        return table is { } wanted ? all.FindAll(r => r.Table == wanted) : all;
    }

    private void SendRoute(Route route, ushort type, ushort flags, string operation)
    {
        ArgumentNullException.ThrowIfNull(route);
        var destination = route.Destination.BaseAddress;
        var family = FamilyOf(destination.AddressFamily);
        if (route.Gateway is { } gw && gw.AddressFamily != destination.AddressFamily)
        {
            throw new ArgumentException($"failed to {operation}: the gateway's family differs from the destination's", nameof(route));
        }
        var table = route.Table ?? Route.MainTable;
        var delete = type == RTM_DELROUTE;

        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, type, flags);
        var header = msg.AppendHeader(RTMSG_SIZE);
        header[0] = family;
        header[1] = (byte)route.Destination.PrefixLength;
        // rtm_table is a u8; larger ids travel only in RTA_TABLE (RT_TABLE_UNSPEC here).
        header[4] = table < 256 ? (byte)table : RT_TABLE_UNSPEC;
        // On delete, protocol 0 and scope NOWHERE mean "any" (fib_table_delete).
        header[5] = delete ? RTPROT_UNSPEC : (byte)route.Protocol;
        header[6] = delete ? (byte)(route.Scope ?? RouteScope.Nowhere) : (byte)(route.Scope ?? DefaultScope(route));
        header[7] = (byte)route.Type;
        if (route.OnLink)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(header.Slice(8), RTNH_F_ONLINK);
        }
        msg.AddU32(RTA_TABLE, table);
        if (route.Destination.PrefixLength > 0)
        {
            msg.AddAddress(RTA_DST, destination);
        }
        if (route.Gateway is { } gateway)
        {
            msg.AddAddress(RTA_GATEWAY, gateway);
        }
        if (route.OutputInterface is { } oif)
        {
            msg.AddU32(RTA_OIF, (uint)oif);
        }
        if (route.Metric is { } metric)
        {
            msg.AddU32(RTA_PRIORITY, metric);
        }
        if (route.PreferredSource is { } source)
        {
            msg.AddAddress(RTA_PREFSRC, source);
        }
        _socket.Execute(operation, buffer.Slice(0, msg.Written.Length));
    }

    /// <summary>iproute2's default scope (ip/iproute.c iproute_modify).</summary>
    private static RouteScope DefaultScope(Route route) => route.Type switch
    {
        RouteType.Local => RouteScope.Host,
        RouteType.Broadcast or RouteType.Multicast or RouteType.Anycast => RouteScope.Link,
        RouteType.Unicast or RouteType.Unspecified when route.Gateway is null => RouteScope.Link,
        _ => RouteScope.Universe,
    };

    private static string Describe(Route route)
    {
        var text = route.Type == RouteType.Unicast ? route.Destination.ToString() : $"{route.Type.ToString().ToLowerInvariant()} {route.Destination}";
        if (route.Gateway is { } gw)
        {
            text += $" via {gw}";
        }
        if (route.OutputInterface is { } oif)
        {
            text += $" dev {oif}";
        }
        if (route.Table is { } table and not Route.MainTable)
        {
            text += $" table {table}";
        }
        return text;
    }

    /// <summary>Parses RTM_NEWROUTE: struct rtmsg then RTA_* attributes.</summary>
    internal static bool TryParseRoute(NetlinkMessage message, out Route route)
    {
        route = null!;
        var payload = message.Payload;
        if (message.Type != RTM_NEWROUTE || payload.Length < RTMSG_SIZE)
        {
            return false;
        }
        var family = payload[0];
        var prefixLength = payload[1];
        uint table = payload[4];
        var protocol = (RouteProtocol)payload[5];
        var scope = (RouteScope)payload[6];
        var type = (RouteType)payload[7];
        var flags = BinaryPrimitives.ReadUInt32LittleEndian(payload.Slice(8));
        if (family is not (AF_INET or AF_INET6))
        {
            return false;
        }
        IPAddress? destination = null, gateway = null, source = null;
        int? oif = null;
        uint? metric = null;
        var attrs = new NetlinkAttributeReader(payload.Slice(RTMSG_SIZE));
        while (attrs.TryRead(out var attr, out var value))
        {
            switch (attr)
            {
                case RTA_DST when TryReadAddress(family, value, out var a):
                    destination = a;
                    break;
                case RTA_GATEWAY when TryReadAddress(family, value, out var a):
                    gateway = a;
                    break;
                case RTA_PREFSRC when TryReadAddress(family, value, out var a):
                    source = a;
                    break;
                case RTA_OIF when value.Length >= 4:
                    oif = (int)ReadU32(value);
                    break;
                case RTA_PRIORITY when value.Length >= 4:
                    metric = ReadU32(value);
                    break;
                case RTA_TABLE when value.Length >= 4:
                    table = ReadU32(value);
                    break;
            }
        }
        destination ??= family == AF_INET ? IPAddress.Any : IPAddress.IPv6Any;
        if (!IPNetwork.TryParse($"{destination}/{prefixLength}", out var network))
        {
            return false;
        }
        route = new Route
        {
            Destination = network,
            Gateway = gateway,
            OutputInterface = oif,
            Type = type,
            Scope = scope,
            OnLink = (flags & RTNH_F_ONLINK) != 0,
            Table = table,
            Metric = metric,
            PreferredSource = source,
            Protocol = protocol,
        };
        return true;
    }
}
