using System.Buffers.Binary;
using Membrane.Datapath.Conntrack;
using Membrane.Packets;

namespace Membrane.Datapath.Tests.Conntrack.Model;

/// <summary>
/// <see cref="CtPacket.TryFromFrame"/>: the same Ethernet bytes the differential test gives BPF_PROG_TEST_RUN
/// become the model's packet. Frames are built with Membrane.Packets' builder.
/// </summary>
public sealed class CtPacketFromFrameTests
{
    private delegate void Layers(ref PacketBuilder b);

    private static readonly MacAddress PodMac = MacAddress.Parse("02:00:00:00:00:01");
    private static readonly MacAddress GatewayMac = MacAddress.Parse("02:00:00:00:00:02");

    private static byte[] Frame(Layers layers, bool vlan = false)
    {
        var buffer = new byte[4096];
        var b = new PacketBuilder(buffer);
        b.Ethernet(GatewayMac, PodMac);
        if (vlan)
        {
            b.Vlan(42);
        }
        layers(ref b);
        return buffer[..b.Finish()];
    }

    private static Ipv4Address V4(IpAddress a) => a.AsIpv4;
    private static Ipv6Address V6(IpAddress a) => a.Bits;

    private static CtPacket Read(byte[] frame)
    {
        Assert.True(CtPacket.TryFromFrame(frame, out var packet, out var error), error.Message);
        Assert.Equal(CtFrameErrorReason.None, error.Reason);
        return packet;
    }

    private static byte[] Ports(ushort source, ushort destination)
    {
        var quoted = new byte[8]; // RFC 792: the quote carries the first 8 bytes of the transport header
        BinaryPrimitives.WriteUInt16BigEndian(quoted, source);
        BinaryPrimitives.WriteUInt16BigEndian(quoted.AsSpan(2), destination);
        BinaryPrimitives.WriteUInt32BigEndian(quoted.AsSpan(4), 0xDEADBEEF);
        return quoted;
    }

    [Fact]
    public void A_tcp_syn_over_ipv4_gives_the_tuple_the_flags_and_the_frame_length()
    {
        var frame = Frame((ref PacketBuilder b) =>
        {
            b.Ipv4(V4(Ct.A), V4(Ct.B));
            b.Tcp(Ct.ClientPort, Ct.ServerPort, 1000, 0, TcpFlags.Syn | TcpFlags.Ece | TcpFlags.Cwr);
        });
        var p = Read(frame);
        Assert.Equal(Ct.TcpKey, p.Tuple);
        Assert.Equal(0xC2, p.TcpFlags); // the whole flags byte, ECN bits included (tcp_flags_orig records them)
        Assert.Equal((uint)frame.Length, p.Length);
        Assert.False(p.IsLaterFragment);
        Assert.Equal(TcpFlagIndex.Syn, TcpConntrack.FlagIndex(p.TcpFlags));
    }

    [Fact]
    public void A_vlan_tagged_udp_datagram_is_read_behind_the_tag()
    {
        var p = Read(Frame((ref PacketBuilder b) =>
        {
            b.Ipv4(V4(Ct.A), V4(Ct.B));
            b.Udp(5353, 53);
            b.Payload(20);
        }, vlan: true));
        Assert.Equal(new CtTuple(Ct.A, Ct.B, 5353, 53, 17), p.Tuple);
    }

    [Fact]
    public void Ipv6_extension_headers_are_walked_to_the_transport_header()
    {
        var p = Read(Frame((ref PacketBuilder b) =>
        {
            b.Ipv6(V6(Ct.A6), V6(Ct.B6));
            b.Ipv6HopByHop();
            b.Ipv6DestinationOptions();
            b.Tcp(1234, 443, 1, 1, TcpFlags.Fin | TcpFlags.Ack);
        }));
        Assert.Equal(new CtTuple(Ct.A6, Ct.B6, 1234, 443, 6), p.Tuple);
        Assert.Equal(0x11, p.TcpFlags);
    }

    [Fact]
    public void A_tunnel_is_tracked_by_its_outer_header()
    {
        var p = Read(Frame((ref PacketBuilder b) =>
        {
            b.Ipv4(V4(Ct.A), V4(Ct.B));
            b.Udp(50000, 4789);
            b.Vxlan(7);
            b.Ethernet(PodMac, GatewayMac);
            b.Ipv4(new Ipv4Address(10, 0, 0, 1), new Ipv4Address(10, 0, 0, 2));
            b.Tcp(1, 2, 0, 0, TcpFlags.Syn);
        }));
        Assert.Equal(new CtTuple(Ct.A, Ct.B, 50000, 4789, 17), p.Tuple);
    }

    [Fact]
    public void Icmp_echo_ports_follow_the_spec_keys()
    {
        var request = Read(Frame((ref PacketBuilder b) => { b.Ipv4(V4(Ct.A), V4(Ct.B)); b.Icmpv4Echo(true, 0x4242, 1); b.Payload(56); }));
        var reply = Read(Frame((ref PacketBuilder b) => { b.Ipv6(V6(Ct.B6), V6(Ct.A6)); b.Icmpv6Echo(false, 0x4242, 1); }));
        Assert.Equal(new CtTuple(Ct.A, Ct.B, 0x4242, 0, 1), request.Tuple);
        Assert.Equal((byte)8, request.IcmpType);
        Assert.Equal((ushort)0x4242, request.IcmpIdentifier);
        Assert.Equal(new CtTuple(Ct.B6, Ct.A6, 0, 0x4242, 58), reply.Tuple);
    }

    [Fact]
    public void An_icmpv4_error_yields_the_quoted_tuple_and_is_related_to_the_tracked_flow()
    {
        var frame = Frame((ref PacketBuilder b) =>
        {
            b.Ipv4(V4(Ct.R), V4(Ct.A));
            b.Icmpv4(Icmpv4Types.DestinationUnreachable, 1);
            b.Ipv4(V4(Ct.A), V4(Ct.B), protocol: IpProtocols.Tcp, totalLength: 60); // the original was longer than the quote
            b.Payload(Ports(Ct.ClientPort, Ct.ServerPort));
        });
        var p = Read(frame);
        Assert.Equal(Ct.TcpKey, p.QuotedTuple);
        Assert.Equal(new CtTuple(Ct.R, Ct.A, 0, 0, 1), p.Tuple);

        var model = new ConntrackModel();
        ConntrackModelTcpScenarioTests.ReachState(model, CtState.Established);
        Assert.Equal(CtResult.Related, model.Process(p, 2000).Result);
    }

    [Fact]
    public void An_icmpv6_error_yields_the_quoted_tuple()
    {
        var p = Read(Frame((ref PacketBuilder b) =>
        {
            b.Ipv6(V6(Ct.R6), V6(Ct.A6));
            b.Icmpv6(Icmpv6Types.PacketTooBig, 0, 1280);
            b.Ipv6(V6(Ct.A6), V6(Ct.B6), nextHeader: IpProtocols.Udp, payloadLength: 1400);
            b.Payload(Ports(4000, 4433));
        }));
        Assert.Equal(new CtTuple(Ct.A6, Ct.B6, 4000, 4433, 17), p.QuotedTuple);
    }

    [Fact]
    public void An_icmp_error_about_a_ping_quotes_the_echo_key()
    {
        var p = Read(Frame((ref PacketBuilder b) =>
        {
            b.Ipv4(V4(Ct.R), V4(Ct.A));
            b.Icmpv4(Icmpv4Types.TimeExceeded, 0);
            b.Ipv4(V4(Ct.A), V4(Ct.B), protocol: IpProtocols.Icmp, totalLength: 84);
            var echo = new byte[8];
            echo[0] = Icmpv4Types.EchoRequest;
            BinaryPrimitives.WriteUInt16BigEndian(echo.AsSpan(4), 99);
            b.Payload(echo);
        }));
        Assert.Equal(new CtTuple(Ct.A, Ct.B, 99, 0, 1), p.QuotedTuple);
    }

    [Fact]
    public void An_icmp_error_whose_quote_stops_before_the_ports_is_invalid_in_the_model()
    {
        var p = Read(Frame((ref PacketBuilder b) =>
        {
            b.Ipv4(V4(Ct.R), V4(Ct.A));
            b.Icmpv4(Icmpv4Types.DestinationUnreachable, 1);
            b.Ipv4(V4(Ct.A), V4(Ct.B), protocol: IpProtocols.Tcp, totalLength: 60);
            b.Payload(2); // half of the source port
        }));
        Assert.Null(p.QuotedTuple);
        var v = new ConntrackModel().Process(p, 0);
        Assert.Equal((CtResult.Invalid, CtReason.IcmpErrorQuoteUnusable), (v.Result, v.Reason));
    }

    [Fact]
    public void Fragments_later_ones_are_marked_and_the_first_gives_its_ports()
    {
        var first = Read(Frame((ref PacketBuilder b) => { b.Ipv4(V4(Ct.A), V4(Ct.B), identification: 9, moreFragments: true); b.Udp(1, 2); b.Payload(64); }));
        var later4 = Read(Frame((ref PacketBuilder b) => { b.Ipv4(V4(Ct.A), V4(Ct.B), identification: 9, fragmentOffset: 9, protocol: IpProtocols.Udp); b.Payload(64); }));
        var later6 = Read(Frame((ref PacketBuilder b) => { b.Ipv6(V6(Ct.A6), V6(Ct.B6)); b.Ipv6Fragment(100, false, 7, nextHeader: IpProtocols.Tcp); b.Payload(40); }));
        Assert.Equal(new CtTuple(Ct.A, Ct.B, 1, 2, 17), first.Tuple);
        Assert.False(first.IsLaterFragment);
        Assert.True(later4.IsLaterFragment);
        Assert.Equal(new CtTuple(Ct.A, Ct.B, 0, 0, 17), later4.Tuple);
        Assert.True(later6.IsLaterFragment);
        Assert.Equal((byte)6, later6.Protocol);
    }

    [Fact]
    public void Neighbour_solicitation_frames_are_untracked()
    {
        var p = Read(Frame((ref PacketBuilder b) => { b.Ipv6(V6(Ct.A6), V6(Ct.B6), hopLimit: 255); b.NeighborSolicitation(V6(Ct.B6), PodMac); }));
        Assert.Equal(CtResult.Untracked, new ConntrackModel().Process(p, 0).Result);
    }

    [Fact]
    public void Out_of_window_sequence_numbers_do_not_change_the_packet()
    {
        var inWindow = Read(Frame((ref PacketBuilder b) => { b.Ipv4(V4(Ct.A), V4(Ct.B)); b.Tcp(Ct.ClientPort, Ct.ServerPort, 1001, 5001, TcpFlags.Ack); }));
        var junk = Read(Frame((ref PacketBuilder b) => { b.Ipv4(V4(Ct.A), V4(Ct.B)); b.Tcp(Ct.ClientPort, Ct.ServerPort, 0x80000000, 12, TcpFlags.Ack); }));
        Assert.Equal(inWindow.ToString(), junk.ToString());
        var model = new ConntrackModel();
        ConntrackModelTcpScenarioTests.ReachState(model, CtState.Established);
        Assert.Equal((CtResult.Established, CtState.Established), (model.Process(junk, 2000).Result, model.Process(junk, 2000).State));
    }

    [Fact]
    public void A_handshake_from_frames_walks_the_model_like_abstract_packets()
    {
        static byte[] Segment(bool fromClient, TcpFlags flags) => Frame((ref PacketBuilder b) =>
        {
            if (fromClient)
            {
                b.Ipv4(V4(Ct.A), V4(Ct.B));
                b.Tcp(Ct.ClientPort, Ct.ServerPort, 1, 1, flags);
            }
            else
            {
                b.Ipv4(V4(Ct.B), V4(Ct.A));
                b.Tcp(Ct.ServerPort, Ct.ClientPort, 1, 1, flags);
            }
        });
        var model = new ConntrackModel();
        var results = new[]
        {
            model.Process(CtPacket.FromFrame(Segment(true, TcpFlags.Syn)), 0),
            model.Process(CtPacket.FromFrame(Segment(false, TcpFlags.Syn | TcpFlags.Ack)), 0),
            model.Process(CtPacket.FromFrame(Segment(true, TcpFlags.Ack)), 0),
        }.Select(v => (v.Result, v.State));
        Assert.Equal([(CtResult.New, CtState.SynSent), (CtResult.Reply, CtState.SynRecv), (CtResult.Established, CtState.Established)], results);
        Assert.True(model.TryGet(Ct.TcpKey, out var e));
        Assert.Equal(3UL * 54, e.Original.Bytes + e.Reply.Bytes); // 14 + 20 + 20 bytes each, skb->len
    }

    [Fact]
    public void Ethernet_padding_counts_in_the_length_but_is_not_read_as_l4()
    {
        var frame = Frame((ref PacketBuilder b) => { b.Ipv4(V4(Ct.A), V4(Ct.B)); b.Udp(7, 9); });
        var padded = new byte[60];
        frame.CopyTo(padded, 0);
        var p = Read(padded);
        Assert.Equal(60u, p.Length);
        Assert.Equal(new CtTuple(Ct.A, Ct.B, 7, 9, 17), p.Tuple);
    }

    [Fact]
    public void Arp_is_not_ip()
    {
        var frame = Frame((ref PacketBuilder b) => b.Arp(ArpOperation.Request, PodMac, V4(Ct.A), default, V4(Ct.B)));
        Assert.False(CtPacket.TryFromFrame(frame, out _, out var error));
        Assert.Equal(CtFrameErrorReason.NotIp, error.Reason);
        Assert.Contains("neither IPv4 nor IPv6", error.Message);
    }

    [Fact]
    public void A_tcp_header_cut_short_is_reported_with_its_offset()
    {
        var frame = Frame((ref PacketBuilder b) => { b.Ipv4(V4(Ct.A), V4(Ct.B), protocol: IpProtocols.Tcp); b.Payload(12); });
        Assert.False(CtPacket.TryFromFrame(frame, out _, out var error));
        Assert.Equal((CtFrameErrorReason.TransportTruncated, 34), (error.Reason, error.Offset));
        Assert.StartsWith("failed to read a conntrack packet from the frame:", error.Message);
    }

    [Fact]
    public void A_malformed_ip_header_is_reported_with_the_parse_error()
    {
        var frame = Frame((ref PacketBuilder b) => { b.Ipv4(V4(Ct.A), V4(Ct.B)); b.Udp(1, 2); });
        frame[14] = 0x55; // version 5
        Assert.False(CtPacket.TryFromFrame(frame, out _, out var error));
        Assert.Equal(CtFrameErrorReason.Malformed, error.Reason);
        Assert.Equal((ParseErrorReason.BadVersion, 14), (error.Parse.Reason, error.Parse.Offset));
        var thrown = Assert.Throws<FormatException>(() => CtPacket.FromFrame(frame));
        Assert.Equal(error.Message, thrown.Message);
    }

    [Fact]
    public void Every_truncation_of_a_valid_frame_is_either_read_or_rejected_without_throwing()
    {
        // Kestrel-style: feed every prefix. A prefix that ends inside the headers must fail with a reason; none may throw.
        var frame = Frame((ref PacketBuilder b) =>
        {
            b.Ipv4(V4(Ct.R), V4(Ct.A));
            b.Icmpv4(Icmpv4Types.DestinationUnreachable, 1);
            b.Ipv4(V4(Ct.A), V4(Ct.B), protocol: IpProtocols.Tcp, totalLength: 60);
            b.Payload(Ports(Ct.ClientPort, Ct.ServerPort));
        });
        for (int n = 0; n < frame.Length; n++)
        {
            bool ok = CtPacket.TryFromFrame(frame.AsSpan(0, n), out _, out var error);
            Assert.False(ok, $"prefix {n} was read although its IPv4 total length exceeds it");
            Assert.NotEqual(CtFrameErrorReason.None, error.Reason);
        }
        Assert.True(CtPacket.TryFromFrame(frame, out _, out _));
    }
}

/// <summary>Untrusted bytes: TryFromFrame never throws, and whatever it accepts the model can process.</summary>
public sealed class CtPacketFromFrameRobustnessTests
{
    private delegate void Layers(ref PacketBuilder b);

    private static byte[] Frame(Layers layers)
    {
        var buffer = new byte[2048];
        var b = new PacketBuilder(buffer);
        b.Ethernet(MacAddress.Broadcast, new MacAddress(0x020000000001));
        layers(ref b);
        return buffer[..b.Finish()];
    }

    [Fact]
    public void Icmp_of_the_other_family_is_an_ordinary_protocol()
    {
        var frame = Frame((ref PacketBuilder b) => { b.Ipv4(Ct.A.AsIpv4, Ct.B.AsIpv4, protocol: IpProtocols.Icmpv6); b.Payload(8); });
        Assert.True(CtPacket.TryFromFrame(frame, out var p, out var error), error.Message);
        Assert.False(p.IsIcmp);
        var v = new ConntrackModel().Process(p, 0);
        Assert.Equal((CtResult.New, CtState.Unreplied, new CtTuple(Ct.A, Ct.B, 0, 0, 58)), (v.Result, v.State, v.Key));
    }

    [Fact]
    public void Random_byte_flips_never_throw()
    {
        byte[][] seeds =
        [
            Frame((ref PacketBuilder b) => { b.Ipv4(Ct.A.AsIpv4, Ct.B.AsIpv4); b.Tcp(1, 2, 3, 4, TcpFlags.Syn); }),
            Frame((ref PacketBuilder b) => { b.Ipv6(Ct.A6.Bits, Ct.B6.Bits); b.Ipv6HopByHop(); b.Udp(1, 2); b.Payload(16); }),
            Frame((ref PacketBuilder b) =>
            {
                b.Ipv4(Ct.R.AsIpv4, Ct.A.AsIpv4);
                b.Icmpv4(3, 3);
                b.Ipv4(Ct.A.AsIpv4, Ct.B.AsIpv4, protocol: IpProtocols.Udp, totalLength: 100);
                b.Payload(8);
            }),
            Frame((ref PacketBuilder b) =>
            {
                b.Ipv6(Ct.R6.Bits, Ct.A6.Bits);
                b.Icmpv6(1, 4);
                b.Ipv6(Ct.A6.Bits, Ct.B6.Bits, nextHeader: IpProtocols.Fragment, payloadLength: 100);
                b.Payload(16);
            }),
        ];
        var random = new Random(5);
        var model = new ConntrackModel();
        int accepted = 0, rejected = 0;
        for (int i = 0; i < 20_000; i++)
        {
            var frame = (byte[])seeds[i % seeds.Length].Clone();
            for (int flips = random.Next(1, 4); flips > 0; flips--)
            {
                frame[random.Next(frame.Length)] = (byte)random.Next(256);
            }
            int length = random.Next(4) == 0 ? random.Next(frame.Length) : frame.Length;
            if (CtPacket.TryFromFrame(frame.AsSpan(0, length), out var packet, out var error))
            {
                model.Process(packet, (ulong)i);
                accepted++;
            }
            else
            {
                Assert.NotEqual(CtFrameErrorReason.None, error.Reason);
                rejected++;
            }
        }
        // Both paths were exercised, so the loop tested something.
        Assert.True(accepted > 1000 && rejected > 1000, $"accepted {accepted}, rejected {rejected}");
    }
}
