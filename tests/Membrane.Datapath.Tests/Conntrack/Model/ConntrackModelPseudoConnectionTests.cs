using Membrane.Datapath.Conntrack;

namespace Membrane.Datapath.Tests.Conntrack.Model;

/// <summary>UDP, ICMP echo and other protocols as pseudo-connections; ICMP errors; untracked packets (conntrack-spec.md steps 4–7).</summary>
public sealed class ConntrackModelPseudoConnectionTests
{
    [Fact]
    public void Udp_is_unreplied_until_the_responder_sends_and_replied_for_good_after()
    {
        var model = new ConntrackModel();
        var query = CtPacket.Udp(Ct.A, Ct.B, 53000, 53, 70);
        var answer = CtPacket.Udp(Ct.B, Ct.A, 53, 53000, 130);
        var key = query.Tuple;

        Assert.Equal(new CtVerdict(CtResult.New, CtReason.Opened, key, CtDirection.Original, CtState.None, CtState.Unreplied), model.Process(query, 10));
        Assert.Equal(new CtVerdict(CtResult.Established, CtReason.Tracked, key, CtDirection.Original, CtState.Unreplied, CtState.Unreplied), model.Process(query, 11));
        Assert.Equal(new CtVerdict(CtResult.Reply, CtReason.Tracked, key, CtDirection.Reply, CtState.Unreplied, CtState.Replied), model.Process(answer, 12));
        Assert.Equal(new CtVerdict(CtResult.Established, CtReason.Tracked, key, CtDirection.Original, CtState.Replied, CtState.Replied), model.Process(query, 13));

        Assert.True(model.TryGet(key, out var e));
        Assert.Equal(new CtConnection(key, CtState.Replied, new CtDirectionStats(3, 210, 0), new CtDirectionStats(1, 130, 0), 10, 13 + 60, 13, true), e);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(6)]
    public void Icmp_echo_request_and_reply_form_a_pseudo_connection_keyed_by_identifier(byte family)
    {
        var (a, b) = family == 4 ? (Ct.A, Ct.B) : (Ct.A6, Ct.B6);
        byte request = family == 4 ? (byte)8 : (byte)128, reply = family == 4 ? (byte)0 : (byte)129;
        var model = new ConntrackModel();

        var ping = CtPacket.Icmp(a, b, request, 0, 0x1234, 98);
        Assert.Equal((ushort)0x1234, ping.Tuple.SourcePort);
        Assert.Equal((ushort)0, ping.Tuple.DestinationPort);
        Assert.Equal(CtResult.New, model.Process(ping, 0).Result);

        var pong = CtPacket.Icmp(b, a, reply, 0, 0x1234, 98);
        Assert.Equal(ping.Tuple, pong.Tuple.Reverse());
        var v = model.Process(pong, 1);
        Assert.Equal((CtResult.Reply, CtState.Replied, ping.Tuple), (v.Result, v.State, v.Key));

        // A reply with another identifier answers no request.
        var stray = model.Process(CtPacket.Icmp(b, a, reply, 0, 0x9999, 98), 2);
        Assert.Equal((CtResult.Invalid, CtReason.IcmpEchoReplyWithoutRequest), (stray.Result, stray.Reason));
        Assert.Equal(1, model.Count);
    }

    [Fact]
    public void Other_protocols_are_keyed_without_ports()
    {
        var model = new ConntrackModel();
        var gre = CtPacket.Other(47, Ct.A, Ct.B, 100);
        Assert.Equal(new CtTuple(Ct.A, Ct.B, 0, 0, 47), gre.Tuple);
        Assert.Equal(CtResult.New, model.Process(gre, 0).Result);
        var back = model.Process(CtPacket.Other(47, Ct.B, Ct.A, 100), 1);
        Assert.Equal((CtResult.Reply, CtState.Replied), (back.Result, back.State));
    }

    [Fact]
    public void Icmpv4_errors_about_a_tracked_flow_are_related_in_either_orientation_and_leave_it_untouched()
    {
        var model = new ConntrackModel();
        ConntrackModelTcpScenarioTests.ReachState(model, CtState.Established);
        model.TryGet(Ct.TcpKey, out var before);

        // A router tells A that B is unreachable, quoting A's segment (RFC 792 type 3 code 1).
        var aboutOriginal = model.Process(CtPacket.IcmpError(Ct.R, Ct.A, 3, 1, Ct.TcpKey, 70), 2000);
        Assert.Equal(new CtVerdict(CtResult.Related, CtReason.IcmpErrorRelated, Ct.TcpKey, CtDirection.Original, CtState.Established, CtState.Established), aboutOriginal);
        // Time exceeded for one of B's replies, sent to B.
        var aboutReply = model.Process(CtPacket.IcmpError(Ct.R, Ct.B, 11, 0, Ct.TcpKey.Reverse(), 70), 2001);
        Assert.Equal((CtResult.Related, CtDirection.Reply), (aboutReply.Result, aboutReply.Direction));

        model.TryGet(Ct.TcpKey, out var after);
        Assert.Equal(before, after);
        Assert.Equal(1, model.Count);
    }

    [Fact]
    public void Icmpv6_packet_too_big_about_a_tracked_udp_flow_is_related()
    {
        var model = new ConntrackModel();
        var flow = CtPacket.Udp(Ct.A6, Ct.B6, 4000, 4433, 1400);
        model.Process(flow, 0);
        var v = model.Process(CtPacket.IcmpError(Ct.R6, Ct.A6, 2, 0, flow.Tuple, 1280), 1);
        Assert.Equal((CtResult.Related, flow.Tuple), (v.Result, v.Key));
    }

    [Fact]
    public void An_icmp_error_about_a_ping_is_related_to_the_echo_pseudo_connection()
    {
        var model = new ConntrackModel();
        var ping = CtPacket.Icmp(Ct.A, Ct.B, 8, 0, 77, 84);
        model.Process(ping, 0);
        var v = model.Process(CtPacket.IcmpError(Ct.R, Ct.A, 11, 0, ping.Tuple, 112), 1);
        Assert.Equal(CtResult.Related, v.Result);
    }

    [Fact]
    public void Icmp_errors_about_unknown_flows_or_with_unusable_quotes_are_invalid()
    {
        var model = new ConntrackModel();
        ConntrackModelTcpScenarioTests.ReachState(model, CtState.Established);
        var other = new CtTuple(Ct.A, Ct.B, 40001, 80, 6);
        var unrelated = model.Process(CtPacket.IcmpError(Ct.R, Ct.A, 3, 3, other, 70), 2000);
        Assert.Equal((CtResult.Invalid, CtReason.IcmpErrorUnrelated), (unrelated.Result, unrelated.Reason));
        var noQuote = model.Process(CtPacket.IcmpError(Ct.R, Ct.A, 3, 3, null, 70), 2000);
        Assert.Equal((CtResult.Invalid, CtReason.IcmpErrorQuoteUnusable), (noQuote.Result, noQuote.Reason));
        var v6 = model.Process(CtPacket.IcmpError(Ct.R6, Ct.A6, 1, 4, new CtTuple(Ct.A6, Ct.B6, 1, 2, 17), 70), 2000);
        Assert.Equal((CtResult.Invalid, CtReason.IcmpErrorUnrelated), (v6.Result, v6.Reason));
    }

    [Fact]
    public void An_icmp_error_about_an_expired_flow_is_invalid()
    {
        var model = new ConntrackModel();
        var flow = CtPacket.Udp(Ct.A, Ct.B, 1000, 2000, 60);
        model.Process(flow, 0);
        Assert.Equal(CtResult.Related, model.Process(CtPacket.IcmpError(Ct.R, Ct.A, 3, 3, flow.Tuple, 70), 60).Result);
        Assert.Equal(CtResult.Invalid, model.Process(CtPacket.IcmpError(Ct.R, Ct.A, 3, 3, flow.Tuple, 70), 61).Result);
    }

    [Theory]
    [InlineData(4, (byte)13)]  // timestamp (RFC 792)
    [InlineData(4, (byte)17)]  // address mask request (RFC 950)
    [InlineData(4, (byte)9)]   // router advertisement (RFC 1256)
    [InlineData(6, (byte)200)] // private experimentation (RFC 4443 §2.1)
    [InlineData(6, (byte)139)] // node information query (RFC 4620)
    [InlineData(6, (byte)100)] // an error type that quotes nothing conntrack knows
    public void Other_icmp_types_are_invalid(byte family, byte type)
    {
        var model = new ConntrackModel();
        var (a, b) = family == 4 ? (Ct.A, Ct.B) : (Ct.A6, Ct.B6);
        var v = model.Process(CtPacket.Icmp(a, b, type, 0, 5, 64), 0);
        Assert.Equal((CtResult.Invalid, CtReason.IcmpTypeNotTracked), (v.Result, v.Reason));
        Assert.Equal(0, model.Count);
    }

    [Theory]
    [InlineData((byte)130)] // MLD query
    [InlineData((byte)131)]
    [InlineData((byte)132)]
    [InlineData((byte)133)] // router solicitation
    [InlineData((byte)134)]
    [InlineData((byte)135)] // neighbour solicitation
    [InlineData((byte)136)]
    [InlineData((byte)137)] // redirect
    [InlineData((byte)143)] // MLDv2 report
    public void Icmpv6_neighbour_discovery_and_mld_are_untracked(byte type)
    {
        var model = new ConntrackModel();
        var v = model.Process(CtPacket.Icmp(Ct.A6, Ct.B6, type, 0, 0, 86), 0);
        Assert.Equal((CtResult.Untracked, CtReason.Icmpv6NeighbourDiscoveryOrMld), (v.Result, v.Reason));
        Assert.Equal(0, model.Count);
    }

    [Fact]
    public void Icmpv4_types_130_to_137_are_not_nd_and_stay_invalid()
    {
        var v = new ConntrackModel().Process(CtPacket.Icmp(Ct.A, Ct.B, 135, 0, 0, 64), 0);
        Assert.Equal(CtResult.Invalid, v.Result);
    }

    [Theory]
    [InlineData("fe80::1")]
    [InlineData("febf:ffff::1")] // still fe80::/10
    [InlineData("::")]
    public void Ipv6_from_link_local_or_unspecified_sources_is_untracked(string source)
    {
        var model = new ConntrackModel();
        var src = Ct.V6(source);
        Assert.True(CtPacket.Tcp(src, Ct.B6, 1, 2, Ct.Syn, 60).HasLinkLocalSource);
        var tcp = model.Process(CtPacket.Tcp(src, Ct.B6, 1, 2, Ct.Syn, 60), 0);
        var error = model.Process(CtPacket.IcmpError(src, Ct.B6, 1, 0, new CtTuple(Ct.B6, src, 2, 1, 6), 60), 0);
        Assert.Equal((CtResult.Untracked, CtReason.Ipv6LinkLocalSource), (tcp.Result, tcp.Reason));
        Assert.Equal((CtResult.Untracked, CtReason.Ipv6LinkLocalSource), (error.Result, error.Reason));
        Assert.Equal(0, model.Count);
    }

    [Fact]
    public void Addresses_next_to_link_local_are_tracked()
    {
        Assert.False(CtPacket.Tcp(Ct.V6("fec0::1"), Ct.B6, 1, 2, Ct.Syn, 60).HasLinkLocalSource);
        Assert.False(CtPacket.Tcp(Ct.V6("fe7f::1"), Ct.B6, 1, 2, Ct.Syn, 60).HasLinkLocalSource);
        Assert.False(CtPacket.Tcp(Ct.V6("::1"), Ct.B6, 1, 2, Ct.Syn, 60).HasLinkLocalSource);
        Assert.False(CtPacket.Tcp(Ct.V4("169.254.0.1"), Ct.B, 1, 2, Ct.Syn, 60).HasLinkLocalSource); // the spec names IPv6 only
    }

    [Theory]
    [InlineData(4)]
    [InlineData(6)]
    public void Later_fragments_are_untracked_even_of_a_tracked_flow(byte family)
    {
        var model = new ConntrackModel();
        var (a, b) = family == 4 ? (Ct.A, Ct.B) : (Ct.A6, Ct.B6);
        model.Process(CtPacket.Udp(a, b, 1, 2, 1500), 0);
        var v = model.Process(CtPacket.LaterFragment(17, a, b, 800), 0);
        Assert.Equal((CtResult.Untracked, CtReason.LaterFragment), (v.Result, v.Reason));
        Assert.True(model.TryGet(new CtTuple(a, b, 1, 2, 17), out var e));
        Assert.Equal(1UL, e.Original.Packets);
    }
}
