using Membrane.Agent.Conntrack;

namespace Membrane.Agent.Tests;

/// <summary>The adaptive conntrack GC interval as a function of what the last run found (no clock involved).</summary>
public sealed class ConntrackGcIntervalTests
{
    [Theory]
    // Quiet (< 5 % of a table deleted), tables near empty: grow by half up to 5 minutes.
    [InlineData(60, 0.0, 0.0, 90)]
    [InlineData(90, 0.01, 0.1, 135)]
    [InlineData(240, 0.0, 0.0, 300)]
    [InlineData(300, 0.0, 0.0, 300)]
    // 5 % … 25 %: unchanged.
    [InlineData(60, 0.05, 0.0, 60)]
    [InlineData(60, 0.25, 0.0, 60)]
    // Busy (> 25 %): previous × (1 − ratio), the ratio capped at 0.9, never below 10 s.
    [InlineData(60, 0.5, 0.0, 30)]
    [InlineData(300, 0.8, 0.0, 60)]
    [InlineData(300, 1.0, 0.0, 30)]
    [InlineData(60, 0.95, 0.0, 10)]
    // Fill caps the interval: 5 min up to half full, 10 s from 90 % on, linear between.
    [InlineData(300, 0.0, 0.5, 300)]
    [InlineData(300, 0.0, 0.7, 155)]
    [InlineData(300, 0.1, 0.66, 184)]
    [InlineData(300, 0.0, 0.95, 10)]
    [InlineData(20, 0.01, 0.92, 10)]
    // Both: the shorter wins.
    [InlineData(100, 0.5, 0.7, 50)]
    public void TheNextIntervalFollowsDeletionsAndFill(double previous, double deleteRatio, double fill, double expected) =>
        Assert.Equal(TimeSpan.FromSeconds(expected), ConntrackGcInterval.Next(TimeSpan.FromSeconds(previous), deleteRatio, fill));

    [Fact]
    public void TheFullestAndBusiestTableDecides()
    {
        // ct4 quiet and small, ct6 lost 400 of 1000 entries: 60 s × 0.6.
        var result = FakeConntrackDatapath.Result(alive4: 10, deleted4: 0, alive6: 100, deleted6: 400);
        Assert.Equal(TimeSpan.FromSeconds(36), ConntrackGcInterval.Next(TimeSpan.FromSeconds(60), result));
        // ct4 at 95 %: the pressure interval whatever ct6 says.
        result = FakeConntrackDatapath.Result(alive4: 950, deleted4: 0);
        Assert.Equal(ConntrackGcInterval.Min, ConntrackGcInterval.Next(TimeSpan.FromSeconds(60), result));
    }

    [Fact]
    public void TheIntervalStaysInBoundsAndNeverGrowsWithFill()
    {
        foreach (var previous in new[] { 1.0, 10, 45, 60, 299, 300, 3600 })
        {
            foreach (var ratio in new[] { 0.0, 0.03, 0.1, 0.3, 0.6, 0.9, 1.0 })
            {
                var last = TimeSpan.MaxValue;
                for (var fill = 0.0; fill <= 1.0; fill += 0.05)
                {
                    var next = ConntrackGcInterval.Next(TimeSpan.FromSeconds(previous), ratio, fill);
                    Assert.InRange(next, ConntrackGcInterval.Min, ConntrackGcInterval.Max);
                    Assert.True(next <= last, $"previous {previous}s, ratio {ratio}: fill {fill:0.00} gave {next}, more than {last} at a lower fill");
                    Assert.Equal(0, next.Ticks % TimeSpan.TicksPerSecond);
                    last = next;
                }
            }
        }
    }
}
