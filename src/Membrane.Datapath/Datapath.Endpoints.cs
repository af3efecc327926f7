using System.Net;
using Membrane.Linux;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;

namespace Membrane.Datapath;

public sealed partial class Datapath
{
    /// <summary>
    /// Writes an endpoint: the address prefixes widened to hold its addresses, then the
    /// endpoint under each of its addresses, then under its ifindex (hash, then its slot), so
    /// that by the time the program can see the source entry every destination lookup for the
    /// endpoint already answers. Replaces an existing entry of the same ifindex; addresses it
    /// had and <paramref name="entry"/> lacks are removed. The prefixes are not narrowed again
    /// when addresses go (a wider prefix costs a lookup, never a wrong answer); a freshly
    /// loaded datapath starts from none.
    /// </summary>
    public void UpsertEndpoint(EndpointEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var info = entry.ToInfo();
        lock (_endpointLock)
        {
            var previous = TryGetEndpoint(entry.Ifindex, out var old) ? old : null;
            var prefix = EndpointPrefixes.TryLookup(0, out var p) ? p : default;
            var uncovered = entry.Addresses.Where(a => !prefix.Covers(a)).ToArray();
            if (uncovered.Length > 0)
            {
                // The masks first, over the old networks, then the networks: whatever mix of old
                // and new bytes a packet reads meanwhile still holds every endpoint already written
                // (bpf/lib/endpoint.h, endpoint_prefix).
                var widened = uncovered.Aggregate(prefix, (current, address) => current.Widen(address));
                EndpointPrefixes.Update(0, widened.WithNetworksOf(prefix));
                EndpointPrefixes.Update(0, widened);
            }
            foreach (var address in entry.Addresses)
            {
                EndpointsByIp.Update(EndpointIpKey.For(address), info);
            }
            Endpoints.Update((uint)entry.Ifindex, info);
            // An array has every slot: it is free, ours already, or held by an endpoint that may be gone.
            var slot = SlotOf(entry.Ifindex);
            var holder = EndpointSlots[slot].Ifindex;
            if (holder == 0 || holder == info.Ifindex || !Endpoints.TryLookup(holder, out _))
            {
                EndpointSlots.Update(slot, info);
            }
            if (previous is not null)
            {
                foreach (var stale in previous.Addresses.Except(entry.Addresses))
                {
                    DeleteAddressIfOwned(stale, entry.Ifindex);
                }
            }
        }
    }

    /// <summary>
    /// Removes the endpoint of <paramref name="ifindex"/>: its slot and ifindex entries first
    /// (its device stops forwarding), then its addresses, unless another endpoint owns them by
    /// now. False when there was no entry.
    /// </summary>
    public bool DeleteEndpoint(int ifindex)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        lock (_endpointLock)
        {
            if (!TryGetEndpoint(ifindex, out var entry))
            {
                return false;
            }
            var slot = SlotOf(ifindex);
            if (EndpointSlots[slot].Ifindex == (uint)ifindex)
            {
                EndpointSlots.Update(slot, default);
            }
            Endpoints.Delete((uint)ifindex);
            foreach (var address in entry.Addresses)
            {
                DeleteAddressIfOwned(address, ifindex);
            }
            return true;
        }
    }

    /// <summary>The endpoint_slots index of <paramref name="ifindex"/> (ENDPOINT_SLOTS in bpf/lib/endpoint.h).</summary>
    private static uint SlotOf(int ifindex) => (uint)ifindex % EndpointSlotCount;

    private const uint EndpointSlotCount = 65_536;

    private readonly Lock _endpointLock = new();

    /// <summary>
    /// Removes the endpoint that owns <paramref name="address"/> (for a DEL whose veth, and
    /// with it the ifindex, is already gone). False when no endpoint has the address.
    /// </summary>
    public bool DeleteEndpointByAddress(IPAddress address)
    {
        if (!TryGetEndpointByAddress(address, out var entry))
        {
            return false;
        }
        if (!DeleteEndpoint(entry.Ifindex))
        {
            DeleteAddressIfOwned(address, entry.Ifindex); // an address entry without its ifindex entry
        }
        return true;
    }

    private void DeleteAddressIfOwned(IPAddress address, int ifindex)
    {
        var key = EndpointIpKey.For(address);
        if (EndpointsByIp.TryLookup(key, out var owner) && owner.Ifindex == (uint)ifindex)
        {
            EndpointsByIp.Delete(key);
        }
    }

    /// <summary>Reads the endpoint of <paramref name="ifindex"/>.</summary>
    public bool TryGetEndpoint(int ifindex, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out EndpointEntry? entry)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        entry = Endpoints.TryLookup((uint)ifindex, out var info) ? EndpointEntry.FromInfo(info) : null;
        return entry is not null;
    }

    /// <summary>Reads the endpoint that owns <paramref name="address"/>.</summary>
    public bool TryGetEndpointByAddress(IPAddress address, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out EndpointEntry? entry)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        entry = EndpointsByIp.TryLookup(EndpointIpKey.For(address), out var info) ? EndpointEntry.FromInfo(info) : null;
        return entry is not null;
    }

    /// <summary>Every endpoint in the ifindex map.</summary>
    public IReadOnlyList<EndpointEntry> ListEndpoints()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var list = new List<EndpointEntry>();
        foreach (var ifindex in Endpoints.Keys.ToArray())
        {
            if (Endpoints.TryLookup(ifindex, out var info))
            {
                list.Add(EndpointEntry.FromInfo(info));
            }
        }
        return list;
    }

    /// <summary>The metrics array's non-zero slots, each summed over every possible CPU (read in batches).</summary>
    public IReadOnlyList<DatapathMetric> ReadMetrics()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        const int batch = 1024;
        var cpus = Metrics.CpuCount;
        var slots = new uint[batch];
        var perCpu = new MetricsValue[batch * cpus];
        var list = new List<DatapathMetric>();
        var cursor = Metrics.CreateBatchCursor();
        int n;
        while ((n = Metrics.LookupBatch(cursor, slots, perCpu)) > 0)
        {
            for (var i = 0; i < n; i++)
            {
                ulong packets = 0, bytes = 0;
                foreach (var v in perCpu.AsSpan(i * cpus, cpus))
                {
                    packets += v.Packets;
                    bytes += v.Bytes;
                }
                if (packets != 0)
                {
                    var key = MetricsKey.FromSlot(slots[i]);
                    list.Add(new DatapathMetric(key.Reason, key.Direction, key.L3, key.L4Protocol, packets, bytes));
                }
            }
        }
        return list;
    }

    /// <summary>The metrics summed per {reason, direction} over protocols and CPUs (what <c>membrane bpf metrics</c> shows), ordered by reason.</summary>
    public IReadOnlyList<DatapathMetric> ReadMetricsByReason() =>
        ReadMetrics()
            .GroupBy(m => (m.Reason, m.Direction))
            .Select(g => new DatapathMetric(g.Key.Reason, g.Key.Direction, 0, 0,
                g.Aggregate(0ul, (s, m) => s + m.Packets), g.Aggregate(0ul, (s, m) => s + m.Bytes)))
            .OrderBy(m => m.Reason).ThenBy(m => m.Direction)
            .ToArray();

    /// <summary>Packets counted for <paramref name="reason"/> (all directions and protocols).</summary>
    public ulong PacketsFor(int reason) => ReadMetrics().Where(m => m.Reason == reason).Aggregate(0ul, (s, m) => s + m.Packets);

    /// <summary>Where <see cref="AttachEndpoint"/> pins the link of the host-side veth <paramref name="hostInterface"/>.</summary>
    public string LinkPinPath(string hostInterface)
    {
        ArgumentException.ThrowIfNullOrEmpty(hostInterface);
        if (hostInterface.Contains('/') || hostInterface is "." or "..")
        {
            throw new ArgumentException($"invalid interface name '{hostInterface}'", nameof(hostInterface));
        }
        return Path.Combine(PinDirectory, LinksDirectory, hostInterface);
    }

    /// <summary>
    /// Attaches from_pod to the tcx ingress and to_pod to the tcx egress of
    /// <paramref name="ifindex"/> (the host side of a pod's veth, in the calling thread's
    /// namespace), with links pinned at <paramref name="pinPath"/> and
    /// <c>&lt;pinPath&gt;:to_pod</c> (':' cannot occur in an interface name). A pin that
    /// already holds a link attached to that device is adopted; a pin whose link is not
    /// attached there (its device is gone) is replaced. If the second attach fails, the
    /// first is undone.
    /// </summary>
    public EndpointAttachment AttachEndpoint(int ifindex, string pinPath)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentException.ThrowIfNullOrEmpty(pinPath);
        Directory.CreateDirectory(Path.GetDirectoryName(pinPath)!);
        var ingress = AttachOne(Program, ifindex, TcDirection.Ingress, pinPath);
        try
        {
            var egress = AttachOne(ToPodProgram, ifindex, TcDirection.Egress, ToPodPinPath(pinPath));
            return new EndpointAttachment(ingress.LinkId, ingress.ProgramId, ingress.Adopted && egress.Adopted, egress.LinkId);
        }
        catch
        {
            if (!ingress.Adopted)
            {
                DetachOne(pinPath);
            }
            throw;
        }
    }

    private static (uint LinkId, uint ProgramId, bool Adopted) AttachOne(BpfProgram program, int ifindex, TcDirection direction, string pinPath)
    {
        if (File.Exists(pinPath))
        {
            using (var existing = BpfLink.OpenPinned(pinPath))
            {
                if (IsLinkOn(ifindex, direction, existing.Id))
                {
                    return (existing.Id, existing.ProgramId, true);
                }
            }
            BpfFs.Unpin(pinPath);
        }
        using var link = BpfLink.AttachTcx(program, ifindex, direction);
        link.Pin(pinPath);
        return (link.Id, link.ProgramId, false);
    }

    /// <summary>Where <see cref="AttachEndpoint"/> pins the to_pod link beside the from_pod one at <paramref name="pinPath"/>.</summary>
    internal static string ToPodPinPath(string pinPath) => pinPath + ":" + ToPodProgramName;

    /// <summary>True when both links of <paramref name="pinPath"/> are attached to <paramref name="ifindex"/> (calling thread's namespace).</summary>
    public bool IsAttached(int ifindex, string pinPath)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return IsPinnedLinkOn(ifindex, TcDirection.Ingress, pinPath) && IsPinnedLinkOn(ifindex, TcDirection.Egress, ToPodPinPath(pinPath));
    }

    private static bool IsPinnedLinkOn(int ifindex, TcDirection direction, string pinPath)
    {
        if (!File.Exists(pinPath))
        {
            return false;
        }
        using var link = BpfLink.OpenPinned(pinPath);
        return IsLinkOn(ifindex, direction, link.Id);
    }

    /// <summary>
    /// Detaches the programs from the device of the links pinned at <paramref name="pinPath"/>
    /// (and its to_pod twin) at once (BPF_LINK_DETACH, even while another process still
    /// holds a link) and removes the pins. A link whose device is gone is simply unpinned.
    /// False when there was no pin.
    /// </summary>
    public static bool DetachEndpoint(string pinPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(pinPath);
        var egress = DetachOne(ToPodPinPath(pinPath));
        return DetachOne(pinPath) | egress;
    }

    private static bool DetachOne(string pinPath)
    {
        if (!File.Exists(pinPath))
        {
            return false;
        }
        using (var link = BpfLink.OpenPinned(pinPath))
        {
            link.Detach();
        }
        BpfFs.Unpin(pinPath);
        return true;
    }

    private static bool IsLinkOn(int ifindex, TcDirection direction, uint linkId)
    {
        try
        {
            return BpfAttachments.QueryTcx(ifindex, direction).Programs.Any(p => p.LinkId == linkId);
        }
        catch (BpfException e) when (e.Errno == Errno.ENODEV)
        {
            return false;
        }
    }
}
