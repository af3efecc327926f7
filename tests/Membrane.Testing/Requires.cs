using Xunit;

namespace Membrane.Testing;

/// <summary>
/// Skip rules for tests that need root, a kernel feature or an external tool.
/// Outside CI a missing prerequisite skips the test with the reason; under CI=true it
/// fails instead, so that a green CI means the test really ran (Npgsql's
/// IgnoreExceptOnBuildServer).
/// </summary>
public static class Requires
{
    /// <summary>True when the environment variable CI is "true" (any case) or "1".</summary>
    public static bool InCi { get; } =
        Environment.GetEnvironmentVariable("CI") is { } ci &&
        (ci.Equals("true", StringComparison.OrdinalIgnoreCase) || ci == "1");

    /// <summary>Skips (or fails under CI) unless <paramref name="condition"/> holds.</summary>
    public static void That(bool condition, string reason)
    {
        if (condition)
        {
            return;
        }
        if (InCi)
        {
            Assert.Fail($"prerequisite missing under CI=true: {reason}");
        }
        Skip.If(true, reason);
    }

    /// <summary>The test needs to run as root (uid 0).</summary>
    public static void Root() => That(Environment.UserName == "root" || geteuidSafe() == 0, "needs root");

    /// <summary>The test needs an executable on PATH (or at an absolute path).</summary>
    public static string Tool(string name)
    {
        var path = Tools.Find(name);
        That(path is not null, $"needs '{name}' (make deps installs it)");
        return path!;
    }

    private static int geteuidSafe()
    {
        try
        {
            return File.ReadAllLines("/proc/self/status")
                .Where(l => l.StartsWith("Uid:", StringComparison.Ordinal))
                .Select(l => int.Parse(l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[2], System.Globalization.CultureInfo.InvariantCulture))
                .FirstOrDefault(-1);
        }
        catch (IOException)
        {
            return -1;
        }
    }
}
