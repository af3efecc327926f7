using Membrane.Agent.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Membrane.Policy.Identities;

namespace Membrane.Agent.Identities;

/// <summary>A numeric identity and what it stands for.</summary>
/// <param name="Id">The number (24 bits).</param>
/// <param name="Labels">The label set; empty for reserved identities.</param>
/// <param name="ReservedName">The reserved identity's name (<c>host</c>), or null for an allocated one.</param>
/// <param name="References">How many endpoints use it (always 0 for reserved ones).</param>
/// <param name="UnusedSince">Since when no endpoint uses it (null while in use, or reserved).</param>
public sealed record IdentityInfo(uint Id, LabelSet Labels, string? ReservedName, int References, DateTimeOffset? UnusedSince);

/// <summary>
/// Gives every distinct label set a stable numeric identity (DESIGN.md "Control plane"):
/// the same set always gets the same number while the number is held, numbers come from
/// [<see cref="ReservedIdentities.FirstAllocated"/>, <see cref="ReservedIdentities.Max"/>],
/// and they persist in the store.
/// </summary>
/// <remarks>
/// <para>Endpoints hold references: <see cref="Acquire"/> and <see cref="Release"/> run inside
/// the endpoint's store transaction, so the reference and the endpoint row commit or vanish
/// together. The counts themselves are not stored; they are recounted from the endpoints at
/// start, so they cannot drift from the rows they count.</para>
/// <para>An identity nobody uses is kept for a grace period before its number is freed (a pod
/// restarted with the same labels gets the same number back, and policy entries that still
/// name the number do not suddenly match a different set). <see cref="CollectUnused"/> frees the
/// expired ones; the agent calls it periodically. New numbers are handed out from a cursor
/// that moves forward, so a freed number is reused as late as possible (Cilium avoids quick
/// reuse for the same reason).</para>
/// </remarks>
public sealed class IdentityAllocator
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _byLabels = new(StringComparer.Ordinal);
    private readonly Dictionary<uint, Entry> _byId = [];
    private readonly AgentStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private uint _cursor = ReservedIdentities.FirstAllocated;

    private sealed class Entry(uint id, LabelSet labels, DateTimeOffset createdAt)
    {
        public uint Id { get; } = id;
        public LabelSet Labels { get; } = labels;
        public DateTimeOffset CreatedAt { get; } = createdAt;
        public int References { get; set; }
        public DateTimeOffset? UnusedSince { get; set; }
    }

    /// <summary>Loads the identities from <paramref name="store"/> and recounts their references.</summary>
    public IdentityAllocator(AgentStore store, TimeSpan gracePeriod, TimeProvider? time = null, ILogger<IdentityAllocator>? logger = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(gracePeriod, TimeSpan.Zero);
        _store = store;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger<IdentityAllocator>.Instance;
        GracePeriod = gracePeriod;
        Load();
    }

    /// <summary>How long an unused identity keeps its number.</summary>
    public TimeSpan GracePeriod { get; }

    /// <summary>
    /// Takes a reference on the identity of <paramref name="labels"/>, allocating a number when
    /// the set has none. Part of <paramref name="tx"/>: undone if it rolls back.
    /// </summary>
    /// <exception cref="AgentException">All 24-bit numbers are in use.</exception>
    public uint Acquire(StoreTransaction tx, LabelSet labels)
    {
        lock (_lock)
        {
            var key = labels.ToString();
            if (_byLabels.TryGetValue(key, out var entry))
            {
                var unusedSince = entry.UnusedSince;
                if (unusedSince is not null)
                {
                    tx.SetIdentityUnusedSince(entry.Id, null);
                }
                entry.References++;
                entry.UnusedSince = null;
                tx.OnRollback(() =>
                {
                    lock (_lock)
                    {
                        entry.References--;
                        entry.UnusedSince = unusedSince;
                    }
                });
                return entry.Id;
            }

            var id = NextFreeId();
            var now = _time.GetUtcNow();
            tx.InsertIdentity(new IdentityRecord(id, key, now, null));
            entry = new Entry(id, labels, now) { References = 1 };
            _byLabels.Add(key, entry);
            _byId.Add(id, entry);
            var previousCursor = _cursor;
            _cursor = id == ReservedIdentities.Max ? ReservedIdentities.FirstAllocated : id + 1;
            tx.OnRollback(() =>
            {
                lock (_lock)
                {
                    _byLabels.Remove(key);
                    _byId.Remove(id);
                    _cursor = previousCursor;
                }
            });
            _logger.LogInformation("allocated identity {Identity} for labels [{Labels}]", id, key);
            return id;
        }
    }

    /// <summary>
    /// Drops a reference taken by <see cref="Acquire"/>. The last one starts the grace period.
    /// Reserved identities carry no references: releasing one does nothing. Part of
    /// <paramref name="tx"/>: undone if it rolls back.
    /// </summary>
    public void Release(StoreTransaction tx, uint id)
    {
        if (id < ReservedIdentities.FirstAllocated)
        {
            return;
        }
        lock (_lock)
        {
            if (!_byId.TryGetValue(id, out var entry) || entry.References == 0)
            {
                throw new InvalidOperationException($"failed to release identity {id}: it holds no reference");
            }
            entry.References--;
            if (entry.References == 0)
            {
                var now = _time.GetUtcNow();
                tx.SetIdentityUnusedSince(id, now);
                entry.UnusedSince = now;
            }
            tx.OnRollback(() =>
            {
                lock (_lock)
                {
                    entry.References++;
                    entry.UnusedSince = null;
                }
            });
        }
    }

    /// <summary>
    /// Frees every identity unused for at least <see cref="GracePeriod"/> and returns the freed
    /// numbers. One store transaction for all of them.
    /// </summary>
    public IReadOnlyList<uint> CollectUnused()
    {
        var freed = _store.Write(tx =>
        {
            lock (_lock)
            {
                var now = _time.GetUtcNow();
                var expired = _byId.Values
                    .Where(e => e.References == 0 && e.UnusedSince is { } since && now - since >= GracePeriod)
                    .OrderBy(e => e.Id)
                    .ToList();
                foreach (var entry in expired)
                {
                    tx.DeleteIdentity(entry.Id);
                    _byId.Remove(entry.Id);
                    _byLabels.Remove(entry.Labels.ToString());
                }
                tx.OnRollback(() =>
                {
                    lock (_lock)
                    {
                        foreach (var entry in expired)
                        {
                            _byId[entry.Id] = entry;
                            _byLabels[entry.Labels.ToString()] = entry;
                        }
                    }
                });
                return expired.Select(e => e.Id).ToList();
            }
        });
        foreach (var id in freed)
        {
            _logger.LogInformation("released identity {Identity}: unused for {Grace}", id, GracePeriod);
        }
        return freed;
    }

    /// <summary>The identity with number <paramref name="id"/>, reserved or allocated, or null.</summary>
    public IdentityInfo? Lookup(uint id)
    {
        if (ReservedIdentities.NameOf(id) is { } name)
        {
            return new IdentityInfo(id, LabelSet.Empty, name, 0, null);
        }
        lock (_lock)
        {
            return _byId.TryGetValue(id, out var e) ? Info(e) : null;
        }
    }

    /// <summary>The identity currently held by <paramref name="labels"/>, or null.</summary>
    public IdentityInfo? Lookup(LabelSet labels)
    {
        lock (_lock)
        {
            return _byLabels.TryGetValue(labels.ToString(), out var e) ? Info(e) : null;
        }
    }

    /// <summary>Every identity: the reserved ones, then the allocated ones by number.</summary>
    public IReadOnlyList<IdentityInfo> List()
    {
        var reserved = ReservedIdentities.All.Select(r => r.Id).Prepend(ReservedIdentities.Unknown)
            .Select(id => new IdentityInfo(id, LabelSet.Empty, ReservedIdentities.NameOf(id), 0, null));
        lock (_lock)
        {
            return reserved.Concat(_byId.Values.OrderBy(e => e.Id).Select(Info)).ToList();
        }
    }

    private static IdentityInfo Info(Entry e) => new(e.Id, e.Labels, null, e.References, e.UnusedSince);

    private uint NextFreeId()
    {
        const uint span = ReservedIdentities.Max - ReservedIdentities.FirstAllocated + 1;
        var id = _cursor;
        for (uint tried = 0; tried < span; tried++)
        {
            if (!_byId.ContainsKey(id))
            {
                return id;
            }
            id = id == ReservedIdentities.Max ? ReservedIdentities.FirstAllocated : id + 1;
        }
        throw new AgentException(Api.ErrorCodes.Internal,
            $"failed to allocate an identity: all {span} numbers from {ReservedIdentities.FirstAllocated} to {ReservedIdentities.Max} are in use");
    }

    private void Load()
    {
        _store.Write(tx =>
        {
            var uses = tx.IdentityUseCounts();
            var now = _time.GetUtcNow();
            uint max = 0;
            foreach (var row in tx.ListIdentities())
            {
                if (!LabelSet.TryParse(row.Labels, out var labels, out var error))
                {
                    throw new AgentException(Api.ErrorCodes.IoFailure,
                        $"failed to load identity {row.Id} from the state database: {error}");
                }
                var entry = new Entry(row.Id, labels, row.CreatedAt) { References = uses.GetValueOrDefault(row.Id) };
                // The counts are derived, the timestamp is stored; reconcile the two so that an
                // identity in use never expires and an unused one always does, eventually.
                entry.UnusedSince = entry.References > 0 ? null : row.UnusedSince ?? now;
                if (entry.UnusedSince != row.UnusedSince)
                {
                    tx.SetIdentityUnusedSince(row.Id, entry.UnusedSince);
                }
                _byId.Add(row.Id, entry);
                _byLabels.Add(row.Labels, entry);
                max = Math.Max(max, row.Id);
            }
            foreach (var (id, count) in uses)
            {
                if (id >= ReservedIdentities.FirstAllocated && !_byId.ContainsKey(id))
                {
                    _logger.LogWarning("{Count} endpoint(s) use identity {Identity}, which the state database does not define", count, id);
                }
            }
            _cursor = max is 0 or ReservedIdentities.Max ? ReservedIdentities.FirstAllocated : max + 1;
        });
    }
}
