using Membrane.Datapath.Conntrack;

namespace Membrane.Datapath.Tests.Conntrack.Model;

/// <summary>TCP connections through the model, phase by phase (RFC 9293 §3.5, §3.6; Linux nf_conntrack behaviour).</summary>
public sealed class ConntrackModelTcpScenarioTests
{
    private const CtDirection O = CtDirection.Original;
    private const CtDirection R = CtDirection.Reply;

    private static (CtResult, CtState) Step(ConntrackModel model, CtDirection direction, byte flags, ulong now, uint length = 60)
    {
        var v = model.Process(Ct.Tcp(direction, flags, length), now);
        return (v.Result, v.State);
    }

    [Fact]
    public void Handshake_data_and_close_by_the_client_walk_the_states_and_count_each_direction()
    {
        var model = new ConntrackModel();
        Assert.Equal((CtResult.New, CtState.SynSent), Step(model, O, Ct.Syn, 100, 74));
        Assert.Equal((CtResult.Reply, CtState.SynRecv), Step(model, R, Ct.Syn | Ct.Ack, 101, 74));
        Assert.Equal((CtResult.Established, CtState.Established), Step(model, O, Ct.Ack, 102, 66));
        Assert.Equal((CtResult.Established, CtState.Established), Step(model, O, Ct.Psh | Ct.Ack, 103, 566));
        Assert.Equal((CtResult.Reply, CtState.Established), Step(model, R, Ct.Psh | Ct.Ack, 104, 1066));
        Assert.Equal((CtResult.Established, CtState.FinWait), Step(model, O, Ct.Fin | Ct.Ack, 105, 66));
        Assert.Equal((CtResult.Reply, CtState.CloseWait), Step(model, R, Ct.Ack, 106, 66));
        Assert.Equal((CtResult.Reply, CtState.LastAck), Step(model, R, Ct.Fin | Ct.Ack, 107, 66));
        Assert.Equal((CtResult.Established, CtState.TimeWait), Step(model, O, Ct.Ack, 108, 66));

        Assert.True(model.TryGet(Ct.TcpKey, out var e));
        Assert.Equal(new CtDirectionStats(5, 74 + 66 + 566 + 66 + 66, Ct.Syn | Ct.Ack | Ct.Psh | Ct.Fin), e.Original);
        Assert.Equal(new CtDirectionStats(4, 74 + 1066 + 66 + 66, Ct.Syn | Ct.Ack | Ct.Psh | Ct.Fin), e.Reply);
        Assert.Equal(100UL, e.Created);
        Assert.Equal(108UL, e.LastSeen);
        Assert.Equal(108UL + 10, e.Lifetime); // TIME_WAIT: the close timeout
        Assert.True(e.ReplySeen);
        Assert.Equal(1, model.Count);
    }

    [Fact]
    public void Close_by_the_server_first_mirrors_the_client_close()
    {
        var model = new ConntrackModel();
        Ct.Run(model, 0, (O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack));
        Assert.Equal((CtResult.Reply, CtState.FinWait), Step(model, R, Ct.Fin | Ct.Ack, 10));
        Assert.Equal((CtResult.Established, CtState.CloseWait), Step(model, O, Ct.Ack, 11));
        Assert.Equal((CtResult.Established, CtState.LastAck), Step(model, O, Ct.Fin | Ct.Ack, 12));
        Assert.Equal((CtResult.Reply, CtState.TimeWait), Step(model, R, Ct.Ack, 13));
    }

    [Fact]
    public void A_half_closed_connection_carries_data_the_other_way_with_the_established_timeout()
    {
        // RFC 9293 §3.6: after one side's FIN is acknowledged the other may go on sending for as long as it likes.
        var model = new ConntrackModel();
        Ct.Run(model, 0, (O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack), (O, Ct.Fin | Ct.Ack), (R, Ct.Ack));
        for (ulong t = 100; t < 105; t++)
        {
            Assert.Equal((CtResult.Reply, CtState.CloseWait), Step(model, R, Ct.Psh | Ct.Ack, t, 1500));
            Assert.Equal((CtResult.Established, CtState.CloseWait), Step(model, O, Ct.Ack, t));
        }
        Assert.True(model.TryGet(Ct.TcpKey, out var e));
        Assert.Equal(104UL + (6 * 3600), e.Lifetime);
        Assert.Equal(2UL + 5, e.Reply.Packets);
    }

    public static TheoryData<CtState, CtDirection> RstCases()
    {
        var data = new TheoryData<CtState, CtDirection>();
        foreach (var s in new[] { CtState.SynSent, CtState.SynRecv, CtState.Established, CtState.FinWait, CtState.CloseWait, CtState.LastAck, CtState.TimeWait, CtState.Close, CtState.SynSent2 })
        {
            data.Add(s, O);
            data.Add(s, R);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(RstCases))]
    public void Rst_in_any_state_closes_and_the_entry_lives_the_close_timeout(CtState state, CtDirection direction)
    {
        var model = new ConntrackModel();
        ulong now = ReachState(model, state);
        var v = model.Process(Ct.Tcp(direction, Ct.Rst | Ct.Ack), now);
        Assert.Equal(direction == O ? CtResult.Established : CtResult.Reply, v.Result);
        Assert.Equal((state, CtState.Close), (v.PreviousState, v.State));
        Assert.True(model.TryGet(Ct.TcpKey, out var e));
        Assert.Equal(now + 10, e.Lifetime);

        // Alive through its lifetime, gone after: a plain ACK then is a mid-stream pickup of a new connection.
        Assert.True(model.TryLookup(Ct.TcpKey, now + 10, out _, out _));
        var later = model.Process(Ct.Tcp(O, Ct.Ack), now + 11);
        Assert.Equal((CtResult.New, CtReason.LoosePickup, CtState.Established), (later.Result, later.Reason, later.State));
    }

    [Fact]
    public void A_retransmitted_syn_stays_syn_sent_and_refreshes_the_entry()
    {
        var model = new ConntrackModel();
        Step(model, O, Ct.Syn, 0);
        var v = model.Process(Ct.Tcp(O, Ct.Syn), 3); // RFC 6298 initial RTO of 1 s, doubled twice
        Assert.Equal(new CtVerdict(CtResult.Established, CtReason.Tracked, Ct.TcpKey, O, CtState.SynSent, CtState.SynSent), v);
        Assert.True(model.TryGet(Ct.TcpKey, out var e));
        Assert.Equal(2UL, e.Original.Packets);
        Assert.Equal(63UL, e.Lifetime);
        Assert.False(e.ReplySeen);
    }

    [Fact]
    public void Simultaneous_open_goes_through_syn_sent2()
    {
        // RFC 9293 §3.5 Figure 7: both ends send SYN, then both SYN-ACK, then ACKs.
        var model = new ConntrackModel();
        Assert.Equal((CtResult.New, CtState.SynSent), Step(model, O, Ct.Syn, 0));
        Assert.Equal((CtResult.Reply, CtState.SynSent2), Step(model, R, Ct.Syn, 1));
        Assert.Equal((CtResult.Established, CtState.SynRecv), Step(model, O, Ct.Syn | Ct.Ack, 2));
        var ignored = model.Process(Ct.Tcp(R, Ct.Syn | Ct.Ack), 3);
        Assert.Equal((CtResult.Reply, CtReason.TcpIgnored, CtState.SynRecv), (ignored.Result, ignored.Reason, ignored.State));
        Assert.Equal((CtResult.Reply, CtState.SynRecv), Step(model, R, Ct.Ack, 4));
        Assert.Equal((CtResult.Established, CtState.Established), Step(model, O, Ct.Ack, 5));
        Assert.True(model.TryGet(Ct.TcpKey, out var e));
        Assert.Equal(3UL, e.Original.Packets);
        Assert.Equal(2UL, e.Reply.Packets); // the ignored SYN-ACK is not counted
    }

    [Fact]
    public void A_syn_from_the_originator_reopens_a_time_wait_connection_with_fresh_counters()
    {
        var model = new ConntrackModel();
        ulong now = ReachState(model, CtState.TimeWait);
        var v = model.Process(Ct.Tcp(O, Ct.Syn, 80), now);
        Assert.Equal(new CtVerdict(CtResult.New, CtReason.Reopened, Ct.TcpKey, O, CtState.TimeWait, CtState.SynSent), v);
        Assert.True(model.TryGet(Ct.TcpKey, out var e));
        Assert.Equal(new CtConnection(Ct.TcpKey, CtState.SynSent, new CtDirectionStats(1, 80, Ct.Syn), default, now, now + 60, now, false), e);
    }

    [Fact]
    public void A_syn_from_the_responder_reopens_a_time_wait_connection_in_its_own_orientation()
    {
        var model = new ConntrackModel();
        ulong now = ReachState(model, CtState.TimeWait);
        var v = model.Process(Ct.Tcp(R, Ct.Syn), now);
        var reversed = Ct.TcpKey.Reverse();
        Assert.Equal(new CtVerdict(CtResult.New, CtReason.Reopened, reversed, O, CtState.TimeWait, CtState.SynSent), v);
        Assert.False(model.TryGet(Ct.TcpKey, out _));
        Assert.True(model.TryGet(reversed, out var e));
        Assert.Equal(CtState.SynSent, e.State);
        // The former client now answers: a reply of the new connection.
        Assert.Equal((CtResult.Reply, CtState.SynRecv), Step(model, O, Ct.Syn | Ct.Ack, now + 1));
    }

    [Fact]
    public void A_syn_from_the_responder_in_close_is_invalid_and_does_not_reopen()
    {
        var model = new ConntrackModel();
        ulong now = ReachState(model, CtState.Close);
        var v = model.Process(Ct.Tcp(R, Ct.Syn), now);
        Assert.Equal((CtResult.Invalid, CtReason.TcpInvalidTransition, CtState.Close), (v.Result, v.Reason, v.State));
        Assert.True(model.TryGet(Ct.TcpKey, out var e));
        Assert.Equal(CtState.Close, e.State);
    }

    [Theory]
    [InlineData(Ct.Ack)]
    [InlineData(Ct.Psh | Ct.Ack)]
    [InlineData(Ct.Urg | Ct.Ack)]
    public void An_ack_without_an_entry_is_picked_up_mid_stream(byte flags)
    {
        // Linux nf_conntrack_tcp_loose=1: e.g. connections that predate the agent keep working.
        var model = new ConntrackModel();
        var v = model.Process(Ct.Tcp(O, flags), 50);
        Assert.Equal(new CtVerdict(CtResult.New, CtReason.LoosePickup, Ct.TcpKey, O, CtState.None, CtState.Established), v);
        Assert.True(model.TryGet(Ct.TcpKey, out var e));
        Assert.Equal(50UL + (6 * 3600), e.Lifetime);
        Assert.Equal((CtResult.Reply, CtState.Established), Step(model, R, Ct.Ack, 51));
    }

    [Theory]
    [InlineData(Ct.Syn | Ct.Ack)]
    [InlineData(Ct.Fin | Ct.Ack)]
    [InlineData(Ct.Fin)]
    [InlineData(Ct.Rst)]
    [InlineData(Ct.Rst | Ct.Ack)]
    [InlineData(Ct.Psh)]
    [InlineData(0)]
    public void A_segment_that_cannot_open_a_connection_is_invalid_and_stores_nothing(byte flags)
    {
        var model = new ConntrackModel();
        var v = model.Process(Ct.Tcp(O, flags), 50);
        Assert.Equal((CtResult.Invalid, CtReason.TcpCannotOpen), (v.Result, v.Reason));
        Assert.True(v.Drops);
        Assert.Equal(0, model.Count);
    }

    [Fact]
    public void Out_of_window_junk_is_judged_by_its_flags_only()
    {
        // The model (like the datapath) does no window tracking (Linux tcp_in_window is not modelled): an ACK
        // whose sequence number is far outside the window is accepted and counted in ESTABLISHED. A CtPacket has
        // no sequence number at all; CtPacketFromFrameTests shows the frames' numbers are not even read.
        var model = new ConntrackModel();
        Ct.Run(model, 0, (O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack));
        var v = model.Process(Ct.Tcp(R, Ct.Psh | Ct.Ack, 1400), 10);
        Assert.Equal((CtResult.Reply, CtState.Established), (v.Result, v.State));
        // ...while junk whose flags fit no state is still INVALID, and leaves the entry alone.
        model.TryGet(Ct.TcpKey, out var before);
        var junk = model.Process(Ct.Tcp(R, Ct.Syn), 11);
        Assert.Equal((CtResult.Invalid, CtReason.TcpInvalidTransition), (junk.Result, junk.Reason));
        model.TryGet(Ct.TcpKey, out var after);
        Assert.Equal(before, after);
    }

    [Fact]
    public void Ipv6_tcp_follows_the_same_machine()
    {
        var model = new ConntrackModel();
        var syn = CtPacket.Tcp(Ct.A6, Ct.B6, 5555, 443, Ct.Syn, 94);
        var synAck = CtPacket.Tcp(Ct.B6, Ct.A6, 443, 5555, Ct.Syn | Ct.Ack, 94);
        Assert.Equal(CtResult.New, model.Process(syn, 0).Result);
        var v = model.Process(synAck, 1);
        Assert.Equal((CtResult.Reply, CtState.SynRecv, CtDirection.Reply), (v.Result, v.State, v.Direction));
        Assert.Equal(syn.Tuple, v.Key);
    }

    // Brings the A→B connection to `state` with real segments; returns the next free second.
    internal static ulong ReachState(ConntrackModel model, CtState state)
    {
        (CtDirection, byte)[] path = state switch
        {
            CtState.SynSent => [(O, Ct.Syn)],
            CtState.SynRecv => [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack)],
            CtState.Established => [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack)],
            CtState.FinWait => [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack), (R, Ct.Fin | Ct.Ack)],
            CtState.CloseWait => [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack), (R, Ct.Fin | Ct.Ack), (O, Ct.Ack)],
            CtState.LastAck => [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack), (R, Ct.Fin | Ct.Ack), (O, Ct.Ack), (O, Ct.Fin | Ct.Ack)],
            CtState.TimeWait => [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack), (R, Ct.Fin | Ct.Ack), (O, Ct.Ack), (O, Ct.Fin | Ct.Ack), (R, Ct.Ack)],
            CtState.Close => [(O, Ct.Syn), (R, Ct.Rst | Ct.Ack)],
            CtState.SynSent2 => [(O, Ct.Syn), (R, Ct.Syn)],
            _ => throw new ArgumentOutOfRangeException(nameof(state)),
        };
        Ct.Run(model, 1000, path);
        Assert.True(model.TryGet(Ct.TcpKey, out var e) && e.State == state, $"setup did not reach {state}");
        return 1000 + (ulong)path.Length;
    }
}
