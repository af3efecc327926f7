using System.Text.Json.Serialization;

namespace Membrane.Api;

/// <summary>
/// A security identity as the agent holds it (GET /v1/identities, GET /v1/identities/{id}):
/// a reserved one (<see cref="Reserved"/> names it, its one label is <c>reserved:NAME</c>) or
/// one allocated for a label set.
/// </summary>
public sealed record IdentityEntry
{
    /// <summary>The number (24 bits; below 256 reserved).</summary>
    [JsonPropertyName("id")] public required uint Id { get; init; }
    /// <summary>The label set, sorted <c>key=value</c> strings; <c>["reserved:host"]</c> for a reserved identity.</summary>
    [JsonPropertyName("labels")] public IReadOnlyList<string> Labels { get; init; } = [];
    /// <summary>The reserved identity's name (<c>host</c>, <c>world</c>, …); absent for an allocated one.</summary>
    [JsonPropertyName("reserved")] public string? Reserved { get; init; }
    /// <summary>How many endpoints of this node use it; absent for reserved identities, which endpoints do not hold.</summary>
    [JsonPropertyName("endpoints")] public int? Endpoints { get; init; }
    /// <summary>Since when no endpoint uses it (its grace period runs); absent while in use and for reserved identities.</summary>
    [JsonPropertyName("unusedSince")] public DateTimeOffset? UnusedSince { get; init; }
    /// <summary>When its grace period ends: the agent's next collection after it frees the number. Absent with <see cref="UnusedSince"/>.</summary>
    [JsonPropertyName("expiresAt")] public DateTimeOffset? ExpiresAt { get; init; }
}

/// <summary>
/// PATCH /v1/endpoints/{id}/labels: changes an endpoint's labels at run time; its identity
/// follows. <see cref="Remove"/> is applied first, then <see cref="Add"/>, so removing a key
/// and adding it with another value replaces it.
/// </summary>
public sealed record EndpointLabelsRequest
{
    /// <summary>Labels to set. A key the endpoint has already must keep its value unless the same call removes it.</summary>
    // The source-generated reader sets every init-only member, giving a missing one its default
    // (null) rather than keeping the initializer: the setters put the default back.
    [JsonPropertyName("add")] public IReadOnlyList<Label> Add { get => _add; init => _add = value ?? []; }
    /// <summary>Keys to remove (with their source prefix, as the endpoint shows them: <c>app</c>, <c>k8s:tier</c>); each must be set.</summary>
    [JsonPropertyName("remove")] public IReadOnlyList<string> Remove { get => _remove; init => _remove = value ?? []; }
    private readonly IReadOnlyList<Label> _add = [];
    private readonly IReadOnlyList<string> _remove = [];
}

/// <summary>The answer to <see cref="EndpointLabelsRequest"/>: the endpoint's labels and identity before and after.</summary>
public sealed record EndpointLabelsResponse
{
    [JsonPropertyName("endpointId")] public required long EndpointId { get; init; }
    /// <summary>The labels now (sorted <c>key=value</c>).</summary>
    [JsonPropertyName("labels")] public IReadOnlyList<string> Labels { get; init; } = [];
    /// <summary>The identity now: the one of <see cref="Labels"/>.</summary>
    [JsonPropertyName("identity")] public uint Identity { get; init; }
    [JsonPropertyName("previousLabels")] public IReadOnlyList<string> PreviousLabels { get; init; } = [];
    [JsonPropertyName("previousIdentity")] public uint PreviousIdentity { get; init; }
    /// <summary>True when the label set had no identity yet and this change allocated one.</summary>
    [JsonPropertyName("identityAllocated")] public bool IdentityAllocated { get; init; }
}
