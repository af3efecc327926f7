namespace Membrane.Agent.Flows;

/// <summary>
/// A stream of datapath records (seed-frame header + body, bpf/lib/events.h) and the counts of
/// records that never reached it. The kernel implementation wraps the ring-buffer reader; tests
/// feed records of their own.
/// </summary>
public interface IEventSource : IDisposable
{
    /// <summary>The records in arrival order until <paramref name="ct"/> fires; each one's bytes are valid until the next is asked for.</summary>
    IAsyncEnumerable<ReadOnlyMemory<byte>> ReadAllAsync(CancellationToken ct);

    /// <summary>Records the datapath could not write because the kernel's ring buffer was full.</summary>
    ulong LostInKernel { get; }

    /// <summary>Records the reader dropped because its consumer fell behind.</summary>
    ulong LostInReader { get; }
}

/// <summary>The datapath's event side, as the agent's <see cref="FlowObserver"/> uses it.</summary>
public interface IFlowDatapath
{
    /// <summary>Starts reading the datapath's records; <paramref name="slots"/> may wait for the observer at a time.</summary>
    IEventSource OpenEvents(int slots);

    /// <summary>The datapath's monitor aggregation (none, medium, maximum), for the status.</summary>
    string MonitorAggregation { get; }
}
