using System.Net;
using System.Net.NetworkInformation;
using Membrane.Agent.Conntrack;
using Membrane.Agent.Endpoints;
using Membrane.Api;
using Membrane.Datapath;
using Membrane.Linux.Bpf;

namespace Membrane.Agent.Kernel;

/// <summary>
/// The agent's datapath on the real kernel: the shared from-pod program and its pinned maps
/// (<see cref="Datapath.Datapath"/>, adopted from bpffs when an earlier agent left them) and
/// the per-endpoint veth, addresses, routes and tcx links (<see cref="EndpointPlumber"/>), in
/// the namespace the agent runs in.
/// </summary>
public sealed partial class KernelEndpointDatapath : IEndpointDatapath, IDisposable
{
    private readonly Datapath.Datapath _datapath;
    private readonly EndpointPlumber _plumber;
    // Serialises the read-modify-write of an endpoint entry (SetIdentity, SetPolicyFlags).
    private readonly Lock _entryLock = new();

    private KernelEndpointDatapath(Datapath.Datapath datapath, EndpointPlumber plumber)
    {
        _datapath = datapath;
        _plumber = plumber;
    }

    /// <summary>
    /// Loads (or adopts) the datapath for <paramref name="nodeName"/> and prepares the node:
    /// unreachable routes for the pod CIDRs, forwarding on. <paramref name="conntrack"/> sizes
    /// the conntrack tables of a new datapath and sets the lifetimes of any;
    /// <paramref name="monitorAggregation"/> says which forwarded packets are traced;
    /// <paramref name="podGsoMaxSize"/> is the GSO/GRO limit of new pod veths (BIG TCP above 65,536).
    /// </summary>
    public static KernelEndpointDatapath Open(string nodeName, IReadOnlyList<IPNetwork> podCidrs, string? pinRoot = null, ConntrackSettings? conntrack = null,
        Datapath.MonitorAggregation monitorAggregation = Datapath.MonitorAggregation.Medium, int podGsoMaxSize = EndpointPlumber.DefaultGsoMaxSize)
    {
        conntrack ??= new ConntrackSettings();
        var options = new DatapathOptions
        {
            NodeName = nodeName,
            PinRoot = pinRoot ?? DatapathOptions.DefaultPinRoot,
            ConntrackMaxEntries = conntrack.MaxEntries,
            ConntrackTimeouts = conntrack.Timeouts,
            MonitorAggregation = monitorAggregation,
        };
        if (options.PinRoot.StartsWith(BpfFs.DefaultRoot + "/", StringComparison.Ordinal) && !BpfFs.IsBpfFs(BpfFs.DefaultRoot))
        {
            // As Cilium's agent does: a node whose bpffs is not mounted gets it mounted, since
            // pins outside bpffs are impossible and without pins pods lose their datapath with
            // the agent.
            BpfFs.Mount(BpfFs.DefaultRoot);
        }
        Directory.CreateDirectory(options.PinRoot);
        var datapath = Datapath.Datapath.Open(options);
        EndpointPlumber? plumber = null;
        try
        {
            plumber = new EndpointPlumber(datapath, gsoMaxSize: podGsoMaxSize);
            plumber.PrepareNode(podCidrs);
            return new KernelEndpointDatapath(datapath, plumber);
        }
        catch
        {
            plumber?.Dispose();
            datapath.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public string Description =>
        $"tcx programs {Datapath.Datapath.ProgramName} (ingress) and {Datapath.Datapath.ToPodProgramName} (egress) ({(_datapath.Adopted ? "adopted from pinned state" : "loaded")}{(_datapath.IsStale ? ", pinned program differs from bin/bpf: restart pods to update" : "")}); pod veths: GSO/GRO up to {_plumber.GsoMaxSize} bytes{(_plumber.GsoMaxSize > EndpointPlumber.LegacyGsoMaxSize ? " (BIG TCP)" : "")}";

    /// <inheritdoc/>
    public string PinPath => _datapath.PinDirectory;

    /// <inheritdoc/>
    public Task<DatapathEndpoint> CreateAsync(EndpointSpec spec, CancellationToken ct) =>
        // The plumber blocks on netlink and namespace threads; keep it off the request thread.
        Task.Run(() =>
        {
            var plumbed = _plumber.Add(ToRequest(spec));
            return new DatapathEndpoint(plumbed.HostInterface, plumbed.HostIfindex, FormatMac(plumbed.HostMac), FormatMac(plumbed.PodMac));
        }, ct);

    /// <inheritdoc/>
    public Task DeleteAsync(EndpointSpec spec, CancellationToken ct) => Task.Run(() => _plumber.Delete(ToRequest(spec)), ct);

    /// <inheritdoc/>
    public Task<bool> HostInterfaceExistsAsync(EndpointSpec spec, CancellationToken ct) =>
        Task.Run(() => _plumber.HostInterfaceExists(spec.HostInterface), ct);

    /// <inheritdoc/>
    public Task<IReadOnlyList<string>> CheckAsync(EndpointSpec spec, DatapathEndpoint current, CancellationToken ct) =>
        Task.Run(() => _plumber.Check(ToRequest(spec)), ct);

    /// <inheritdoc/>
    public uint SetIdentity(DatapathEndpoint current, uint identity)
    {
        lock (_entryLock)
        {
            return SetIdentityLocked(current, identity);
        }
    }

    private uint SetIdentityLocked(DatapathEndpoint current, uint identity)
    {
        if (!_datapath.TryGetEndpoint(current.HostIfIndex, out var entry))
        {
            throw new AgentException(ErrorCodes.KernelFailure,
                $"failed to set the identity of {current.HostInterface}: the endpoint map has no entry for ifindex {current.HostIfIndex}");
        }
        // Only the identity changes: addresses and MACs stay as the kernel holds them.
        try
        {
            _datapath.UpsertEndpoint(entry with { Identity = identity });
        }
        catch (Exception e) when (e is not AgentException)
        {
            // UpsertEndpoint writes the address entries before the ifindex entry: a failure can
            // leave some of them new. Put the old entry back everywhere (same addresses, so
            // nothing is deleted) before reporting.
            try
            {
                _datapath.UpsertEndpoint(entry);
            }
            catch (Exception undo) when (undo is not AgentException)
            {
                throw new AgentException(ErrorCodes.KernelFailure,
                    $"failed to set the identity of {current.HostInterface} to {identity}: {e.Message} (and restoring identity {entry.Identity} failed: {undo.Message})",
                    e.GetType().Name, e);
            }
            throw new AgentException(ErrorCodes.KernelFailure,
                $"failed to set the identity of {current.HostInterface} to {identity}: {e.Message}", e.GetType().Name, e);
        }
        return entry.Identity;
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<BpfEndpointEntry>> ListMapEndpointsAsync(CancellationToken ct) =>
        Task.FromResult<IReadOnlyList<BpfEndpointEntry>>([.. _datapath.ListEndpoints().Select(e => new BpfEndpointEntry
        {
            IfIndex = e.Ifindex,
            Ipv4 = e.Ipv4?.ToString(),
            Ipv6 = e.Ipv6?.ToString(),
            Mac = FormatMac(e.PodMac),
            HostMac = FormatMac(e.HostMac),
            Identity = e.Identity,
        })]);

    /// <inheritdoc/>
    public Task<IReadOnlyList<BpfMetricEntry>> ReadMetricsAsync(CancellationToken ct) =>
        // The map is keyed finer (L3, L4 protocol); operators read it by reason and direction.
        Task.FromResult<IReadOnlyList<BpfMetricEntry>>([.. _datapath.ReadMetricsByReason().Select(m => new BpfMetricEntry
        {
            Reason = m.ReasonName,
            ReasonCode = m.Reason,
            Direction = m.Direction.ToString().ToLowerInvariant(),
            Packets = m.Packets,
            Bytes = m.Bytes,
        })]);

    private static EndpointRequest ToRequest(EndpointSpec spec) => new()
    {
        ContainerId = spec.ContainerId,
        IfName = spec.IfName,
        NetNsPath = spec.NetNs,
        HostInterface = spec.HostInterface,
        Mtu = spec.Mtu,
        Identity = spec.Identity,
        Addresses = [.. spec.Addresses.Select(a => new PodAddress(a.Address, a.Gateway))],
        // The policy manager writes the endpoint's policy right after; until then (or if
        // that write fails) the pod is closed rather than open.
        PolicyClosedUntilWritten = true,
    };

    /// <summary>"02:42:ac:11:00:02", as ip(8) and Kubernetes print MACs.</summary>
    private static string FormatMac(PhysicalAddress mac) =>
        string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>Closes the agent's handles; pins, links and maps stay so that pods keep forwarding.</summary>
    public void Dispose()
    {
        _plumber.Dispose();
        _datapath.Dispose();
    }
}
