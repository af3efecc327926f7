using System.Runtime.CompilerServices;
using Membrane.Agent.Flows;
using Membrane.Linux.Bpf;

namespace Membrane.Agent.Kernel;

public sealed partial class KernelEndpointDatapath : IFlowDatapath
{
    /// <inheritdoc/>
    public IEventSource OpenEvents(int slots) => new RingBufferEventSource(_datapath, _datapath.OpenEvents(slots));

    /// <inheritdoc/>
    public string MonitorAggregation => _datapath.MonitorAggregation.ToString().ToLowerInvariant();

    /// <summary>The datapath's ring buffer and its lost-record counter (per CPU, in event_state).</summary>
    private sealed class RingBufferEventSource(Datapath.Datapath datapath, BpfRingBufferReader reader) : IEventSource
    {
        public async IAsyncEnumerable<ReadOnlyMemory<byte>> ReadAllAsync([EnumeratorCancellation] CancellationToken ct)
        {
            await foreach (var record in reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                yield return record.Memory;
            }
        }

        public ulong LostInKernel => datapath.ReadEventsLost();

        public ulong LostInReader => (ulong)reader.RecordsLost;

        public void Dispose() => reader.Dispose();
    }
}
