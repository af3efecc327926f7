using System.Net;
using System.Net.Sockets;
using Membrane.Linux.Namespaces;
using Membrane.Linux.Netlink;

namespace Membrane.Datapath;

public sealed partial class EndpointPlumber
{
    /// <summary>
    /// Verifies the endpoint as ADD built it (CNI CHECK): the veth and its peer, the pod's
    /// addresses, default routes and gateway neighbour entries, the node's routes, the map
    /// entries and the attached link. Returns what is wrong; empty when all is well.
    /// </summary>
    public IReadOnlyList<string> Check(EndpointRequest request)
    {
        Validate(request, forAdd: true);
        var problems = new List<string>();
        var host = request.ResolvedHostInterface;
        var hostLink = _nodeNetlink.FindLink(host);
        if (hostLink is null)
        {
            problems.Add($"host interface {host} does not exist");
            return problems;
        }
        if (hostLink.Kind != "veth")
        {
            problems.Add($"host interface {host} is a {hostLink.Kind ?? "device"}, not a veth");
        }
        if (!hostLink.IsUp)
        {
            problems.Add($"host interface {host} is down");
        }
        CheckNode(request, hostLink, problems);
        _datapath.TryGetEndpoint(hostLink.Index, out var entry);
        CheckPod(request, hostLink, entry, problems);
        return problems;
    }

    private void CheckNode(EndpointRequest request, LinkInfo hostLink, List<string> problems)
    {
        if (!_datapath.TryGetEndpoint(hostLink.Index, out var entry))
        {
            problems.Add($"no endpoint entry for ifindex {hostLink.Index} ({hostLink.Name})");
        }
        else
        {
            if (!Equals(entry.HostMac, hostLink.MacAddress))
            {
                problems.Add($"endpoint entry has host MAC {entry.HostMac}, {hostLink.Name} has {hostLink.MacAddress}");
            }
            var expected = request.Addresses.Select(a => a.Address).ToHashSet();
            if (!expected.SetEquals(entry.Addresses))
            {
                problems.Add($"endpoint entry has addresses [{string.Join(", ", entry.Addresses)}], expected [{string.Join(", ", expected)}]");
            }
            if (entry.Identity != request.Identity)
            {
                problems.Add($"endpoint entry has identity {entry.Identity}, expected {request.Identity}");
            }
        }
        foreach (var a in request.Addresses)
        {
            if (!_datapath.TryGetEndpointByAddress(a.Address, out var byIp) || byIp.Ifindex != hostLink.Index)
            {
                problems.Add($"no endpoint entry for address {a.Address} pointing at ifindex {hostLink.Index}");
            }
            if (!_nodeNetlink.GetNeighbours(interfaceIndex: hostLink.Index).Any(n => n.Address.Equals(a.Address) && (n.State & NeighbourState.Permanent) != 0))
            {
                problems.Add($"no permanent neighbour entry {a.Address} on {hostLink.Name} in the node");
            }
            var family = a.IsIpv4 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
            var hostRoute = new IPNetwork(a.Address, a.HostPrefixLength);
            if (!_nodeNetlink.GetRoutes(family, Route.MainTable).Any(r => r.Destination == hostRoute && r.OutputInterface == hostLink.Index))
            {
                problems.Add($"no route {hostRoute} dev {hostLink.Name} in the node");
            }
        }
        var pin = _datapath.LinkPinPath(hostLink.Name);
        if (!InNode(() => _datapath.IsAttached(hostLink.Index, pin)))
        {
            problems.Add($"from_pod is not attached to {hostLink.Name} through the link pinned at {pin}");
        }
    }

    private static void CheckPod(EndpointRequest request, LinkInfo hostLink, EndpointEntry? entry, List<string> problems)
    {
        NetNs podNs;
        try
        {
            podNs = NetNs.OpenPath(request.NetNsPath!);
        }
        catch (NamespaceException e)
        {
            problems.Add($"cannot open the pod's namespace {request.NetNsPath}: {e.Message}");
            return;
        }
        using (podNs)
        using (var pod = Rtnetlink.Open(podNs))
        {
            var podLink = pod.FindLink(request.IfName);
            if (podLink is null)
            {
                problems.Add($"interface {request.IfName} does not exist in {request.NetNsPath}");
                return;
            }
            if (podLink.Index != hostLink.ParentIndex)
            {
                problems.Add($"{request.IfName} (ifindex {podLink.Index}) is not the peer of {hostLink.Name} (peer ifindex {hostLink.ParentIndex})");
            }
            if (!podLink.IsUp)
            {
                problems.Add($"{request.IfName} is down");
            }
            // from_pod drops every frame whose source MAC is not the entry's: a MAC changed in
            // the pod (a chained plugin, NET_ADMIN) silently cuts the pod off.
            if (entry is not null && !Equals(entry.PodMac, podLink.MacAddress))
            {
                problems.Add($"{request.IfName} has MAC {podLink.MacAddress}, the endpoint entry {entry.PodMac}: its frames are dropped as spoofed");
            }
            if (podLink.Mtu != request.Mtu)
            {
                problems.Add($"{request.IfName} has MTU {podLink.Mtu}, expected {request.Mtu}");
            }
            var addresses = pod.GetAddresses(interfaceIndex: podLink.Index);
            var neighbours = pod.GetNeighbours(interfaceIndex: podLink.Index);
            foreach (var a in request.Addresses)
            {
                if (!addresses.Any(x => x.Address.Equals(a.Address) && x.PrefixLength == a.HostPrefixLength))
                {
                    problems.Add($"{request.IfName} lacks address {a.Address}/{a.HostPrefixLength}");
                }
                var family = a.IsIpv4 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
                if (!pod.GetRoutes(family, Route.MainTable).Any(r => r.Destination.PrefixLength == 0 && Equals(r.Gateway, a.Gateway) && r.OutputInterface == podLink.Index))
                {
                    problems.Add($"no default route via {a.Gateway} dev {request.IfName} in the pod");
                }
                if (!neighbours.Any(n => n.Address.Equals(a.Gateway) && (n.State & NeighbourState.Permanent) != 0 && Equals(n.LinkAddress, hostLink.MacAddress)))
                {
                    problems.Add($"no permanent neighbour entry {a.Gateway} lladdr {hostLink.MacAddress} on {request.IfName}");
                }
            }
        }
    }
}
