using System.Globalization;

namespace Membrane.Cli.Client;

/// <summary>
/// <c>--since</c>/<c>--until</c> values as <c>hubble observe</c> takes them: a duration back
/// from now in Go's syntax (<c>30s</c>, <c>5m</c>, <c>1h30m</c>, <c>1.5h</c>; units ns, us,
/// µs, ms, s, m, h — Go's time.ParseDuration), or a time in RFC 3339 (<c>2026-11-27T22:51:28Z</c>,
/// <c>…+01:00</c>, fractions to nanoseconds), or without a zone (<c>2026-11-27T22:51:28</c>,
/// <c>2026-11-27T22:51</c>, <c>2026-11-27</c>), which is UTC as in Go's time.Parse.
/// </summary>
internal static class FlowTime
{
    private static readonly string[] Layouts =
    [
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK",
        "yyyy-MM-dd'T'HH:mm:ssK",
        "yyyy-MM-dd'T'HH:mm:ss.FFFFFFF",
        "yyyy-MM-dd'T'HH:mm:ss",
        "yyyy-MM-dd'T'HH:mm",
        "yyyy-MM-dd",
    ];

    /// <summary>Parses <paramref name="text"/> relative to <paramref name="now"/>; false with the reason otherwise.</summary>
    public static bool TryParse(string text, DateTimeOffset now, out DateTimeOffset time, out string error)
    {
        var value = text.Trim();
        if (TryParseDuration(value, out var ago))
        {
            time = now - ago;
            error = "";
            return true;
        }
        // RFC 3339 5.6 allows a lower-case t and z; .NET carries 7 fractional digits, Go's RFC3339Nano 9.
        var normalised = TrimFraction(value.ToUpperInvariant());
        if (DateTimeOffset.TryParseExact(normalised, Layouts, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time))
        {
            error = "";
            return true;
        }
        error = $"'{text}' is neither a duration back from now (30s, 5m, 1h30m) nor a time (RFC 3339, e.g. 2026-11-27T22:51:28Z)";
        return false;
    }

    /// <summary>Go's duration syntax: an optional sign, then one or more decimal numbers each with a unit.</summary>
    public static bool TryParseDuration(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        var s = text.AsSpan();
        var negative = false;
        if (s.Length > 0 && (s[0] == '-' || s[0] == '+'))
        {
            negative = s[0] == '-';
            s = s[1..];
        }
        if (s.SequenceEqual("0"))
        {
            return true;
        }
        if (s.IsEmpty)
        {
            return false;
        }
        decimal total = 0; // in nanoseconds
        while (!s.IsEmpty)
        {
            var n = 0;
            while (n < s.Length && (char.IsAsciiDigit(s[n]) || s[n] == '.'))
            {
                n++;
            }
            if (n == 0 || !decimal.TryParse(s[..n], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                return false;
            }
            s = s[n..];
            var u = 0;
            while (u < s.Length && !char.IsAsciiDigit(s[u]) && s[u] != '.')
            {
                u++;
            }
            decimal? unit = s[..u] switch
            {
                "ns" => 1m,
                "us" or "µs" or "μs" => 1_000m,
                "ms" => 1_000_000m,
                "s" => 1_000_000_000m,
                "m" => 60_000_000_000m,
                "h" => 3_600_000_000_000m,
                _ => null,
            };
            if (unit is null)
            {
                return false;
            }
            total += number * unit.Value;
            s = s[u..];
        }
        var ticks = total / 100m; // a tick is 100 ns
        if (ticks > TimeSpan.MaxValue.Ticks)
        {
            return false;
        }
        duration = TimeSpan.FromTicks((long)(negative ? -ticks : ticks));
        return true;
    }

    private static string TrimFraction(string value)
    {
        var dot = value.IndexOf('.', StringComparison.Ordinal);
        if (dot < 0)
        {
            return value;
        }
        var end = dot + 1;
        while (end < value.Length && char.IsAsciiDigit(value[end]))
        {
            end++;
        }
        return end - dot - 1 <= 7 ? value : value[..(dot + 8)] + value[end..];
    }
}
