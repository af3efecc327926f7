using System.Net;
using System.Net.Sockets;
using Membrane.Linux;
using Membrane.Linux.Namespaces;
using Membrane.Linux.Netlink;

namespace Membrane.Datapath;

/// <summary>A step of building or removing an endpoint failed; the message says which, the inner exception why.</summary>
public sealed class EndpointPlumbingException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The kernel half of CNI ADD, CHECK and DEL, done from the node's namespace (the agent's).
/// <para>
/// ADD makes a veth pair whose host side stays in the node and whose peer is created
/// straight inside the pod's namespace under the requested name. The pod gets host
/// addresses (/32, /128) rather than its CIDR's prefix, an on-link default route through
/// the gateway and a permanent neighbour entry for the gateway at the host side's MAC.
/// With no on-link prefix the pod sends everything, other pods of its CIDR included, to
/// that MAC, i.e. into from_pod, and needs no address resolved (from_pod answers ARP and
/// ND anyway should the entry go); the datapath decides, not the pod's idea of its subnet
/// (Cilium and Calico address pods the same way).
/// The node gets a /32 (/128) route and a permanent neighbour entry for each pod address
/// on the host side, the endpoint in the datapath maps and from_pod attached with a pinned
/// tcx link.
/// </para>
/// <para>
/// DEL removes all of it, tolerates any part being missing (the veth, the pod's namespace,
/// the pins) and is idempotent. A failed ADD undoes exactly what it did (never what it
/// found), and rethrows.
/// </para>
/// </summary>
public sealed partial class EndpointPlumber : IDisposable
{
    private readonly Datapath _datapath;
    private readonly NetNs? _node;
    private readonly Rtnetlink _nodeNetlink;

    /// <summary>The kernel's GSO/GRO limit of a new device (GSO_LEGACY_MAX_SIZE): no BIG TCP.</summary>
    public const int LegacyGsoMaxSize = 65536;

    /// <summary>The largest GSO/GRO limit the kernel accepts for a veth (GSO_MAX_SIZE: 8 × 65,535, just under 512 KiB).</summary>
    public const int MaxGsoMaxSize = 524280;

    /// <summary>
    /// The GSO/GRO limit given to both ends of a pod's veth unless told otherwise: BIG TCP at the
    /// kernel's largest size. Pod-to-pod TCP then crosses the datapath in packets of up to
    /// 512 KiB instead of 64 KiB, a fraction of the per-packet work (bench/README.md).
    /// </summary>
    public const int DefaultGsoMaxSize = MaxGsoMaxSize;

    /// <summary>The largest GSO/GRO packet, IPv4 and IPv6, of the veths this plumber creates.</summary>
    public int GsoMaxSize { get; }

    /// <summary>True when <paramref name="size"/> is a GSO/GRO limit the plumber accepts: <see cref="LegacyGsoMaxSize"/> to <see cref="MaxGsoMaxSize"/>.</summary>
    public static bool IsValidGsoMaxSize(int size) => size is >= LegacyGsoMaxSize and <= MaxGsoMaxSize;

    /// <summary>
    /// A plumber for the endpoints of <paramref name="datapath"/> whose node is
    /// <paramref name="node"/> (null: the calling thread's namespace, which is the agent's).
    /// </summary>
    public EndpointPlumber(Datapath datapath, NetNs? node = null, int gsoMaxSize = DefaultGsoMaxSize)
    {
        ArgumentNullException.ThrowIfNull(datapath);
        if (!IsValidGsoMaxSize(gsoMaxSize))
        {
            throw new ArgumentOutOfRangeException(nameof(gsoMaxSize), gsoMaxSize, $"not between {LegacyGsoMaxSize} and {MaxGsoMaxSize} bytes");
        }
        _datapath = datapath;
        _node = node;
        GsoMaxSize = gsoMaxSize;
        _nodeNetlink = node is null ? Rtnetlink.Open() : Rtnetlink.Open(node);
    }

    /// <summary>
    /// The node-level setup, idempotent: an unreachable route for each pod CIDR (so that an
    /// address without a pod is answered locally instead of following the default route out
    /// of the machine, KERNEL-NOTES DANGER), and forwarding on for each family in use (pods
    /// reach the rest of the world through the node's stack).
    /// </summary>
    public void PrepareNode(IEnumerable<IPNetwork> podCidrs)
    {
        ArgumentNullException.ThrowIfNull(podCidrs);
        var cidrs = podCidrs.ToArray();
        foreach (var cidr in cidrs)
        {
            _nodeNetlink.ReplaceRoute(new Route { Destination = cidr, Type = RouteType.Unreachable });
        }
        InNode(() =>
        {
            if (cidrs.Any(c => c.BaseAddress.AddressFamily == AddressFamily.InterNetwork))
            {
                Sysctl.Write("net.ipv4.ip_forward", "1");
            }
            if (cidrs.Any(c => c.BaseAddress.AddressFamily == AddressFamily.InterNetworkV6))
            {
                Sysctl.Write("net.ipv6.conf.all.forwarding", "1");
            }
            return true;
        });
    }

    /// <summary>Removes the unreachable routes of <see cref="PrepareNode"/> (missing ones are fine).</summary>
    public void UnprepareNode(IEnumerable<IPNetwork> podCidrs)
    {
        ArgumentNullException.ThrowIfNull(podCidrs);
        foreach (var cidr in podCidrs)
        {
            IgnoreMissing(() => _nodeNetlink.DeleteRoute(new Route { Destination = cidr, Type = RouteType.Unreachable }));
        }
    }

    /// <summary>True when a link named <paramref name="hostInterface"/> exists in the node's namespace.</summary>
    public bool HostInterfaceExists(string hostInterface) => _nodeNetlink.FindLink(hostInterface) is not null;

    /// <summary>Builds the endpoint (CNI ADD). On failure everything this call made is removed again and the error rethrown.</summary>
    public PlumbedEndpoint Add(EndpointRequest request)
    {
        Validate(request, forAdd: true);
        var host = request.ResolvedHostInterface;
        var undo = new Stack<Action>();
        try
        {
            return AddCore(request, host, undo);
        }
        catch (Exception e)
        {
            var failures = new List<Exception>();
            while (undo.TryPop(out var step))
            {
                try
                {
                    step();
                }
                catch (Exception u)
                {
                    failures.Add(u);
                }
            }
            var message = $"failed to add endpoint {request.ContainerId}/{request.IfName}: {e.Message}";
            if (failures.Count > 0)
            {
                message += $" (and undoing it failed: {string.Join("; ", failures.Select(f => f.Message))})";
            }
            throw new EndpointPlumbingException(message, e);
        }
    }

    private PlumbedEndpoint AddCore(EndpointRequest request, string host, Stack<Action> undo)
    {
        using var podNs = NetNs.OpenPath(request.NetNsPath!);
        // A "pod" namespace that is the node's own (CNI_NETNS=/proc/1/ns/net) would put the pod's
        // address and default route on the node itself.
        if (podNs.Inode == (_node?.Inode ?? NetNs.CurrentInode()))
        {
            throw new EndpointPlumbingException($"failed to add endpoint {request.ContainerId}/{request.IfName}: {request.NetNsPath} is the node's own network namespace, not a pod's");
        }
        using var pod = Rtnetlink.Open(podNs);

        // The peer is born inside the pod (IFLA_NET_NS_FD in VETH_INFO_PEER): it never
        // appears in the node under a name that could clash.
        // Both ends get the MTU and the GSO limit in the create request itself.
        var hostLink = _nodeNetlink.CreateVeth(host, request.IfName, podNs, request.Mtu, GsoMaxSize);
        undo.Push(() => IgnoreMissing(() => _nodeNetlink.DeleteLink(host)));
        var podLink = pod.GetLink(request.IfName);
        var hostMac = hostLink.MacAddress ?? throw new EndpointPlumbingException($"failed to read the MAC of {host}: the kernel reported none");
        var podMac = podLink.MacAddress ?? throw new EndpointPlumbingException($"failed to read the MAC of {request.IfName}: the kernel reported none");

        // The program is in place before the host side comes up: no packet of the pod
        // reaches the node unchecked, and the entry is written before the program can run.
        var entry = new EndpointEntry(hostLink.Index,
            request.Addresses.FirstOrDefault(a => a.IsIpv4)?.Address,
            request.Addresses.FirstOrDefault(a => !a.IsIpv4)?.Address,
            podMac, hostMac, request.Identity,
            IngressPolicy: request.PolicyClosedUntilWritten, EgressPolicy: request.PolicyClosedUntilWritten);
        _datapath.UpsertEndpoint(entry);
        undo.Push(() => _datapath.DeleteEndpoint(entry.Ifindex));
        var pin = _datapath.LinkPinPath(host);
        var attachment = InNode(() => _datapath.AttachEndpoint(hostLink.Index, pin));
        if (!attachment.Adopted)
        {
            undo.Push(() => Datapath.DetachEndpoint(pin));
        }
        _nodeNetlink.SetUp(hostLink.Index);

        // Inside the pod. Links must be up before on-link routes through them are accepted.
        pod.SetUp(pod.GetLink("lo").Index);
        pod.SetUp(podLink.Index);
        foreach (var a in request.Addresses)
        {
            // nodad: the address is ours by allocation; DAD would hold it tentative for ~1 s.
            pod.AddAddress(podLink.Index, a.Address, a.HostPrefixLength, a.IsIpv4 ? AddressFlags.None : AddressFlags.NoDad);
        }
        foreach (var a in request.Addresses)
        {
            pod.AddNeighbour(podLink.Index, a.Gateway, hostMac, replace: true);
            pod.AddRoute(new Route
            {
                Destination = a.IsIpv4 ? new IPNetwork(IPAddress.Any, 0) : new IPNetwork(IPAddress.IPv6Any, 0),
                Gateway = a.Gateway,
                OutputInterface = podLink.Index,
                OnLink = true,
            });
        }

        // The node's way back to the pod (its own traffic, replies of its stack): a host
        // route and a permanent neighbour entry, the mirror of the pod's gateway entry. The
        // entry spares the node ARP and ND, and with them the wait for the host side's
        // IPv6 link-local address, which Neighbour Solicitations need as their source and
        // which is tentative for a second or two after the link comes up (RFC 4862 5.4).
        // Both are removed with the veth; no undo step of their own.
        foreach (var a in request.Addresses)
        {
            _nodeNetlink.AddNeighbour(hostLink.Index, a.Address, podMac, replace: true);
            _nodeNetlink.ReplaceRoute(new Route
            {
                Destination = new IPNetwork(a.Address, a.HostPrefixLength),
                OutputInterface = hostLink.Index,
                Scope = RouteScope.Link,
            });
        }
        return new PlumbedEndpoint(host, hostLink.Index, hostMac, podMac, pin);
    }

    /// <summary>
    /// Removes the endpoint (CNI DEL): the veth pair (and with it the pod's interface, its
    /// addresses, routes and neighbour entries, and the node's routes through it), the map
    /// entries and the link pin. Whatever is already gone is skipped; calling it again is fine.
    /// </summary>
    public void Delete(EndpointRequest request)
    {
        Validate(request, forAdd: false);
        var host = request.ResolvedHostInterface;
        try
        {
            // The veth first: the pod's traffic stops before its program and entries go, so
            // nothing of it reaches the node unchecked in between.
            var link = _nodeNetlink.FindLink(host);
            if (link is not null)
            {
                IgnoreMissing(() => _nodeNetlink.DeleteLink(link.Index));
                _datapath.DeleteEndpoint(link.Index);
            }
            Datapath.DetachEndpoint(_datapath.LinkPinPath(host));
            foreach (var a in request.Addresses)
            {
                // Without the veth its ifindex is unknown: remove an address entry only when
                // the device it names is gone or is this endpoint's, never another live pod's.
                if (_datapath.TryGetEndpointByAddress(a.Address, out var owner) && OwnedBy(owner.Ifindex, host))
                {
                    _datapath.DeleteEndpointByAddress(a.Address);
                }
            }
        }
        catch (Exception e) when (e is not EndpointPlumbingException and not ArgumentException)
        {
            throw new EndpointPlumbingException($"failed to delete endpoint {request.ContainerId}/{request.IfName}: {e.Message}", e);
        }
    }

    private bool OwnedBy(int ifindex, string host)
    {
        var name = LinkNameOf(ifindex);
        return name is null || name == host;
    }

    private string? LinkNameOf(int ifindex)
    {
        try
        {
            return _nodeNetlink.GetLink(ifindex).Name;
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENODEV)
        {
            return null;
        }
    }

    private T InNode<T>(Func<T> func) => _node is null ? func() : _node.Run(func);

    private static void IgnoreMissing(Action action)
    {
        try
        {
            action();
        }
        catch (NetlinkException e) when (e.Errno is Errno.ENODEV or Errno.ESRCH or Errno.ENOENT)
        {
        }
    }

    private static void Validate(EndpointRequest request, bool forAdd)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentException.ThrowIfNullOrEmpty(request.ContainerId, nameof(request));
        ArgumentException.ThrowIfNullOrEmpty(request.IfName, nameof(request));
        if (forAdd && string.IsNullOrEmpty(request.NetNsPath))
        {
            throw new ArgumentException($"failed to add endpoint {request.ContainerId}/{request.IfName}: no network namespace path", nameof(request));
        }
        if (request.Addresses.Count(a => a.IsIpv4) > 1 || request.Addresses.Count(a => !a.IsIpv4) > 1)
        {
            throw new ArgumentException($"invalid endpoint {request.ContainerId}/{request.IfName}: at most one address per family", nameof(request));
        }
        foreach (var a in request.Addresses)
        {
            if (a.Gateway.AddressFamily != a.Address.AddressFamily)
            {
                throw new ArgumentException($"invalid endpoint {request.ContainerId}/{request.IfName}: gateway {a.Gateway} is not of the family of {a.Address}", nameof(request));
            }
        }
        if (forAdd && request.Mtu is < 68 or > 65535)
        {
            throw new ArgumentException($"invalid endpoint {request.ContainerId}/{request.IfName}: MTU {request.Mtu} is outside 68..65535", nameof(request));
        }
    }

    /// <summary>Closes the node's rtnetlink socket.</summary>
    public void Dispose() => _nodeNetlink.Dispose();
}
