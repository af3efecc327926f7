using System.Net;
using System.Net.NetworkInformation;
using System.Security.Cryptography;
using System.Text;

namespace Membrane.Datapath;

/// <summary>One address of a pod and the gateway its default route goes through.</summary>
/// <param name="Address">The pod's address (IPv4 or IPv6).</param>
/// <param name="Gateway">The gateway of the same family (the pod's next hop for everything; no device holds it).</param>
public sealed record PodAddress(IPAddress Address, IPAddress Gateway)
{
    /// <summary>True for IPv4.</summary>
    public bool IsIpv4 => Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;

    /// <summary>32 or 128: pods get host addresses (see <see cref="EndpointPlumber"/>).</summary>
    public int HostPrefixLength => IsIpv4 ? 32 : 128;
}

/// <summary>What <see cref="EndpointPlumber"/> needs to build, check or remove one endpoint (the kernel half of a CNI ADD/CHECK/DEL).</summary>
public sealed record EndpointRequest
{
    /// <summary>CNI_CONTAINERID.</summary>
    public required string ContainerId { get; init; }

    /// <summary>CNI_IFNAME: the interface's name inside the pod.</summary>
    public required string IfName { get; init; }

    /// <summary>CNI_NETNS: the pod namespace's path; null for a DEL that was not given one.</summary>
    public string? NetNsPath { get; init; }

    /// <summary>The host side's name; null derives it from the container id and ifname (<see cref="EndpointPlumber.HostInterfaceName"/>).</summary>
    public string? HostInterface { get; init; }

    /// <summary>MTU of both veth ends.</summary>
    public int Mtu { get; init; } = 1500;

    /// <summary>The security identity written into the endpoint entry.</summary>
    public uint Identity { get; init; }

    /// <summary>The pod's addresses, at most one per family.</summary>
    public IReadOnlyList<PodAddress> Addresses { get; init; } = [];

    /// <summary>
    /// Start the endpoint with both policy directions enforced and no entries, so that it
    /// talks to nobody until whoever owns its policy writes it (the agent, right after ADD):
    /// a failed or late policy write leaves the pod closed, never open.
    /// </summary>
    public bool PolicyClosedUntilWritten { get; init; }

    /// <summary>The host-side interface name to use.</summary>
    public string ResolvedHostInterface => HostInterface ?? EndpointPlumber.HostInterfaceName(ContainerId, IfName);
}

/// <summary>What ADD built.</summary>
/// <param name="HostInterface">The host-side veth's name.</param>
/// <param name="HostIfindex">Its ifindex in the node's namespace (the endpoints map's key).</param>
/// <param name="HostMac">Its MAC: the pod's gateway MAC.</param>
/// <param name="PodMac">The MAC of the pod's interface.</param>
/// <param name="LinkPinPath">Where the endpoint's tcx link is pinned.</param>
public sealed record PlumbedEndpoint(string HostInterface, int HostIfindex, PhysicalAddress HostMac, PhysicalAddress PodMac, string LinkPinPath);

public sealed partial class EndpointPlumber
{
    /// <summary>
    /// The host-side name for a container's interface: "mb" + the first 10 hex digits of
    /// SHA-256(containerId + "/" + ifName). 12 bytes fit IFNAMSIZ (15 + NUL); 40 bits keep
    /// collisions between the pods of one node out of reach; the same inputs always give the
    /// same name, so a DEL finds the veth without any stored state.
    /// </summary>
    public static string HostInterfaceName(string containerId, string ifName)
    {
        ArgumentException.ThrowIfNullOrEmpty(containerId);
        ArgumentException.ThrowIfNullOrEmpty(ifName);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(containerId + "/" + ifName), hash);
        return "mb" + Convert.ToHexStringLower(hash[..5]);
    }
}
