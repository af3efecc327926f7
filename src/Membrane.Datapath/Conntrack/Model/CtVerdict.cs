namespace Membrane.Datapath.Conntrack;

/// <summary>Why <see cref="ConntrackModel.Process"/> gave its result: one reason per path of conntrack-spec.md.</summary>
public enum CtReason : byte
{
    /// <summary>NEW: a first packet created an entry (TCP SYN, UDP, echo request, other protocols).</summary>
    Opened = 1,
    /// <summary>NEW: a TCP ACK without an entry was picked up mid-stream as ESTABLISHED (Linux nf_conntrack_tcp_loose=1).</summary>
    LoosePickup,
    /// <summary>NEW: a SYN in TIME_WAIT or CLOSE deleted the old connection and opened a new one (Linux "reopened connection").</summary>
    Reopened,
    /// <summary>ESTABLISHED/REPLY: the entry was updated (state, counters, flags, lifetime).</summary>
    Tracked,
    /// <summary>ESTABLISHED/REPLY: the TCP table says ignore (sIG); the entry is untouched (Linux returns before nf_ct_refresh_acct).</summary>
    TcpIgnored,
    /// <summary>RELATED: an ICMP error quoting a packet of a tracked connection.</summary>
    IcmpErrorRelated,
    /// <summary>INVALID: the TCP table says sIV for the entry's state, the direction and the flags; the entry is untouched.</summary>
    TcpInvalidTransition,
    /// <summary>INVALID: no entry and the segment cannot open one (only SYN and, loosely, ACK can).</summary>
    TcpCannotOpen,
    /// <summary>INVALID: an echo reply with no echo request tracked.</summary>
    IcmpEchoReplyWithoutRequest,
    /// <summary>INVALID: an ICMP error whose quoted packet belongs to no tracked connection.</summary>
    IcmpErrorUnrelated,
    /// <summary>INVALID: an ICMP error not addressed to the sender of the packet it quotes.</summary>
    IcmpErrorMisaddressed,
    /// <summary>INVALID: an ICMP error whose quote has no usable tuple (cut short, a later fragment, a non-echo ICMP message).</summary>
    IcmpErrorQuoteUnusable,
    /// <summary>INVALID: an ICMP type conntrack does not track (timestamp, information, address mask, router advertisement over IPv4, …).</summary>
    IcmpTypeNotTracked,
    /// <summary>UNTRACKED: a later IPv4/IPv6 fragment, which has no L4 header.</summary>
    LaterFragment,
    /// <summary>UNTRACKED: ICMPv6 MLD, router/neighbour discovery or redirect (types 130–137, 143).</summary>
    Icmpv6NeighbourDiscoveryOrMld,
    /// <summary>UNTRACKED: IPv6 from a link-local or the unspecified source.</summary>
    Ipv6LinkLocalSource,
}

/// <summary>
/// What the model made of one packet: the datapath-visible <see cref="Result"/>, the <see cref="Reason"/>, and for
/// packets that met an entry its key, the packet's direction and the state before and after.
/// </summary>
/// <param name="Result">NEW, ESTABLISHED, REPLY, RELATED, INVALID or UNTRACKED.</param>
/// <param name="Reason">Which path of the spec produced it (for INVALID, why the packet was rejected).</param>
/// <param name="Key">The key of the entry created, updated or matched (for RELATED: the related entry); default when none.</param>
/// <param name="Direction">The packet's direction relative to that entry (ORIGINAL for a new entry).</param>
/// <param name="PreviousState">The entry's state before the packet (NONE when there was no entry; the old connection's state for a reopen).</param>
/// <param name="State">The entry's state after the packet (NONE when no entry exists for it).</param>
public readonly record struct CtVerdict(CtResult Result, CtReason Reason, CtTuple Key, CtDirection Direction, CtState PreviousState, CtState State)
{
    /// <summary>True when the datapath drops the packet (conntrack-spec.md step 8: INVALID → DROP_CT_INVALID).</summary>
    public bool Drops => Result == CtResult.Invalid;

    /// <inheritdoc/>
    public override string ToString() => Result switch
    {
        CtResult.Untracked => $"{Result} ({Reason})",
        CtResult.Invalid when State == CtState.None => $"{Result} ({Reason})",
        _ => $"{Result} ({Reason}) {Direction} {PreviousState} -> {State} entry {Key}",
    };
}
