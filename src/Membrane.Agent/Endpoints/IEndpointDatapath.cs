using Membrane.Agent.Identities;
using Membrane.Agent.Ipam;
using Membrane.Api;

namespace Membrane.Agent.Endpoints;

/// <summary>
/// Everything the kernel half needs to build (or find and remove) one endpoint. The agent
/// decides all of it before the kernel is touched, so a crashed ADD can be undone from the
/// stored row alone.
/// </summary>
public sealed record EndpointSpec
{
    /// <summary>The endpoint's id (the key of its store row).</summary>
    public required long EndpointId { get; init; }
    /// <summary>CNI_CONTAINERID.</summary>
    public required string ContainerId { get; init; }
    /// <summary>CNI_IFNAME: the interface's name inside the pod.</summary>
    public required string IfName { get; init; }
    /// <summary>CNI_NETNS: the pod's network namespace path; null when a DEL did not give one.</summary>
    public string? NetNs { get; init; }
    /// <summary>The host side of the veth pair; derived from containerId + ifName, so it is known before it exists.</summary>
    public required string HostInterface { get; init; }
    /// <summary>The MTU of both veth ends.</summary>
    public required int Mtu { get; init; }
    /// <summary>The endpoint's security identity.</summary>
    public required uint Identity { get; init; }
    /// <summary>The endpoint's labels.</summary>
    public required LabelSet Labels { get; init; }
    /// <summary>The pod's addresses (at most one per family), each with its CIDR and gateway.</summary>
    public required IReadOnlyList<IpAssignment> Addresses { get; init; }
}

/// <summary>What the kernel made for an endpoint.</summary>
/// <param name="HostInterface">The host-side veth's name.</param>
/// <param name="HostIfIndex">Its ifindex in the agent's namespace (the datapath maps' key).</param>
/// <param name="HostMac">Its MAC: the pods' gateway MAC.</param>
/// <param name="PodMac">The MAC of the pod's interface.</param>
public sealed record DatapathEndpoint(string HostInterface, int HostIfIndex, string HostMac, string PodMac);

/// <summary>
/// The kernel half of an endpoint: veth pair, addresses and routes in the pod, host route,
/// datapath map entries and attached programs. Implemented over Membrane.Linux; the agent's
/// <see cref="EndpointManager"/> owns the rules around it (idempotency, undo, persistence).
/// </summary>
/// <remarks>
/// Implementations must make <see cref="DeleteAsync"/> idempotent: it removes whatever part of
/// the endpoint exists (possibly none, possibly the leftovers of a <see cref="CreateAsync"/>
/// that failed half-way) and succeeds when nothing is left, also when the pod's namespace is
/// gone. <see cref="CreateAsync"/> may leave leftovers when it throws; the manager calls
/// <see cref="DeleteAsync"/> afterwards.
/// </remarks>
public interface IEndpointDatapath
{
    /// <summary>A short description for <c>membrane status</c> (e.g. "tcx, 3 programs").</summary>
    string Description { get; }

    /// <summary>Where the datapath's objects are pinned (bpffs), or "" if nowhere.</summary>
    string PinPath { get; }

    /// <summary>Builds the endpoint in the kernel.</summary>
    Task<DatapathEndpoint> CreateAsync(EndpointSpec spec, CancellationToken ct);

    /// <summary>Removes whatever exists of the endpoint; see the remarks.</summary>
    Task DeleteAsync(EndpointSpec spec, CancellationToken ct);

    /// <summary>
    /// True when the endpoint's host-side interface exists. A restarted agent rebuilds an endpoint
    /// only when it does not (the pod has no network at all): other problems are reported, never
    /// repaired by recreating the pod's interface under a running pod.
    /// </summary>
    Task<bool> HostInterfaceExistsAsync(EndpointSpec spec, CancellationToken ct);

    /// <summary>
    /// Rewrites the identity in the endpoint's datapath entries (the entry of
    /// <paramref name="current"/>'s host ifindex and those of its addresses) and returns the
    /// identity they had. All or nothing: if the kernel refuses part of it, what was written is
    /// put back before the exception propagates.
    /// </summary>
    /// <remarks>
    /// Synchronous on purpose: the manager calls it inside the store transaction that changes
    /// the endpoint's labels, as its last step, so that the row, the identity references and the
    /// kernel entry change together or not at all. It is a few map updates (microseconds), not
    /// netlink work, so holding the store's lock for it costs nothing measurable.
    /// </remarks>
    /// <exception cref="AgentException">The endpoint has no datapath entry (code 101).</exception>
    uint SetIdentity(DatapathEndpoint current, uint identity);

    /// <summary>Checks that the endpoint is wired as built; returns what is wrong (empty: all well).</summary>
    Task<IReadOnlyList<string>> CheckAsync(EndpointSpec spec, DatapathEndpoint current, CancellationToken ct);

    /// <summary>
    /// The datapath's endpoint map as the kernel holds it (GET /v1/bpf/endpoints). Entries
    /// without an <see cref="BpfEndpointEntry.EndpointId"/> get the agent's id of the endpoint
    /// with the same host ifindex.
    /// </summary>
    Task<IReadOnlyList<BpfEndpointEntry>> ListMapEndpointsAsync(CancellationToken ct);

    /// <summary>The datapath's per-reason counters, summed over CPUs (GET /v1/bpf/metrics).</summary>
    Task<IReadOnlyList<BpfMetricEntry>> ReadMetricsAsync(CancellationToken ct);
}
