using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Membrane.Packets;

namespace Membrane.Datapath.Conntrack;

/// <summary>
/// The reference connection tracker: a table of <see cref="CtConnection"/> keyed by <see cref="CtTuple"/> and the
/// per-packet algorithm of /work/notes/conntrack-spec.md (steps 1–8), which the BPF datapath
/// (bpf/lib/conntrack.h) implements too; the differential test feeds both the same packets. TCP follows Linux
/// nf_conntrack (<see cref="TcpConntrack"/>) without window tracking: a segment out of the peer's window is
/// judged by its flags alone, exactly as the datapath does. Not thread-safe; the per-packet path does not allocate.
/// </summary>
public sealed class ConntrackModel
{
    private readonly Dictionary<CtTuple, CtConnection> _table = [];
    private readonly ulong _tcpSyn;
    private readonly ulong _tcpEstablished;
    private readonly ulong _tcpClose;
    private readonly ulong _other;

    /// <summary>Creates an empty table with <paramref name="timeouts"/> (the defaults when null); throws when a timeout is unusable.</summary>
    public ConntrackModel(ConntrackTimeouts? timeouts = null)
    {
        Timeouts = (timeouts ?? ConntrackTimeouts.Default).Validate();
        _tcpSyn = (ulong)Timeouts.TcpSyn.TotalSeconds;
        _tcpEstablished = (ulong)Timeouts.TcpEstablished.TotalSeconds;
        _tcpClose = (ulong)Timeouts.TcpClose.TotalSeconds;
        _other = (ulong)Timeouts.Other.TotalSeconds;
    }

    /// <summary>The timeouts in force.</summary>
    public ConntrackTimeouts Timeouts { get; }

    /// <summary>The entries held, expired ones included until <see cref="Collect"/> or an overwrite removes them.</summary>
    public IEnumerable<CtConnection> Entries => _table.Values;

    /// <summary>How many entries are held (expired ones included).</summary>
    public int Count => _table.Count;

    /// <summary>The entry stored under exactly <paramref name="key"/>, expired or not.</summary>
    public bool TryGet(in CtTuple key, out CtConnection entry) => _table.TryGetValue(key, out entry);

    /// <summary>
    /// The live entry a packet with <paramref name="tuple"/> belongs to at <paramref name="now"/> (conntrack-spec.md
    /// step 1): stored under the tuple (ORIGINAL) or under its reverse (REPLY).
    /// </summary>
    public bool TryLookup(in CtTuple tuple, ulong now, out CtConnection entry, out CtDirection direction)
    {
        ref CtConnection found = ref Find(tuple, now, out direction);
        if (Unsafe.IsNullRef(ref found))
        {
            entry = default;
            return false;
        }
        entry = found;
        return true;
    }

    /// <summary>Deletes the entry stored under <paramref name="key"/>; false when there is none.</summary>
    public bool Remove(in CtTuple key) => _table.Remove(key);

    /// <summary>Deletes every entry (<c>membrane bpf ct flush</c>).</summary>
    public void Clear() => _table.Clear();

    /// <summary>Deletes the entries expired at <paramref name="now"/> (lifetime &lt; now), as the agent's GC does; returns how many.</summary>
    public int Collect(ulong now)
    {
        int removed = 0;
        foreach (var (key, entry) in _table)
        {
            // Removing the current key while enumerating is allowed for Dictionary since .NET Core 3.0.
            if (entry.IsExpired(now) && _table.Remove(key))
            {
                removed++;
            }
        }
        return removed;
    }

    /// <summary>
    /// Runs one packet through conntrack at time <paramref name="now"/> (seconds): classifies it, and creates,
    /// updates, replaces or leaves its entry as conntrack-spec.md prescribes. Never throws on packet contents;
    /// a packet that fits no connection comes back INVALID with the reason. Throws only for a default
    /// <see cref="CtPacket"/>, which describes no packet.
    /// </summary>
    public CtVerdict Process(in CtPacket packet, ulong now)
    {
        if (packet.Family is not (4 or 6))
        {
            // Only default(CtPacket) gets here: every factory and TryFromFrame set an address family.
            throw new ArgumentException("failed to process a conntrack packet: it has no addresses (a default CtPacket)", nameof(packet));
        }
        // Step 6 first: untracked packets are not looked up at all. A later fragment has no L4 header to
        // classify; link-local IPv6 and ND/MLD are the node's own plumbing (Linux: noct_valid_new in
        // nf_conntrack_proto_icmpv6.c marks ND/MLD untracked).
        if (packet.IsLaterFragment)
        {
            return Untracked(CtReason.LaterFragment);
        }
        if (packet.HasLinkLocalSource)
        {
            return Untracked(CtReason.Ipv6LinkLocalSource);
        }
        if (packet.IsIcmp)
        {
            byte family = packet.Family;
            byte type = packet.IcmpType;
            if (family == 6 && CtPacket.IsUntrackedIcmpv6Type(type))
            {
                return Untracked(CtReason.Icmpv6NeighbourDiscoveryOrMld);
            }
            if (CtPacket.IsErrorType(family, type))
            {
                return Related(packet, now);
            }
            if (!CtPacket.IsEchoRequest(family, type) && !CtPacket.IsEchoReply(family, type))
            {
                // Step 7.
                return Invalid(CtReason.IcmpTypeNotTracked);
            }
        }

        CtTuple tuple = packet.Tuple;
        ref CtConnection entry = ref Find(tuple, now, out var direction);
        if (Unsafe.IsNullRef(ref entry))
        {
            return Open(packet, now);
        }

        CtState old = entry.State;
        CtTuple key = entry.Key;
        if (packet.Protocol != IpProtocols.Tcp)
        {
            // Step 4: a reply makes the pseudo-connection REPLIED for good.
            var state = direction == CtDirection.Reply ? CtState.Replied : old;
            Update(ref entry, packet, direction, state, now, _other);
            return Tracked(CtReason.Tracked, key, direction, old, state);
        }

        // Step 3.
        var transition = TcpConntrack.Transition(old, direction, packet.TcpFlags);
        switch (transition.Outcome)
        {
            case TcpTransitionOutcome.Invalid:
                return new CtVerdict(CtResult.Invalid, CtReason.TcpInvalidTransition, key, direction, old, old);
            case TcpTransitionOutcome.Ignored:
                return Tracked(CtReason.TcpIgnored, key, direction, old, old);
            case TcpTransitionOutcome.Reopen:
                // Linux nf_ct_kill + NF_REPEAT: the old connection goes, the SYN is looked up again, finds
                // nothing and opens a new connection in its own orientation.
                _table.Remove(key);
                Insert(tuple, CtState.SynSent, packet, now);
                return new CtVerdict(CtResult.New, CtReason.Reopened, tuple, CtDirection.Original, old, CtState.SynSent);
            default:
                Update(ref entry, packet, direction, transition.NewState, now, TcpTimeout(transition.NewState));
                return Tracked(CtReason.Tracked, key, direction, old, transition.NewState);
        }
    }

    // Step 2: no live entry in either orientation.
    private CtVerdict Open(in CtPacket packet, ulong now)
    {
        CtState state;
        CtReason reason = CtReason.Opened;
        if (packet.Protocol == IpProtocols.Tcp)
        {
            var transition = TcpConntrack.Transition(CtState.None, CtDirection.Original, packet.TcpFlags);
            if (transition.Outcome != TcpTransitionOutcome.Changed)
            {
                return Invalid(CtReason.TcpCannotOpen);
            }
            state = transition.NewState;
            if (state == CtState.Established)
            {
                reason = CtReason.LoosePickup;
            }
        }
        else if (packet.IsIcmp && CtPacket.IsEchoReply(packet.Family, packet.IcmpType))
        {
            return Invalid(CtReason.IcmpEchoReplyWithoutRequest);
        }
        else
        {
            state = CtState.Unreplied;
        }
        Insert(packet.Tuple, state, packet, now);
        return new CtVerdict(CtResult.New, reason, packet.Tuple, CtDirection.Original, CtState.None, state);
    }

    // Step 5: the quoted packet's tuple, as is (the error is about a packet in original direction) or reversed.
    private CtVerdict Related(in CtPacket packet, ulong now)
    {
        if (packet.QuotedTuple is not { } quoted)
        {
            return Invalid(CtReason.IcmpErrorQuoteUnusable);
        }
        // An error goes back to the sender of the packet it quotes (Linux
        // nf_conntrack_inet_error: "outer daddr mismatch" is invalid); anything else would let a
        // pod wrap arbitrary data in an "error" about someone else's connection.
        if (packet.Tuple.Destination != quoted.Source)
        {
            return Invalid(CtReason.IcmpErrorMisaddressed);
        }
        ref CtConnection entry = ref Find(quoted, now, out var direction);
        if (Unsafe.IsNullRef(ref entry))
        {
            return Invalid(CtReason.IcmpErrorUnrelated);
        }
        return new CtVerdict(CtResult.Related, CtReason.IcmpErrorRelated, entry.Key, direction, entry.State, entry.State);
    }

    // Step 1: an expired entry counts as absent.
    private ref CtConnection Find(in CtTuple tuple, ulong now, out CtDirection direction)
    {
        ref CtConnection entry = ref CollectionsMarshal.GetValueRefOrNullRef(_table, tuple);
        if (!Unsafe.IsNullRef(ref entry) && !entry.IsExpired(now))
        {
            direction = CtDirection.Original;
            return ref entry;
        }
        entry = ref CollectionsMarshal.GetValueRefOrNullRef(_table, tuple.Reverse());
        if (!Unsafe.IsNullRef(ref entry) && !entry.IsExpired(now))
        {
            direction = CtDirection.Reply;
            return ref entry;
        }
        direction = CtDirection.Original;
        return ref Unsafe.NullRef<CtConnection>();
    }

    private void Insert(in CtTuple key, CtState state, in CtPacket packet, ulong now)
    {
        ulong timeout = packet.Protocol == IpProtocols.Tcp ? TcpTimeout(state) : _other;
        // Overwrites an expired entry under the same key (spec step 1).
        _table[key] = new CtConnection(key, state, new CtDirectionStats(1, packet.Length, packet.TcpFlags), default, now, now + timeout, now, ReplySeen: false);
    }

    private static void Update(ref CtConnection entry, in CtPacket packet, CtDirection direction, CtState state, ulong now, ulong timeout)
    {
        entry = direction == CtDirection.Original
            ? entry with { State = state, Original = entry.Original.Add(packet), Lifetime = now + timeout, LastSeen = now }
            : entry with { State = state, Reply = entry.Reply.Add(packet), Lifetime = now + timeout, LastSeen = now, ReplySeen = true };
    }

    private ulong TcpTimeout(CtState state) => state switch
    {
        CtState.SynSent or CtState.SynRecv or CtState.SynSent2 => _tcpSyn,
        CtState.Established or CtState.FinWait or CtState.CloseWait => _tcpEstablished,
        _ => _tcpClose,
    };

    private static CtVerdict Tracked(CtReason reason, in CtTuple key, CtDirection direction, CtState old, CtState state) =>
        new(direction == CtDirection.Original ? CtResult.Established : CtResult.Reply, reason, key, direction, old, state);

    private static CtVerdict Invalid(CtReason reason) => new(CtResult.Invalid, reason, default, CtDirection.Original, CtState.None, CtState.None);

    private static CtVerdict Untracked(CtReason reason) => new(CtResult.Untracked, reason, default, CtDirection.Original, CtState.None, CtState.None);
}
