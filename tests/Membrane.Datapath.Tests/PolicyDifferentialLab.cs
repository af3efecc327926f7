using System.Net;
using System.Net.NetworkInformation;
using Membrane.Linux.Bpf.Datapath;
using Membrane.Packets;
using Membrane.Policy.Model;

namespace Membrane.Datapath.Tests.Policy;

/// <summary>
/// The kernel side of the policy differential test: a private datapath (pins under
/// /sys/fs/bpf/ with the run prefix, removed on Dispose) holding a scenario's pods, their
/// resolved policy entries and the ipcache, written through the Datapath API as the agent
/// writes them, and a cell runner that sends the cell's first packet through from_pod or
/// to_pod with BPF_PROG_TEST_RUN.
/// </summary>
/// <remarks>
/// BPF_PROG_TEST_RUN runs a tc program on the loopback device (ifindex 1): from_pod takes its
/// sender, and to_pod its receiver, from the endpoint of ifindex 1. So every pod lives at its
/// own ifindex (<see cref="DiffPod.HomeIfindex"/>) with its entries there, and for the cells
/// a pod sends or receives through to_pod it is put on ifindex 1 (<see cref="Mount"/>): its
/// endpoint entry, resolved entries and enforcement flags are written under 1, exactly what
/// the agent writes for a pod on that veth. ReplacePolicy then turns the previous pod's
/// entries there into this pod's, so every mount also exercises its incremental update.
/// </remarks>
internal sealed class PolicyDifferentialLab : IDisposable
{
    private const int UnderTestIfindex = 1;
    private readonly DatapathTestScope _scope;
    private readonly PolicyDifferentialScenario _scenario;
    private const ushort FirstSourcePort = 10000;
    private ushort _nextPort = FirstSourcePort;
    private DiffPod? _mounted;
    private Dictionary<IPNetwork, uint> _ipcache = [];

    public PolicyDifferentialLab(PolicyDifferentialScenario scenario)
    {
        _scenario = scenario;
        _scope = new DatapathTestScope();
        try
        {
            Datapath = Datapath.Open(_scope.Options);
        }
        catch
        {
            _scope.Dispose();
            throw;
        }
    }

    public Datapath Datapath { get; }

    /// <summary>Writes every pod at its home ifindex and the ipcache, in the agent's order.</summary>
    public void WriteScenario()
    {
        foreach (var pod in _scenario.Pods)
        {
            WritePod(pod, pod.HomeIfindex);
        }
        WriteIpcache();
    }

    /// <summary>
    /// Makes the ipcache hold what the scenario wants, as the agent's WriteIpcache does:
    /// changed and new prefixes written (CIDR identities first, the node addresses over them),
    /// then prefixes no longer wanted removed.
    /// </summary>
    private void WriteIpcache()
    {
        var wanted = _scenario.Ipcache();
        foreach (var (prefix, identity) in wanted)
        {
            if (!_ipcache.TryGetValue(prefix, out var had) || had != identity)
            {
                Datapath.UpsertIpcache(prefix, identity);
            }
        }
        var now = wanted.ToDictionary(e => e.Prefix, e => e.Identity);
        foreach (var prefix in _ipcache.Keys.Where(p => !now.ContainsKey(p)))
        {
            Assert.True(Datapath.DeleteIpcache(prefix), $"failed to delete ipcache entry {prefix}: not there");
        }
        _ipcache = now;
    }

    /// <summary>
    /// Writes a policy update as the agent does: the ipcache, then for every pod whose map
    /// changed its whole map with ReplacePolicy (which writes only what differs) and then its
    /// flags, at its home and, for the pod on the test-run device, there too.
    /// </summary>
    public void ApplyUpdate(IReadOnlyList<DiffPod> changed)
    {
        // The connections of the first step go, so that source ports can be used again and
        // every cell of the next step is still a NEW connection.
        FlushConntrack();
        _nextPort = FirstSourcePort;
        WriteIpcache();
        foreach (var pod in changed)
        {
            WritePolicy(pod, pod.HomeIfindex);
            if (pod == _mounted)
            {
                WritePolicy(pod, UnderTestIfindex);
            }
        }
    }

    /// <summary>The pod on the test-run device, if any.</summary>
    public DiffPod? Mounted => _mounted;

    /// <summary>
    /// The agent's order for an endpoint: the CNI creates it closed (both directions enforced,
    /// no entries), then the policy's entries are written, then its enforcement flags.
    /// </summary>
    private void WritePod(DiffPod pod, int ifindex)
    {
        var entry = new EndpointEntry(ifindex, pod.Address, pod.Address6, PhysicalAddress.Parse(pod.Mac.ToString()),
            PhysicalAddress.Parse(pod.HostMac.ToString()), pod.Identity, IngressPolicy: true, EgressPolicy: true);
        Datapath.UpsertEndpoint(entry);
        WritePolicy(pod, ifindex);
    }

    /// <summary>The agent's WriteEndpoint: the entries first, then the flags.</summary>
    private void WritePolicy(DiffPod pod, int ifindex)
    {
        var entries = _scenario.KernelEntries(pod, ifindex, out var ingress, out var egress);
        Datapath.ReplacePolicy(ifindex, entries);
        Assert.True(Datapath.TryGetEndpoint(ifindex, out var entry), $"failed to set the flags of {pod.Name}: no endpoint at ifindex {ifindex}");
        Datapath.UpsertEndpoint(entry with { IngressPolicy = ingress, EgressPolicy = egress });
    }

    /// <summary>
    /// Puts <paramref name="pod"/> on the test-run device (see the type's remarks), and the
    /// pod that was there back at its home address entry (writing ifindex 1 with the new
    /// pod's addresses removed the old pod's).
    /// </summary>
    public void Mount(DiffPod pod)
    {
        if (pod == _mounted)
        {
            return;
        }
        WritePod(pod, UnderTestIfindex);
        if (_mounted is { } previous)
        {
            Assert.True(Datapath.TryGetEndpoint(previous.HomeIfindex, out var home), $"pod {previous.Name} has no home endpoint entry");
            Datapath.UpsertEndpoint(home);
        }
        _mounted = pod;
    }

    /// <summary>
    /// Runs the first packet of <paramref name="cell"/> (a TCP SYN, a UDP datagram or an ICMP
    /// echo request) and reads what happened from the tc verdict and the metrics counters of
    /// the cell's protocol. Every cell has a source port (echo identifier) no earlier cell of
    /// the scenario used, below every destination port probed above 8081, so conntrack sees a
    /// NEW connection that is no earlier cell's reply either: every cell is judged by policy.
    /// </summary>
    public (CellVerdict Verdict, string Detail) Run(DiffCell cell)
    {
        var before = Counts(cell.Family, cell.Protocol);
        var frame = Frame(cell, NextSourcePort());
        var program = cell.FromPod ? Datapath.Program : Datapath.ToPodProgram;
        var output = new byte[frame.Length + 128];
        var tc = program.TestRun(frame, output).ReturnValue;
        var after = Counts(cell.Family, cell.Protocol);
        var changed = s_counted.Where((_, i) => after[i] != before[i]).ToList();
        var detail = $"tc verdict {tc}, counted as {(changed.Count == 0 ? "nothing of forwarded/policy-denied/policy-deny" : string.Join(", ", changed.Select(r => DatapathReasons.Name((int)r))))}";
        CellVerdict verdict = (tc, changed) switch
        {
            (DatapathObjects.TcActOk or DatapathObjects.TcActRedirect, [DropReason.Forwarded]) => CellVerdict.Allowed,
            (DatapathObjects.TcActShot, [DropReason.PolicyDenied]) => CellVerdict.PolicyDenied,
            (DatapathObjects.TcActShot, [DropReason.PolicyDeny]) => CellVerdict.PolicyDeny,
            _ => CellVerdict.OtherDrop,
        };
        return (verdict, detail);
    }

    /// <summary>The reasons a cell can be counted under; any other outcome is <see cref="CellVerdict.OtherDrop"/>.</summary>
    private static readonly DropReason[] s_counted = [DropReason.Forwarded, DropReason.PolicyDenied, DropReason.PolicyDeny];

    private void FlushConntrack()
    {
        foreach (var key in Datapath.Conntrack4.Keys.ToArray())
        {
            Datapath.Conntrack4.Delete(key);
        }
        foreach (var key in Datapath.Conntrack6.Keys.ToArray())
        {
            Datapath.Conntrack6.Delete(key);
        }
    }

    private ushort NextSourcePort()
    {
        // 10000-29998: above every probed port up to 8081 and below 29999, the lowest above it.
        if (_nextPort > 29998)
        {
            throw new InvalidOperationException("failed to pick a fresh source port: the scenario has more than 19,999 cells");
        }
        return _nextPort++;
    }

    /// <summary>
    /// The packets counted for each of <see cref="s_counted"/>, this family and protocol,
    /// summed over directions and CPUs: a few lookups of single slots (metrics_slot in
    /// bpf/lib/maps.h) instead of reading the whole array for every cell.
    /// </summary>
    private ulong[] Counts(int family, byte protocol)
    {
        var perCpu = new MetricsValue[Datapath.Metrics.CpuCount];
        var counts = new ulong[s_counted.Length];
        for (var i = 0; i < s_counted.Length; i++)
        {
            foreach (var direction in new[] { Direction.Unknown, Direction.Ingress, Direction.Egress })
            {
                var slot = new MetricsKey { Reason = (byte)s_counted[i], Direction = direction, L3 = (byte)family, L4Protocol = protocol }.ToSlot();
                if (Datapath.Metrics.TryLookup(slot, perCpu))
                {
                    foreach (var v in perCpu)
                    {
                        counts[i] += v.Packets;
                    }
                }
            }
        }
        return counts;
    }

    private static byte[] Frame(DiffCell cell, ushort sourcePort)
    {
        var buffer = new byte[256];
        var b = new PacketBuilder(buffer);
        var pod = cell.UnderTest;
        // From a pod: pod MAC -> its host-side MAC. Toward a pod: the stack routed it and set
        // the host-side MAC as source and the pod's as destination.
        if (cell.FromPod)
        {
            b.Ethernet(pod.HostMac, pod.Mac);
        }
        else
        {
            b.Ethernet(pod.Mac, pod.HostMac);
        }
        if (cell.Family == 4)
        {
            b.Ipv4(Ipv4Address.Parse(cell.Source.Address.ToString()), Ipv4Address.Parse(cell.Destination.Address.ToString()));
        }
        else
        {
            b.Ipv6(Ipv6Address.Parse(cell.Source.Address6.ToString()), Ipv6Address.Parse(cell.Destination.Address6.ToString()));
        }
        switch (cell.Protocol)
        {
            case IpProtocol.Tcp:
                b.Tcp(sourcePort, (ushort)cell.Port, sequenceNumber: 1, flags: TcpFlags.Syn);
                break;
            case IpProtocol.Udp:
                b.Udp(sourcePort, (ushort)cell.Port);
                b.Payload(12, 0x33);
                break;
            case IpProtocol.Icmp when cell.Port == PolicyDifferentialScenario.EchoRequestType:
                b.Icmpv4Echo(request: true, identifier: sourcePort, sequenceNumber: 1);
                b.Payload(16, 0x11);
                break;
            case IpProtocol.IcmpV6 when cell.Port == PolicyDifferentialScenario.EchoRequestType6:
                b.Icmpv6Echo(request: true, identifier: sourcePort, sequenceNumber: 1);
                b.Payload(16, 0x11);
                break;
            default:
                throw new ArgumentException($"failed to build the frame of cell {cell}: no builder for it");
        }
        return buffer[..b.Finish()];
    }

    public void Dispose()
    {
        try
        {
            Datapath.Dispose();
        }
        finally
        {
            _scope.Dispose();
        }
    }
}
