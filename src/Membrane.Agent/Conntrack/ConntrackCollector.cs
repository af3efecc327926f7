using Membrane.Datapath;
using Microsoft.Extensions.Logging;

namespace Membrane.Agent.Conntrack;

/// <summary>What started a garbage collection.</summary>
public enum ConntrackGcTrigger
{
    /// <summary>The collector's schedule.</summary>
    Interval,
    /// <summary>An API request (POST /v1/bpf/ct/gc).</summary>
    Request,
}

/// <summary>One garbage collection: when, why, and what it did.</summary>
/// <param name="Time">When it started.</param>
/// <param name="Trigger">What started it.</param>
/// <param name="Result">What each table held and lost.</param>
public sealed record ConntrackGcRun(DateTimeOffset Time, ConntrackGcTrigger Trigger, ConntrackGcResult Result);

/// <summary>
/// The agent's conntrack garbage collector: runs once at start (a restarted agent clears what
/// expired while it was away), then after each interval, adaptive
/// (<see cref="ConntrackGcInterval"/>) unless fixed by <c>--ct-gc-interval</c>. Logs each run
/// at debug level and warns when a table is over <see cref="ConntrackGcInterval.PressureFill"/>
/// full (again every <see cref="PressureWarningInterval"/> while it stays so). Runs, flushes and requested runs are serialised: one walk of the tables at a time.
/// </summary>
public sealed class ConntrackCollector : IDisposable
{
    private readonly IConntrackDatapath _datapath;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Lock _stats = new();
    private ConntrackGcRun? _lastRun;
    private DateTimeOffset? _nextRun;
    private TimeSpan _interval;
    private long _runs;
    private long _deletedTotal;

    /// <summary>When each table under pressure was last warned about (touched under the run gate only).</summary>
    private readonly Dictionary<ConntrackFamily, DateTimeOffset> _pressureWarnedAt = [];

    /// <summary>How often a table that stays over <see cref="ConntrackGcInterval.PressureFill"/> is warned about again.</summary>
    public static readonly TimeSpan PressureWarningInterval = TimeSpan.FromMinutes(5);

    /// <summary>Creates the collector; nothing runs before <see cref="RunAsync"/> or <see cref="CollectAsync"/>.</summary>
    /// <param name="datapath">The tables.</param>
    /// <param name="fixedInterval">A fixed interval, or null for the adaptive one.</param>
    /// <param name="time">The clock (tests pass a fake one).</param>
    /// <param name="logger">Where runs and table pressure are logged.</param>
    public ConntrackCollector(IConntrackDatapath datapath, TimeSpan? fixedInterval, TimeProvider time, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(datapath);
        _datapath = datapath;
        FixedInterval = fixedInterval;
        _time = time;
        _logger = logger;
        _interval = fixedInterval ?? ConntrackGcInterval.Initial;
    }

    /// <summary>The datapath the collector works on.</summary>
    public IConntrackDatapath Datapath => _datapath;

    /// <summary>The pinned interval (--ct-gc-interval), or null when adaptive.</summary>
    public TimeSpan? FixedInterval { get; }

    /// <summary>The wait before the next scheduled run.</summary>
    public TimeSpan Interval
    {
        get
        {
            lock (_stats)
            {
                return _interval;
            }
        }
    }

    /// <summary>When the next scheduled run is due; null before the first run.</summary>
    public DateTimeOffset? NextRun
    {
        get
        {
            lock (_stats)
            {
                return _nextRun;
            }
        }
    }

    /// <summary>The most recent run, scheduled or requested; null before the first.</summary>
    public ConntrackGcRun? LastRun
    {
        get
        {
            lock (_stats)
            {
                return _lastRun;
            }
        }
    }

    /// <summary>Runs so far.</summary>
    public long Runs => Interlocked.Read(ref _runs);

    /// <summary>Entries removed by all runs so far.</summary>
    public long DeletedTotal => Interlocked.Read(ref _deletedTotal);

    /// <summary>
    /// Collects now, then after every interval, until <paramref name="ct"/> is cancelled. A
    /// failed run is logged and retried after the same interval.
    /// </summary>
    public async Task RunAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                TimeSpan interval;
                try
                {
                    var run = await CollectAsync(ConntrackGcTrigger.Interval, ct).ConfigureAwait(false);
                    interval = FixedInterval ?? ConntrackGcInterval.Next(Interval, run.Result);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _logger.LogError(e, "failed to garbage-collect the conntrack tables: {Message}", e.Message);
                    interval = Interval;
                }
                // The timer exists before NextRun says when it fires (tests advance a fake clock by it).
                var delay = Task.Delay(interval, _time, ct);
                lock (_stats)
                {
                    _interval = interval;
                    _nextRun = _time.GetUtcNow() + interval;
                }
                await delay.ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>Runs one garbage collection now (after any run or flush in progress).</summary>
    public async Task<ConntrackGcRun> CollectAsync(ConntrackGcTrigger trigger, CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var started = _time.GetUtcNow();
            var result = await _datapath.CollectConntrackAsync(ct).ConfigureAwait(false);
            var run = new ConntrackGcRun(started, trigger, result);
            lock (_stats)
            {
                _lastRun = run;
                _runs++;
                _deletedTotal += result.Deleted;
            }
            Report(run);
            return run;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Deletes every entry (after any run in progress); returns how many were removed.</summary>
    public async Task<int> FlushAsync(CancellationToken ct)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var deleted = await _datapath.FlushConntrackAsync(ct).ConfigureAwait(false);
            _logger.LogInformation("conntrack tables flushed: {Deleted} entries removed", deleted);
            return deleted;
        }
        finally
        {
            _gate.Release();
        }
    }

    private void Report(ConntrackGcRun run)
    {
        var r = run.Result;
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            _logger.LogDebug("conntrack GC ({Trigger}): {Deleted} of {Scanned} entries expired, removed in {Elapsed:0.0} ms; {Tables}",
                run.Trigger.ToString().ToLowerInvariant(), r.Deleted, r.Scanned, r.Duration.TotalMilliseconds,
                string.Join(", ", r.Tables.Select(t => $"{Name(t.Family)} {t.Alive}/{t.MaxEntries}")));
        }
        foreach (var t in r.Tables)
        {
            // Under sustained pressure GC runs every 10 s: warn on entering it, then every
            // PressureWarningInterval, and say when it is over.
            var warned = _pressureWarnedAt.TryGetValue(t.Family, out var at);
            if (t.Fill > ConntrackGcInterval.PressureFill)
            {
                if (!warned || run.Time - at >= PressureWarningInterval)
                {
                    _pressureWarnedAt[t.Family] = run.Time;
                    _logger.LogWarning("conntrack table {Family} is {Fill:0.0}% full ({Entries} of {Max} entries): new connections evict the least recently used ones; raise --ct-max-entries or shorten the --ct-timeout-* lifetimes",
                        Name(t.Family), t.Fill * 100, t.Alive, t.MaxEntries);
                }
            }
            else if (warned)
            {
                _pressureWarnedAt.Remove(t.Family);
                _logger.LogInformation("conntrack table {Family} is no longer under pressure: {Fill:0.0}% full ({Entries} of {Max} entries)",
                    Name(t.Family), t.Fill * 100, t.Alive, t.MaxEntries);
            }
        }
    }

    /// <summary>"ipv4" or "ipv6", as the API and the logs name the tables.</summary>
    public static string Name(ConntrackFamily family) => family == ConntrackFamily.IPv4 ? "ipv4" : "ipv6";

    /// <inheritdoc/>
    public void Dispose() => _gate.Dispose();
}
