using CsCheck;

namespace Membrane.Packets.Tests;

// Builder → dissector round trips over randomised headers: every field written is the field read back,
// every computed length and checksum verifies.
public class RoundTripPropertyTests
{
    [Fact]
    public void RandomPacketsRoundTripFieldByField()
    {
        PacketSpec.Gens.Packet.Sample(spec =>
        {
            var frame = spec.Build();
            var layers = new List<Layer>();
            var d = new PacketDissector(frame);
            while (d.TryNext(out var l))
            {
                layers.Add(l);
            }
            Assert.False(d.HasError, d.Error.Message);
            var r = new Reader(frame, layers);

            var eth = r.Next(LayerKind.Ethernet).AsEthernet(frame);
            Assert.Equal((spec.Dst, spec.Src), (eth.Destination, eth.Source));
            foreach (var v in spec.Vlans)
            {
                var tag = r.Next(LayerKind.Vlan).AsVlan(frame);
                Assert.Equal((v.Id, v.Priority, v.Dei), (tag.VlanId, tag.Priority, tag.DropEligible));
            }
            CheckNet(r, spec.Outer, spec.Tunnel is not null);
            if (spec.Tunnel is { } t)
            {
                if (t.Kind == 3)
                {
                    var g = r.Next(LayerKind.Geneve).AsGeneve(frame);
                    Assert.Equal(t.Vni, g.Vni);
                    var opts = new List<(ushort, byte, int)>();
                    foreach (var o in g.GetOptions())
                    {
                        opts.Add((o.OptionClass, o.Type, o.Data.Length));
                    }
                    Assert.Equal(t.GeneveOptions.Select(o => (o.Class, o.Type, (o.Data.Length + 3) & ~3)), opts);
                }
                else
                {
                    var v = r.Next(LayerKind.Vxlan).AsVxlan(frame);
                    Assert.Equal(t.Vni, v.Vni);
                    Assert.True(v.VniValid);
                }
                var inner = r.Next(LayerKind.Ethernet);
                Assert.Equal(1, inner.Depth);
                Assert.Equal((t.Dst, t.Src), (inner.AsEthernet(frame).Destination, inner.AsEthernet(frame).Source));
                CheckNet(r, t.Inner, false);
            }
            if (spec.Payload.Length > 0)
            {
                var p = r.Next(LayerKind.Payload);
                Assert.Equal(spec.Payload, p.Header(frame).ToArray());
            }
            Assert.True(r.Done, $"unexpected extra layer {r.Peek}");

            foreach (var l in layers)
            {
                var status = l.VerifyChecksum(frame);
                var net = l.Depth == 0 ? spec.Outer : spec.Tunnel!.Inner;
                bool unknown = l.Kind is LayerKind.Tcp or LayerKind.Udp or LayerKind.Icmpv6 && net.V6 is { FinalDestinationUnknown: true };
                Assert.Equal(unknown ? ChecksumStatus.Unverifiable : status is ChecksumStatus.NotApplicable ? status : ChecksumStatus.Good, status);
            }
        }, iter: 3000);
    }

    private sealed class Reader(byte[] frame, List<Layer> layers)
    {
        private int _i;
        public byte[] Frame => frame;
        public bool Done => _i == layers.Count;
        public string Peek => _i < layers.Count ? layers[_i].ToString() : "none";

        public Layer Next(LayerKind kind)
        {
            Assert.True(_i < layers.Count, $"missing {kind}");
            var l = layers[_i++];
            Assert.Equal(kind, l.Kind);
            return l;
        }
    }

    private static void CheckNet(Reader r, NetSpec n, bool tunnel)
    {
        var frame = r.Frame;
        if (n.V4 is { } v4)
        {
            var ip = r.Next(LayerKind.IPv4).AsIpv4(frame);
            Assert.Equal((v4.Source, v4.Destination, v4.Ttl, v4.Id, v4.Df, v4.Dscp, v4.Ecn),
                (ip.Source, ip.Destination, ip.TimeToLive, ip.Identification, ip.DontFragment, ip.Dscp, ip.Ecn));
            Assert.Equal(v4.Options, ip.Options[..v4.Options.Length].ToArray());
            Assert.Equal(20 + ((v4.Options.Length + 3) & ~3), ip.HeaderLength);
            Assert.False(ip.MoreFragments);
        }
        else
        {
            var v6 = n.V6!;
            var ip = r.Next(LayerKind.IPv6).AsIpv6(frame);
            Assert.Equal((v6.Source, v6.Destination, v6.HopLimit, v6.TrafficClass, v6.FlowLabel),
                (ip.Source, ip.Destination, ip.HopLimit, ip.TrafficClass, ip.FlowLabel));
            if (v6.HopByHop is { } h)
            {
                var ext = r.Next(LayerKind.Ipv6HopByHop).AsIpv6Extension(frame);
                Assert.Equal(h, ext.Data[..h.Length].ToArray());
                Assert.Equal(0, ext.Length % 8);
            }
            if (v6.DestinationOptions is { } d)
            {
                var ext = r.Next(LayerKind.Ipv6DestinationOptions).AsIpv6Extension(frame);
                Assert.Equal(d, ext.Data[..d.Length].ToArray());
            }
            if (v6.Routing is { } rt)
            {
                var ext = r.Next(LayerKind.Ipv6Routing).AsIpv6Extension(frame);
                Assert.Equal((v6.RoutingType, v6.SegmentsLeft), (ext.RoutingType, ext.SegmentsLeft));
                Assert.Equal(rt, ext.RoutingData[..rt.Length].ToArray());
            }
            if (v6.FragmentId is { } f)
            {
                var ext = r.Next(LayerKind.Ipv6Fragment).AsIpv6Extension(frame);
                Assert.Equal((f, false, 0), (ext.Identification, ext.MoreFragments, ext.FragmentOffsetBytes));
            }
        }
        if (tunnel)
        {
            r.Next(LayerKind.Udp);
            return;
        }
        if (n.L4.Tcp is { } t)
        {
            var tcp = r.Next(LayerKind.Tcp).AsTcp(frame);
            Assert.Equal((t.SourcePort, t.DestinationPort, t.Seq, t.Ack, t.Flags, t.Window, t.Urgent),
                (tcp.SourcePort, tcp.DestinationPort, tcp.SequenceNumber, tcp.AcknowledgmentNumber, tcp.Flags, tcp.Window, tcp.UrgentPointer));
            ushort? mss = null;
            byte? ws = null;
            bool sackOk = false;
            var sack = new List<(uint, uint)>();
            (uint, uint)? ts = null;
            byte[]? unknown = null;
            foreach (var o in tcp.GetOptions())
            {
                switch (o.Kind)
                {
                    case TcpOptionKind.MaximumSegmentSize: mss = o.MaximumSegmentSize; break;
                    case TcpOptionKind.WindowScale: ws = o.WindowScaleShift; break;
                    case TcpOptionKind.SackPermitted: sackOk = true; break;
                    case TcpOptionKind.Sack:
                        for (int i = 0; i < o.SackBlockCount; i++) { sack.Add(o.GetSackBlock(i)); }
                        break;
                    case TcpOptionKind.Timestamps: ts = (o.TimestampValue, o.TimestampEchoReply); break;
                    case (TcpOptionKind)0xFD: unknown = o.Data.ToArray(); break;
                }
            }
            Assert.Equal((t.Mss, t.WindowScale, t.SackPermitted, t.Timestamps), (mss, ws, sackOk, ts));
            Assert.Equal(t.Sack, sack);
            // The unknown kind is written last, and only when it still fits the 40 option bytes.
            PacketSpec.EncodeTcpOptions(t, out bool unknownWritten);
            var expectedUnknown = unknownWritten ? t.Unknown : null;
            Assert.Equal(expectedUnknown, unknown);
        }
        else if (n.L4.Udp is { } u)
        {
            var udp = r.Next(LayerKind.Udp).AsUdp(frame);
            Assert.Equal((u.SourcePort, u.DestinationPort), (udp.SourcePort, udp.DestinationPort));
            Assert.Equal(udp.Datagram.Length, udp.LengthField);
        }
        else
        {
            var i = n.L4.Icmp!;
            if (n.V4 is not null)
            {
                var icmp = r.Next(LayerKind.Icmpv4).AsIcmpv4(frame);
                Assert.Equal((i.Request ? Icmpv4Types.EchoRequest : Icmpv4Types.EchoReply, i.Id, i.Seq), (icmp.Type, icmp.Identifier, icmp.SequenceNumber));
            }
            else
            {
                var icmp = r.Next(LayerKind.Icmpv6).AsIcmpv6(frame);
                Assert.Equal((i.Request ? Icmpv6Types.EchoRequest : Icmpv6Types.EchoReply, i.Id, i.Seq), (icmp.Type, icmp.Identifier, icmp.SequenceNumber));
            }
        }
    }

    [Fact]
    public void BufferWriterReceivesTheSameBytesAsASpan()
    {
        PacketSpec.Gens.Packet.Sample(spec =>
        {
            var expected = spec.Build();
            var writer = new System.Buffers.ArrayBufferWriter<byte>();
            var b = PacketBuilder.Create(writer);
            b.Ethernet(spec.Dst, spec.Src, System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(expected.AsSpan(12)));
            b.Payload(expected.AsSpan(14));
            Assert.Equal(expected.Length, b.Finish());
            Assert.Equal(expected, writer.WrittenSpan.ToArray());
        }, iter: 200);
    }

    [Fact]
    public void BuilderRefusesADestinationTooSmall()
    {
        var e = Assert.Throws<ArgumentException>(() =>
        {
            var b = new PacketBuilder(new byte[30]);
            b.Ethernet(default, default);
            b.Ipv4(default, default);
        });
        Assert.StartsWith("failed to build packet", e.Message);
    }
}
