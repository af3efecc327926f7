using Membrane.Cli.Client;

namespace Membrane.Cli.Tests;

/// <summary><c>observe --since/--until</c>: Go durations back from now and RFC 3339 times, as hubble takes them.</summary>
public sealed class ObserveTimeTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 27, 22, 51, 28, TimeSpan.Zero);

    [Theory]
    [InlineData("0", 0)]
    [InlineData("30s", 30_000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h30m", 5_400_000)]
    [InlineData("1.5h", 5_400_000)]
    [InlineData("2h45m10.5s", 9_910_500)]
    [InlineData("300ms", 300)]
    [InlineData("1500us", 1.5)]
    [InlineData("1500µs", 1.5)]
    [InlineData("2000000ns", 2)]
    [InlineData("-1m", -60_000)]
    [InlineData("+1m", 60_000)]
    public void GoDurationsAreTimeBackFromNow(string text, double milliseconds)
    {
        Assert.True(FlowTime.TryParse(text, Now, out var time, out var error), error);
        Assert.Equal(Now - TimeSpan.FromMilliseconds(milliseconds), time);
    }

    [Theory]
    [InlineData("2026-11-27T21:00:00Z", "2026-11-27T21:00:00.0000000+00:00")]
    [InlineData("2026-11-27t21:00:00z", "2026-11-27T21:00:00.0000000+00:00")]
    [InlineData("2026-11-27T22:00:00+01:00", "2026-11-27T21:00:00.0000000+00:00")]
    [InlineData("2026-11-27T21:00:00.123456789Z", "2026-11-27T21:00:00.1234567+00:00")]
    [InlineData("2026-11-27T21:00:00", "2026-11-27T21:00:00.0000000+00:00")]
    [InlineData("2026-11-27T21:00", "2026-11-27T21:00:00.0000000+00:00")]
    [InlineData("2026-11-27", "2026-11-27T00:00:00.0000000+00:00")]
    public void TimesAreRfc3339OrUtcWithoutAZone(string text, string expected)
    {
        Assert.True(FlowTime.TryParse(text, Now, out var time, out var error), error);
        Assert.Equal(expected, time.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
    }

    [Theory]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("5x")]
    [InlineData("m")]
    [InlineData("1d")]
    [InlineData("yesterday")]
    [InlineData("27/11/2026")]
    [InlineData("2026-13-01")]
    [InlineData("1h 30m")]
    public void AnythingElseIsRefusedWithTheForms(string text)
    {
        Assert.False(FlowTime.TryParse(text, Now, out _, out var error));
        Assert.Contains("is neither a duration back from now (30s, 5m, 1h30m) nor a time (RFC 3339", error, StringComparison.Ordinal);
    }
}
