using System.Net;
using Membrane.Policy.Labels;

namespace Membrane.Policy.Identities;

/// <summary>
/// A numeric identity as policy sees it: its number, its labels, and for a CIDR identity the
/// prefix it stands for.
/// </summary>
/// <remarks>
/// CIDR identities are node-local (DESIGN.md) and, as in Cilium, are part of <c>world</c>:
/// their labels are <c>reserved:world</c>, so <c>toEntities: [world]</c> selects them, and CIDR
/// selectors select them by <see cref="Prefix"/>. The agent's ipcache must hold every prefix a
/// rule names (<see cref="Repository.PolicySnapshot.CidrPrefixes"/>), so that the longest
/// match of an address never straddles an <c>except</c> boundary.
/// </remarks>
/// <param name="Id">The 24-bit number.</param>
/// <param name="Labels">Its labels.</param>
/// <param name="Prefix">For a CIDR identity, its prefix; null otherwise.</param>
public sealed record PolicyIdentity(uint Id, LabelSet Labels, IPNetwork? Prefix = null)
{
    /// <summary>A CIDR identity: <c>reserved:world</c> labels and a prefix.</summary>
    public static PolicyIdentity ForCidr(uint id, IPNetwork prefix) =>
        new(id, LabelSet.ForReserved("world"), prefix);

    /// <summary>Whether this identity is outside the cluster (world or a CIDR identity).</summary>
    public bool IsWorld => Labels.IsReserved("world");

    public override string ToString() => Prefix is { } p ? $"{Id} [{Labels}] {p}" : $"{Id} [{Labels}]";
}
