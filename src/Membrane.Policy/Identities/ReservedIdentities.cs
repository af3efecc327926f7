using Membrane.Policy.Labels;

namespace Membrane.Policy.Identities;

/// <summary>
/// The numeric identities with a fixed meaning (DESIGN.md "Datapath": 0 unknown, 1 host,
/// 2 world, 3 unmanaged, 4 health, 5 init, 6 remote-node; the numbers of Cilium's
/// <c>pkg/identity/numericidentity.go</c>) and their label sets, <c>reserved:&lt;name&gt;</c>.
/// </summary>
public static class ReservedIdentities
{
    /// <summary>No identity known (never selected by a rule).</summary>
    public const uint Unknown = 0;
    /// <summary>The local node (<c>reserved:host</c>).</summary>
    public const uint Host = 1;
    /// <summary>Everything outside the cluster (<c>reserved:world</c>).</summary>
    public const uint World = 2;
    /// <summary>Endpoints Membrane does not manage (<c>reserved:unmanaged</c>).</summary>
    public const uint Unmanaged = 3;
    /// <summary>Health-check endpoints (<c>reserved:health</c>).</summary>
    public const uint Health = 4;
    /// <summary>Endpoints whose labels are not known yet (<c>reserved:init</c>).</summary>
    public const uint Init = 5;
    /// <summary>Other nodes of the cluster (<c>reserved:remote-node</c>).</summary>
    public const uint RemoteNode = 6;
    /// <summary>The first number allocated for a label set.</summary>
    public const uint FirstAllocated = 256;
    /// <summary>The largest identity: 24 bits, so it fits the VXLAN VNI (RFC 7348 §5).</summary>
    public const uint Max = (1u << 24) - 1;

    private static readonly string[] s_names = ["unknown", "host", "world", "unmanaged", "health", "init", "remote-node"];

    /// <summary>The reserved identities (1–6) with their label sets; 0 (unknown) is not listed, it stands for nothing.</summary>
    public static IReadOnlyList<PolicyIdentity> All { get; } =
        Enumerable.Range(1, s_names.Length - 1).Select(i => new PolicyIdentity((uint)i, LabelSet.ForReserved(s_names[i]))).ToArray();

    /// <summary>The reserved name of <paramref name="id"/> (<c>host</c>), or null when it is not reserved.</summary>
    public static string? NameOf(uint id) => id < s_names.Length ? s_names[id] : null;

    /// <summary>The reserved identity with this name.</summary>
    public static bool TryGet(string name, out uint id)
    {
        var i = Array.IndexOf(s_names, name);
        id = i <= 0 ? Unknown : (uint)i;
        return i > 0;
    }

    /// <summary>The label set of a reserved identity (<c>reserved:world=</c>).</summary>
    public static LabelSet LabelsOf(uint id) =>
        id is > Unknown and <= RemoteNode ? LabelSet.ForReserved(s_names[id])
            : throw new ArgumentOutOfRangeException(nameof(id), id, "failed to name reserved identity: not a reserved identity");
}
