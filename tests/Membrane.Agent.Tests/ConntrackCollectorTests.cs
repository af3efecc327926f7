using System.Collections.Concurrent;
using Membrane.Agent.Conntrack;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Membrane.Agent.Tests;

/// <summary>
/// The conntrack garbage collector's schedule on a fake clock: when it runs, how the interval
/// adapts to each run, a pinned interval, failures, and what it logs. Nothing here waits for
/// real time to pass; the polls only wait for the collector's task to catch up with the clock.
/// </summary>
public sealed class ConntrackCollectorTests : IDisposable
{
    private static readonly DateTimeOffset Start = DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture);

    private readonly FakeTimeProvider _time = new(Start);
    private readonly FakeConntrackDatapath _datapath = new();
    private readonly LevelLogger _log = new();
    private readonly CancellationTokenSource _stop = new();

    public void Dispose()
    {
        _stop.Cancel();
        _stop.Dispose();
    }

    /// <summary>Waits until the collector has scheduled its next run after <paramref name="previous"/>; returns when it is due.</summary>
    private static async Task<DateTimeOffset> NextScheduledAsync(ConntrackCollector collector, DateTimeOffset? previous)
    {
        for (var i = 0; i < 1000; i++)
        {
            if (collector.NextRun is { } next && next != previous)
            {
                return next;
            }
            await Task.Delay(10);
        }
        throw new TimeoutException("the collector did not schedule its next run");
    }

    [Fact]
    public async Task ItRunsAtStartThenAdaptsTheIntervalToEachRun()
    {
        // Run 1 quiet (60 s → 90 s); run 2 freed half of ct4 (90 s → 45 s); run 3 left ct6 95 % full (→ 10 s); run 4 quiet (→ 15 s).
        _datapath.Results.Enqueue(FakeConntrackDatapath.Result(alive4: 10, deleted4: 0));
        _datapath.Results.Enqueue(FakeConntrackDatapath.Result(alive4: 100, deleted4: 500));
        _datapath.Results.Enqueue(FakeConntrackDatapath.Result(alive4: 100, deleted4: 0, alive6: 950, deleted6: 0));
        _datapath.Results.Enqueue(FakeConntrackDatapath.Result(alive4: 100, deleted4: 0));
        using var collector = new ConntrackCollector(_datapath, fixedInterval: null, _time, _log);
        var loop = collector.RunAsync(_stop.Token);

        var next = await NextScheduledAsync(collector, null);
        Assert.Equal(1, collector.Runs);
        Assert.Equal(Start, collector.LastRun!.Time);
        Assert.Equal(ConntrackGcTrigger.Interval, collector.LastRun.Trigger);
        Assert.Equal(TimeSpan.FromSeconds(90), collector.Interval);
        Assert.Equal(Start.AddSeconds(90), next);

        var expected = new[] { 45, 10, 15 };
        foreach (var seconds in expected)
        {
            _time.Advance(collector.Interval);
            next = await NextScheduledAsync(collector, next);
            Assert.Equal(TimeSpan.FromSeconds(seconds), collector.Interval);
            Assert.Equal(_time.GetUtcNow() + collector.Interval, next);
        }
        Assert.Equal(4, collector.Runs);
        Assert.Equal(4, _datapath.Collections);
        Assert.Equal(500, collector.DeletedTotal);

        _stop.Cancel();
        await loop; // ends quietly on cancellation
    }

    [Fact]
    public async Task APinnedIntervalIgnoresWhatRunsFind()
    {
        _datapath.Results.Enqueue(FakeConntrackDatapath.Result(alive4: 950, deleted4: 0));
        _datapath.Results.Enqueue(FakeConntrackDatapath.Result(alive4: 0, deleted4: 900));
        using var collector = new ConntrackCollector(_datapath, TimeSpan.FromSeconds(7), _time, _log);
        var loop = collector.RunAsync(_stop.Token);

        var next = await NextScheduledAsync(collector, null);
        Assert.Equal(Start.AddSeconds(7), next);
        _time.Advance(TimeSpan.FromSeconds(7));
        next = await NextScheduledAsync(collector, next);
        Assert.Equal(Start.AddSeconds(14), next);
        Assert.Equal(TimeSpan.FromSeconds(7), collector.Interval);
        Assert.Equal(2, collector.Runs);
        _stop.Cancel();
        await loop;
    }

    [Fact]
    public async Task AFailedRunIsLoggedAndRetriedAfterTheSameInterval()
    {
        _datapath.FailCollect = new IOException("map gone");
        using var collector = new ConntrackCollector(_datapath, fixedInterval: null, _time, _log);
        var loop = collector.RunAsync(_stop.Token);

        var next = await NextScheduledAsync(collector, null);
        Assert.Equal(Start + ConntrackGcInterval.Initial, next);
        Assert.Equal(0, collector.Runs);
        Assert.Null(collector.LastRun);
        Assert.Contains(_log.Lines, l => l.Level == LogLevel.Error && l.Message.Contains("map gone", StringComparison.Ordinal));

        _datapath.FailCollect = null;
        _time.Advance(ConntrackGcInterval.Initial);
        await NextScheduledAsync(collector, next);
        Assert.Equal(1, collector.Runs);
        _stop.Cancel();
        await loop;
    }

    [Fact]
    public async Task EachRunIsLoggedAtDebugAndAFullTableIsWarnedAbout()
    {
        _datapath.Results.Enqueue(FakeConntrackDatapath.Result(alive4: 100, deleted4: 5, alive6: 905, deleted6: 0));
        using var collector = new ConntrackCollector(_datapath, fixedInterval: null, _time, _log);

        var run = await collector.CollectAsync(ConntrackGcTrigger.Request, default);
        Assert.Equal(ConntrackGcTrigger.Request, run.Trigger);
        var debug = Assert.Single(_log.Lines, l => l.Level == LogLevel.Debug);
        Assert.Contains("5 of 1010 entries expired", debug.Message, StringComparison.Ordinal);
        Assert.Contains("ipv4 100/1000, ipv6 905/1000", debug.Message, StringComparison.Ordinal);
        var warning = Assert.Single(_log.Lines, l => l.Level == LogLevel.Warning);
        Assert.Contains("ipv6 is 90.5% full (905 of 1000 entries)", warning.Message, StringComparison.Ordinal);
        Assert.Contains("--ct-max-entries", warning.Message, StringComparison.Ordinal);
        // Requested runs do not touch the schedule.
        Assert.Null(collector.NextRun);
        Assert.Equal(ConntrackGcInterval.Initial, collector.Interval);
    }

    [Fact]
    public async Task SustainedPressureIsWarnedAboutEveryFiveMinutesAndItsEndOnce()
    {
        var full = FakeConntrackDatapath.Result(alive4: 950, deleted4: 0);
        using var collector = new ConntrackCollector(_datapath, fixedInterval: null, _time, _log);
        int Warnings() => _log.Lines.Count(l => l.Level == LogLevel.Warning);

        _datapath.Results.Enqueue(full);
        await collector.CollectAsync(ConntrackGcTrigger.Request, default);
        Assert.Equal(1, Warnings());
        for (var i = 0; i < 29; i++) // 10 s apart: 4 min 50 s of pressure, no repeat
        {
            _time.Advance(TimeSpan.FromSeconds(10));
            _datapath.Results.Enqueue(full);
            await collector.CollectAsync(ConntrackGcTrigger.Request, default);
        }
        Assert.Equal(1, Warnings());
        _time.Advance(TimeSpan.FromSeconds(10));
        _datapath.Results.Enqueue(full);
        await collector.CollectAsync(ConntrackGcTrigger.Request, default);
        Assert.Equal(2, Warnings());

        // Exactly 90 % is not over the threshold: the pressure is over, said once.
        _datapath.Results.Enqueue(FakeConntrackDatapath.Result(alive4: 900, deleted4: 50));
        await collector.CollectAsync(ConntrackGcTrigger.Request, default);
        _datapath.Results.Enqueue(FakeConntrackDatapath.Result(alive4: 900, deleted4: 0));
        await collector.CollectAsync(ConntrackGcTrigger.Request, default);
        Assert.Equal(2, Warnings());
        var over = Assert.Single(_log.Lines, l => l.Level == LogLevel.Information);
        Assert.Contains("ipv4 is no longer under pressure: 90.0% full", over.Message, StringComparison.Ordinal);

        // A new episode is warned about at once.
        _datapath.Results.Enqueue(full);
        await collector.CollectAsync(ConntrackGcTrigger.Request, default);
        Assert.Equal(3, Warnings());
    }

    [Fact]
    public async Task AFlushWaitsForARunInProgress()
    {
        var gate = new TaskCompletionSource();
        var blocking = new BlockingConntrack(gate.Task, _datapath);
        using var collector = new ConntrackCollector(blocking, fixedInterval: null, _time, _log);
        _datapath.Entries.Add(FakeConntrackDatapath.Entry("198.18.0.2", 1, "198.18.0.3", 2, 17));

        var run = collector.CollectAsync(ConntrackGcTrigger.Request, default);
        var flush = collector.FlushAsync(default);
        Assert.False(flush.IsCompleted);
        Assert.Single(_datapath.Entries); // the flush has not reached the tables
        gate.SetResult();
        await run;
        Assert.Equal(1, await flush);
    }

    /// <summary>Holds collections until a gate opens.</summary>
    private sealed class BlockingConntrack(Task gate, FakeConntrackDatapath inner) : IConntrackDatapath
    {
        public Task<IReadOnlyList<Datapath.ConntrackEntry>> ListConntrackAsync(Datapath.ConntrackFilter filter, CancellationToken ct) => inner.ListConntrackAsync(filter, ct);

        public Task<int> FlushConntrackAsync(CancellationToken ct) => inner.FlushConntrackAsync(ct);

        public async Task<Datapath.ConntrackGcResult> CollectConntrackAsync(CancellationToken ct)
        {
            await gate;
            return await inner.CollectConntrackAsync(ct);
        }

        public Task<Datapath.Conntrack.ConntrackTimeouts> ReadConntrackTimeoutsAsync(CancellationToken ct) => inner.ReadConntrackTimeoutsAsync(ct);
    }

    /// <summary>Records level and message of every log call.</summary>
    private sealed class LevelLogger : ILogger
    {
        public ConcurrentQueue<(LogLevel Level, string Message)> Lines { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Enqueue((logLevel, formatter(state, exception)));
    }
}
