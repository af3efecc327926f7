using System.Collections.Immutable;
using System.Net;
using Membrane.Policy.Model;

namespace Membrane.Policy.Repository;

/// <summary>
/// An immutable set of policies keyed by namespace/name, with a revision that grows with every
/// change. Readers (the evaluator, the resolver, <c>policy get</c>) hold a snapshot and never
/// see a half-applied import.
/// </summary>
public sealed class PolicySnapshot
{
    private PolicySnapshot(long revision, ImmutableSortedDictionary<PolicyKey, PolicyResource> policies)
    {
        Revision = revision;
        Policies = policies;
        Specs = [.. policies.Values.SelectMany(p => p.Specs)];
        CidrPrefixes = [.. Specs.SelectMany(s => s.Rules).SelectMany(r => r.Peers ?? []).OfType<CidrPeer>()
            .SelectMany(c => c.Except.Prepend(c.Cidr)).Distinct()
            .OrderBy(n => n.BaseAddress.AddressFamily).ThenBy(n => n.PrefixLength).ThenBy(n => n.ToString(), StringComparer.Ordinal)];
    }

    /// <summary>No policies, revision 0.</summary>
    public static PolicySnapshot Empty { get; } = new(0, ImmutableSortedDictionary<PolicyKey, PolicyResource>.Empty);

    /// <summary>The revision: 0 for the empty repository, one more for every change.</summary>
    public long Revision { get; }

    /// <summary>The policies, sorted by namespace and name.</summary>
    public ImmutableSortedDictionary<PolicyKey, PolicyResource> Policies { get; }

    /// <summary>Every rule set of every policy (in policy order).</summary>
    public ImmutableArray<PolicySpec> Specs { get; }

    /// <summary>
    /// Every prefix a CIDR rule names, blocks and excepts alike. The agent gives each a CIDR
    /// identity in the ipcache, so an address's longest-prefix match is always on one side of
    /// every except boundary and CIDR rules resolve to identities exactly.
    /// </summary>
    public ImmutableArray<IPNetwork> CidrPrefixes { get; }

    /// <summary>A snapshot with <paramref name="policies"/> added, replacing those with the same namespace/name.</summary>
    public PolicySnapshot With(IEnumerable<PolicyResource> policies)
    {
        var builder = Policies.ToBuilder();
        foreach (var p in policies)
        {
            builder[p.Key] = p;
        }
        return new PolicySnapshot(Revision + 1, builder.ToImmutable());
    }

    /// <summary>A snapshot without the policies named (missing ones are ignored).</summary>
    public PolicySnapshot Without(IEnumerable<PolicyKey> keys) => new(Revision + 1, Policies.RemoveRange(keys));

    /// <summary>A snapshot without any policy.</summary>
    public PolicySnapshot Cleared() => new(Revision + 1, ImmutableSortedDictionary<PolicyKey, PolicyResource>.Empty);
}
