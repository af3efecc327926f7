namespace Membrane.Agent.Identities;

/// <summary>
/// The numeric identities with a fixed meaning (DESIGN.md "Datapath"; the same numbers as
/// Cilium's <c>pkg/identity/numericidentity.go</c>, so operators read them the same way).
/// Identities are 24 bits wide because the overlay carries them in the VXLAN VNI
/// (RFC 7348 §5: the VNI is a 24-bit field).
/// </summary>
public static class ReservedIdentity
{
    public const uint Unknown = 0;
    public const uint Host = 1;
    public const uint World = 2;
    public const uint Unmanaged = 3;
    public const uint Health = 4;
    public const uint Init = 5;
    public const uint RemoteNode = 6;

    /// <summary>The first identity handed out for a label set; everything below is reserved.</summary>
    public const uint FirstAllocated = 256;

    /// <summary>The largest identity: it must fit the 24-bit VNI.</summary>
    public const uint Max = (1u << 24) - 1;

    /// <summary>The label source of reserved identities (<c>reserved:host</c>).</summary>
    public const string Source = "reserved";

    private static readonly string[] s_names = ["unknown", "host", "world", "unmanaged", "health", "init", "remote-node"];

    /// <summary>The reserved identities and their labels, by number.</summary>
    public static IReadOnlyList<(uint Id, string Name)> All { get; } =
        s_names.Select((name, i) => ((uint)i, name)).ToArray();

    /// <summary>The name of a reserved identity (<c>host</c>), or null when <paramref name="id"/> is not one.</summary>
    public static string? NameOf(uint id) => id < s_names.Length ? s_names[id] : null;

    /// <summary>The reserved identity named <paramref name="name"/> (<c>world</c>), if there is one.</summary>
    public static bool TryGet(string name, out uint id)
    {
        var i = Array.IndexOf(s_names, name);
        id = i < 0 ? Unknown : (uint)i;
        return i >= 0;
    }
}
