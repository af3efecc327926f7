namespace Membrane.Packets.Tests;

public class DissectorTests
{
    private static List<Layer> Walk(ReadOnlySpan<byte> frame, out ParseError error, LinkType link = LinkType.Ethernet, DissectorOptions? options = null)
    {
        var layers = new List<Layer>();
        var d = new PacketDissector(frame, link, options);
        while (d.TryNext(out var layer))
        {
            layers.Add(layer);
        }
        error = d.Error;
        return layers;
    }

    private static byte[] Frame(string name) => SampleFrames.All.Single(f => f.Name == name).Frame;

    private static LayerKind[] Kinds(List<Layer> layers) => layers.Select(l => l.Kind).ToArray();

    [Theory]
    [InlineData("eth-ipv4-tcp-options", new[] { LayerKind.Ethernet, LayerKind.IPv4, LayerKind.Tcp })]
    [InlineData("eth-ipv4options-udp", new[] { LayerKind.Ethernet, LayerKind.IPv4, LayerKind.Udp, LayerKind.Payload })]
    [InlineData("qinq-ipv4-icmp-echo", new[] { LayerKind.Ethernet, LayerKind.Vlan, LayerKind.Vlan, LayerKind.IPv4, LayerKind.Icmpv4, LayerKind.Payload })]
    [InlineData("eth-arp", new[] { LayerKind.Ethernet, LayerKind.Arp })]
    [InlineData("eth-ipv6-ext-chain-udp", new[] { LayerKind.Ethernet, LayerKind.IPv6, LayerKind.Ipv6HopByHop, LayerKind.Ipv6DestinationOptions, LayerKind.Ipv6Routing, LayerKind.Ipv6Fragment, LayerKind.Udp, LayerKind.Payload })]
    [InlineData("eth-ipv4-first-fragment", new[] { LayerKind.Ethernet, LayerKind.IPv4, LayerKind.Payload })]
    [InlineData("eth-ipv6-later-fragment", new[] { LayerKind.Ethernet, LayerKind.IPv6, LayerKind.Ipv6Fragment, LayerKind.Payload })]
    [InlineData("eth-ipv4-icmp-error-udp", new[] { LayerKind.Ethernet, LayerKind.IPv4, LayerKind.Icmpv4, LayerKind.IPv4, LayerKind.Udp })]
    [InlineData("eth-ipv4-icmp-error-tcp", new[] { LayerKind.Ethernet, LayerKind.IPv4, LayerKind.Icmpv4, LayerKind.IPv4, LayerKind.Payload })]
    [InlineData("eth-ipv6-icmpv6-ns", new[] { LayerKind.Ethernet, LayerKind.IPv6, LayerKind.Icmpv6 })]
    [InlineData("eth-ipv6-icmpv6-packet-too-big", new[] { LayerKind.Ethernet, LayerKind.IPv6, LayerKind.Icmpv6, LayerKind.IPv6, LayerKind.Tcp })]
    [InlineData("vxlan-4789-inner-tcp", new[] { LayerKind.Ethernet, LayerKind.IPv4, LayerKind.Udp, LayerKind.Vxlan, LayerKind.Ethernet, LayerKind.IPv4, LayerKind.Tcp, LayerKind.Payload })]
    [InlineData("vxlan-8472-inner-ipv6-udp", new[] { LayerKind.Ethernet, LayerKind.Vlan, LayerKind.IPv4, LayerKind.Udp, LayerKind.Vxlan, LayerKind.Ethernet, LayerKind.IPv6, LayerKind.Udp, LayerKind.Payload })]
    [InlineData("geneve-options-inner-icmp", new[] { LayerKind.Ethernet, LayerKind.IPv6, LayerKind.Udp, LayerKind.Geneve, LayerKind.Ethernet, LayerKind.IPv4, LayerKind.Icmpv4 })]
    [InlineData("ipip-raw", new[] { LayerKind.IPv4, LayerKind.IPv4, LayerKind.Udp })]
    [InlineData("raw-ipv6-esp", new[] { LayerKind.IPv6, LayerKind.Esp })]
    [InlineData("seed-with-packet", new[] { LayerKind.Seed, LayerKind.Payload })]
    public void SampleFrameYieldsItsLayersInOrder(string name, LayerKind[] expected)
    {
        var (_, frame, link) = SampleFrames.All.Single(f => f.Name == name);
        var layers = Walk(frame, out var error, link);
        Assert.False(error.IsError, error.Message);
        Assert.Equal(expected, Kinds(layers));
    }

    [Fact]
    public void EveryBuiltChecksumVerifies()
    {
        foreach (var (name, frame, link) in SampleFrames.All)
        {
            foreach (var layer in Walk(frame, out _, link))
            {
                var status = layer.VerifyChecksum(frame);
                Assert.True(status is ChecksumStatus.Good or ChecksumStatus.NotApplicable or ChecksumStatus.Absent or ChecksumStatus.Unverifiable,
                    $"{name}: {layer} checksum {status}");
                if (layer.Kind is LayerKind.IPv4 or LayerKind.Tcp or LayerKind.Icmpv4 or LayerKind.Icmpv6 && (layer.Flags & LayerFlags.InsideIcmpError) == 0)
                {
                    Assert.Equal(ChecksumStatus.Good, status);
                }
            }
        }
    }

    [Fact]
    public void WrongChecksumIsReportedNotFatal()
    {
        var frame = Frame("eth-ipv4-tcp-options");
        var tcpAt = 14 + 20;
        frame[tcpAt + 16] ^= 0x01;
        var layers = Walk(frame, out var error);
        Assert.False(error.IsError);
        Assert.Equal(ChecksumStatus.Good, layers[1].VerifyChecksum(frame));
        Assert.Equal(ChecksumStatus.Bad, layers[2].VerifyChecksum(frame));
        frame[14 + 10] ^= 0x80;
        Assert.Equal(ChecksumStatus.Bad, layers[1].VerifyChecksum(frame));
    }

    [Fact]
    public void UdpZeroChecksumOverIpv4IsAbsent()
    {
        var frame = Frame("vxlan-4789-inner-tcp");
        var udp = Walk(frame, out _).First(l => l.Kind == LayerKind.Udp);
        Assert.Equal(ChecksumStatus.Absent, udp.VerifyChecksum(frame));
    }

    [Fact]
    public void Ipv4FieldsAndOptionsAreExposed()
    {
        var frame = Frame("eth-ipv4options-udp");
        var ip = Walk(frame, out _)[1].AsIpv4(frame);
        Assert.Equal(4, ip.Version);
        Assert.Equal(9, ip.Ihl);
        Assert.Equal(36, ip.HeaderLength);
        Assert.Equal(3, ip.TimeToLive);
        Assert.Equal(IpProtocols.Udp, ip.Protocol);
        Assert.Equal(SampleFrames.Pod1, ip.Source);
        Assert.Equal(SampleFrames.Pod2, ip.Destination);
        Assert.Equal(36 + 8 + 7, ip.TotalLength);
        var types = new List<(byte Type, int Length)>();
        foreach (var opt in ip.GetOptions())
        {
            types.Add((opt.Type, opt.Length));
        }
        Assert.Equal([(1, 1), (7, 11), (0, 1)], types);
    }

    [Fact]
    public void TcpFlagsAndOptionsAreExposed()
    {
        var frame = Frame("eth-ipv4-tcp-options");
        var tcp = Walk(frame, out _)[2].AsTcp(frame);
        Assert.True(tcp.Syn);
        Assert.False(tcp.Ack);
        Assert.Equal(40, tcp.HeaderLength);
        int seen = 0;
        foreach (var o in tcp.GetOptions())
        {
            switch (o.Kind)
            {
                case TcpOptionKind.MaximumSegmentSize: Assert.Equal(1460, o.MaximumSegmentSize); seen |= 1; break;
                case TcpOptionKind.SackPermitted: Assert.Equal(2, o.Length); seen |= 2; break;
                case TcpOptionKind.Timestamps: Assert.Equal((0x01020304u, 0x0A0B0C0Du), (o.TimestampValue, o.TimestampEchoReply)); seen |= 4; break;
                case TcpOptionKind.WindowScale: Assert.Equal(7, o.WindowScaleShift); Assert.Equal(128, o.WindowScaleMultiplier); seen |= 8; break;
            }
        }
        Assert.Equal(15, seen);

        var frame6 = Frame("eth-ipv6-tcp");
        var tcp6 = Walk(frame6, out _)[2].AsTcp(frame6);
        Assert.Equal(TcpFlags.Ack | TcpFlags.Psh | TcpFlags.Ece | TcpFlags.Cwr | TcpFlags.Ns, tcp6.Flags);
        Assert.True(tcp6.Ns && tcp6.Cwr && tcp6.Ece && tcp6.Psh && tcp6.Ack && !tcp6.Urg && !tcp6.Rst && !tcp6.Syn && !tcp6.Fin);
        var e = tcp6.GetOptions();
        Assert.True(e.MoveNext() && e.Current.Kind == TcpOptionKind.NoOperation);
        Assert.True(e.MoveNext() && e.Current.Kind == TcpOptionKind.NoOperation);
        Assert.True(e.MoveNext());
        Assert.Equal(TcpOptionKind.Sack, e.Current.Kind);
        Assert.Equal(1, e.Current.SackBlockCount);
        Assert.Equal((1u, 2u), e.Current.GetSackBlock(0));
    }

    // The option layouts TcpHeader accepts without walking them (what Linux sends), and the same bytes with one
    // length or kind byte wrong, which the walk must still catch.
    public static TheoryData<string, byte[], TcpOptionKind[]> LinuxOptionLayouts => new()
    {
        { "timestamps", [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], [TcpOptionKind.NoOperation, TcpOptionKind.NoOperation, TcpOptionKind.Timestamps] },
        { "timestamps+sack", [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1, 5, 10, 0, 0, 0, 3, 0, 0, 0, 4],
            [TcpOptionKind.NoOperation, TcpOptionKind.NoOperation, TcpOptionKind.Timestamps, TcpOptionKind.NoOperation, TcpOptionKind.NoOperation, TcpOptionKind.Sack] },
        { "syn", [2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7],
            [TcpOptionKind.MaximumSegmentSize, TcpOptionKind.SackPermitted, TcpOptionKind.Timestamps, TcpOptionKind.NoOperation, TcpOptionKind.WindowScale] },
    };

    [Theory]
    [MemberData(nameof(LinuxOptionLayouts))]
    public void LinuxTcpOptionLayoutsAreReadAndABadByteInThemIsCaught(string name, byte[] options, TcpOptionKind[] kinds)
    {
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ipv4(SampleFrames.Pod1, SampleFrames.Pod2);
            b.Tcp(1, 2, options: options);
        });
        var layers = Walk(frame, out var error, LinkType.RawIp);
        Assert.False(error.IsError, name);
        var found = new List<TcpOptionKind>();
        foreach (var o in layers[1].AsTcp(frame).GetOptions())
        {
            found.Add(o.Kind);
        }
        Assert.Equal(kinds, found);

        // Every length byte of the layout, made one too long: the first bad option is reported where it is.
        int tcp = layers[1].Offset;
        for (int i = 0; i < options.Length; i++)
        {
            if (!IsLengthByte(options, i))
            {
                continue;
            }
            var bad = (byte[])frame.Clone();
            bad[tcp + 20 + i]++;
            Walk(bad, out var badError, LinkType.RawIp);
            Assert.Equal((ParseErrorReason.BadOptionLength, LayerKind.Tcp), (badError.Reason, badError.Layer));
            Assert.Equal(tcp + 20 + i - 1, badError.Offset);
        }
    }

    // True when options[i] is the length byte of a kind/length option.
    private static bool IsLengthByte(byte[] options, int i)
    {
        int at = 0;
        while (at < options.Length)
        {
            if (options[at] is 0 or 1)
            {
                at++;
                continue;
            }
            if (at + 1 == i)
            {
                return true;
            }
            at += options[at + 1];
        }
        return false;
    }

    [Fact]
    public void UnknownTcpOptionIsKeptRaw()
    {
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ipv4(SampleFrames.Pod1, SampleFrames.Pod2);
            b.Tcp(1, 2, options: [0xFD, 4, 0xAB, 0xCD]);
        });
        var tcp = Walk(frame, out _, LinkType.RawIp)[1].AsTcp(frame);
        var e = tcp.GetOptions();
        Assert.True(e.MoveNext());
        Assert.Equal((TcpOptionKind)0xFD, e.Current.Kind);
        Assert.Equal(new byte[] { 0xAB, 0xCD }, e.Current.Data.ToArray());
    }

    [Fact]
    public void Ipv6ExtensionChainExposesFragmentAndRoutingFields()
    {
        var frame = Frame("eth-ipv6-ext-chain-udp");
        var layers = Walk(frame, out _);
        var ip = layers[1].AsIpv6(frame);
        Assert.Equal(0xABCDEu, ip.FlowLabel);
        Assert.Equal(0xB8, ip.TrafficClass);
        Assert.Equal(IpProtocols.HopByHopOptions, ip.NextHeader);
        var routing = layers[4].AsIpv6Extension(frame);
        Assert.Equal(4, routing.RoutingType);
        Assert.Equal(0, routing.SegmentsLeft);
        var frag = layers[5].AsIpv6Extension(frame);
        Assert.Equal(0xCAFEBABEu, frag.Identification);
        Assert.False(frag.MoreFragments);
        Assert.Equal(IpProtocols.Udp, frag.NextHeader);
        Assert.True(ip.TryFindUpperLayer(out var upper, out _));
        Assert.Equal(IpProtocols.Udp, upper.Protocol);
        Assert.Equal(layers[6].Offset - layers[1].Offset, upper.Offset);
        Assert.Equal(ChecksumStatus.Good, layers[6].VerifyChecksum(frame));
    }

    [Fact]
    public void VlanTagsExposePriorityDeiAndId()
    {
        var frame = Frame("qinq-ipv4-icmp-echo");
        var layers = Walk(frame, out _);
        Assert.Equal(EtherTypes.QinQ, layers[0].AsEthernet(frame).EtherType);
        var outer = layers[1].AsVlan(frame);
        Assert.Equal((5, false, (ushort)100, EtherTypes.Vlan), (outer.Priority, outer.DropEligible, outer.VlanId, outer.EtherType));
        var inner = layers[2].AsVlan(frame);
        Assert.Equal((0, true, (ushort)200, EtherTypes.IPv4), (inner.Priority, inner.DropEligible, inner.VlanId, inner.EtherType));
        var icmp = layers[4].AsIcmpv4(frame);
        Assert.Equal((Icmpv4Types.EchoRequest, (ushort)0x1234, (ushort)7), (icmp.Type, icmp.Identifier, icmp.SequenceNumber));
    }

    [Fact]
    public void ArpFieldsAreExposed()
    {
        var frame = Frame("eth-arp");
        var arp = Walk(frame, out _)[1].AsArp(frame);
        Assert.Equal((1, EtherTypes.IPv4, 6, 4, (ushort)1), (arp.HardwareType, arp.ProtocolType, arp.HardwareLength, arp.ProtocolLength, arp.Operation));
        Assert.Equal((SampleFrames.MacA, SampleFrames.Pod1, SampleFrames.Pod2), (arp.SenderMac, arp.SenderIpv4, arp.TargetIpv4));
    }

    [Fact]
    public void IcmpErrorQuotesTheOriginalDatagram()
    {
        var frame = Frame("eth-ipv4-icmp-error-udp");
        var layers = Walk(frame, out _);
        Assert.Equal(LayerFlags.None, layers[2].Flags & LayerFlags.InsideIcmpError);
        Assert.True(layers[3].Flags.HasFlag(LayerFlags.InsideIcmpError));
        var quoted = layers[3].AsIpv4(frame);
        Assert.Equal(120, quoted.TotalLength);
        Assert.True(quoted.IsTruncated);
        Assert.Equal(SampleFrames.Pod1, quoted.Source);
        var udp = layers[4].AsUdp(frame);
        Assert.Equal((33434, 33435, 100), (udp.SourcePort, udp.DestinationPort, udp.LengthField));
        Assert.Equal(ChecksumStatus.Good, layers[2].VerifyChecksum(frame));
        Assert.Equal(ChecksumStatus.Unverifiable, layers[4].VerifyChecksum(frame));
    }

    [Fact]
    public void IcmpHeadersReadTheirQuotedDatagram()
    {
        var v4 = Frame("eth-ipv4-icmp-error-tcp");
        var icmp = Walk(v4, out _)[2].AsIcmpv4(v4);
        Assert.True(icmp.TryReadQuotedDatagram(out var quoted, out _));
        Assert.Equal((SampleFrames.Pod1, IpProtocols.Tcp, (ushort)60), (quoted.Source, quoted.Protocol, quoted.TotalLength));
        Assert.Equal(8, quoted.Payload.Length);

        var echo = Frame("qinq-ipv4-icmp-echo");
        Assert.False(Walk(echo, out _)[4].AsIcmpv4(echo).TryReadQuotedDatagram(out _, out var notError));
        Assert.False(notError.IsError);

        var v6 = Frame("eth-ipv6-icmpv6-packet-too-big");
        var icmp6 = Walk(v6, out _)[2].AsIcmpv6(v6);
        Assert.Equal(1280u, icmp6.Mtu);
        Assert.True(icmp6.TryReadQuotedPacket(out var quoted6, out _));
        Assert.Equal((SampleFrames.Pod6a, (ushort)1400, true), (quoted6.Source, quoted6.PayloadLength, quoted6.IsTruncated));
    }

    [Fact]
    public void NeighborDiscoveryFieldsAndOptionsAreExposed()
    {
        var ns = Frame("eth-ipv6-icmpv6-ns");
        var nsMsg = Walk(ns, out _)[2].AsIcmpv6(ns);
        Assert.Equal(SampleFrames.Pod6b, nsMsg.TargetAddress);
        var e = nsMsg.GetNdOptions();
        Assert.True(e.MoveNext());
        Assert.Equal((NdOptionTypes.SourceLinkLayerAddress, (byte)1, SampleFrames.MacA), (e.Current.Type, e.Current.LengthUnits, e.Current.LinkLayerAddress));
        Assert.False(e.MoveNext());

        var na = Frame("eth-ipv6-icmpv6-na");
        var naMsg = Walk(na, out _)[2].AsIcmpv6(na);
        Assert.Equal((false, true, true), (naMsg.RouterFlag, naMsg.SolicitedFlag, naMsg.OverrideFlag));

        var ra = Frame("eth-ipv6-icmpv6-ra");
        var raMsg = Walk(ra, out _)[2].AsIcmpv6(ra);
        Assert.Equal((64, true, false, (ushort)1800, 30000u, 1000u),
            (raMsg.CurrentHopLimit, raMsg.ManagedFlag, raMsg.OtherConfigFlag, raMsg.RouterLifetime, raMsg.ReachableTime, raMsg.RetransTimer));
        var types = new List<byte>();
        uint mtu = 0;
        foreach (var o in raMsg.GetNdOptions())
        {
            types.Add(o.Type);
            if (o.Type == NdOptionTypes.Mtu)
            {
                mtu = o.Mtu;
            }
        }
        Assert.Equal([NdOptionTypes.SourceLinkLayerAddress, NdOptionTypes.Mtu], types);
        Assert.Equal(1500u, mtu);
    }

    [Fact]
    public void VxlanAndGeneveExposeVniAndOptions()
    {
        var vx = Frame("vxlan-4789-inner-tcp");
        var vxl = Walk(vx, out _);
        var vxlan = vxl[3].AsVxlan(vx);
        Assert.True(vxlan.VniValid);
        Assert.Equal(0x123456u, vxlan.Vni);
        Assert.Equal(0, vxl[3].Depth);
        Assert.Equal(1, vxl[4].Depth);
        Assert.Equal(1, vxl[6].Depth);
        Assert.Equal(ChecksumStatus.Good, vxl[6].VerifyChecksum(vx));

        var gv = Frame("geneve-options-inner-icmp");
        var g = Walk(gv, out _)[3].AsGeneve(gv);
        Assert.Equal((0, 0xABCDEFu, EtherTypes.TransparentEthernetBridging, false, true),
            (g.Version, g.Vni, g.ProtocolType, g.Oam, g.Critical));
        Assert.Equal(20, g.OptionsLength);
        var opts = new List<(ushort, byte, bool, int)>();
        foreach (var o in g.GetOptions())
        {
            opts.Add((o.OptionClass, o.Type, o.IsCritical, o.Data.Length));
        }
        Assert.Equal([(0x0102, 0x80, true, 4), (0xFFFF, 0x05, false, 8)], opts);
    }

    [Fact]
    public void VxlanPortSetIsConfigurable()
    {
        var frame = Frame("vxlan-4789-inner-tcp");
        var options = new DissectorOptions { VxlanPorts = new PortSet(9999) };
        var layers = Walk(frame, out var error, options: options);
        Assert.False(error.IsError);
        Assert.Equal([LayerKind.Ethernet, LayerKind.IPv4, LayerKind.Udp, LayerKind.Payload], Kinds(layers));
    }

    [Fact]
    public void EthernetPaddingIsNotPayload()
    {
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ethernet(SampleFrames.MacB, SampleFrames.MacA);
            b.Ipv4(SampleFrames.Pod1, SampleFrames.Pod2);
            b.Tcp(1, 2);
        });
        var padded = frame.Concat(new byte[6]).ToArray();
        var layers = Walk(padded, out var error);
        Assert.False(error.IsError);
        Assert.Equal([LayerKind.Ethernet, LayerKind.IPv4, LayerKind.Tcp], Kinds(layers));
        Assert.Equal(ChecksumStatus.Good, layers[2].VerifyChecksum(padded));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ZeroLengthFieldOfAGsoPacketMeansEverythingCaptured(bool ipv6)
    {
        // BIG TCP: a GSO packet longer than 65,535 bytes carries IPv4 total length 0 or IPv6
        // payload length 0 (as TSO captures do); its datagram is everything captured.
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ethernet(SampleFrames.MacB, SampleFrames.MacA);
            if (ipv6)
            {
                b.Ipv6(SampleFrames.Pod6a, SampleFrames.Pod6b);
            }
            else
            {
                b.Ipv4(SampleFrames.Pod1, SampleFrames.Pod2);
            }
            b.Tcp(1000, 2000);
            b.Payload(new byte[300]);
        });
        frame[14 + (ipv6 ? 4 : 2)] = 0;
        frame[14 + (ipv6 ? 5 : 3)] = 0;

        var layers = Walk(frame, out var error);
        Assert.False(error.IsError, error.Message);
        Assert.Equal([LayerKind.Ethernet, ipv6 ? LayerKind.IPv6 : LayerKind.IPv4, LayerKind.Tcp, LayerKind.Payload], Kinds(layers));
        Assert.Equal(300, layers[3].Length);
        Assert.True(FlowKeyExtractor.TryExtract(frame, out var key));
        Assert.Equal((1000, 2000), (key.Outer.SourcePort, key.Outer.DestinationPort));
    }

    [Fact]
    public void WithoutPayloadTheWalkEndsAtTheLastHeader()
    {
        var frame = Frame("vxlan-4789-inner-tcp");
        var full = Walk(frame, out _);
        Assert.Equal(LayerKind.Payload, full[^1].Kind);

        var headers = Walk(frame, out var error, options: new DissectorOptions { IncludePayload = false });
        Assert.False(error.IsError);
        Assert.Equal(Kinds(full)[..^1], Kinds(headers));
        Assert.Equal(LayerKind.Tcp, headers[^1].Kind);
    }

    [Fact]
    public void ZeroPayloadLengthBeforeNoNextHeaderIsEmpty()
    {
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ethernet(SampleFrames.MacB, SampleFrames.MacA);
            b.Ipv6(SampleFrames.Pod6a, SampleFrames.Pod6b, nextHeader: IpProtocols.NoNextHeader);
        });
        var padded = frame.Concat(new byte[8]).ToArray();
        var layers = Walk(padded, out var error);
        Assert.False(error.IsError, error.Message);
        Assert.Equal(padded.Length - 8, layers[1].End);
    }

    [Fact]
    public void TotalLengthBeyondCaptureIsAnErrorUnlessTruncationIsAllowed()
    {
        var frame = Frame("eth-ipv4options-udp")[..^3];
        Walk(frame, out var strict);
        Assert.Equal(new ParseError(ParseErrorReason.TotalLengthBeyondCapture, 14 + 2, LayerKind.IPv4), strict);

        var layers = Walk(frame, out var lenient, options: new DissectorOptions { AllowTruncated = true });
        Assert.False(lenient.IsError);
        Assert.True(layers[1].Flags.HasFlag(LayerFlags.Truncated));
        Assert.Equal(ChecksumStatus.Unverifiable, layers[2].VerifyChecksum(frame));
    }

    public static TheoryData<string, int, byte, ParseErrorReason, int, LayerKind> Corruptions() => new()
    {
        // frame, byte offset, new value, expected reason, expected error offset, expected layer
        // (the loop case: destination options now point back to hop-by-hop, found where the repeat sits)
        { "eth-ipv4-tcp-options", 14, 0x65, ParseErrorReason.BadVersion, 14, LayerKind.IPv4 },
        { "eth-ipv4-tcp-options", 14, 0x44, ParseErrorReason.BadHeaderLength, 14, LayerKind.IPv4 },
        { "eth-ipv4-tcp-options", 17, 0x10, ParseErrorReason.BadTotalLength, 16, LayerKind.IPv4 },
        { "eth-ipv4options-udp", 14, 0x4F, ParseErrorReason.HeaderLengthBeyondPacket, 14, LayerKind.IPv4 },
        { "eth-ipv4-tcp-options", 16, 0xFF, ParseErrorReason.TotalLengthBeyondCapture, 16, LayerKind.IPv4 },
        { "eth-ipv4-tcp-options", 14 + 20 + 12, 0x40, ParseErrorReason.BadHeaderLength, 14 + 20 + 12, LayerKind.Tcp },
        { "eth-ipv4-tcp-options", 14 + 20 + 12, 0xF0, ParseErrorReason.HeaderLengthBeyondPacket, 14 + 20 + 12, LayerKind.Tcp },
        { "eth-ipv4-tcp-options", 14 + 20 + 21, 0x09, ParseErrorReason.BadOptionLength, 14 + 20 + 20, LayerKind.Tcp },
        { "eth-ipv4options-udp", 14 + 22, 0x30, ParseErrorReason.BadOptionLength, 14 + 21, LayerKind.IPv4 },
        { "eth-ipv4options-udp", 14 + 36 + 5, 0x03, ParseErrorReason.BadTotalLength, 14 + 36 + 4, LayerKind.Udp },
        { "eth-ipv6-tcp", 14, 0x40, ParseErrorReason.BadVersion, 14, LayerKind.IPv6 },
        { "eth-ipv6-tcp", 14 + 4, 0x10, ParseErrorReason.TotalLengthBeyondCapture, 14 + 4, LayerKind.IPv6 },
        { "eth-ipv6-ext-chain-udp", 14 + 40 + 8, 0x00, ParseErrorReason.ExtensionHeaderLoop, 14 + 40 + 16, LayerKind.Ipv6HopByHop },
        { "eth-ipv6-ext-chain-udp", 14 + 40 + 1, 0x40, ParseErrorReason.HeaderLengthBeyondPacket, 14 + 40 + 1, LayerKind.Ipv6HopByHop },
        { "eth-ipv6-ext-chain-udp", 14 + 40 + 3, 0x09, ParseErrorReason.BadOptionLength, 14 + 40 + 2, LayerKind.Ipv6HopByHop },
        { "eth-ipv6-icmpv6-ns", 14 + 40 + 24 + 1, 0x00, ParseErrorReason.BadOptionLength, 14 + 40 + 24, LayerKind.Icmpv6 },
        { "geneve-options-inner-icmp", 14 + 40 + 8, 0x80, ParseErrorReason.BadVersion, 14 + 40 + 8, LayerKind.Geneve },
        { "geneve-options-inner-icmp", 14 + 40 + 8 + 8 + 3, 0x1F, ParseErrorReason.BadOptionLength, 14 + 40 + 8 + 8, LayerKind.Geneve },
        { "seed-with-packet", 0, 0x21, ParseErrorReason.BadVersion, 0, LayerKind.Seed },
        { "eth-arp", 14 + 4, 0x08, ParseErrorReason.BadAddressLength, 14 + 4, LayerKind.Arp },
        { "eth-arp", 14 + 5, 0x00, ParseErrorReason.BadAddressLength, 14 + 5, LayerKind.Arp },
        { "eth-arp", 13, 0x00, ParseErrorReason.BadVersion, 14, LayerKind.IPv4 },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void MalformedFieldGivesItsReasonAndOffset(string name, int at, byte value, ParseErrorReason reason, int offset, LayerKind layer)
    {
        var (_, original, link) = SampleFrames.All.Single(f => f.Name == name);
        var frame = original.ToArray();
        frame[at] = value;
        Walk(frame, out var error, link);
        Assert.Equal(new ParseError(reason, offset, layer), error);
        Assert.StartsWith("failed to parse ", error.Message);
    }

    [Fact]
    public void RepeatedRoutingHeaderIsALoop()
    {
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ipv6(SampleFrames.Pod6a, SampleFrames.Pod6b);
            b.Ipv6Routing(4, 0);
            b.Ipv6DestinationOptions();
            b.Ipv6Routing(4, 0);
            b.Udp(1, 2);
        });
        Walk(frame, out var error, LinkType.RawIp);
        Assert.Equal(new ParseError(ParseErrorReason.ExtensionHeaderLoop, 40 + 16, LayerKind.Ipv6Routing), error);
    }

    [Fact]
    public void ChainLongerThanTheCapIsTooLong()
    {
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ipv6(SampleFrames.Pod6a, SampleFrames.Pod6b);
            b.Ipv6HopByHop();
            b.Ipv6DestinationOptions();
            b.Ipv6Routing(4, 0);
            b.Udp(1, 2);
        });
        Walk(frame, out var error, LinkType.RawIp, new DissectorOptions { MaxExtensionHeaders = 2 });
        Assert.Equal(new ParseError(ParseErrorReason.ExtensionHeaderChainTooLong, 40 + 16, LayerKind.Ipv6Routing), error);
        Walk(frame, out var ok, LinkType.RawIp);
        Assert.False(ok.IsError);
    }

    [Fact]
    public void TunnelsNestedTooDeepAreRefused()
    {
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            for (int i = 0; i < 3; i++)
            {
                b.Ethernet(SampleFrames.MacB, SampleFrames.MacA);
                b.Ipv4(SampleFrames.Pod1, SampleFrames.Pod2);
                b.Udp(1, TunnelPorts.Vxlan);
                b.Vxlan((uint)i);
            }
            b.Ethernet(SampleFrames.MacB, SampleFrames.MacA);
        });
        Walk(frame, out var ok);
        Assert.False(ok.IsError);
        Walk(frame, out var error, options: new DissectorOptions { MaxTunnelDepth = 2 });
        Assert.Equal(ParseErrorReason.TunnelTooDeep, error.Reason);
        Assert.Equal(LayerKind.Vxlan, error.Layer);
    }

    [Fact]
    public void AuthenticationHeaderIsRecognisedAndStopsTheWalk()
    {
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ipv6(SampleFrames.Pod6a, SampleFrames.Pod6b, nextHeader: IpProtocols.Ah);
            // AH (RFC 4302 §2): next header TCP, payload length 4 (24 bytes), reserved, SPI, sequence, 12-byte ICV.
            b.Payload([6, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, .. new byte[12], .. new byte[20]]);
        });
        var layers = Walk(frame, out var error, LinkType.RawIp);
        Assert.False(error.IsError);
        Assert.Equal([LayerKind.IPv6, LayerKind.Ah], Kinds(layers));
        Assert.Equal(24, layers[1].Length);
        Assert.Equal(0x100u, layers[1].AsIpv6Extension(frame).AhSpi);
    }

    [Theory]
    [InlineData(IpProtocols.Ah, LayerKind.Ah, 24)]
    [InlineData(IpProtocols.Esp, LayerKind.Esp, 8)]
    public void IpsecOverIpv4IsRecognisedAndStopsTheWalk(byte protocol, LayerKind kind, int headerLength)
    {
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ipv4(SampleFrames.Pod1, SampleFrames.Pod2, protocol: protocol);
            b.Payload([6, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, .. new byte[12], .. new byte[20]]);
        });
        var layers = Walk(frame, out var error, LinkType.RawIp);
        Assert.False(error.IsError);
        Assert.Equal([LayerKind.IPv4, kind], Kinds(layers));
        Assert.Equal(headerLength, layers[1].Length);
    }

    private struct CountingHandler : IPacketHandler
    {
        public int Layers;
        public int Errors;
        public LayerKind StopAt;

        public bool OnLayer(ReadOnlySpan<byte> packet, in Layer layer)
        {
            Layers++;
            return layer.Kind != StopAt;
        }

        public void OnError(in ParseError error) => Errors++;
    }

    [Fact]
    public void GenericHandlerSeesEveryLayerAndCanStop()
    {
        var frame = Frame("vxlan-4789-inner-tcp");
        var all = new CountingHandler();
        Assert.True(PacketDissector.Dissect(frame, LinkType.Ethernet, ref all));
        Assert.Equal((8, 0), (all.Layers, all.Errors));

        var stop = new CountingHandler { StopAt = LayerKind.Vxlan };
        Assert.True(PacketDissector.Dissect(frame, LinkType.Ethernet, ref stop));
        Assert.Equal(4, stop.Layers);

        var bad = new CountingHandler();
        Assert.False(PacketDissector.Dissect(frame.AsSpan(0, 20), LinkType.Ethernet, ref bad));
        Assert.Equal((1, 1), (bad.Layers, bad.Errors));
    }

    [Fact]
    public void TryDissectFillsASpanOfLayers()
    {
        var frame = Frame("eth-ipv6-ext-chain-udp");
        Span<Layer> layers = stackalloc Layer[16];
        Assert.True(PacketDissector.TryDissect(frame, LinkType.Ethernet, layers, out int count, out var error));
        Assert.Equal(8, count);
        Span<Layer> small = stackalloc Layer[3];
        Assert.False(PacketDissector.TryDissect(frame, LinkType.Ethernet, small, out count, out error));
        Assert.Equal(3, count);
        Assert.False(error.IsError);
    }

    [Fact]
    public void ForeachWalksTheLayers()
    {
        var frame = Frame("qinq-ipv4-icmp-echo");
        int n = 0;
        foreach (var layer in new PacketDissector(frame))
        {
            Assert.NotEqual(LayerKind.None, layer.Kind);
            n++;
        }
        Assert.Equal(6, n);
    }

    [Fact]
    public void UnsupportedLinkTypeIsATypedError()
    {
        var d = new PacketDissector(new byte[20], (LinkType)9999);
        Assert.False(d.TryNext(out _));
        Assert.Equal(ParseErrorReason.UnsupportedLinkType, d.Error.Reason);
    }
}
