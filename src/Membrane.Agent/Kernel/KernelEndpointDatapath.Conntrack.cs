using Membrane.Agent.Conntrack;
using Membrane.Datapath;
using Membrane.Datapath.Conntrack;

namespace Membrane.Agent.Kernel;

public sealed partial class KernelEndpointDatapath : IConntrackDatapath
{
    /// <summary>
    /// The size of the conntrack tables in use: an adopted datapath keeps the size it was
    /// made with, whatever --ct-max-entries says now.
    /// </summary>
    public int ConntrackMaxEntries => _datapath.Conntrack4.Map.MaxEntries;

    // The table walks are blocking syscalls (a 1M-entry table takes a noticeable while): off the request thread.

    /// <inheritdoc/>
    public Task<IReadOnlyList<ConntrackEntry>> ListConntrackAsync(ConntrackFilter filter, CancellationToken ct) =>
        Task.Run(() => _datapath.ListConntrack(filter), ct);

    /// <inheritdoc/>
    public Task<int> FlushConntrackAsync(CancellationToken ct) => Task.Run(_datapath.FlushConntrack, ct);

    /// <inheritdoc/>
    public Task<ConntrackGcResult> CollectConntrackAsync(CancellationToken ct) => Task.Run(() => _datapath.CollectConntrack(), ct);

    /// <inheritdoc/>
    public Task<ConntrackTimeouts> ReadConntrackTimeoutsAsync(CancellationToken ct)
    {
        // 0 in ct_config means the datapath's built-in default (bpf/lib/conntrack.h ct_timeout),
        // which ConntrackTimeouts' defaults are.
        var defaults = new ConntrackTimeouts();
        var config = _datapath.ConntrackConfig.TryLookup(0, out var c) ? c : default;
        static TimeSpan Or(uint seconds, TimeSpan fallback) => seconds == 0 ? fallback : TimeSpan.FromSeconds(seconds);
        return Task.FromResult(new ConntrackTimeouts
        {
            TcpSyn = Or(config.TcpSyn, defaults.TcpSyn),
            TcpEstablished = Or(config.TcpEstablished, defaults.TcpEstablished),
            TcpClose = Or(config.TcpClose, defaults.TcpClose),
            Other = Or(config.Other, defaults.Other),
        });
    }
}
