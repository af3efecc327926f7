using CsCheck;

namespace Membrane.Packets.Tests;

public class FlowKeyExtractorTests
{
    private static byte[] Frame(string name) => SampleFrames.All.Single(f => f.Name == name).Frame;

    private static FlowKey Extract(string name, DissectorOptions? options = null)
    {
        var (_, frame, link) = SampleFrames.All.Single(f => f.Name == name);
        Assert.True(FlowKeyExtractor.TryExtract(frame, link, options ?? DissectorOptions.Default, out var key));
        return key;
    }

    [Fact]
    public void PlainTcpGivesTheOuterFiveTuple()
    {
        var k = Extract("eth-ipv4-tcp-options");
        Assert.Equal(new IpAddress(SampleFrames.Pod1), k.Outer.Source);
        Assert.Equal(new IpAddress(SampleFrames.Pod2), k.Outer.Destination);
        Assert.Equal((IpProtocols.Tcp, (ushort)40000, (ushort)80, FragmentState.None), (k.Outer.Protocol, k.Outer.SourcePort, k.Outer.DestinationPort, k.Outer.Fragment));
        Assert.Equal(TunnelKind.None, k.Tunnel);
        Assert.False(k.HasInner);
        Assert.False(k.HasVlan);
        Assert.Equal("198.18.0.2:40000 -> 198.18.1.7:80 proto 6", k.ToString());
    }

    [Fact]
    public void QinQGivesBothVlanIds()
    {
        var k = Extract("qinq-ipv4-icmp-echo");
        Assert.True(k.HasVlan);
        Assert.Equal((100, 200), (k.VlanId, k.InnerVlanId));
        Assert.Equal(IpProtocols.Icmp, k.Outer.Protocol);
        Assert.Equal((0, 0), (k.Outer.SourcePort, k.Outer.DestinationPort));
    }

    [Fact]
    public void Ipv6ChainIsFollowedToTheUpperLayer()
    {
        var k = Extract("eth-ipv6-ext-chain-udp");
        Assert.Equal(6, k.Outer.IpVersion);
        Assert.Equal(new IpAddress(SampleFrames.Pod6a), k.Outer.Source);
        Assert.Equal((IpProtocols.Udp, (ushort)1000, (ushort)2000, FragmentState.None), (k.Outer.Protocol, k.Outer.SourcePort, k.Outer.DestinationPort, k.Outer.Fragment));
    }

    [Fact]
    public void FragmentStatesAreReported()
    {
        var first = Extract("eth-ipv4-first-fragment");
        Assert.Equal(FragmentState.First, first.Outer.Fragment);
        var later = Extract("eth-ipv6-later-fragment");
        Assert.Equal(FragmentState.NonFirst, later.Outer.Fragment);
        Assert.Equal(IpProtocols.Udp, later.Outer.Protocol);
        Assert.Equal((0, 0), (later.Outer.SourcePort, later.Outer.DestinationPort));
    }

    [Fact]
    public void VxlanOnBothPortsGivesVniAndInnerTuple()
    {
        var k = Extract("vxlan-4789-inner-tcp");
        Assert.Equal(TunnelKind.Vxlan, k.Tunnel);
        Assert.Equal(0x123456u, k.Vni);
        Assert.Equal(TunnelPorts.Vxlan, k.Outer.DestinationPort);
        Assert.Equal((new IpAddress(SampleFrames.Pod1), new IpAddress(SampleFrames.Pod2), IpProtocols.Tcp, (ushort)40000, (ushort)8080),
            (k.Inner.Source, k.Inner.Destination, k.Inner.Protocol, k.Inner.SourcePort, k.Inner.DestinationPort));

        var k2 = Extract("vxlan-8472-inner-ipv6-udp");
        Assert.Equal((TunnelKind.Vxlan, 256u, (ushort)10), (k2.Tunnel, k2.Vni, k2.VlanId));
        Assert.Equal((6, (ushort)7000, (ushort)7001), (k2.Inner.IpVersion, k2.Inner.SourcePort, k2.Inner.DestinationPort));
    }

    [Fact]
    public void TunnelPortsAreConfigurable()
    {
        var k = Extract("vxlan-4789-inner-tcp", new DissectorOptions { VxlanPorts = PortSet.Empty });
        Assert.Equal(TunnelKind.None, k.Tunnel);
        Assert.False(k.HasInner);
    }

    [Fact]
    public void GeneveWithOptionsGivesVniAndInnerTuple()
    {
        var k = Extract("geneve-options-inner-icmp");
        Assert.Equal((TunnelKind.Geneve, 0xABCDEFu), (k.Tunnel, k.Vni));
        Assert.Equal(6, k.Outer.IpVersion);
        Assert.Equal((4, IpProtocols.Icmp), (k.Inner.IpVersion, k.Inner.Protocol));
    }

    [Fact]
    public void IpInIpGivesTheInnerTuple()
    {
        var k = Extract("ipip-raw");
        Assert.Equal(TunnelKind.IpInIp, k.Tunnel);
        Assert.Equal((IpProtocols.Udp, (ushort)1, (ushort)2), (k.Inner.Protocol, k.Inner.SourcePort, k.Inner.DestinationPort));
    }

    [Fact]
    public void NonIpFrameGivesNoKey()
    {
        Assert.False(FlowKeyExtractor.TryExtract(Frame("eth-arp"), out var k));
        Assert.False(k.Outer.IsValid);
        Assert.False(FlowKeyExtractor.TryExtract([], out _));
    }

    [Fact]
    public void AgreesWithTheBuiltHeadersForRandomPackets()
    {
        PacketSpec.Gens.Packet.Sample(spec =>
        {
            var frame = spec.Build();
            Assert.True(FlowKeyExtractor.TryExtract(frame, out var k));
            Check(spec.Outer, k.Outer, spec.Tunnel is not null);
            Assert.Equal(spec.Vlans.Length > 0, k.HasVlan);
            if (spec.Vlans.Length > 0)
            {
                Assert.Equal(spec.Vlans[0].Id, k.VlanId);
            }
            if (spec.Tunnel is { } t)
            {
                Assert.Equal(t.Kind == 3 ? TunnelKind.Geneve : TunnelKind.Vxlan, k.Tunnel);
                Assert.Equal(t.Vni, k.Vni);
                Check(t.Inner, k.Inner, false);
            }
            else
            {
                Assert.Equal(TunnelKind.None, k.Tunnel);
            }
        }, iter: 3000);
    }

    private static void Check(NetSpec n, FiveTuple t, bool tunnel)
    {
        if (n.V4 is { } v4)
        {
            Assert.Equal((new IpAddress(v4.Source), new IpAddress(v4.Destination)), (t.Source, t.Destination));
        }
        else
        {
            Assert.Equal((new IpAddress(n.V6!.Source), new IpAddress(n.V6.Destination)), (t.Source, t.Destination));
        }
        if (tunnel)
        {
            Assert.Equal(IpProtocols.Udp, t.Protocol);
        }
        else if (n.L4.Tcp is { } tcp)
        {
            Assert.Equal((IpProtocols.Tcp, tcp.SourcePort, tcp.DestinationPort), (t.Protocol, t.SourcePort, t.DestinationPort));
        }
        else if (n.L4.Udp is { } udp)
        {
            Assert.Equal((IpProtocols.Udp, udp.SourcePort, udp.DestinationPort), (t.Protocol, t.SourcePort, t.DestinationPort));
        }
        else
        {
            Assert.Equal(n.V4 is not null ? IpProtocols.Icmp : IpProtocols.Icmpv6, t.Protocol);
        }
    }

    [Fact]
    public void AgreesWithTheDissectorOnMutatedFrames()
    {
        // Differential check: wherever the strict dissector accepts a (mutated) frame, the extractor's
        // shortcuts must read the same outer addresses, protocol, ports, VLAN and VNI.
        var corpus = RobustnessTests.Corpus();
        var rng = new Random(4242);
        var buffer = new byte[4096];
        int compared = 0;
        for (int n = 0; n < 100_000; n++)
        {
            var (original, link) = corpus[rng.Next(corpus.Count)];
            original.CopyTo(buffer, 0);
            int length = RobustnessTests.Mutate(rng, rng.Next(5), original, link, buffer, original.Length);
            var frame = buffer.AsSpan(0, length);
            if (link == LinkType.Seed || !Dissect(frame, link, out var expected))
            {
                continue;
            }
            Assert.True(FlowKeyExtractor.TryExtract(frame, link, DissectorOptions.Default, out var key), Convert.ToHexString(frame));
            Assert.True(expected.Outer.Equals(key.Outer) || !expected.PortsKnown && SameAddresses(expected.Outer, key.Outer),
                $"dissector {expected.Outer}, extractor {key.Outer}: {Convert.ToHexString(frame)}");
            Assert.True((expected.HasVlan, expected.VlanId) == (key.HasVlan, key.VlanId), $"dissector vlan {expected.VlanId}, extractor {key}: {Convert.ToHexString(frame)}");
            Assert.True((expected.Tunnel, expected.Vni) == (key.Tunnel, key.Vni), $"dissector {expected.Tunnel} {expected.Vni}, extractor {key}: {Convert.ToHexString(frame)}");
            compared++;
        }
        Assert.True(compared > 20_000, $"only {compared} frames were accepted and compared");
    }

    private static bool SameAddresses(FiveTuple a, FiveTuple b) => a.Source == b.Source && a.Destination == b.Destination;

    private struct Expected
    {
        public FiveTuple Outer;
        public bool PortsKnown;
        public bool HasVlan;
        public ushort VlanId;
        public TunnelKind Tunnel;
        public uint Vni;
    }

    // The flow key as the dissector's layers give it (outer header only); false when the frame is rejected or has no IP.
    private static bool Dissect(ReadOnlySpan<byte> frame, LinkType link, out Expected e)
    {
        e = default;
        var d = new PacketDissector(frame, link);
        bool ip = false;
        while (d.TryNext(out var l))
        {
            if (l.Depth == 1 && l.Kind is LayerKind.IPv4 or LayerKind.IPv6 && e.Tunnel == TunnelKind.None)
            {
                e.Tunnel = TunnelKind.IpInIp;
            }
            if (l.Depth > 0 || (l.Flags & LayerFlags.InsideIcmpError) != 0)
            {
                continue;
            }
            switch (l.Kind)
            {
                case LayerKind.Vlan when !e.HasVlan:
                    e.HasVlan = true;
                    e.VlanId = l.AsVlan(frame).VlanId;
                    break;
                case LayerKind.IPv4 when !ip:
                {
                    ip = true;
                    var h = l.AsIpv4(frame);
                    e.Outer.Source = new IpAddress(h.Source);
                    e.Outer.Destination = new IpAddress(h.Destination);
                    e.Outer.Protocol = h.Protocol;
                    e.Outer.Fragment = h.FragmentState;
                    // The dissector leaves fragments as payload, so it cannot say what ports a first fragment has.
                    e.PortsKnown = h.FragmentState == FragmentState.None;
                    break;
                }
                case LayerKind.IPv6 when !ip:
                {
                    ip = true;
                    var h = l.AsIpv6(frame);
                    e.Outer.Source = new IpAddress(h.Source);
                    e.Outer.Destination = new IpAddress(h.Destination);
                    if (!h.TryFindUpperLayer(out var upper, out _))
                    {
                        return false;
                    }
                    e.Outer.Protocol = upper.Protocol;
                    e.Outer.Fragment = upper.Fragment;
                    e.PortsKnown = upper.Fragment == FragmentState.None;
                    break;
                }
                case LayerKind.Tcp:
                    e.Outer.SourcePort = l.AsTcp(frame).SourcePort;
                    e.Outer.DestinationPort = l.AsTcp(frame).DestinationPort;
                    break;
                case LayerKind.Udp:
                    e.Outer.SourcePort = l.AsUdp(frame).SourcePort;
                    e.Outer.DestinationPort = l.AsUdp(frame).DestinationPort;
                    break;
                case LayerKind.Vxlan:
                    e.Tunnel = TunnelKind.Vxlan;
                    e.Vni = l.AsVxlan(frame).Vni;
                    break;
                case LayerKind.Geneve:
                    e.Tunnel = TunnelKind.Geneve;
                    e.Vni = l.AsGeneve(frame).Vni;
                    break;
            }
        }
        // The extractor also reads SCTP and UDP-Lite ports, which the dissector leaves as payload.
        if (e.Outer.Protocol is 132 or 136)
        {
            e.PortsKnown = false;
        }
        return !d.HasError && ip;
    }

    [Fact]
    public void ExtractionAndDissectionAllocateNothing()
    {
        var frames = SampleFrames.All.ToArray();
        // Warm up (JIT, statics) before measuring.
        for (int i = 0; i < 1000; i++)
        {
            RunAll(frames);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        long sink = 0;
        for (int i = 0; i < 10_000; i++)
        {
            sink += RunAll(frames);
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.NotEqual(0, sink);
    }

    private static long RunAll((string Name, byte[] Frame, LinkType Link)[] frames)
    {
        long sink = 0;
        foreach (var (_, frame, link) in frames)
        {
            if (FlowKeyExtractor.TryExtract(frame, link, DissectorOptions.Default, out var k))
            {
                sink += k.Outer.SourcePort + k.Vni;
            }
            var d = new PacketDissector(frame, link);
            while (d.TryNext(out var layer))
            {
                sink += layer.Offset + (long)layer.VerifyChecksum(frame);
                if (layer.Kind == LayerKind.Tcp)
                {
                    foreach (var o in layer.AsTcp(frame).GetOptions())
                    {
                        sink += o.Length;
                    }
                }
            }
        }
        return sink;
    }
}
