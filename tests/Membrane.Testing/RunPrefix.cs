namespace Membrane.Testing;

/// <summary>
/// A short unique prefix for everything one test run creates in the kernel (netns, links,
/// bpffs pins, state dirs), so that runs never collide and leftovers are recognisable.
/// Interface names are limited to 15 bytes, so the prefix is kept to 6 characters.
/// </summary>
public static class RunPrefix
{
    /// <summary>"mb" + 4 hex digits, fixed for the life of the test process.</summary>
    public static string Value { get; } = "mb" + Random.Shared.Next(0, 0x10000).ToString("x4", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A name under this run's prefix with a per-call counter: mbXXXX + tag + n.</summary>
    public static string Next(string tag)
    {
        var n = Interlocked.Increment(ref s_counter);
        return $"{Value}{tag}{n}";
    }

    private static int s_counter;
}
