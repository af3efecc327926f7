using System.Globalization;
using Membrane.Datapath;
using Membrane.Datapath.Conntrack;

namespace Membrane.Agent.Conntrack;

/// <summary>
/// The agent's conntrack flags: <c>--ct-max-entries</c> (size of each table),
/// <c>--ct-timeout-tcp-syn|tcp-established|tcp-close|other</c> (lifetimes the datapath gives
/// entries) and <c>--ct-gc-interval</c> (a fixed garbage-collection interval instead of the
/// adaptive one). Errors name the flag.
/// </summary>
public sealed record ConntrackSettings
{
    /// <summary>The smallest table accepted (Cilium's LimitTableMin, 2^10).</summary>
    public const uint MinTableSize = 1 << 10;

    /// <summary>The largest table accepted (Cilium's LimitTableMax, 2^24): 16M entries of 56 + 40 bytes is ~1.5 GiB.</summary>
    public const uint MaxTableSize = 1 << 24;

    /// <summary>The longest fixed GC interval accepted.</summary>
    public static readonly TimeSpan MaxGcInterval = TimeSpan.FromDays(1);

    /// <summary>Entries per table (ct4, ct6).</summary>
    public uint MaxEntries { get; init; } = DatapathOptions.DefaultConntrackMaxEntries;

    /// <summary>The lifetimes per class of state.</summary>
    public ConntrackTimeouts Timeouts { get; init; } = new();

    /// <summary>A fixed GC interval; null: adaptive (<see cref="ConntrackGcInterval"/>).</summary>
    public TimeSpan? GcInterval { get; init; }

    /// <summary>Checks every value; throws <see cref="ArgumentException"/> naming the flag.</summary>
    public void Validate()
    {
        if (MaxEntries is < MinTableSize or > MaxTableSize)
        {
            throw new ArgumentException($"failed to parse --ct-max-entries: {MaxEntries} is out of range ({MinTableSize} … {MaxTableSize})");
        }
        CheckLifetime("--ct-timeout-tcp-syn", Timeouts.TcpSyn);
        CheckLifetime("--ct-timeout-tcp-established", Timeouts.TcpEstablished);
        CheckLifetime("--ct-timeout-tcp-close", Timeouts.TcpClose);
        CheckLifetime("--ct-timeout-other", Timeouts.Other);
        if (GcInterval is { } interval && (interval < TimeSpan.FromSeconds(1) || interval > MaxGcInterval))
        {
            throw new ArgumentException($"failed to parse --ct-gc-interval: {Format(interval)} is out of range (1s … {Format(MaxGcInterval)})");
        }
    }

    // The datapath keeps lifetimes as __u32 seconds added to a __u32 clock and compared as
    // __s32 differences (bpf/lib/conntrack.h ct_alive): whole seconds below 2^31.
    private static void CheckLifetime(string flag, TimeSpan value)
    {
        if (value < TimeSpan.FromSeconds(1) || value.Ticks % TimeSpan.TicksPerSecond != 0 || value.TotalSeconds > int.MaxValue / 2)
        {
            throw new ArgumentException($"failed to parse {flag}: {Format(value)} is not a whole number of seconds between 1s and {Format(TimeSpan.FromSeconds(int.MaxValue / 2))}");
        }
    }

    /// <summary>
    /// The settings from the flags' values (null: the flag was not given, its default holds),
    /// checked. Throws <see cref="ArgumentException"/> naming the first flag that is wrong.
    /// </summary>
    public static ConntrackSettings FromFlags(string? maxEntries = null, string? tcpSyn = null, string? tcpEstablished = null,
        string? tcpClose = null, string? other = null, string? gcInterval = null)
    {
        var defaults = new ConntrackTimeouts();
        var settings = new ConntrackSettings
        {
            MaxEntries = maxEntries is null ? DatapathOptions.DefaultConntrackMaxEntries : ParseMaxEntries(maxEntries),
            Timeouts = new ConntrackTimeouts
            {
                TcpSyn = tcpSyn is null ? defaults.TcpSyn : ParseDuration("--ct-timeout-tcp-syn", tcpSyn),
                TcpEstablished = tcpEstablished is null ? defaults.TcpEstablished : ParseDuration("--ct-timeout-tcp-established", tcpEstablished),
                TcpClose = tcpClose is null ? defaults.TcpClose : ParseDuration("--ct-timeout-tcp-close", tcpClose),
                Other = other is null ? defaults.Other : ParseDuration("--ct-timeout-other", other),
            },
            GcInterval = gcInterval is null ? null : ParseDuration("--ct-gc-interval", gcInterval),
        };
        settings.Validate();
        return settings;
    }

    /// <summary>Parses the <c>--ct-max-entries</c> value.</summary>
    /// <exception cref="ArgumentException">Not a decimal number.</exception>
    public static uint ParseMaxEntries(string text) =>
        uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n
            : throw new ArgumentException($"failed to parse --ct-max-entries: '{text}' is not a number of entries");

    /// <summary>
    /// Parses a duration as Go's time.ParseDuration writes the common ones: one or more
    /// number–unit pairs, units d, h, m, s (60s, 10m, 6h, 1h30m, 1d). <paramref name="flag"/>
    /// names the option in the error.
    /// </summary>
    /// <exception cref="ArgumentException">Not such a duration, or too long for a TimeSpan.</exception>
    public static TimeSpan ParseDuration(string flag, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var s = text.AsSpan().Trim();
        long seconds = 0;
        var i = 0;
        try
        {
            do
            {
                var start = i;
                while (i < s.Length && char.IsAsciiDigit(s[i]))
                {
                    i++;
                }
                if (i == start || i == s.Length)
                {
                    throw Invalid(flag, text);
                }
                var number = long.Parse(s[start..i], NumberStyles.None, CultureInfo.InvariantCulture);
                var unit = s[i++] switch
                {
                    'd' => 86_400L,
                    'h' => 3_600L,
                    'm' => 60L,
                    's' => 1L,
                    _ => throw Invalid(flag, text),
                };
                seconds = checked(seconds + checked(number * unit));
            }
            while (i < s.Length);
            return TimeSpan.FromSeconds(seconds);
        }
        catch (Exception e) when (e is OverflowException or ArgumentOutOfRangeException)
        {
            throw new ArgumentException($"failed to parse {flag}: '{text}' is too long a duration", e);
        }
    }

    private static ArgumentException Invalid(string flag, string text) =>
        new($"failed to parse {flag}: '{text}' is not a duration (expected e.g. 60s, 10m, 6h, 1h30m or 1d)");

    /// <summary>"6h", "1h30m", "45s": the form <see cref="ParseDuration"/> reads.</summary>
    public static string Format(TimeSpan value)
    {
        if (value < TimeSpan.Zero)
        {
            return "-" + Format(-value);
        }
        if (value < TimeSpan.FromSeconds(1))
        {
            return value == TimeSpan.Zero ? "0s" : $"{value.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)}ms";
        }
        var text = "";
        if (value.Days > 0)
        {
            text += $"{value.Days}d";
        }
        if (value.Hours > 0)
        {
            text += $"{value.Hours}h";
        }
        if (value.Minutes > 0)
        {
            text += $"{value.Minutes}m";
        }
        if (value.Seconds > 0 || text.Length == 0)
        {
            text += $"{value.Seconds}s";
        }
        if (value.Milliseconds > 0)
        {
            text += $"{value.Milliseconds}ms";
        }
        return text;
    }
}
