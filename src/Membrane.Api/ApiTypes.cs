using System.Text.Json.Serialization;

namespace Membrane.Api;

/// <summary>A label of an endpoint: <c>key=value</c>, optionally with a source prefix such as <c>k8s:</c>.</summary>
public sealed record Label(
    [property: JsonPropertyName("key")] string Key,
    [property: JsonPropertyName("value")] string Value);

/// <summary>POST /v1/cni/add: create (or return the existing) endpoint for a container interface.</summary>
public sealed record CniAddRequest
{
    [JsonPropertyName("containerId")] public required string ContainerId { get; init; }
    [JsonPropertyName("ifName")] public required string IfName { get; init; }
    /// <summary>Path of the pod's network namespace (CNI_NETNS).</summary>
    [JsonPropertyName("netns")] public required string NetNs { get; init; }
    // The source-generated reader sets every init-only member, giving a missing one its default
    // (null) rather than keeping the initializer: the setters put the default back.
    [JsonPropertyName("network")] public string Network { get => _network; init => _network = value ?? ""; }
    [JsonPropertyName("podNamespace")] public string? PodNamespace { get; init; }
    [JsonPropertyName("podName")] public string? PodName { get; init; }
    [JsonPropertyName("labels")] public IReadOnlyList<Label> Labels { get => _labels; init => _labels = value ?? []; }
    private readonly string _network = "";
    private readonly IReadOnlyList<Label> _labels = [];
    [JsonPropertyName("mtu")] public int Mtu { get; init; } = 1500;
}

/// <summary>An address given to a pod interface, with its gateway.</summary>
public sealed record IpConfig(
    [property: JsonPropertyName("address")] string Address,
    [property: JsonPropertyName("gateway")] string? Gateway);

/// <summary>A route installed in the pod's namespace.</summary>
public sealed record RouteConfig(
    [property: JsonPropertyName("dst")] string Destination,
    [property: JsonPropertyName("gw")] string? Gateway);

/// <summary>The answer to <see cref="CniAddRequest"/>: what the CNI plugin reports to the runtime.</summary>
public sealed record CniAddResponse
{
    [JsonPropertyName("endpointId")] public required long EndpointId { get; init; }
    [JsonPropertyName("hostInterface")] public required string HostInterface { get; init; }
    [JsonPropertyName("hostMac")] public required string HostMac { get; init; }
    [JsonPropertyName("podMac")] public required string PodMac { get; init; }
    [JsonPropertyName("mtu")] public int Mtu { get; init; }
    [JsonPropertyName("ips")] public IReadOnlyList<IpConfig> Ips { get; init; } = [];
    [JsonPropertyName("routes")] public IReadOnlyList<RouteConfig> Routes { get; init; } = [];
}

/// <summary>POST /v1/cni/del. Idempotent: an unknown container is not an error.</summary>
public sealed record CniDelRequest
{
    [JsonPropertyName("containerId")] public required string ContainerId { get; init; }
    [JsonPropertyName("ifName")] public required string IfName { get; init; }
    [JsonPropertyName("netns")] public string? NetNs { get; init; }
}

/// <summary>POST /v1/cni/check: the endpoint exists and is wired as it should be.</summary>
public sealed record CniCheckRequest
{
    [JsonPropertyName("containerId")] public required string ContainerId { get; init; }
    [JsonPropertyName("ifName")] public required string IfName { get; init; }
    [JsonPropertyName("netns")] public required string NetNs { get; init; }
}

/// <summary>One attachment the runtime still uses (CNI GC's <c>cni.dev/valid-attachments</c>).</summary>
public sealed record Attachment(
    [property: JsonPropertyName("containerID")] string ContainerId,
    [property: JsonPropertyName("ifname")] string IfName);

/// <summary>POST /v1/cni/gc: release every endpoint not in the valid list.</summary>
public sealed record CniGcRequest
{
    // The source-generated reader sets every init-only member, giving a missing one its default
    // (null) rather than keeping the initializer: the setters put the default back.
    [JsonPropertyName("validAttachments")] public IReadOnlyList<Attachment> ValidAttachments { get => _valid; init => _valid = value ?? []; }
    private readonly IReadOnlyList<Attachment> _valid = [];
    /// <summary>
    /// The network being collected (the config's <c>name</c>, as sent on ADD): only its
    /// endpoints are candidates, so a GC of one network never removes another's. Null: all.
    /// </summary>
    [JsonPropertyName("network")] public string? Network { get; init; }
}

/// <summary>The answer to <see cref="CniGcRequest"/>.</summary>
public sealed record CniGcResponse(
    [property: JsonPropertyName("released")] IReadOnlyList<Attachment> Released);

/// <summary>An endpoint as the agent knows it (GET /v1/endpoints).</summary>
public sealed record EndpointInfo
{
    [JsonPropertyName("id")] public required long Id { get; init; }
    [JsonPropertyName("containerId")] public required string ContainerId { get; init; }
    [JsonPropertyName("ifName")] public required string IfName { get; init; }
    [JsonPropertyName("netns")] public string? NetNs { get; init; }
    [JsonPropertyName("podNamespace")] public string? PodNamespace { get; init; }
    [JsonPropertyName("podName")] public string? PodName { get; init; }
    [JsonPropertyName("ipv4")] public string? Ipv4 { get; init; }
    [JsonPropertyName("ipv6")] public string? Ipv6 { get; init; }
    [JsonPropertyName("labels")] public IReadOnlyList<string> Labels { get; init; } = [];
    [JsonPropertyName("identity")] public uint Identity { get; init; }
    [JsonPropertyName("hostInterface")] public string? HostInterface { get; init; }
    [JsonPropertyName("hostIfIndex")] public int HostIfIndex { get; init; }
    [JsonPropertyName("mac")] public string? Mac { get; init; }
    /// <summary>"ready", "creating", "disconnecting" or "not-ready" (a reconcile found it broken).</summary>
    [JsonPropertyName("state")] public required string State { get; init; }
}

/// <summary>GET /v1/status.</summary>
public sealed record StatusResponse
{
    [JsonPropertyName("nodeName")] public required string NodeName { get; init; }
    [JsonPropertyName("version")] public required string Version { get; init; }
    [JsonPropertyName("podCidrs")] public IReadOnlyList<string> PodCidrs { get; init; } = [];
    [JsonPropertyName("endpoints")] public int Endpoints { get; init; }
    [JsonPropertyName("datapath")] public string Datapath { get; init; } = "";
    [JsonPropertyName("bpffs")] public string BpfPinPath { get; init; } = "";
    [JsonPropertyName("stateDir")] public string StateDir { get; init; } = "";
    [JsonPropertyName("uptimeSeconds")] public double UptimeSeconds { get; init; }
}

/// <summary>
/// The body of every non-2xx answer. <see cref="Code"/> uses the CNI spec's error codes where
/// one fits (so the plugin can pass it through) and 100+ for Membrane's own.
/// </summary>
public sealed record ApiError(
    [property: JsonPropertyName("code")] int Code,
    [property: JsonPropertyName("msg")] string Message,
    [property: JsonPropertyName("details")] string? Details = null)
{
    /// <summary>A rejected policy import's errors, each with file, document, line, column and field; absent otherwise.</summary>
    [JsonPropertyName("policyErrors")] public IReadOnlyList<PolicyErrorInfo>? PolicyErrors { get; init; }
}

/// <summary>An entry of the datapath's endpoint map as the kernel holds it (GET /v1/bpf/endpoints).</summary>
public sealed record BpfEndpointEntry
{
    [JsonPropertyName("ifindex")] public required int IfIndex { get; init; }
    [JsonPropertyName("endpointId")] public long? EndpointId { get; init; }
    [JsonPropertyName("ipv4")] public string? Ipv4 { get; init; }
    [JsonPropertyName("ipv6")] public string? Ipv6 { get; init; }
    [JsonPropertyName("mac")] public string? Mac { get; init; }
    [JsonPropertyName("hostMac")] public string? HostMac { get; init; }
    [JsonPropertyName("identity")] public uint Identity { get; init; }
    [JsonPropertyName("flags")] public uint Flags { get; init; }
}

/// <summary>A datapath counter, summed over CPUs (GET /v1/bpf/metrics).</summary>
public sealed record BpfMetricEntry
{
    [JsonPropertyName("reason")] public required string Reason { get; init; }
    [JsonPropertyName("reasonCode")] public int ReasonCode { get; init; }
    [JsonPropertyName("direction")] public required string Direction { get; init; }
    [JsonPropertyName("packets")] public ulong Packets { get; init; }
    [JsonPropertyName("bytes")] public ulong Bytes { get; init; }
}
