namespace Membrane.Cni;

/// <summary>The CNI spec versions the plugin speaks, and what each allows.</summary>
internal static class CniVersion
{
    public const string Latest = "1.1.0";

    /// <summary>Every version the plugin accepts in a config and answers in (oldest first).</summary>
    public static readonly string[] Supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    public static bool IsSupported(string version) => Array.IndexOf(Supported, version) >= 0;

    /// <summary>True when <paramref name="version"/> is at least <paramref name="minimum"/> (both supported).</summary>
    public static bool AtLeast(string version, string minimum) =>
        Array.IndexOf(Supported, version) >= Array.IndexOf(Supported, minimum);

    /// <summary>Results before 1.0.0 carry <c>"version":"4"|"6"</c> on each IP (spec 0.3/0.4).</summary>
    public static bool IpsCarryVersion(string version) => !AtLeast(version, "1.0.0");
}
