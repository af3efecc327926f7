using System.Text.Json.Serialization;

namespace Membrane.Api;

/// <summary>One YAML file of a policy import: its name (errors name it) and its content.</summary>
public sealed record PolicyFile
{
    /// <summary>The file's name as the user gave it.</summary>
    [JsonPropertyName("name")] public required string Name { get; init; }
    /// <summary>The YAML text (one or more documents).</summary>
    [JsonPropertyName("text")] public required string Text { get; init; }
}

/// <summary>POST /v1/policies: imports CiliumNetworkPolicy / NetworkPolicy YAML, all of it or nothing.</summary>
public sealed record PolicyImportRequest
{
    // The source-generated reader sets every init-only member, giving a missing one its default
    // (null) rather than keeping the initializer: the setters put the default back.
    [JsonPropertyName("files")] public IReadOnlyList<PolicyFile> Files { get => _files; init => _files = value ?? []; }
    private readonly IReadOnlyList<PolicyFile> _files = [];
}

/// <summary>Why a policy document was rejected, and exactly where (an element of <see cref="ApiError.PolicyErrors"/>).</summary>
public sealed record PolicyErrorInfo
{
    [JsonPropertyName("file")] public required string File { get; init; }
    /// <summary>The YAML document, 1-based; 0 when the file could not be read.</summary>
    [JsonPropertyName("document")] public int Document { get; init; }
    [JsonPropertyName("line")] public int Line { get; init; }
    [JsonPropertyName("column")] public int Column { get; init; }
    /// <summary>The field path (<c>spec.ingress[0].toPorts[0].ports[0].port</c>); empty for a YAML syntax error.</summary>
    [JsonPropertyName("field")] public string Field { get; init; } = "";
    [JsonPropertyName("reason")] public required string Reason { get; init; }
}

/// <summary>One compiled rule of a policy.</summary>
public sealed record PolicyRuleInfo
{
    /// <summary>The rule's field path (<c>spec.ingress[0]</c>).</summary>
    [JsonPropertyName("path")] public required string Path { get; init; }
    /// <summary>ingress or egress.</summary>
    [JsonPropertyName("direction")] public required string Direction { get; init; }
    /// <summary>allow or deny.</summary>
    [JsonPropertyName("action")] public required string Action { get; init; }
    /// <summary>The number the datapath's entries (and verdict records) carry for this rule.</summary>
    [JsonPropertyName("ruleNumber")] public uint RuleNumber { get; init; }
    /// <summary>Where it was written: <c>file:line:column</c>.</summary>
    [JsonPropertyName("location")] public string Location { get; init; } = "";
}

/// <summary>A stored policy (GET /v1/policies).</summary>
public sealed record PolicyInfo
{
    [JsonPropertyName("namespace")] public required string Namespace { get; init; }
    [JsonPropertyName("name")] public required string Name { get; init; }
    /// <summary>CiliumNetworkPolicy or NetworkPolicy.</summary>
    [JsonPropertyName("kind")] public required string Kind { get; init; }
    /// <summary>The file it was imported from.</summary>
    [JsonPropertyName("source")] public string Source { get; init; } = "";
    /// <summary>The rules it compiled to.</summary>
    [JsonPropertyName("rules")] public IReadOnlyList<PolicyRuleInfo> Rules { get; init; } = [];
    /// <summary>The local endpoints one of its rule sets selects now.</summary>
    [JsonPropertyName("endpoints")] public IReadOnlyList<long> Endpoints { get; init; } = [];
    /// <summary>The YAML it was written as.</summary>
    [JsonPropertyName("yaml")] public string Yaml { get; init; } = "";
}

/// <summary>The answer to an import or a delete: what changed and the repository's revision after it.</summary>
public sealed record PolicyChangeResponse
{
    /// <summary>The revision: one more for every import or delete.</summary>
    [JsonPropertyName("revision")] public long Revision { get; init; }
    /// <summary>The policies imported (added or replaced) or deleted, as <c>namespace/name</c>.</summary>
    [JsonPropertyName("policies")] public IReadOnlyList<string> Policies { get; init; } = [];
    /// <summary>How many endpoints' datapath policy changed.</summary>
    [JsonPropertyName("endpointsChanged")] public int EndpointsChanged { get; init; }
    /// <summary>Whether every change reached the kernel; false: the agent retries on the next change (see the agent's log).</summary>
    [JsonPropertyName("applied")] public bool Applied { get; init; }
}

/// <summary>A selector of the selector cache (GET /v1/policy/selectors).</summary>
public sealed record PolicySelectorEntry
{
    [JsonPropertyName("selector")] public required string Selector { get; init; }
    /// <summary>The identities it selects now.</summary>
    [JsonPropertyName("identities")] public IReadOnlyList<uint> Identities { get; init; } = [];
    /// <summary>The rules using it (<c>namespace/name path</c>).</summary>
    [JsonPropertyName("users")] public IReadOnlyList<string> Users { get; init; } = [];
}

/// <summary>An entry of an endpoint's policy in the kernel's maps (GET /v1/bpf/policy/{endpoint}).</summary>
public sealed record BpfPolicyEntry
{
    /// <summary>ingress or egress.</summary>
    [JsonPropertyName("direction")] public required string Direction { get; init; }
    /// <summary>The peer identity; 0 is any peer.</summary>
    [JsonPropertyName("peerIdentity")] public uint PeerIdentity { get; init; }
    /// <summary>The peer identity's labels (empty for any peer or an unknown number).</summary>
    [JsonPropertyName("peerLabels")] public IReadOnlyList<string> PeerLabels { get; init; } = [];
    /// <summary>TCP, UDP, ICMP, ICMPv6, ANY or the number.</summary>
    [JsonPropertyName("protocol")] public required string Protocol { get; init; }
    /// <summary>The first port (ICMP: type) the key covers.</summary>
    [JsonPropertyName("fromPort")] public int FromPort { get; init; }
    /// <summary>The last port the key covers (65535 with fromPort 0: any).</summary>
    [JsonPropertyName("toPort")] public int ToPort { get; init; }
    /// <summary>allow or deny.</summary>
    [JsonPropertyName("action")] public required string Action { get; init; }
    /// <summary>The rule number (0: the agent's own entry, e.g. the allow-all of an unenforced direction).</summary>
    [JsonPropertyName("rule")] public uint Rule { get; init; }
    /// <summary>The rule behind the number (<c>namespace/name path</c>), when a current policy has it.</summary>
    [JsonPropertyName("ruleOrigin")] public string? RuleOrigin { get; init; }
}

/// <summary>An endpoint's policy as the kernel holds it: its enforcement flags and entries.</summary>
public sealed record BpfPolicyResponse
{
    [JsonPropertyName("endpointId")] public long EndpointId { get; init; }
    [JsonPropertyName("ifindex")] public int IfIndex { get; init; }
    /// <summary>Whether ingress is enforced (default deny) for the endpoint.</summary>
    [JsonPropertyName("ingressEnforced")] public bool IngressEnforced { get; init; }
    /// <summary>Whether egress is enforced.</summary>
    [JsonPropertyName("egressEnforced")] public bool EgressEnforced { get; init; }
    [JsonPropertyName("entries")] public IReadOnlyList<BpfPolicyEntry> Entries { get; init; } = [];
}

/// <summary>
/// POST /v1/policy/trace: would a new flow be allowed? Each side is given by labels, by a
/// local endpoint's id, or by an address (a local endpoint's, the node's, or world).
/// </summary>
public sealed record PolicyTraceRequest
{
    /// <summary>The source's labels, <c>key=value</c> (a key without source is <c>k8s:</c>).</summary>
    [JsonPropertyName("srcLabels")] public IReadOnlyList<string>? SrcLabels { get; init; }
    [JsonPropertyName("dstLabels")] public IReadOnlyList<string>? DstLabels { get; init; }
    [JsonPropertyName("srcEndpoint")] public long? SrcEndpoint { get; init; }
    [JsonPropertyName("dstEndpoint")] public long? DstEndpoint { get; init; }
    [JsonPropertyName("srcIp")] public string? SrcIp { get; init; }
    [JsonPropertyName("dstIp")] public string? DstIp { get; init; }
    /// <summary>The destination port (ICMP: the type).</summary>
    [JsonPropertyName("port")] public int Port { get; init; }
    /// <summary>TCP, UDP, ICMP, ICMPv6, ANY or a number; TCP when absent.</summary>
    [JsonPropertyName("protocol")] public string? Protocol { get; init; }
}

/// <summary>How one direction judged a traced flow.</summary>
public sealed record PolicyTraceDirection
{
    /// <summary>egress (of the source) or ingress (of the destination).</summary>
    [JsonPropertyName("direction")] public required string Direction { get; init; }
    /// <summary>unrestricted, allowed, allowed-from-host, denied-by-default or denied-by-rule.</summary>
    [JsonPropertyName("outcome")] public required string Outcome { get; init; }
    [JsonPropertyName("allowed")] public bool Allowed { get; init; }
    /// <summary>The deciding rules: the matching deny rules, else the matching allow rules (<c>namespace/name path</c>).</summary>
    [JsonPropertyName("rules")] public IReadOnlyList<string> Rules { get; init; } = [];
    /// <summary>The rule sets that select the endpoint and enforce the direction.</summary>
    [JsonPropertyName("selectedBy")] public IReadOnlyList<string> SelectedBy { get; init; } = [];
}

/// <summary>The answer of a trace: ALLOWED or DENIED, with each direction's reasons.</summary>
public sealed record PolicyTraceResponse
{
    /// <summary>ALLOWED or DENIED.</summary>
    [JsonPropertyName("verdict")] public required string Verdict { get; init; }
    [JsonPropertyName("allowed")] public bool Allowed { get; init; }
    /// <summary>The source's labels as judged (canonical <c>source:key=value</c>).</summary>
    [JsonPropertyName("srcLabels")] public IReadOnlyList<string> SrcLabels { get; init; } = [];
    [JsonPropertyName("dstLabels")] public IReadOnlyList<string> DstLabels { get; init; } = [];
    [JsonPropertyName("egress")] public required PolicyTraceDirection Egress { get; init; }
    [JsonPropertyName("ingress")] public required PolicyTraceDirection Ingress { get; init; }
}
