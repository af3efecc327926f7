using Membrane.Datapath;
using Membrane.Datapath.Conntrack;

namespace Membrane.Agent.Conntrack;

/// <summary>
/// The datapath's conntrack tables as the agent uses them: read, flush, collect expired
/// entries. Implemented over the kernel maps by <c>Kernel/KernelEndpointDatapath</c>; the
/// agent's garbage collector (<see cref="ConntrackCollector"/>) and the /v1/bpf/ct routes sit
/// on top. Any exception other than <see cref="AgentException"/> is reported as a kernel failure.
/// </summary>
public interface IConntrackDatapath
{
    /// <summary>The entries <paramref name="filter"/> selects, expired ones included.</summary>
    Task<IReadOnlyList<ConntrackEntry>> ListConntrackAsync(ConntrackFilter filter, CancellationToken ct);

    /// <summary>Deletes every entry; returns how many were removed.</summary>
    Task<int> FlushConntrackAsync(CancellationToken ct);

    /// <summary>Deletes the expired entries; returns what each table held and lost.</summary>
    Task<ConntrackGcResult> CollectConntrackAsync(CancellationToken ct);

    /// <summary>The lifetimes the datapath applies (its defaults where none was configured).</summary>
    Task<ConntrackTimeouts> ReadConntrackTimeoutsAsync(CancellationToken ct);
}
