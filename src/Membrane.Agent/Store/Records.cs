namespace Membrane.Agent.Store;

/// <summary>The lifecycle state of an endpoint row (EndpointInfo.State in the API).</summary>
public static class EndpointStates
{
    /// <summary>Addresses and identity are allocated; the datapath half is being built.</summary>
    public const string Creating = "creating";
    /// <summary>Fully wired.</summary>
    public const string Ready = "ready";
    /// <summary>Being torn down; a crash here is finished on the next start.</summary>
    public const string Disconnecting = "disconnecting";
    /// <summary>A check or reconcile found its datapath half broken.</summary>
    public const string NotReady = "not-ready";
}

/// <summary>One row of the <c>endpoints</c> table.</summary>
public sealed record EndpointRecord
{
    public long Id { get; init; }
    public required string ContainerId { get; init; }
    public required string IfName { get; init; }
    public string? NetNs { get; init; }
    public string Network { get; init; } = "";
    public string? PodNamespace { get; init; }
    public string? PodName { get; init; }
    /// <summary>The canonical label string (<c>LabelSet.ToString()</c>).</summary>
    public required string Labels { get; init; }
    public uint Identity { get; init; }
    public int Mtu { get; init; }
    /// <summary>The IPv4 address with the pod CIDR's prefix length, e.g. <c>198.18.0.2/24</c>.</summary>
    public string? Ipv4 { get; init; }
    /// <summary>The IPv6 address with the pod CIDR's prefix length.</summary>
    public string? Ipv6 { get; init; }
    public required string HostInterface { get; init; }
    public int HostIfIndex { get; init; }
    public string? HostMac { get; init; }
    public string? PodMac { get; init; }
    public required string State { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
}

/// <summary>One row of the <c>ip_allocations</c> table: an address and who holds it.</summary>
public sealed record IpAllocationRecord(string Address, string Pool, string ContainerId, string IfName, DateTimeOffset AllocatedAt);

/// <summary>One row of the <c>identities</c> table.</summary>
public sealed record IdentityRecord(uint Id, string Labels, DateTimeOffset CreatedAt, DateTimeOffset? UnusedSince);

/// <summary>One row of the <c>policies</c> table: an imported policy and the YAML it was written as.</summary>
public sealed record PolicyRecord(string Namespace, string Name, string Kind, string SourceName, string SourceText, DateTimeOffset ImportedAt);
