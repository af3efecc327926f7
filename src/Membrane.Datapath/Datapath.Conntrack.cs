using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Membrane.Datapath.Conntrack;
using Membrane.Linux;
using Membrane.Linux.Bpf;
using Membrane.Packets;

namespace Membrane.Datapath;

/// <summary>Which of the two conntrack tables: ct4 (IPv4) or ct6 (IPv6).</summary>
public enum ConntrackFamily : byte
{
    /// <summary>The "ct4" map.</summary>
    IPv4 = 4,
    /// <summary>The "ct6" map.</summary>
    IPv6 = 6,
}

/// <summary>
/// One connection of a conntrack table, decoded: the tuple of its first packet (host byte
/// order), its state and counters, and its times both as CLOCK_MONOTONIC seconds (what the
/// kernel stores) and relative to <see cref="Now"/>, the second the table was read.
/// </summary>
public sealed record ConntrackEntry
{
    /// <summary>The table the entry is in.</summary>
    public required ConntrackFamily Family { get; init; }

    /// <summary>IPPROTO_* of the connection (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, …).</summary>
    public required byte Protocol { get; init; }

    /// <summary>The originator's address.</summary>
    public required IPAddress Source { get; init; }

    /// <summary>The originator's port; for ICMP echo the request's identifier (see <see cref="IcmpId"/>); 0 for port-less protocols.</summary>
    public required ushort SourcePort { get; init; }

    /// <summary>The responder's address.</summary>
    public required IPAddress Destination { get; init; }

    /// <summary>The responder's port; 0 for ICMP and port-less protocols.</summary>
    public required ushort DestinationPort { get; init; }

    /// <summary>The connection's state.</summary>
    public required CtState State { get; init; }

    /// <summary>The hook that saw the first packet.</summary>
    public required CtOrigin Origin { get; init; }

    /// <summary>Entry flags (reply seen).</summary>
    public required CtEntryFlags Flags { get; init; }

    /// <summary>The originator's security identity (0: not known).</summary>
    public required uint SourceIdentity { get; init; }

    /// <summary>Reverse-NAT index (0: none).</summary>
    public required ushort ReverseNatIndex { get; init; }

    /// <summary>Packets from the originator.</summary>
    public required ulong PacketsOriginal { get; init; }

    /// <summary>Bytes from the originator.</summary>
    public required ulong BytesOriginal { get; init; }

    /// <summary>Packets from the responder.</summary>
    public required ulong PacketsReply { get; init; }

    /// <summary>Bytes from the responder.</summary>
    public required ulong BytesReply { get; init; }

    /// <summary>TCP flags seen from the originator (FIN 0x01 … CWR 0x80).</summary>
    public required byte TcpFlagsOriginal { get; init; }

    /// <summary>TCP flags seen from the responder.</summary>
    public required byte TcpFlagsReply { get; init; }

    /// <summary>CLOCK_MONOTONIC second the entry was made.</summary>
    public required uint Created { get; init; }

    /// <summary>CLOCK_MONOTONIC second of the last packet counted.</summary>
    public required uint LastSeen { get; init; }

    /// <summary>CLOCK_MONOTONIC second after which the entry is expired.</summary>
    public required uint Lifetime { get; init; }

    /// <summary>CLOCK_MONOTONIC second the table was read.</summary>
    public required uint Now { get; init; }

    /// <summary>True once the responder has sent.</summary>
    public bool ReplySeen => (Flags & CtEntryFlags.ReplySeen) != 0;

    /// <summary>True for ICMP and ICMPv6 entries, whose key holds an echo identifier instead of ports.</summary>
    public bool IsIcmp => Protocol is IpProtocols.Icmp or IpProtocols.Icmpv6;

    /// <summary>The echo identifier of an ICMP entry (null for other protocols).</summary>
    public ushort? IcmpId => IsIcmp ? (SourcePort != 0 ? SourcePort : DestinationPort) : null;

    /// <summary>How long ago the entry was made.</summary>
    public TimeSpan Age => Seconds(Now, Created);

    /// <summary>How long ago its last packet was counted.</summary>
    public TimeSpan Idle => Seconds(Now, LastSeen);

    /// <summary>Time left before it expires; negative when it has expired and awaits garbage collection.</summary>
    public TimeSpan ExpiresIn => Seconds(Lifetime, Now);

    /// <summary>True when the datapath treats the entry as absent (the same test as ct_alive in bpf/lib/conntrack.h).</summary>
    public bool Expired => Datapath.IsExpired(Lifetime, Now);

    // Differences of u32 seconds, wrap-safe like the datapath's (__s32)(a - b).
    private static TimeSpan Seconds(uint later, uint earlier) => TimeSpan.FromSeconds((int)(later - earlier));

    internal static ConntrackEntry From(ConntrackFamily family, byte protocol, IPAddress source, ushort sport,
        IPAddress destination, ushort dport, in CtEntry e, uint now) => new()
        {
            Family = family,
            Protocol = protocol,
            Source = source,
            SourcePort = sport,
            Destination = destination,
            DestinationPort = dport,
            State = e.State,
            Origin = e.Origin,
            Flags = e.Flags,
            SourceIdentity = e.SourceIdentity,
            ReverseNatIndex = e.ReverseNatIndex,
            PacketsOriginal = e.PacketsOriginal,
            BytesOriginal = e.BytesOriginal,
            PacketsReply = e.PacketsReply,
            BytesReply = e.BytesReply,
            TcpFlagsOriginal = e.TcpFlagsOriginal,
            TcpFlagsReply = e.TcpFlagsReply,
            Created = e.Created,
            LastSeen = e.LastSeen,
            Lifetime = e.Lifetime,
            Now = now,
        };
}

/// <summary>
/// Which entries <see cref="Datapath.ListConntrack"/> returns; null members match anything.
/// </summary>
public sealed record ConntrackFilter
{
    /// <summary>Only this table.</summary>
    public ConntrackFamily? Family { get; init; }

    /// <summary>Only this IPPROTO_*.</summary>
    public byte? Protocol { get; init; }

    /// <summary>Only connections with this address at either end (an IPv4 address selects from ct4 only, an IPv6 one from ct6).</summary>
    public IPAddress? Address { get; init; }

    /// <summary>Only connections with this port at either end (the ICMP echo identifier counts as a port).</summary>
    public ushort? Port { get; init; }

    internal bool Wants(ConntrackFamily family) =>
        (Family is null || Family == family)
        && (Address is null || (Address.AddressFamily == AddressFamily.InterNetwork) == (family == ConntrackFamily.IPv4));

    internal bool Matches(byte protocol, ushort sport, ushort dport) =>
        (Protocol is null || Protocol == protocol) && (Port is null || Port == sport || Port == dport);
}

/// <summary>What one garbage collection did to one table.</summary>
/// <param name="Family">The table.</param>
/// <param name="Scanned">Entries read.</param>
/// <param name="Deleted">Expired entries removed.</param>
/// <param name="Alive">Entries left (scanned minus deleted).</param>
/// <param name="MaxEntries">The table's size.</param>
public readonly record struct ConntrackTableGc(ConntrackFamily Family, int Scanned, int Deleted, int Alive, int MaxEntries)
{
    /// <summary>How full the table is after the run: <see cref="Alive"/> / <see cref="MaxEntries"/>.</summary>
    public double Fill => MaxEntries == 0 ? 0 : (double)Alive / MaxEntries;

    /// <summary>The share of the table the run freed: <see cref="Deleted"/> / <see cref="MaxEntries"/>.</summary>
    public double DeleteRatio => MaxEntries == 0 ? 0 : (double)Deleted / MaxEntries;
}

/// <summary>The result of <see cref="Datapath.CollectConntrack"/>.</summary>
/// <param name="Now">The CLOCK_MONOTONIC second entries were judged by.</param>
/// <param name="Duration">How long the run took.</param>
/// <param name="Tables">ct4 then ct6.</param>
public sealed record ConntrackGcResult(uint Now, TimeSpan Duration, IReadOnlyList<ConntrackTableGc> Tables)
{
    /// <summary>Entries removed from both tables.</summary>
    public int Deleted => Tables.Sum(t => t.Deleted);

    /// <summary>Entries read from both tables.</summary>
    public int Scanned => Tables.Sum(t => t.Scanned);
}

public sealed partial class Datapath
{
    /// <summary>
    /// Elements per BPF_MAP_LOOKUP_BATCH call: 4096 × (40 + 56) bytes ≈ 400 KB for ct6, so a
    /// 1M-entry table takes ~256 syscalls. Hash maps are walked bucket by bucket and a batch
    /// never splits a bucket (kernel/bpf/hashtab.c __htab_map_lookup_and_delete_batch returns
    /// ENOSPC if one bucket holds more than the batch): buckets hold a handful of entries.
    /// </summary>
    private const int ConntrackBatch = 4096;

    /// <summary>
    /// The current second of CLOCK_MONOTONIC, the datapath's clock (bpf_ktime_get_coarse_ns() /
    /// 1e9 truncated to __u32, read once per tick and CPU, bpf/lib/conntrack.h ct_now; it
    /// trails by at most two ticks). On Linux <see cref="Stopwatch"/> reads CLOCK_MONOTONIC (System.Native
    /// SystemNative_GetTimestamp).
    /// </summary>
    public static uint ConntrackNow() => (uint)(Stopwatch.GetTimestamp() / Stopwatch.Frequency);

    /// <summary>
    /// True when an entry of <paramref name="lifetime"/> is expired at <paramref name="now"/>:
    /// the negation of ct_alive, (__s32)(lifetime - now) &gt;= 0, so that both sides agree also
    /// across the u32 wrap.
    /// </summary>
    public static bool IsExpired(uint lifetime, uint now) => (int)(lifetime - now) < 0;

    /// <summary>
    /// The entries of both conntrack tables (ct4 first) that <paramref name="filter"/> selects,
    /// expired ones included (they are what the next garbage collection removes). Read with
    /// batched lookups: an entry created or removed while the walk runs may or may not appear.
    /// </summary>
    public IReadOnlyList<ConntrackEntry> ListConntrack(ConntrackFilter? filter = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        filter ??= new ConntrackFilter();
        var now = ConntrackNow();
        var list = new List<ConntrackEntry>();
        if (filter.Wants(ConntrackFamily.IPv4))
        {
            var address = filter.Address;
            Walk(Conntrack4, (in CtKey4 k, in CtEntry e) =>
            {
                if (!filter.Matches(k.Protocol, k.SourcePort, k.DestinationPort))
                {
                    return;
                }
                var source = new IPAddress(k.SourceAddress); // the uint holds the wire bytes
                var destination = new IPAddress(k.DestinationAddress);
                if (address is null || address.Equals(source) || address.Equals(destination))
                {
                    list.Add(ConntrackEntry.From(ConntrackFamily.IPv4, k.Protocol, source, k.SourcePort, destination, k.DestinationPort, e, now));
                }
            });
        }
        if (filter.Wants(ConntrackFamily.IPv6))
        {
            var address = filter.Address;
            Walk(Conntrack6, (in CtKey6 k, in CtEntry e) =>
            {
                if (!filter.Matches(k.Protocol, k.SourcePort, k.DestinationPort))
                {
                    return;
                }
                ReadOnlySpan<byte> saddr = k.SourceAddress, daddr = k.DestinationAddress;
                var source = new IPAddress(saddr);
                var destination = new IPAddress(daddr);
                if (address is null || address.Equals(source) || address.Equals(destination))
                {
                    list.Add(ConntrackEntry.From(ConntrackFamily.IPv6, k.Protocol, source, k.SourcePort, destination, k.DestinationPort, e, now));
                }
            });
        }
        return list;
    }

    /// <summary>
    /// Deletes every entry of both conntrack tables; returns how many were removed. Connections
    /// carry on: their next packet is classified afresh (TCP mid-stream by its ACK, like
    /// nf_conntrack_tcp_loose), so a flush never cuts an established connection.
    /// </summary>
    public int FlushConntrack()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return Sweep(Conntrack4, static (in CtEntry _, uint _) => true, 0).Deleted
            + Sweep(Conntrack6, static (in CtEntry _, uint _) => true, 0).Deleted;
    }

    /// <summary>
    /// Removes the expired entries (lifetime before <paramref name="now"/>, default the current
    /// CLOCK_MONOTONIC second) of both tables, in one batched walk per table: read a batch,
    /// delete its expired keys in one BPF_MAP_DELETE_BATCH, go on. Deleting entries of buckets
    /// the walk has passed does not disturb it (the cursor is a bucket index).
    /// </summary>
    /// <remarks>
    /// Cost is the kernel's: on the 2-core test VM a 2^20-entry ct4 holding 1M entries takes
    /// ~0.5 s when half of them expired (walking 2^20 buckets ~0.17 s, each delete ~0.7 µs);
    /// batches of 1024 to 16384 elements make no difference, nor did overlapping the deletes
    /// with the walk on a second thread.
    /// A connection whose expired entry the datapath re-creates between the read and the
    /// delete loses the new entry; its next packet creates it again (as after a flush). Cilium's
    /// GC has the same window.
    /// </remarks>
    public ConntrackGcResult CollectConntrack(uint? now = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var started = Stopwatch.GetTimestamp();
        var at = now ?? ConntrackNow();
        var v4 = Sweep(Conntrack4, static (in CtEntry e, uint t) => IsExpired(e.Lifetime, t), at);
        var v6 = Sweep(Conntrack6, static (in CtEntry e, uint t) => IsExpired(e.Lifetime, t), at);
        return new ConntrackGcResult(at, Stopwatch.GetElapsedTime(started),
        [
            new ConntrackTableGc(ConntrackFamily.IPv4, v4.Scanned, v4.Deleted, v4.Scanned - v4.Deleted, Conntrack4.Map.MaxEntries),
            new ConntrackTableGc(ConntrackFamily.IPv6, v6.Scanned, v6.Deleted, v6.Scanned - v6.Deleted, Conntrack6.Map.MaxEntries),
        ]);
    }

    private delegate void EntryVisitor<TKey>(in TKey key, in CtEntry entry);

    private delegate bool EntryPredicate(in CtEntry entry, uint now);

    private static void Walk<TKey>(BpfMap<TKey, CtEntry> map, EntryVisitor<TKey> visit) where TKey : unmanaged
    {
        var keys = ArrayPool<TKey>.Shared.Rent(ConntrackBatch);
        var values = ArrayPool<CtEntry>.Shared.Rent(ConntrackBatch);
        try
        {
            var cursor = map.CreateBatchCursor();
            while (!cursor.IsDone)
            {
                var n = map.LookupBatch(cursor, keys.AsSpan(0, ConntrackBatch), values.AsSpan(0, ConntrackBatch));
                for (var i = 0; i < n; i++)
                {
                    visit(keys[i], values[i]);
                }
            }
        }
        finally
        {
            ArrayPool<TKey>.Shared.Return(keys);
            ArrayPool<CtEntry>.Shared.Return(values);
        }
    }

    /// <summary>Deletes the entries <paramref name="doomed"/> picks; returns (scanned, deleted).</summary>
    private static (int Scanned, int Deleted) Sweep<TKey>(BpfMap<TKey, CtEntry> map, EntryPredicate doomed, uint now) where TKey : unmanaged
    {
        var keys = ArrayPool<TKey>.Shared.Rent(ConntrackBatch);
        var values = ArrayPool<CtEntry>.Shared.Rent(ConntrackBatch);
        int scanned = 0, deleted = 0;
        try
        {
            var cursor = map.CreateBatchCursor();
            while (!cursor.IsDone)
            {
                var n = map.LookupBatch(cursor, keys.AsSpan(0, ConntrackBatch), values.AsSpan(0, ConntrackBatch));
                scanned += n;
                var doomedCount = 0;
                for (var i = 0; i < n; i++)
                {
                    if (doomed(values[i], now))
                    {
                        keys[doomedCount++] = keys[i]; // compact in place: doomedCount <= i
                    }
                }
                if (doomedCount > 0)
                {
                    deleted += DeleteKeys(map, keys.AsSpan(0, doomedCount));
                }
            }
        }
        finally
        {
            ArrayPool<TKey>.Shared.Return(keys);
            ArrayPool<CtEntry>.Shared.Return(values);
        }
        return (scanned, deleted);
    }

    /// <summary>
    /// Deletes <paramref name="keys"/> with one BPF_MAP_DELETE_BATCH. The kernel stops at the
    /// first key that is gone (generic_map_delete_batch: ENOENT), which happens when the
    /// datapath removed it meanwhile (a reopened connection) or the LRU evicted it; then the
    /// keys are deleted one by one, and those the failed batch had already removed before it
    /// stopped are not counted (Membrane.Linux's DeleteBatch reports its partial count only in
    /// the exception's message).
    /// </summary>
    private static int DeleteKeys<TKey>(BpfMap<TKey, CtEntry> map, ReadOnlySpan<TKey> keys) where TKey : unmanaged
    {
        try
        {
            return map.DeleteBatch(keys);
        }
        catch (BpfException e) when (e.Errno == Errno.ENOENT)
        {
            var deleted = 0;
            foreach (ref readonly var key in keys)
            {
                if (map.Delete(key))
                {
                    deleted++;
                }
            }
            return deleted;
        }
    }
}
