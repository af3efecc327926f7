namespace Membrane.Datapath.Conntrack;

/// <summary>
/// Linux nf_conntrack's TCP flag index (net/netfilter/nf_conntrack_proto_tcp.c, <c>enum tcp_bit_set</c>):
/// the row of the transition table a segment selects.
/// </summary>
public enum TcpFlagIndex : byte
{
    /// <summary>SYN without ACK (TCP_SYN_SET).</summary>
    Syn = 0,
    /// <summary>SYN with ACK (TCP_SYNACK_SET).</summary>
    SynAck = 1,
    /// <summary>FIN, no SYN, no RST (TCP_FIN_SET).</summary>
    Fin = 2,
    /// <summary>ACK only among SYN/FIN/RST/ACK (TCP_ACK_SET).</summary>
    Ack = 3,
    /// <summary>RST, whatever else is set (TCP_RST_SET).</summary>
    Rst = 4,
    /// <summary>None of SYN, FIN, RST, ACK (TCP_NONE_SET).</summary>
    None = 5,
}

/// <summary>What the TCP transition table says about one segment.</summary>
public enum TcpTransitionOutcome : byte
{
    /// <summary>The segment is accepted: the entry takes <see cref="TcpTransition.NewState"/> (which may equal the old state) and is refreshed.</summary>
    Changed = 0,
    /// <summary>sIG: the segment passes but the entry is left untouched (no counters, no refresh).</summary>
    Ignored = 1,
    /// <summary>sIV: the segment does not fit the connection; the entry is left untouched and the packet is INVALID.</summary>
    Invalid = 2,
    /// <summary>A SYN in TIME_WAIT or CLOSE: the old connection is deleted and the SYN opens a new one (Linux "reopened connection", RFC 9293 §3.6.1).</summary>
    Reopen = 3,
}

/// <summary>The result of <see cref="TcpConntrack.Transition"/>: the state the entry moves to and how.</summary>
/// <param name="NewState">The state after the segment (for Ignored and Invalid, the unchanged old state).</param>
/// <param name="Outcome">Whether the segment changes, leaves, rejects or reopens the connection.</param>
public readonly record struct TcpTransition(CtState NewState, TcpTransitionOutcome Outcome);

/// <summary>
/// The TCP connection-tracking state machine of Linux nf_conntrack (net/netfilter/nf_conntrack_proto_tcp.c:
/// <c>tcp_conntracks[2][6][10]</c>, <c>get_conntrack_index</c>, the state switch of <c>tcp_packet</c>), without
/// window tracking (<c>tcp_in_window</c>) and without the <c>last_index</c> resynchronisation after an ignored
/// segment, as /work/notes/conntrack-spec.md defines it. The states follow RFC 9293 §3.3.2 as seen by a
/// middlebox that watches both directions.
/// </summary>
public static class TcpConntrack
{
    /// <summary>FIN (RFC 9293 §3.1).</summary>
    public const byte Fin = 0x01;
    /// <summary>SYN.</summary>
    public const byte Syn = 0x02;
    /// <summary>RST.</summary>
    public const byte Rst = 0x04;
    /// <summary>PSH.</summary>
    public const byte Psh = 0x08;
    /// <summary>ACK.</summary>
    public const byte Ack = 0x10;
    /// <summary>URG.</summary>
    public const byte Urg = 0x20;

    /// <summary>The number of TCP states in the table (NONE … SYN_SENT2).</summary>
    public const int StateCount = 10;

    /// <summary>The number of flag indexes.</summary>
    public const int IndexCount = 6;

    // Short names as in the kernel, so that the rows below read like tcp_conntracks[][][].
    private const byte sNO = (byte)CtState.None;
    private const byte sSS = (byte)CtState.SynSent;
    private const byte sSR = (byte)CtState.SynRecv;
    private const byte sES = (byte)CtState.Established;
    private const byte sFW = (byte)CtState.FinWait;
    private const byte sCW = (byte)CtState.CloseWait;
    private const byte sLA = (byte)CtState.LastAck;
    private const byte sTW = (byte)CtState.TimeWait;
    private const byte sCL = (byte)CtState.Close;
    private const byte sS2 = (byte)CtState.SynSent2;
    // TCP_CONNTRACK_MAX and TCP_CONNTRACK_IGNORE in the kernel; here values no CtState has.
    private const byte sIV = 0xFE;
    private const byte sIG = 0xFF;

    // Table[dir * 60 + index * 10 + old]: the new state. Copied row by row from the kernel's tcp_conntracks,
    // which the spec reproduces; the kernel's comments explain each cell, the short ones are kept here.
    private static ReadOnlySpan<byte> Table =>
    [
        // ORIGINAL
        /*          sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2 */
        /* syn  */  sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2,
        // sNO -> sSS: initialise a new connection. sSS -> sSS: retransmitted SYN. sSR/sES/sFW/sCW/sLA -> sIG:
        // a late or retransmitted SYN, or the client lost its state (the window tracking the kernel would use to
        // resync is not modelled). sTW/sCL -> sSS: reopen (RFC 9293 §3.6.1, RFC 1122 4.2.2.13). sS2 -> sS2: SYN retransmitted in a simultaneous open.
        /* synack */ sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR,
        // Only the side that received a SYN may answer SYN-ACK: in a simultaneous open (sS2) the originator
        // does so (-> sSR), and retransmits it in sSR. From the originator it is invalid everywhere else.
        /* fin  */  sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV,
        // A FIN before the handshake's SYN-ACK is invalid (sNO, sSS, sS2). sSR/sES -> sFW: the first FIN.
        // sFW/sCW/sLA -> sLA: the FIN of the other side (or a retransmission). sTW and sCL are kept.
        /* ack  */  sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV,
        // sNO -> sES: loose mid-stream pickup (nf_conntrack_tcp_loose=1). sSS/sS2 -> sIV: the SYN sender cannot
        // ACK before it saw a SYN-ACK. sSR -> sES: the third segment of the handshake. sFW -> sCW: the first
        // FIN is acknowledged (half-close, RFC 9293 §3.6). sLA -> sTW: the last FIN is acknowledged.
        /* rst  */  sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL,
        // RST closes any tracked connection (RFC 9293 §3.10.7); it never opens one.
        /* none */  sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV,
        // A segment with none of SYN, FIN, RST, ACK is not valid TCP after the first SYN (RFC 9293 §3.10.7).

        // REPLY
        /*          sNO  sSS  sSR  sES  sFW  sCW  sLA  sTW  sCL  sS2 */
        /* syn  */  sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2,
        // sSS -> sS2: simultaneous open (RFC 9293 §3.5, Figure 7). sTW -> sSS: reopen from the other side.
        // sNO: no reply without an entry. Everything else: a SYN from the responder of an open connection is invalid.
        /* synack */ sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR,
        // sSS -> sSR: the responder's answer. sS2 -> sSR: the SYN-ACK of a simultaneous open. Later SYN-ACKs are
        // retransmissions the kernel ignores (window tracking would resync; not modelled).
        /* fin  */  sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV,
        // As for the originator: the responder may close after it sent its SYN-ACK (sSR).
        /* ack  */  sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG,
        // sSS -> sIG: an ACK without SYN from the responder (e.g. to an old connection): ignored. sSR -> sSR: the
        // ACK of a simultaneous open, waiting for the originator's. sS2 -> sIG.
        /* rst  */  sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL,
        /* none */  sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV,
    ];

    /// <summary>
    /// The flag index of a segment, as Linux <c>get_conntrack_index</c>: RST wins, then SYN (with or without
    /// ACK), then FIN, then ACK; PSH, URG, ECE and CWR do not matter.
    /// </summary>
    public static TcpFlagIndex FlagIndex(byte tcpFlags)
    {
        if ((tcpFlags & Rst) != 0)
        {
            return TcpFlagIndex.Rst;
        }
        if ((tcpFlags & Syn) != 0)
        {
            return (tcpFlags & Ack) != 0 ? TcpFlagIndex.SynAck : TcpFlagIndex.Syn;
        }
        if ((tcpFlags & Fin) != 0)
        {
            return TcpFlagIndex.Fin;
        }
        return (tcpFlags & Ack) != 0 ? TcpFlagIndex.Ack : TcpFlagIndex.None;
    }

    /// <summary>True for the ten TCP states the table has columns for (NONE … SYN_SENT2).</summary>
    public static bool IsTcpState(CtState state) => (byte)state < StateCount;

    /// <summary>The raw table cell: the new state, or the outcome Ignored/Invalid, for (old, dir, index).</summary>
    public static TcpTransition Lookup(CtState old, CtDirection direction, TcpFlagIndex index)
    {
        if (!IsTcpState(old))
        {
            throw new ArgumentOutOfRangeException(nameof(old), old, $"failed to look up a TCP transition: {old} is not a TCP state");
        }
        if ((byte)direction > 1)
        {
            throw new ArgumentOutOfRangeException(nameof(direction), direction, "failed to look up a TCP transition: direction is neither original nor reply");
        }
        if ((byte)index >= IndexCount)
        {
            throw new ArgumentOutOfRangeException(nameof(index), index, "failed to look up a TCP transition: no such flag index");
        }
        byte cell = Table[((byte)direction * IndexCount * StateCount) + ((byte)index * StateCount) + (byte)old];
        return cell switch
        {
            sIV => new TcpTransition(old, TcpTransitionOutcome.Invalid),
            sIG => new TcpTransition(old, TcpTransitionOutcome.Ignored),
            // Linux tcp_packet, case TCP_CONNTRACK_SYN_SENT with old_state >= TIME_WAIT: "Attempt to reopen a
            // closed/aborted connection. Delete this connection and look up again." (SYN_SENT2 never leads
            // to SYN_SENT, so the comparison reduces to TIME_WAIT and CLOSE.)
            sSS when old is CtState.TimeWait or CtState.Close => new TcpTransition(CtState.SynSent, TcpTransitionOutcome.Reopen),
            _ => new TcpTransition((CtState)cell, TcpTransitionOutcome.Changed),
        };
    }

    /// <summary>
    /// What a segment with <paramref name="tcpFlags"/> does to a connection in <paramref name="old"/> when it
    /// travels in <paramref name="direction"/>. <paramref name="old"/> = NONE means "no entry" and only the
    /// ORIGINAL row applies (a first packet is by definition in original direction).
    /// </summary>
    public static TcpTransition Transition(CtState old, CtDirection direction, byte tcpFlags) =>
        Lookup(old, direction, FlagIndex(tcpFlags));
}
