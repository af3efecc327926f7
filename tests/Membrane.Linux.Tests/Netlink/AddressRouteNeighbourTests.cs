using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Membrane.Linux.Netlink;
using Membrane.Linux.Tests.Namespaces;
using Membrane.Testing;

namespace Membrane.Linux.Tests.Netlink;

/// <summary>Addresses, routes and neighbours inside a fresh namespace; only 198.18.0.0/15 and fd00:198:18::/48.</summary>
[Collection("kernel")]
public sealed class AddressRouteNeighbourTests
{
    private static readonly IPAddress V4 = IPAddress.Parse("198.18.0.1");
    private static readonly IPAddress V6 = IPAddress.Parse("fd00:198:18::1");

    [SkippableFact]
    public void AddListDeleteAddresses()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var fx = new NetNsFixture();
        var link = fx.Netlink.CreateVeth(RunPrefix.Next("v"));
        fx.Netlink.SetUp(link.Index);

        fx.Netlink.AddAddress(link.Index, V4, 24);
        fx.Netlink.AddAddress(link.Index, V6, 64, AddressFlags.NoDad);

        var v4 = Assert.Single(fx.Netlink.GetAddresses(AddressFamily.InterNetwork, link.Index));
        Assert.Equal(V4, v4.Address);
        Assert.Equal(24, v4.PrefixLength);
        Assert.Equal(RouteScope.Universe, v4.Scope);
        Assert.Equal(IPNetwork.Parse("198.18.0.0/24"), v4.Network);
        var v6 = Assert.Single(fx.Netlink.GetAddresses(AddressFamily.InterNetworkV6, link.Index), a => a.Address.Equals(V6));
        Assert.Equal(64, v6.PrefixLength);
        Assert.True((v6.Flags & AddressFlags.NoDad) != 0);
        Assert.True((v6.Flags & AddressFlags.Tentative) == 0, "nodad: usable at once");
        // Unfiltered listing holds both, plus loopback's.
        var all = fx.Netlink.GetAddresses();
        Assert.Contains(all, a => a.Address.Equals(IPAddress.Loopback));
        Assert.Contains(all, a => a.Address.Equals(V6));

        // The kernel added the prefix routes.
        Assert.Contains(fx.Netlink.GetRoutes(AddressFamily.InterNetwork, Route.MainTable),
            r => r.Destination == IPNetwork.Parse("198.18.0.0/24") && r.OutputInterface == link.Index && r.Scope == RouteScope.Link && r.Protocol == RouteProtocol.Kernel);

        var duplicate = Assert.Throws<NetlinkException>(() => fx.Netlink.AddAddress(link.Index, V4, 24));
        Assert.Equal(Errno.EEXIST, duplicate.Errno);
        Assert.StartsWith($"failed to add address 198.18.0.1/24 to link {link.Index}: File exists", duplicate.Message);

        fx.Netlink.DeleteAddress(link.Index, V4, 24);
        fx.Netlink.DeleteAddress(link.Index, V6, 64);
        Assert.DoesNotContain(fx.Netlink.GetAddresses(interfaceIndex: link.Index), a => a.Address.Equals(V4) || a.Address.Equals(V6));
        var gone = Assert.Throws<NetlinkException>(() => fx.Netlink.DeleteAddress(link.Index, V4, 24));
        Assert.Equal(Errno.EADDRNOTAVAIL, gone.Errno);
    }

    [SkippableFact]
    public void RoutesOfEveryKind()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var fx = new NetNsFixture();
        var link = fx.Netlink.CreateVeth(RunPrefix.Next("v"));
        fx.Netlink.SetUp(link.Index);
        fx.Netlink.AddAddress(link.Index, V4, 24);
        fx.Netlink.AddAddress(link.Index, V6, 64, AddressFlags.NoDad);

        Route[] routes =
        [
            // via a gateway inside the connected prefix
            new() { Destination = IPNetwork.Parse("198.18.10.0/24"), Gateway = IPAddress.Parse("198.18.0.254"), Metric = 10 },
            new() { Destination = IPNetwork.Parse("fd00:198:18:10::/64"), Gateway = IPAddress.Parse("fd00:198:18::fe") },
            // straight onto the link (scope link)
            new() { Destination = IPNetwork.Parse("198.18.11.0/24"), OutputInterface = link.Index },
            new() { Destination = IPNetwork.Parse("fd00:198:18:11::/64"), OutputInterface = link.Index },
            // on-link gateway outside every prefix of the interface (what a pod's default route via 169.254.1.1 does)
            new() { Destination = IPNetwork.Parse("198.18.12.0/24"), Gateway = IPAddress.Parse("198.19.255.1"), OutputInterface = link.Index, OnLink = true },
            new() { Destination = IPNetwork.Parse("fd00:198:18:12::/64"), Gateway = IPAddress.Parse("fd00:198:18:ff::1"), OutputInterface = link.Index, OnLink = true },
            // unreachable and blackhole, IPv4 and IPv6 (the agent's pod-CIDR guard)
            new() { Destination = IPNetwork.Parse("198.19.0.0/16"), Type = RouteType.Unreachable },
            new() { Destination = IPNetwork.Parse("fd00:198:18:100::/56"), Type = RouteType.Unreachable },
            new() { Destination = IPNetwork.Parse("198.18.200.0/24"), Type = RouteType.Blackhole },
            new() { Destination = IPNetwork.Parse("fd00:198:18:200::/64"), Type = RouteType.Blackhole },
            new() { Destination = IPNetwork.Parse("198.18.201.0/24"), Type = RouteType.Prohibit },
            // a specific table
            new() { Destination = IPNetwork.Parse("198.18.13.0/24"), Gateway = IPAddress.Parse("198.18.0.254"), Table = 1000 },
            new() { Destination = IPNetwork.Parse("0.0.0.0/0"), Gateway = IPAddress.Parse("198.18.0.254"), Table = 100 },
        ];
        foreach (var r in routes)
        {
            fx.Netlink.AddRoute(r);
        }

        var v4 = fx.Netlink.GetRoutes(AddressFamily.InterNetwork);
        var v6 = fx.Netlink.GetRoutes(AddressFamily.InterNetworkV6);
        foreach (var r in routes)
        {
            var listed = (r.Destination.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? v4 : v6)
                .Where(x => x.Destination == r.Destination && x.Table == (r.Table ?? Route.MainTable)).ToList();
            var found = Assert.Single(listed);
            Assert.Equal(r.Type, found.Type);
            Assert.Equal(r.Gateway, found.Gateway);
            Assert.Equal(r.OnLink, found.OnLink);
            Assert.Equal(RouteProtocol.Static, found.Protocol);
            if (r.OutputInterface is not null || r.Gateway is not null)
            {
                Assert.Equal(link.Index, found.OutputInterface);
            }
            if (r.Metric is { } metric)
            {
                Assert.Equal(metric, found.Metric);
            }
        }
        Assert.Equal(RouteScope.Link, v4.Single(r => r.Destination == IPNetwork.Parse("198.18.11.0/24")).Scope);
        Assert.Equal(RouteScope.Universe, v4.Single(r => r.Destination == IPNetwork.Parse("198.18.10.0/24")).Scope);
        // Table filtering happens in the kernel and here.
        var table100 = Assert.Single(fx.Netlink.GetRoutes(AddressFamily.InterNetwork, 100));
        Assert.Equal(0, table100.Destination.PrefixLength);

        // iproute2 reads back the same routes (the oracle for the wire format).
        var shown = Tools.Run(Requires.Tool("ip"), ["-n", fx.Name, "route", "show"]).Stdout;
        Assert.Contains("unreachable 198.19.0.0/16", shown);
        Assert.Contains("blackhole 198.18.200.0/24", shown);
        Assert.Contains("prohibit 198.18.201.0/24", shown);
        Assert.Contains($"198.18.12.0/24 via 198.19.255.1 dev {link.Name} proto static onlink", shown);
        Assert.Contains($"198.18.11.0/24 dev {link.Name} proto static scope link", shown);

        // A gateway outside every prefix is refused without onlink, with the kernel's reason.
        var offLink = Assert.Throws<NetlinkException>(() => fx.Netlink.AddRoute(new Route
        {
            Destination = IPNetwork.Parse("198.18.14.0/24"), Gateway = IPAddress.Parse("198.19.255.1"), OutputInterface = link.Index,
        }));
        Assert.Equal(Errno.ENETUNREACH, offLink.Errno);
        Assert.NotNull(offLink.KernelMessage);

        var duplicate = Assert.Throws<NetlinkException>(() => fx.Netlink.AddRoute(routes[0]));
        Assert.Equal(Errno.EEXIST, duplicate.Errno);
        Assert.StartsWith("failed to add route 198.18.10.0/24 via 198.18.0.254: File exists", duplicate.Message);

        fx.Netlink.ReplaceRoute(routes[0] with { Gateway = IPAddress.Parse("198.18.0.253") });
        Assert.Equal(IPAddress.Parse("198.18.0.253"),
            fx.Netlink.GetRoutes(AddressFamily.InterNetwork).Single(r => r.Destination == routes[0].Destination).Gateway);

        foreach (var r in routes.Skip(1))
        {
            fx.Netlink.DeleteRoute(r);
        }
        fx.Netlink.DeleteRoute(new Route { Destination = routes[0].Destination });
        var left4 = fx.Netlink.GetRoutes(AddressFamily.InterNetwork);
        var left6 = fx.Netlink.GetRoutes(AddressFamily.InterNetworkV6);
        Assert.DoesNotContain(left4.Concat(left6), r => r.Protocol == RouteProtocol.Static);
        var missing = Assert.Throws<NetlinkException>(() => fx.Netlink.DeleteRoute(routes[2]));
        Assert.Equal(Errno.ESRCH, missing.Errno);
    }

    [SkippableFact]
    public void UnreachableRouteAnswersLocally()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var fx = new NetNsFixture();
        fx.Netlink.AddRoute(new Route { Destination = IPNetwork.Parse("198.19.0.0/16"), Type = RouteType.Unreachable });
        var error = fx.Run(() =>
        {
            using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                udp.Connect(new IPEndPoint(IPAddress.Parse("198.19.1.1"), 9));
                return SocketError.Success;
            }
            catch (SocketException e)
            {
                return e.SocketErrorCode;
            }
        });
        Assert.Equal(SocketError.HostUnreachable, error);
    }

    [SkippableFact]
    public void PermanentNeighbours()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var fx = new NetNsFixture();
        var link = fx.Netlink.CreateVeth(RunPrefix.Next("v"));
        fx.Netlink.SetUp(link.Index);
        var mac = PhysicalAddress.Parse("02-00-c6-12-00-fe");
        var gw4 = IPAddress.Parse("198.18.0.254");
        var gw6 = IPAddress.Parse("fd00:198:18::fe");

        fx.Netlink.AddNeighbour(link.Index, gw4, mac);
        fx.Netlink.AddNeighbour(link.Index, gw6, mac);

        var n4 = Assert.Single(fx.Netlink.GetNeighbours(AddressFamily.InterNetwork, link.Index));
        Assert.Equal(gw4, n4.Address);
        Assert.Equal(mac, n4.LinkAddress);
        Assert.Equal(NeighbourState.Permanent, n4.State);
        var n6 = Assert.Single(fx.Netlink.GetNeighbours(AddressFamily.InterNetworkV6, link.Index), n => n.Address.Equals(gw6));
        Assert.Equal(NeighbourState.Permanent, n6.State);
        Assert.Contains($"198.18.0.254 dev {link.Name} lladdr 02:00:c6:12:00:fe PERMANENT",
            Tools.Run(Requires.Tool("ip"), ["-n", fx.Name, "neigh", "show"]).Stdout);

        var duplicate = Assert.Throws<NetlinkException>(() => fx.Netlink.AddNeighbour(link.Index, gw4, mac));
        Assert.Equal(Errno.EEXIST, duplicate.Errno);
        var other = PhysicalAddress.Parse("02-00-c6-12-00-fd");
        fx.Netlink.AddNeighbour(link.Index, gw4, other, replace: true);
        Assert.Equal(other, fx.Netlink.GetNeighbours(AddressFamily.InterNetwork, link.Index).Single().LinkAddress);

        fx.Netlink.DeleteNeighbour(link.Index, gw4);
        fx.Netlink.DeleteNeighbour(link.Index, gw6);
        Assert.Empty(fx.Netlink.GetNeighbours(AddressFamily.InterNetwork, link.Index));
        Assert.DoesNotContain(fx.Netlink.GetNeighbours(AddressFamily.InterNetworkV6, link.Index), n => n.Address.Equals(gw6));
        var gone = Assert.Throws<NetlinkException>(() => fx.Netlink.DeleteNeighbour(link.Index, gw4));
        Assert.Equal(Errno.ENOENT, gone.Errno);
    }
}
