using System.Collections.Concurrent;
using System.Net;
using Membrane.Agent.Conntrack;
using Membrane.Datapath;
using Membrane.Datapath.Conntrack;

namespace Membrane.Agent.Tests;

/// <summary>
/// A test double of the conntrack tables: returns the entries it is given, scripted GC
/// results in order (then quiet ones), and records the filters it was asked for.
/// </summary>
public sealed class FakeConntrackDatapath : IConntrackDatapath
{
    public const int TableSize = 1000;

    /// <summary>The "tables".</summary>
    public List<ConntrackEntry> Entries { get; } = [];

    /// <summary>Results the next collections return, in order; when empty, a run over <see cref="Entries"/> that deletes nothing.</summary>
    public ConcurrentQueue<ConntrackGcResult> Results { get; } = new();

    /// <summary>When set, collections throw it.</summary>
    public Exception? FailCollect { get; set; }

    /// <summary>Every filter ListConntrackAsync got.</summary>
    public ConcurrentQueue<ConntrackFilter> Filters { get; } = new();

    public int Collections;

    public ConntrackTimeouts Timeouts { get; set; } = new();

    public Task<IReadOnlyList<ConntrackEntry>> ListConntrackAsync(ConntrackFilter filter, CancellationToken ct)
    {
        Filters.Enqueue(filter);
        lock (Entries)
        {
            return Task.FromResult<IReadOnlyList<ConntrackEntry>>([.. Entries]);
        }
    }

    public Task<int> FlushConntrackAsync(CancellationToken ct)
    {
        lock (Entries)
        {
            var n = Entries.Count;
            Entries.Clear();
            return Task.FromResult(n);
        }
    }

    public Task<ConntrackGcResult> CollectConntrackAsync(CancellationToken ct)
    {
        Interlocked.Increment(ref Collections);
        if (FailCollect is { } failure)
        {
            return Task.FromException<ConntrackGcResult>(failure);
        }
        if (Results.TryDequeue(out var scripted))
        {
            return Task.FromResult(scripted);
        }
        int v4, v6;
        lock (Entries)
        {
            v4 = Entries.Count(e => e.Family == ConntrackFamily.IPv4);
            v6 = Entries.Count - v4;
        }
        return Task.FromResult(Result(v4, 0, v6, 0));
    }

    public Task<ConntrackTimeouts> ReadConntrackTimeoutsAsync(CancellationToken ct) => Task.FromResult(Timeouts);

    /// <summary>A GC result: ct4 left with <paramref name="alive4"/> after deleting <paramref name="deleted4"/>, likewise ct6.</summary>
    public static ConntrackGcResult Result(int alive4, int deleted4, int alive6 = 0, int deleted6 = 0, double ms = 1.5) =>
        new(1000, TimeSpan.FromMilliseconds(ms),
        [
            new ConntrackTableGc(ConntrackFamily.IPv4, alive4 + deleted4, deleted4, alive4, TableSize),
            new ConntrackTableGc(ConntrackFamily.IPv6, alive6 + deleted6, deleted6, alive6, TableSize),
        ]);

    /// <summary>An entry read at second 1000.</summary>
    public static ConntrackEntry Entry(string src, ushort sport, string dst, ushort dport, byte proto,
        CtState state = CtState.Established, uint lifetime = 1060) => new()
        {
            Family = IPAddress.Parse(src).AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? ConntrackFamily.IPv4 : ConntrackFamily.IPv6,
            Protocol = proto,
            Source = IPAddress.Parse(src),
            SourcePort = sport,
            Destination = IPAddress.Parse(dst),
            DestinationPort = dport,
            State = state,
            Origin = CtOrigin.FromPod,
            Flags = CtEntryFlags.ReplySeen,
            SourceIdentity = 256,
            ReverseNatIndex = 0,
            PacketsOriginal = 3,
            BytesOriginal = 180,
            PacketsReply = 2,
            BytesReply = 120,
            TcpFlagsOriginal = proto == 6 ? (byte)0x12 : (byte)0,
            TcpFlagsReply = proto == 6 ? (byte)0x13 : (byte)0,
            Created = 900,
            LastSeen = 990,
            Lifetime = lifetime,
            Now = 1000,
        };
}
