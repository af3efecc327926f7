using Membrane.Datapath.Conntrack;

namespace Membrane.Datapath.Tests.Conntrack.Model;

/// <summary>Lifetimes per timeout class with a fake clock, garbage collection, and the table operations.</summary>
public sealed class ConntrackModelExpiryTests
{
    public static TheoryData<CtState, ulong> TcpClasses() => new()
    {
        { CtState.SynSent, 60 },
        { CtState.SynRecv, 60 },
        { CtState.SynSent2, 60 },
        { CtState.Established, 21600 },
        { CtState.FinWait, 21600 },
        { CtState.CloseWait, 21600 },
        { CtState.LastAck, 10 },
        { CtState.TimeWait, 10 },
        { CtState.Close, 10 },
    };

    [Theory]
    [MemberData(nameof(TcpClasses))]
    public void A_tcp_entry_lives_exactly_its_state_timeout_after_the_last_packet(CtState state, ulong timeout)
    {
        var model = new ConntrackModel();
        ulong last = ConntrackModelTcpScenarioTests.ReachState(model, state) - 1;
        Assert.True(model.TryGet(Ct.TcpKey, out var e));
        Assert.Equal(last + timeout, e.Lifetime);

        Assert.True(model.TryLookup(Ct.TcpKey, last + timeout, out _, out _), "alive at its lifetime");
        Assert.False(model.TryLookup(Ct.TcpKey, last + timeout + 1, out _, out _), "expired one second after");
        Assert.Equal(0, model.Collect(last + timeout));
        Assert.Equal(1, model.Collect(last + timeout + 1));
        Assert.Equal(0, model.Count);
    }

    [Fact]
    public void An_expired_entry_is_absent_for_lookup_and_overwritten_by_the_next_first_packet()
    {
        var model = new ConntrackModel();
        var flow = CtPacket.Udp(Ct.A, Ct.B, 1, 2, 100);
        model.Process(flow, 0);
        model.Process(CtPacket.Udp(Ct.B, Ct.A, 2, 1, 100), 1); // REPLIED, lifetime 61
        var v = model.Process(flow, 62);
        Assert.Equal(new CtVerdict(CtResult.New, CtReason.Opened, flow.Tuple, CtDirection.Original, CtState.None, CtState.Unreplied), v);
        Assert.True(model.TryGet(flow.Tuple, out var e));
        Assert.Equal(new CtConnection(flow.Tuple, CtState.Unreplied, new CtDirectionStats(1, 100, 0), default, 62, 122, 62, false), e);
    }

    [Fact]
    public void A_reply_to_an_expired_flow_opens_a_connection_in_its_own_orientation()
    {
        var model = new ConntrackModel();
        var flow = CtPacket.Udp(Ct.A, Ct.B, 1, 2, 100);
        model.Process(flow, 0);
        var late = CtPacket.Udp(Ct.B, Ct.A, 2, 1, 100);
        var v = model.Process(late, 61);
        Assert.Equal((CtResult.New, late.Tuple, CtState.Unreplied), (v.Result, v.Key, v.State));
        Assert.Equal(2, model.Count); // the expired one stays until GC
        Assert.Equal(1, model.Collect(61));
        Assert.True(model.TryGet(late.Tuple, out _));
    }

    [Fact]
    public void Configured_timeouts_are_used()
    {
        var model = new ConntrackModel(new ConntrackTimeouts
        {
            TcpSyn = TimeSpan.FromSeconds(5),
            TcpEstablished = TimeSpan.FromSeconds(600),
            TcpClose = TimeSpan.FromSeconds(2),
            Other = TimeSpan.FromSeconds(30),
        });
        model.Process(Ct.Tcp(CtDirection.Original, Ct.Syn), 100);
        model.TryGet(Ct.TcpKey, out var syn);
        Assert.Equal(105UL, syn.Lifetime);
        model.Process(Ct.Tcp(CtDirection.Reply, Ct.Syn | Ct.Ack), 101);
        model.Process(Ct.Tcp(CtDirection.Original, Ct.Ack), 102);
        model.TryGet(Ct.TcpKey, out var established);
        Assert.Equal(702UL, established.Lifetime);
        model.Process(Ct.Tcp(CtDirection.Original, Ct.Rst), 103);
        model.TryGet(Ct.TcpKey, out var closed);
        Assert.Equal(105UL, closed.Lifetime);
        var udp = CtPacket.Udp(Ct.A, Ct.B, 1, 2, 10);
        model.Process(udp, 100);
        model.TryGet(udp.Tuple, out var u);
        Assert.Equal(130UL, u.Lifetime);
    }

    [Fact]
    public void An_ignored_segment_does_not_extend_the_lifetime()
    {
        var model = new ConntrackModel();
        ConntrackModelTcpScenarioTests.ReachState(model, CtState.SynRecv);
        model.TryGet(Ct.TcpKey, out var before);
        // A retransmitted SYN-ACK 50 s later is ignored (sIG): the entry still expires at its old lifetime.
        var v = model.Process(Ct.Tcp(CtDirection.Reply, Ct.Syn | Ct.Ack), before.Lifetime - 1);
        Assert.Equal(CtReason.TcpIgnored, v.Reason);
        model.TryGet(Ct.TcpKey, out var after);
        Assert.Equal(before.Lifetime, after.Lifetime);
    }

    [Fact]
    public void Entries_remove_and_clear()
    {
        var model = new ConntrackModel();
        model.Process(CtPacket.Udp(Ct.A, Ct.B, 1, 2, 10), 0);
        model.Process(CtPacket.Udp(Ct.A, Ct.B, 3, 4, 10), 0);
        model.Process(Ct.Tcp(CtDirection.Original, Ct.Syn), 0);
        Assert.Equal(3, model.Entries.Count());
        Assert.Equal([CtState.SynSent, CtState.Unreplied, CtState.Unreplied], model.Entries.Select(e => e.State).Order());
        Assert.True(model.Remove(Ct.TcpKey));
        Assert.False(model.Remove(Ct.TcpKey));
        Assert.Equal(2, model.Count);
        // After removal the next segment is judged as a first packet: a SYN-ACK cannot open.
        Assert.Equal(CtResult.Invalid, model.Process(Ct.Tcp(CtDirection.Reply, Ct.Syn | Ct.Ack), 1).Result);
        model.Clear();
        Assert.Empty(model.Entries);
    }

    [Fact]
    public void Collect_removes_only_the_expired_entries()
    {
        var model = new ConntrackModel();
        model.Process(CtPacket.Udp(Ct.A, Ct.B, 1, 2, 10), 0);    // lifetime 60
        model.Process(CtPacket.Udp(Ct.A, Ct.B, 3, 4, 10), 30);   // lifetime 90
        model.Process(Ct.Tcp(CtDirection.Original, Ct.Ack), 0);  // ESTABLISHED, lifetime 21600
        Assert.Equal(1, model.Collect(61));
        Assert.Equal(1, model.Collect(91));
        Assert.Equal(0, model.Collect(21600));
        Assert.Equal(1, model.Collect(21601));
        Assert.Equal(0, model.Count);
    }
}
