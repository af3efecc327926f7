using System.Collections.Immutable;
using Membrane.Policy.Evaluation;
using Membrane.Policy.Identities;
using Membrane.Policy.Labels;
using Membrane.Policy.Model;
using Membrane.Policy.Repository;

namespace Membrane.Policy.Resolution;

/// <summary>An endpoint as the resolver sees it: its id and its labels (which select rule sets).</summary>
public sealed record PolicyEndpoint(ulong Id, LabelSet Labels);

/// <summary>
/// One selector of the selector cache, as <c>membrane policy selectors</c> shows it (Cilium's
/// <c>cilium policy selectors</c>): the selector, the identities it selects now, and the rules
/// that use it.
/// </summary>
public sealed record SelectorInfo(string Selector, IReadOnlyList<uint> Identities, IReadOnlyList<RuleOrigin> Users);

/// <summary>
/// Turns policies, identities and endpoints into per-endpoint policy maps
/// (<see cref="EndpointPolicyMap"/>) and keeps them up to date incrementally: every change
/// returns the <see cref="PolicyMapDiff"/> to write to the kernel, and touches only the
/// endpoints whose entries can change.
/// </summary>
/// <remarks>
/// <para>A selector cache (Cilium's <c>SelectorCache</c>) holds, for every distinct peer
/// selector, the identities it selects. A new identity is matched against each selector once;
/// only endpoints with a rule using a selector whose selection changed are recomputed. A
/// policy change recomputes the endpoints selected by the changed policies' old or new rule
/// sets; an endpoint change recomputes that endpoint.</para>
/// <para>Entries follow the reference evaluator exactly (the tests check every cell):
/// a direction no selecting rule set enforces gets the wildcard allow; allow rules add
/// <c>{peer identity or 0, protocol or 0, ports}</c> → allow; deny rules add the same keys →
/// deny, overriding an allow on the same key. Not thread-safe: one owner (the agent's policy
/// loop) calls it.</para>
/// </remarks>
public sealed class PolicyResolver
{
    private sealed class CachedSelector(PeerSelector selector)
    {
        public PeerSelector Selector { get; } = selector;
        public SortedSet<uint> Selected { get; } = [];
        public List<RuleOrigin> Users { get; } = [];
    }

    private PolicySnapshot _policies = PolicySnapshot.Empty;
    private readonly Dictionary<uint, PolicyIdentity> _identities = [];
    private readonly Dictionary<ulong, LabelSet> _endpoints = [];
    private readonly Dictionary<ulong, PolicySpec[]> _endpointSpecs = [];
    private readonly Dictionary<ulong, EndpointPolicyMap> _maps = [];
    private Dictionary<PeerSelector, CachedSelector> _selectors = [];

    /// <summary>
    /// A resolver over <paramref name="policies"/>, the reserved identities plus
    /// <paramref name="identities"/>, and <paramref name="endpoints"/>.
    /// </summary>
    public PolicyResolver(PolicySnapshot? policies = null, IEnumerable<PolicyIdentity>? identities = null, IEnumerable<PolicyEndpoint>? endpoints = null,
        PolicyOptions? options = null)
    {
        Options = options ?? PolicyOptions.Default;
        foreach (var identity in ReservedIdentities.All.Concat(identities ?? []))
        {
            _identities[identity.Id] = identity;
        }
        foreach (var e in endpoints ?? [])
        {
            _endpoints[e.Id] = e.Labels;
        }
        SetPolicies(policies ?? PolicySnapshot.Empty);
    }

    /// <summary>The agent-wide settings the maps follow.</summary>
    public PolicyOptions Options { get; }

    /// <summary>The current map of every endpoint.</summary>
    public IReadOnlyDictionary<ulong, EndpointPolicyMap> Maps => _maps;

    /// <summary>The current policies.</summary>
    public PolicySnapshot Policies => _policies;

    /// <summary>How many endpoint maps the last update recomputed (to observe incrementality).</summary>
    public int LastRecomputed { get; private set; }

    /// <summary>Computes every map from scratch: the specification the incremental updates must equal.</summary>
    public static IReadOnlyDictionary<ulong, EndpointPolicyMap> ResolveAll(PolicySnapshot policies, IEnumerable<PolicyIdentity> identities,
        IEnumerable<PolicyEndpoint> endpoints, PolicyOptions? options = null) =>
        new PolicyResolver(policies, identities, endpoints, options).Maps.ToDictionary(kv => kv.Key, kv => kv.Value);

    /// <summary>Replaces the policies.</summary>
    public PolicyMapDiff SetPolicies(PolicySnapshot policies)
    {
        var previous = _policies;
        _policies = policies;
        var cache = new Dictionary<PeerSelector, CachedSelector>();
        foreach (var spec in policies.Specs)
        {
            foreach (var rule in spec.Rules)
            {
                foreach (var peer in rule.Peers ?? [])
                {
                    if (!cache.TryGetValue(peer, out var cached))
                    {
                        cached = new CachedSelector(peer);
                        if (_selectors.TryGetValue(peer, out var old))
                        {
                            cached.Selected.UnionWith(old.Selected);
                        }
                        else
                        {
                            cached.Selected.UnionWith(_identities.Values.Where(peer.Selects).Select(i => i.Id));
                        }
                        cache.Add(peer, cached);
                    }
                    cached.Users.Add(rule.Origin);
                }
            }
        }
        _selectors = cache;

        // Only the endpoints selected by a policy that changed (in its old or new form).
        var changedSpecs = new List<PolicySpec>();
        foreach (var key in previous.Policies.Keys.Union(policies.Policies.Keys))
        {
            previous.Policies.TryGetValue(key, out var before);
            policies.Policies.TryGetValue(key, out var after);
            if (!ReferenceEquals(before, after))
            {
                changedSpecs.AddRange(before?.Specs ?? []);
                changedSpecs.AddRange(after?.Specs ?? []);
            }
        }
        var affected = _endpoints.Where(e => !_maps.ContainsKey(e.Key) || changedSpecs.Any(s => s.Subject.Matches(e.Value)))
            .Select(e => e.Key).ToList();
        // Unaffected endpoints keep their rule sets: unchanged policies keep their spec objects.
        foreach (var id in affected)
        {
            _endpointSpecs[id] = SelectingSpecs(_endpoints[id]);
        }
        return Recompute(affected);
    }

    /// <summary>Adds an identity, or changes the labels or prefix of one.</summary>
    public PolicyMapDiff UpsertIdentity(PolicyIdentity identity)
    {
        _identities[identity.Id] = identity;
        return SelectionChanged(identity.Id, identity);
    }

    /// <summary>Removes an identity (released, or a CIDR no longer needed).</summary>
    public PolicyMapDiff RemoveIdentity(uint id) =>
        _identities.Remove(id) ? SelectionChanged(id, null) : new PolicyMapDiff([]);

    /// <summary>Adds an endpoint or changes its labels.</summary>
    public PolicyMapDiff UpsertEndpoint(PolicyEndpoint endpoint)
    {
        _endpoints[endpoint.Id] = endpoint.Labels;
        _endpointSpecs[endpoint.Id] = SelectingSpecs(endpoint.Labels);
        return Recompute([endpoint.Id]);
    }

    /// <summary>Removes an endpoint: its whole map goes.</summary>
    public PolicyMapDiff RemoveEndpoint(ulong id)
    {
        LastRecomputed = 0;
        _endpoints.Remove(id);
        _endpointSpecs.Remove(id);
        if (!_maps.Remove(id, out var old))
        {
            return new PolicyMapDiff([]);
        }
        return new PolicyMapDiff([EndpointMapDiff.Between(id, old, null)]);
    }

    /// <summary>
    /// Runs several changes as one update and returns their combined diff — for example the
    /// CIDR identities of an import followed by the new policies, so the kernel sees one
    /// consistent step instead of intermediate maps.
    /// </summary>
    public PolicyMapDiff Batch(Action<PolicyResolver> changes)
    {
        var before = new Dictionary<ulong, EndpointPolicyMap>(_maps);
        changes(this);
        var diffs = new List<EndpointMapDiff>();
        foreach (var id in before.Keys.Union(_maps.Keys).Order())
        {
            before.TryGetValue(id, out var old);
            _maps.TryGetValue(id, out var now);
            if (!ReferenceEquals(old, now) && EndpointMapDiff.Between(id, old, now) is { IsEmpty: false } diff)
            {
                diffs.Add(diff);
            }
        }
        return new PolicyMapDiff(diffs);
    }

    /// <summary>The selector cache: each peer selector, the identities it selects, the rules using it.</summary>
    public IReadOnlyList<SelectorInfo> Selectors() =>
        [.. _selectors.Values.Select(s => new SelectorInfo(s.Selector.ToString()!, [.. s.Selected], [.. s.Users]))
            .OrderBy(s => s.Selector, StringComparer.Ordinal)];

    private PolicyMapDiff SelectionChanged(uint id, PolicyIdentity? identity)
    {
        var changed = new HashSet<PeerSelector>();
        foreach (var cached in _selectors.Values)
        {
            var now = identity is not null && cached.Selector.Selects(identity);
            if (now ? cached.Selected.Add(id) : cached.Selected.Remove(id))
            {
                changed.Add(cached.Selector);
            }
        }
        if (changed.Count == 0)
        {
            LastRecomputed = 0;
            return new PolicyMapDiff([]);
        }
        var affected = _endpointSpecs
            .Where(e => e.Value.Any(s => s.Rules.Any(r => r.Peers is { } peers && peers.Any(changed.Contains))))
            .Select(e => e.Key).ToList();
        return Recompute(affected);
    }

    private PolicySpec[] SelectingSpecs(LabelSet labels) => [.. _policies.Specs.Where(s => s.Subject.Matches(labels))];

    private PolicyMapDiff Recompute(IReadOnlyCollection<ulong> endpoints)
    {
        LastRecomputed = endpoints.Count;
        var diffs = new List<EndpointMapDiff>();
        foreach (var id in endpoints.Order())
        {
            _maps.TryGetValue(id, out var before);
            var after = Compute(_endpointSpecs[id]);
            _maps[id] = after;
            var diff = EndpointMapDiff.Between(id, before, after);
            if (!diff.IsEmpty)
            {
                diffs.Add(diff);
            }
        }
        return new PolicyMapDiff(diffs);
    }

    private EndpointPolicyMap Compute(PolicySpec[] specs)
    {
        var entries = ImmutableSortedDictionary.CreateBuilder<PolicyMapKey, PolicyMapAction>();
        foreach (var direction in new[] { TrafficDirection.Ingress, TrafficDirection.Egress })
        {
            var enforced = specs.Any(s => s.DefaultDeny(direction));
            if (!enforced)
            {
                // Unrestricted: Cilium's allow-all key for a direction without enforcement.
                entries[new PolicyMapKey(0, IpProtocol.Any, PortRange.All, direction)] = PolicyMapAction.Allow;
            }
            else if (direction == TrafficDirection.Ingress && Options.AllowLocalhost)
            {
                // Cilium's allow-localhost: an allow for the host identity; a deny on the same
                // key (or any matching deny) still wins.
                entries[new PolicyMapKey(ReservedIdentities.Host, IpProtocol.Any, PortRange.All, direction)] = PolicyMapAction.Allow;
            }
            foreach (var rule in specs.SelectMany(s => s.Rules))
            {
                if (rule.Direction != direction || (!enforced && rule.Action == RuleAction.Allow))
                {
                    continue;
                }
                IEnumerable<uint> peers = rule.Peers is null ? [0u] : rule.Peers.SelectMany(p => _selectors[p].Selected).Distinct();
                var l4 = rule.Ports is null
                    ? [(IpProtocol.Any, PortRange.All)]
                    : rule.Ports.Select(p => (p.Protocol, p.Ports)).Distinct().ToArray();
                foreach (var peer in peers)
                {
                    foreach (var (protocol, ports) in l4)
                    {
                        var key = new PolicyMapKey(peer, protocol, ports, direction);
                        if (rule.Action == RuleAction.Deny)
                        {
                            entries[key] = PolicyMapAction.Deny;
                        }
                        else
                        {
                            entries.TryAdd(key, PolicyMapAction.Allow);
                        }
                    }
                }
            }
        }
        return new EndpointPolicyMap(entries.ToImmutable());
    }
}
