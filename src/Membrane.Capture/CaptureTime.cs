namespace Membrane.Capture;

/// <summary>Conversions between <see cref="DateTimeOffset"/> and the nanoseconds since 1970 that capture records carry.</summary>
public static class CaptureTime
{
    /// <summary>Nanoseconds since 1970-01-01T00:00:00Z (exact: a tick is 100 ns).</summary>
    public static long ToUnixNanoseconds(DateTimeOffset timestamp) =>
        checked((timestamp.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100);

    /// <summary>The instant <paramref name="nanoseconds"/> after 1970, truncated to 100 ns ticks.</summary>
    public static DateTimeOffset FromUnixNanoseconds(long nanoseconds) =>
        DateTimeOffset.UnixEpoch.AddTicks(nanoseconds / 100);
}
