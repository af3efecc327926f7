using System.Collections.Immutable;
using Membrane.Policy.Model;

namespace Membrane.Policy.Resolution;

/// <summary>What a policy map entry does.</summary>
public enum PolicyMapAction : byte
{
    /// <summary>Allow.</summary>
    Allow = 0,
    /// <summary>Deny (POLICY_DENY); beats every matching allow.</summary>
    Deny = 1,
}

/// <summary>
/// The key of one policy map entry of an endpoint: <c>{peer identity, protocol, ports,
/// direction}</c> (DESIGN.md "Control plane"). Identity 0 is any peer, protocol 0 any protocol
/// (then the ports are all); <see cref="PortRange.All"/> any port, and for ICMP the range is
/// over ICMP types.
/// </summary>
public readonly record struct PolicyMapKey(uint Identity, byte Protocol, PortRange Ports, TrafficDirection Direction)
    : IComparable<PolicyMapKey>
{
    /// <summary>Whether a packet with this peer identity, protocol and port (or ICMP type) hits the entry.</summary>
    public bool Matches(uint identity, byte protocol, int port, TrafficDirection direction) =>
        Direction == direction && (Identity == 0 || Identity == identity)
        && (Protocol == 0 || Protocol == protocol) && Ports.Contains(port);

    public int CompareTo(PolicyMapKey other)
    {
        var c = Direction.CompareTo(other.Direction);
        if (c == 0) { c = Identity.CompareTo(other.Identity); }
        if (c == 0) { c = Protocol.CompareTo(other.Protocol); }
        if (c == 0) { c = Ports.First.CompareTo(other.Ports.First); }
        return c != 0 ? c : Ports.Last.CompareTo(other.Ports.Last);
    }

    /// <summary><c>Ingress 256 TCP 80</c>, <c>Egress * ANY *</c>.</summary>
    public override string ToString() =>
        $"{Direction} {(Identity == 0 ? "*" : Identity.ToString(System.Globalization.CultureInfo.InvariantCulture))} {IpProtocol.Name(Protocol)} {Ports}";
}

/// <summary>
/// One endpoint's policy map. Lookup semantics, which the datapath must implement the same way
/// (and <see cref="Lookup"/> does, for tests): a packet is denied when any matching entry is
/// Deny; else allowed when any matching entry is Allow; else denied (no entry = not allowed).
/// A direction no rule set enforces holds the wildcard allow <c>{0, ANY, *}</c>, as Cilium
/// installs an allow-all key for a direction without policy enforcement.
/// </summary>
public sealed class EndpointPolicyMap : IEquatable<EndpointPolicyMap>
{
    /// <summary>The map without entries (everything denied).</summary>
    public static EndpointPolicyMap Empty { get; } = new(ImmutableSortedDictionary<PolicyMapKey, PolicyMapAction>.Empty);

    internal EndpointPolicyMap(ImmutableSortedDictionary<PolicyMapKey, PolicyMapAction> entries) => Entries = entries;

    /// <summary>The entries in key order.</summary>
    public ImmutableSortedDictionary<PolicyMapKey, PolicyMapAction> Entries { get; }

    /// <summary>The verdict for a packet (see the type's remarks); also returns the deciding entry, if any.</summary>
    public PolicyMapAction Lookup(uint peerIdentity, byte protocol, int port, TrafficDirection direction, out PolicyMapKey? decidedBy)
    {
        PolicyMapKey? allow = null;
        foreach (var (key, action) in Entries)
        {
            if (!key.Matches(peerIdentity, protocol, port, direction))
            {
                continue;
            }
            if (action == PolicyMapAction.Deny)
            {
                decidedBy = key;
                return PolicyMapAction.Deny;
            }
            allow ??= key;
        }
        decidedBy = allow;
        return allow is null ? PolicyMapAction.Deny : PolicyMapAction.Allow;
    }

    /// <summary>
    /// True when the datapath must enforce <paramref name="direction"/> (default deny): anything but the
    /// single allow-everything entry that the resolver gives a direction no policy selects.
    /// </summary>
    public bool IsEnforced(TrafficDirection direction)
    {
        var wildcard = new PolicyMapKey(0, IpProtocol.Any, PortRange.All, direction);
        var entries = Entries.Where(e => e.Key.Direction == direction).Take(2).ToList();
        return !(entries.Count == 1 && entries[0].Key == wildcard && entries[0].Value == PolicyMapAction.Allow);
    }

    public bool Equals(EndpointPolicyMap? other) =>
        other is not null && other.Entries.Count == Entries.Count
        && Entries.All(e => other.Entries.TryGetValue(e.Key, out var a) && a == e.Value);

    public override bool Equals(object? obj) => Equals(obj as EndpointPolicyMap);

    public override int GetHashCode() => Entries.Count;
}

/// <summary>The change of one endpoint's map: entries to write (new or changed action) and keys to delete.</summary>
/// <param name="EndpointId">The endpoint.</param>
/// <param name="Upserts">Entries to add or overwrite.</param>
/// <param name="Deletes">Keys to remove.</param>
/// <param name="Removed">Whether the endpoint itself is gone (drop its whole map).</param>
/// <param name="Created">Whether the endpoint is new (create its map, even when it has no entries: deny everything).</param>
public sealed record EndpointMapDiff(ulong EndpointId, IReadOnlyDictionary<PolicyMapKey, PolicyMapAction> Upserts,
    IReadOnlyList<PolicyMapKey> Deletes, bool Removed, bool Created = false)
{
    /// <summary>Whether nothing changes.</summary>
    public bool IsEmpty => Upserts.Count == 0 && Deletes.Count == 0 && !Removed && !Created;

    /// <summary>Computes the change from <paramref name="before"/> to <paramref name="after"/> (null: no map).</summary>
    public static EndpointMapDiff Between(ulong endpointId, EndpointPolicyMap? before, EndpointPolicyMap? after)
    {
        var upserts = new SortedDictionary<PolicyMapKey, PolicyMapAction>();
        var deletes = new List<PolicyMapKey>();
        var old = before?.Entries ?? ImmutableSortedDictionary<PolicyMapKey, PolicyMapAction>.Empty;
        var now = after?.Entries ?? ImmutableSortedDictionary<PolicyMapKey, PolicyMapAction>.Empty;
        foreach (var (key, action) in now)
        {
            if (!old.TryGetValue(key, out var was) || was != action)
            {
                upserts[key] = action;
            }
        }
        foreach (var key in old.Keys)
        {
            if (!now.ContainsKey(key))
            {
                deletes.Add(key);
            }
        }
        return new EndpointMapDiff(endpointId, upserts, deletes, before is not null && after is null, before is null && after is not null);
    }

    /// <summary>Applies the change to <paramref name="map"/> (what the agent does to the kernel map).</summary>
    public EndpointPolicyMap? ApplyTo(EndpointPolicyMap? map)
    {
        if (Removed)
        {
            return null;
        }
        var builder = (map ?? EndpointPolicyMap.Empty).Entries.ToBuilder();
        foreach (var key in Deletes)
        {
            builder.Remove(key);
        }
        foreach (var (key, action) in Upserts)
        {
            builder[key] = action;
        }
        return new EndpointPolicyMap(builder.ToImmutable());
    }
}

/// <summary>The changes of a resolver update, per endpoint (endpoints without change are left out).</summary>
public sealed record PolicyMapDiff(IReadOnlyList<EndpointMapDiff> Endpoints)
{
    /// <summary>Whether nothing changes.</summary>
    public bool IsEmpty => Endpoints.Count == 0;

    /// <summary>How many entries are written or deleted in total.</summary>
    public int EntryChanges => Endpoints.Sum(e => e.Upserts.Count + e.Deletes.Count);
}
