using Membrane.Datapath.Conntrack;

namespace Membrane.Datapath.Tests.Conntrack.Model;

/// <summary>What the oracle expects a segment to do.</summary>
internal enum OracleKind
{
    /// <summary>The connection moves to (or stays in) <see cref="OracleExpectation.State"/>, and the entry is refreshed.</summary>
    MoveTo,
    /// <summary>Passed, entry untouched.</summary>
    Ignore,
    /// <summary>Rejected, entry untouched.</summary>
    Invalid,
    /// <summary>The old connection is replaced by a new one in SYN_SENT.</summary>
    Reopen,
}

internal readonly record struct OracleExpectation(OracleKind Kind, CtState State)
{
    public static OracleExpectation To(CtState state) => new(OracleKind.MoveTo, state);
    public static readonly OracleExpectation Ignored = new(OracleKind.Ignore, CtState.None);
    public static readonly OracleExpectation Rejected = new(OracleKind.Invalid, CtState.None);
    public static readonly OracleExpectation Reopened = new(OracleKind.Reopen, CtState.SynSent);

    public override string ToString() => Kind == OracleKind.MoveTo ? $"-> {State}" : Kind.ToString();
}

/// <summary>The segment classes the oracle reasons about, from the four flags that matter to a middlebox.</summary>
internal enum Segment { Syn, SynAck, Fin, Ack, Rst, Bare }

/// <summary>
/// The test's oracle for TCP connection tracking, written independently of the product's table: a list of
/// named rules, each stating for which segments, directions and states it holds and what happens, with the
/// RFC 9293 section or the Linux behaviour (net/netfilter/nf_conntrack_proto_tcp.c) it comes from. Exactly one
/// rule must hold for every (state, direction, flags); <see cref="TcpOracleTests"/> checks that.
/// </summary>
internal static class TcpOracle
{
    private const CtDirection Orig = CtDirection.Original;
    private const CtDirection Repl = CtDirection.Reply;

    private static readonly CtState[] AllStates =
    [
        CtState.None, CtState.SynSent, CtState.SynRecv, CtState.Established, CtState.FinWait,
        CtState.CloseWait, CtState.LastAck, CtState.TimeWait, CtState.Close, CtState.SynSent2,
    ];

    /// <summary>The ten TCP states, NONE first.</summary>
    public static IReadOnlyList<CtState> States => AllStates;

    internal sealed record Rule(string Name, Segment Segment, CtDirection[] Directions, CtState[] States, OracleExpectation Then)
    {
        public bool Holds(Segment segment, CtDirection direction, CtState state) =>
            segment == Segment && Directions.Contains(direction) && States.Contains(state);
    }

    private static CtDirection[] Both => [Orig, Repl];

    private static CtState[] AllBut(params CtState[] excluded) => AllStates.Where(s => !excluded.Contains(s)).ToArray();

    /// <summary>The rules. Each names its source.</summary>
    public static readonly IReadOnlyList<Rule> Rules =
    [
        // ---- RST (RFC 9293 §3.10.7: a valid reset aborts the connection in every state) ----
        new("RST aborts any tracked connection (RFC 9293 §3.10.7; Linux rst row: sCL)", Segment.Rst, Both, AllBut(CtState.None), OracleExpectation.To(CtState.Close)),
        new("RST never opens a connection (RFC 9293 §3.10.7.1: a RST to a closed port is answered by nothing)", Segment.Rst, Both, [CtState.None], OracleExpectation.Rejected),

        // ---- SYN (RFC 9293 §3.5 three-way handshake) ----
        new("a SYN from the originator opens a connection (RFC 9293 §3.5, Figure 6 line 2)", Segment.Syn, [Orig], [CtState.None], OracleExpectation.To(CtState.SynSent)),
        new("the originator retransmits its SYN (RFC 9293 §3.8.1)", Segment.Syn, [Orig], [CtState.SynSent], OracleExpectation.To(CtState.SynSent)),
        new("SYNs of either side keep a simultaneous open in SYN_SENT2 (RFC 9293 §3.5, Figure 7)", Segment.Syn, Both, [CtState.SynSent2], OracleExpectation.To(CtState.SynSent2)),
        new("a late SYN from the originator of a connection past SYN_SENT is ignored (Linux: the client may have lost its state; only window tracking could tell)", Segment.Syn, [Orig],
            [CtState.SynRecv, CtState.Established, CtState.FinWait, CtState.CloseWait, CtState.LastAck], OracleExpectation.Ignored),
        new("a SYN from the originator after the close reopens (RFC 9293 §3.6.1 / RFC 1122 4.2.2.13; Linux 'reopened connection')", Segment.Syn, [Orig],
            [CtState.TimeWait, CtState.Close], OracleExpectation.Reopened),
        new("a SYN from the responder while SYN_SENT is a simultaneous open (RFC 9293 §3.5, Figure 7)", Segment.Syn, [Repl], [CtState.SynSent], OracleExpectation.To(CtState.SynSent2)),
        new("a SYN from the responder in TIME_WAIT reopens the connection the other way (RFC 1122 4.2.2.13)", Segment.Syn, [Repl], [CtState.TimeWait], OracleExpectation.Reopened),
        new("any other SYN from the responder does not fit the connection", Segment.Syn, [Repl],
            [CtState.None, CtState.SynRecv, CtState.Established, CtState.FinWait, CtState.CloseWait, CtState.LastAck, CtState.Close], OracleExpectation.Rejected),

        // ---- SYN-ACK ----
        new("the responder answers the SYN (RFC 9293 §3.5, Figure 6 line 3)", Segment.SynAck, [Repl], [CtState.SynSent], OracleExpectation.To(CtState.SynRecv)),
        new("in a simultaneous open either side sends SYN-ACK (RFC 9293 §3.5, Figure 7 lines 4-5)", Segment.SynAck, Both, [CtState.SynSent2], OracleExpectation.To(CtState.SynRecv)),
        new("the originator's SYN-ACK of a simultaneous open is retransmitted in SYN_RECV", Segment.SynAck, [Orig], [CtState.SynRecv], OracleExpectation.To(CtState.SynRecv)),
        new("a retransmitted or late SYN-ACK from the responder is ignored (Linux: window tracking would resync)", Segment.SynAck, [Repl],
            [CtState.SynRecv, CtState.Established, CtState.FinWait, CtState.CloseWait, CtState.LastAck, CtState.TimeWait, CtState.Close], OracleExpectation.Ignored),
        new("a SYN-ACK from the originator answers no SYN", Segment.SynAck, [Orig],
            [CtState.None, CtState.SynSent, CtState.Established, CtState.FinWait, CtState.CloseWait, CtState.LastAck, CtState.TimeWait, CtState.Close], OracleExpectation.Rejected),
        new("a SYN-ACK cannot open a connection", Segment.SynAck, [Repl], [CtState.None], OracleExpectation.Rejected),

        // ---- FIN (RFC 9293 §3.6 closing; either side may close first, with or without ACK) ----
        new("a FIN before the SYN was answered does not fit (RFC 9293 §3.10.7.3: FIN is processed only once synchronized)", Segment.Fin, Both,
            [CtState.None, CtState.SynSent, CtState.SynSent2], OracleExpectation.Rejected),
        new("the first FIN half-closes (RFC 9293 §3.6, Figure 12)", Segment.Fin, Both, [CtState.SynRecv, CtState.Established], OracleExpectation.To(CtState.FinWait)),
        new("the other side's FIN (or a retransmitted one) awaits the last ACK (RFC 9293 §3.6, Figure 12/13)", Segment.Fin, Both,
            [CtState.FinWait, CtState.CloseWait, CtState.LastAck], OracleExpectation.To(CtState.LastAck)),
        new("a retransmitted FIN in TIME_WAIT keeps it (RFC 9293 §3.10.7.4 TIME-WAIT: restart the 2 MSL timeout)", Segment.Fin, Both, [CtState.TimeWait], OracleExpectation.To(CtState.TimeWait)),
        new("a FIN after a reset keeps CLOSE", Segment.Fin, Both, [CtState.Close], OracleExpectation.To(CtState.Close)),

        // ---- ACK without SYN/FIN/RST ----
        new("an ACK without a connection is picked up mid-stream (Linux nf_conntrack_tcp_loose=1)", Segment.Ack, [Orig], [CtState.None], OracleExpectation.To(CtState.Established)),
        new("(table only) an ACK in reply direction without a connection", Segment.Ack, [Repl], [CtState.None], OracleExpectation.Rejected),
        new("the SYN sender cannot ACK before it saw a SYN-ACK (RFC 9293 §3.5)", Segment.Ack, [Orig], [CtState.SynSent, CtState.SynSent2], OracleExpectation.Rejected),
        new("an ACK from the side that only received a SYN is ignored (Linux: e.g. an ACK of an old connection)", Segment.Ack, [Repl], [CtState.SynSent, CtState.SynSent2], OracleExpectation.Ignored),
        new("the originator's ACK completes the handshake (RFC 9293 §3.5, Figure 6 line 4)", Segment.Ack, [Orig], [CtState.SynRecv], OracleExpectation.To(CtState.Established)),
        new("the responder's ACK in SYN_RECV (simultaneous open) waits for the originator's", Segment.Ack, [Repl], [CtState.SynRecv], OracleExpectation.To(CtState.SynRecv)),
        new("data and ACKs of an open connection (RFC 9293 §3.10.7.4 ESTABLISHED)", Segment.Ack, Both, [CtState.Established], OracleExpectation.To(CtState.Established)),
        new("the ACK of the first FIN leaves the connection half-closed (RFC 9293 §3.6)", Segment.Ack, Both, [CtState.FinWait, CtState.CloseWait], OracleExpectation.To(CtState.CloseWait)),
        new("the ACK of the last FIN ends in TIME_WAIT (RFC 9293 §3.6, Figure 12)", Segment.Ack, Both, [CtState.LastAck, CtState.TimeWait], OracleExpectation.To(CtState.TimeWait)),
        new("ACKs after a reset keep CLOSE", Segment.Ack, Both, [CtState.Close], OracleExpectation.To(CtState.Close)),

        // ---- none of SYN, FIN, RST, ACK (RFC 9293 §3.10.7.4: "if the ACK bit is off, drop the segment") ----
        new("a segment without SYN, FIN, RST or ACK is never valid", Segment.Bare, Both, AllStates, OracleExpectation.Rejected),
    ];

    /// <summary>The oracle's classification of a flags byte: RST dominates, then SYN, then FIN, then ACK.</summary>
    public static Segment Classify(byte flags)
    {
        bool fin = (flags & 0x01) != 0, syn = (flags & 0x02) != 0, rst = (flags & 0x04) != 0, ack = (flags & 0x10) != 0;
        return (rst, syn, fin, ack) switch
        {
            (true, _, _, _) => Segment.Rst,
            (false, true, _, true) => Segment.SynAck,
            (false, true, _, false) => Segment.Syn,
            (false, false, true, _) => Segment.Fin,
            (false, false, false, true) => Segment.Ack,
            _ => Segment.Bare,
        };
    }

    /// <summary>Every rule that holds (exactly one, when the oracle is well formed).</summary>
    public static IEnumerable<Rule> Matching(CtState state, CtDirection direction, byte flags)
    {
        var segment = Classify(flags);
        return Rules.Where(r => r.Holds(segment, direction, state));
    }

    /// <summary>The expectation for (state, direction, flags), with the rule's name.</summary>
    public static (OracleExpectation Expectation, string Rule) Expect(CtState state, CtDirection direction, byte flags)
    {
        var rule = Matching(state, direction, flags).Single();
        return (rule.Then, rule.Name);
    }

    /// <summary>All 64 combinations of FIN, SYN, RST, PSH, ACK, URG.</summary>
    public static IEnumerable<byte> AllFlagCombinations => Enumerable.Range(0, 64).Select(i => (byte)i);
}
