using Membrane.Agent.Endpoints;
using Membrane.Linux.Bpf.Datapath;
using Membrane.Packets;
using Microsoft.Extensions.Logging;

namespace Membrane.Agent.Flows;

/// <summary>
/// Reads the datapath's records continuously and keeps them, with the endpoints they name, in
/// a bounded <see cref="FlowRing"/> that the API streams from (Hubble's observer, in one
/// process). Per record it validates the seed-frame header, reads the packet's addresses with
/// the flow-key extractor and looks both ends and the record's device up in a snapshot of the
/// local endpoints; nothing is allocated on that path. Turning an entry into a JSON flow
/// happens when a client asks (<see cref="FlowConverter"/>). Records that never arrive (the
/// kernel's ring buffer or the reader's queue was full) are counted and written into the ring
/// as notices, so a stream shows the gap where it happened.
/// </summary>
public sealed class FlowObserver : IDisposable
{
    /// <summary>Hubble's name for records the kernel could not write.</summary>
    public const string LostInKernelSource = "PERF_EVENT_RING_BUFFER";

    /// <summary>Hubble's name for records the agent could not keep up with.</summary>
    public const string LostInAgentSource = "HUBBLE_RING_BUFFER";

    private static readonly TimeSpan DirectoryMinAge = TimeSpan.FromMilliseconds(200);

    private readonly IEventSource _source;
    private readonly Func<IReadOnlyList<Api.EndpointInfo>> _listEndpoints;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private EndpointDirectory _directory = EndpointDirectory.Empty;
    private long? _directoryBuiltAt;
    private ulong _reportedKernelLost, _reportedReaderLost;
    private long _seen, _undecodable, _forwarded, _dropped;

    /// <summary>Creates the observer over <paramref name="source"/> (owned: disposed with it).</summary>
    /// <param name="source">The datapath's records.</param>
    /// <param name="capacity">Entries the ring keeps (--flow-buffer-size).</param>
    /// <param name="listEndpoints">The local endpoints now (the endpoint manager's list).</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">The log.</param>
    public FlowObserver(IEventSource source, int capacity, Func<IReadOnlyList<Api.EndpointInfo>> listEndpoints, TimeProvider time, ILogger logger)
    {
        _source = source;
        _listEndpoints = listEndpoints;
        _time = time;
        _logger = logger;
        Ring = new FlowRing(capacity);
    }

    /// <summary>The buffer the API reads.</summary>
    public FlowRing Ring { get; }

    /// <summary>Records read so far.</summary>
    public long Seen => Interlocked.Read(ref _seen);

    /// <summary>Records that were not well-formed (wrong version, too short for their type).</summary>
    public long Undecodable => Interlocked.Read(ref _undecodable);

    /// <summary>Flows with verdict FORWARDED so far.</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    /// <summary>Flows with verdict DROPPED so far.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Records lost in the kernel (its ring buffer was full).</summary>
    public ulong LostInKernel => _source.LostInKernel;

    /// <summary>Records lost in the agent (the reader's queue was full).</summary>
    public ulong LostInReader => _source.LostInReader;

    /// <summary>Reads until <paramref name="ct"/> fires; checks for lost records once a second meanwhile.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var lostLoop = ReportLostLoopAsync(ct);
        try
        {
            await foreach (var record in _source.ReadAllAsync(ct).ConfigureAwait(false))
            {
                Ingest(record.Span);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            _logger.LogError(e, "failed to read the datapath's records: flows stop until the agent restarts");
        }
        await lostLoop.ConfigureAwait(false);
    }

    /// <summary>Takes one record into the ring (the read loop's body; tests and the benchmark call it directly).</summary>
    public void Ingest(ReadOnlySpan<byte> record)
    {
        Interlocked.Increment(ref _seen);
        if (!DatapathEventReader.TryCreate(record, out var reader, out _, out _) || !reader.TryReadCommon(out var common, out _))
        {
            Interlocked.Increment(ref _undecodable);
            return;
        }
        if (common.Type == EventType.Trace || (common.Type == EventType.PolicyVerdict && common.Reason == 0))
        {
            Interlocked.Increment(ref _forwarded);
        }
        else
        {
            Interlocked.Increment(ref _dropped);
        }
        var directory = Directory(common.Ifindex);
        directory.ByIfIndex.TryGetValue(common.Ifindex, out var local);
        EndpointFacts? source = null, destination = null;
        if (FlowKeyExtractor.TryExtract(common.Packet, out var key))
        {
            directory.ByAddress.TryGetValue(key.Outer.Source, out source);
            directory.ByAddress.TryGetValue(key.Outer.Destination, out destination);
        }
        Ring.Append(_time.GetUtcNow(), reader.Length == record.Length ? record : record[..reader.Length], local, source, destination);
    }

    /// <summary>Writes notices for records lost since the last check; returns true when there were any.</summary>
    public bool ReportLost()
    {
        var kernel = Report(_source.LostInKernel, ref _reportedKernelLost, LostInKernelSource, "the kernel's ring buffer was full");
        var reader = Report(_source.LostInReader, ref _reportedReaderLost, LostInAgentSource, "the agent fell behind reading them");
        return kernel || reader;
    }

    private bool Report(ulong lost, ref ulong reported, string source, string why)
    {
        if (lost <= reported)
        {
            return false;
        }
        Ring.AppendLost(_time.GetUtcNow(), lost - reported, source);
        _logger.LogWarning("lost {Count} datapath records: {Why}", lost - reported, why);
        reported = lost;
        return true;
    }

    private async Task ReportLostLoopAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), _time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
            {
                try
                {
                    ReportLost();
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    _logger.LogError(e, "failed to read the datapath's lost-record counters");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    // The endpoint snapshot, rebuilt when a record names a device it does not know (a new pod)
    // and at least once a second otherwise (label changes), never more than every 200 ms.
    private EndpointDirectory Directory(int ifindex)
    {
        var now = _time.GetTimestamp();
        var age = _directoryBuiltAt is { } builtAt ? _time.GetElapsedTime(builtAt, now) : TimeSpan.MaxValue;
        if (age >= TimeSpan.FromSeconds(1) || (age >= DirectoryMinAge && !_directory.ByIfIndex.ContainsKey(ifindex)))
        {
            try
            {
                _directory = EndpointDirectory.Build(_listEndpoints());
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _logger.LogWarning(e, "failed to list the endpoints for flows; keeping the previous list");
            }
            _directoryBuiltAt = now;
        }
        return _directory;
    }

    /// <inheritdoc/>
    public void Dispose() => _source.Dispose();

    private sealed class EndpointDirectory
    {
        public static EndpointDirectory Empty { get; } = new([], []);

        private EndpointDirectory(Dictionary<int, EndpointFacts> byIfIndex, Dictionary<IpAddress, EndpointFacts> byAddress)
        {
            ByIfIndex = byIfIndex;
            ByAddress = byAddress;
        }

        public Dictionary<int, EndpointFacts> ByIfIndex { get; }

        public Dictionary<IpAddress, EndpointFacts> ByAddress { get; }

        public static EndpointDirectory Build(IReadOnlyList<Api.EndpointInfo> endpoints)
        {
            var byIfIndex = new Dictionary<int, EndpointFacts>();
            var byAddress = new Dictionary<IpAddress, EndpointFacts>();
            foreach (var e in endpoints)
            {
                var facts = new EndpointFacts(e.Id, e.Identity, e.PodNamespace, e.PodName, FlowConverter.DisplayLabels(e.Labels), e.HostInterface, e.HostIfIndex);
                if (e.HostIfIndex > 0)
                {
                    byIfIndex[e.HostIfIndex] = facts;
                }
                foreach (var text in new[] { e.Ipv4, e.Ipv6 })
                {
                    if (text is not null && System.Net.IPAddress.TryParse(text, out var address))
                    {
                        byAddress[FlowConverter.ToPacketAddress(address)] = facts;
                    }
                }
            }
            return new EndpointDirectory(byIfIndex, byAddress);
        }
    }
}
