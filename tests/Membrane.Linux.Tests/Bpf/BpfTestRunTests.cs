using System.Buffers.Binary;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;
using Membrane.Packets;

namespace Membrane.Linux.Tests.Bpf;

/// <summary>The datapath's test program run by the kernel itself (BPF_PROG_TEST_RUN) on hand-built packets.</summary>
[Collection("kernel")]
public sealed class BpfTestRunTests : IDisposable
{
    private readonly BpfTestScope _scope = new(BpfFeature.RingBuffer);
    private readonly BpfObject _obj;
    private readonly BpfProgram _ingress;
    private readonly BpfMap<VerdictKey, VerdictValue> _verdict;
    private readonly BpfPerCpuMap<uint, MetricsValue> _metrics;

    public BpfTestRunTests()
    {
        _obj = BpfObject.Load(BpfObjects.PathOf(BpfObjects.TestFilter));
        _ingress = _obj.FindProgram("test_filter_ingress");
        _verdict = _obj.FindMap<VerdictKey, VerdictValue>("verdict");
        _metrics = _obj.FindPerCpuMap<uint, MetricsValue>("metrics");
    }

    public void Dispose()
    {
        _metrics.Dispose();
        _verdict.Dispose();
        _ingress.Dispose();
        _obj.Dispose();
        _scope.Dispose();
    }

    private (uint Verdict, byte[] Out) Run(byte[] packet)
    {
        var output = new byte[packet.Length + 256];
        var result = _ingress.TestRun(packet, output);
        return (result.ReturnValue, output[..result.DataOutLength]);
    }

    private ulong Packets(DropReason reason, byte l3, byte proto)
    {
        var key = new MetricsKey { Reason = (byte)reason, Direction = Direction.Ingress, L3 = l3, L4Protocol = proto };
        var perCpu = new MetricsValue[_metrics.CpuCount];
        return _metrics.TryLookup(key.ToSlot(), perCpu) ? perCpu.Aggregate(0ul, (s, v) => s + v.Packets) : 0;
    }

    [SkippableTheory]
    [InlineData(4, TestPackets.Udp)]
    [InlineData(4, TestPackets.Tcp)]
    [InlineData(6, TestPackets.Udp)]
    [InlineData(6, TestPackets.Tcp)]
    public void WithoutAVerdictEntryPacketsPassUnchangedAndAreCounted(byte l3, byte proto)
    {
        var packet = l3 == 4 ? TestPackets.Ipv4(proto, 40000, 80) : TestPackets.Ipv6(proto, 40000, 80);
        var (verdict, output) = Run(packet);
        Assert.Equal(BpfObjects.TcActOk, verdict);
        Assert.Equal(packet, output);
        Assert.Equal(1ul, Packets(DropReason.Forwarded, l3, proto));
        Assert.Equal(0ul, Packets(DropReason.Policy, l3, proto));
    }

    [SkippableTheory]
    [InlineData(4)]
    [InlineData(6)]
    public void ADropEntryDropsThatPortOnlyAndCountsTheHits(byte l3)
    {
        _verdict.Update(VerdictKey.For(TestPackets.Udp, 53), new VerdictValue { Action = VerdictAction.Drop });
        Func<ushort, byte[]> make = port => l3 == 4 ? TestPackets.Ipv4(TestPackets.Udp, 5000, port) : TestPackets.Ipv6(TestPackets.Udp, 5000, port);

        Assert.Equal(BpfObjects.TcActShot, Run(make(53)).Verdict);
        Assert.Equal(BpfObjects.TcActShot, Run(make(53)).Verdict);
        Assert.Equal(BpfObjects.TcActOk, Run(make(54)).Verdict);

        Assert.Equal(2ul, Packets(DropReason.Policy, l3, TestPackets.Udp));
        Assert.Equal(1ul, Packets(DropReason.Forwarded, l3, TestPackets.Udp));
        Assert.Equal(2u, _verdict[VerdictKey.For(TestPackets.Udp, 53)].Hits);
    }

    [SkippableFact]
    public void AProtocolWildcardEntryAppliesToEveryPort()
    {
        _verdict.Update(VerdictKey.For(TestPackets.Tcp, 0), new VerdictValue { Action = VerdictAction.Drop });
        _verdict.Update(VerdictKey.For(TestPackets.Tcp, 443), new VerdictValue { Action = VerdictAction.Allow });
        Assert.Equal(BpfObjects.TcActShot, Run(TestPackets.Ipv4(TestPackets.Tcp, 1, 22)).Verdict);
        Assert.Equal(BpfObjects.TcActOk, Run(TestPackets.Ipv4(TestPackets.Tcp, 1, 443)).Verdict);
        Assert.Equal(BpfObjects.TcActOk, Run(TestPackets.Ipv4(TestPackets.Udp, 1, 22)).Verdict);
    }

    [SkippableFact]
    public void RouteActionDecrementsTheIpv4TtlAndKeepsTheChecksumValid()
    {
        _verdict.Update(VerdictKey.For(TestPackets.Udp, 0), new VerdictValue { Action = VerdictAction.Route });
        var packet = TestPackets.Ipv4(TestPackets.Udp, 1, 2, ttl: 64);
        var (verdict, output) = Run(packet);
        Assert.Equal(BpfObjects.TcActOk, verdict);
        Assert.Equal(63, output[14 + 8]);
        Assert.True(InternetChecksum.IsValid(output.AsSpan(14, 20)), "the IPv4 header checksum is valid after the rewrite (RFC 1071)");
        Assert.NotEqual(BinaryPrimitives.ReadUInt16BigEndian(packet.AsSpan(24)), BinaryPrimitives.ReadUInt16BigEndian(output.AsSpan(24)));
        // Only TTL and checksum changed.
        output[14 + 8] = packet[14 + 8];
        output[24] = packet[24];
        output[25] = packet[25];
        Assert.Equal(packet, output);
    }

    [SkippableFact]
    public void RouteActionDecrementsTheIpv6HopLimitAndDropsAtOne()
    {
        _verdict.Update(VerdictKey.For(TestPackets.Udp, 0), new VerdictValue { Action = VerdictAction.Route });
        var (verdict, output) = Run(TestPackets.Ipv6(TestPackets.Udp, 1, 2, hopLimit: 2));
        Assert.Equal(BpfObjects.TcActOk, verdict);
        Assert.Equal(1, output[14 + 7]);

        Assert.Equal(BpfObjects.TcActShot, Run(TestPackets.Ipv6(TestPackets.Udp, 1, 2, hopLimit: 1)).Verdict);
        Assert.Equal(1ul, Packets(DropReason.TtlExceeded, 6, TestPackets.Udp));
    }

    [SkippableTheory]
    [InlineData("ihl-beyond-end")]   // IHL says 60 bytes of header, the frame ends first
    [InlineData("ihl-too-small")]    // IHL 4 (< 5, RFC 791)
    [InlineData("wrong-version")]    // ethertype IPv4, version nibble 6
    [InlineData("ports-cut")]        // UDP ports cut short
    public void MalformedIpv4IsDroppedAsInvalid(string damage)
    {
        var packet = TestPackets.Ipv4(TestPackets.Udp, 1, 2, payloadLength: 0);
        switch (damage)
        {
            case "ihl-beyond-end": packet[14] = 0x4f; break;
            case "ihl-too-small": packet[14] = 0x44; break;
            case "wrong-version": packet[14] = 0x65; break;
            case "ports-cut": packet = packet[..(14 + 20 + 2)]; break;
        }
        Assert.Equal(BpfObjects.TcActShot, Run(packet).Verdict);
        // The L4 protocol is known only when the IPv4 header itself parsed.
        var proto = damage == "ports-cut" ? TestPackets.Udp : (byte)0;
        Assert.Equal(1ul, Packets(DropReason.InvalidPacket, 4, proto));
        Assert.Equal(0ul, Packets(DropReason.Forwarded, 4, proto));
    }

    [SkippableTheory]
    [InlineData(new[] { TestPackets.Ext.HopByHop })]
    [InlineData(new[] { TestPackets.Ext.HopByHop, TestPackets.Ext.Routing, TestPackets.Ext.DestinationOptions })]
    [InlineData(new[] { TestPackets.Ext.HopByHop, TestPackets.Ext.DestinationOptions, TestPackets.Ext.Routing, TestPackets.Ext.FirstFragment })]
    public void Ipv6ExtensionHeadersAreWalkedToTheL4Ports(TestPackets.Ext[] chain)
    {
        _verdict.Update(VerdictKey.For(TestPackets.Udp, 53), new VerdictValue { Action = VerdictAction.Drop });
        Assert.Equal(BpfObjects.TcActShot, Run(TestPackets.Ipv6(TestPackets.Udp, 1, 53, extensions: chain)).Verdict);
        Assert.Equal(BpfObjects.TcActOk, Run(TestPackets.Ipv6(TestPackets.Udp, 1, 54, extensions: chain)).Verdict);
        Assert.Equal(1ul, Packets(DropReason.Policy, 6, TestPackets.Udp));
    }

    [SkippableFact]
    public void ALaterIpv6FragmentHasNoPortsSoOnlyTheProtocolWildcardApplies()
    {
        _verdict.Update(VerdictKey.For(TestPackets.Udp, 53), new VerdictValue { Action = VerdictAction.Drop });
        // Bytes after a non-first fragment header are payload, not a UDP header (RFC 8200 4.5).
        var fragment = TestPackets.Ipv6(TestPackets.Udp, 1, 53, extensions: TestPackets.Ext.LaterFragment);
        Assert.Equal(BpfObjects.TcActOk, Run(fragment).Verdict);
        _verdict.Update(VerdictKey.For(TestPackets.Udp, 0), new VerdictValue { Action = VerdictAction.Drop });
        Assert.Equal(BpfObjects.TcActShot, Run(fragment).Verdict);
    }

    [SkippableFact]
    public void MoreExtensionHeadersThanTheParserWalksAreDropped()
    {
        var chain = Enumerable.Repeat(TestPackets.Ext.DestinationOptions, 5).ToArray();
        Assert.Equal(BpfObjects.TcActShot, Run(TestPackets.Ipv6(TestPackets.Udp, 1, 2, extensions: chain)).Verdict);
        Assert.Equal(1ul, Packets(DropReason.ExtensionHeaderLimit, 6, 0));
    }

    [SkippableFact]
    public void NonIpFramesPass()
    {
        var buffer = new byte[64];
        var b = new PacketBuilder(buffer);
        b.Ethernet(MacAddress.Parse("ff:ff:ff:ff:ff:ff"), TestPackets.SrcMac);
        b.Arp(ArpOperation.Request, TestPackets.SrcMac, Ipv4Address.Parse("198.18.0.1"), default, Ipv4Address.Parse("198.18.0.2"));
        var arp = buffer[..b.Finish()];
        Assert.Equal(BpfObjects.TcActOk, Run(arp).Verdict);
        Assert.Equal(1ul, Packets(DropReason.Forwarded, 0, 0));
    }

    [SkippableFact]
    public void TheEgressEntryCountsUnderEgress()
    {
        using var egress = _obj.FindProgram("test_filter_egress");
        var packet = TestPackets.Ipv4(TestPackets.Tcp, 1, 2);
        Assert.Equal(BpfObjects.TcActOk, egress.TestRun(packet, new byte[packet.Length]).ReturnValue);
        var key = new MetricsKey { Reason = 0, Direction = Direction.Egress, L3 = 4, L4Protocol = TestPackets.Tcp };
        var perCpu = new MetricsValue[_metrics.CpuCount];
        Assert.True(_metrics.TryLookup(key.ToSlot(), perCpu));
        Assert.Equal(1ul, perCpu.Aggregate(0ul, (s, v) => s + v.Packets));
        Assert.Equal((ulong)packet.Length, perCpu.Aggregate(0ul, (s, v) => s + v.Bytes));
        Assert.Equal(0ul, Packets(DropReason.Forwarded, 4, TestPackets.Tcp)); // nothing under ingress
    }

    [SkippableFact]
    public void RepeatRunsTheProgramThatManyTimesAndReportsTheKernelDuration()
    {
        var packet = TestPackets.Ipv4(TestPackets.Udp, 1, 2);
        var result = _ingress.TestRun(packet, new byte[packet.Length], repeat: 1000);
        Assert.Equal(BpfObjects.TcActOk, result.ReturnValue);
        Assert.InRange(result.DurationNanoseconds, 1u, 1_000_000u);
        Assert.Equal(1000ul, Packets(DropReason.Forwarded, 4, TestPackets.Udp));
    }

    [SkippableFact]
    public void BaselineAndParseLookupProgramsRun()
    {
        using var noop = BpfObject.Load(BpfObjects.PathOf(BpfObjects.Noop));
        using var tcNoop = noop.FindProgram("tc_noop");
        using var parse = BpfObject.Load(BpfObjects.PathOf(BpfObjects.ParseLookup));
        using var tcParse = parse.FindProgram("tc_parse_lookup");
        using var verdict = parse.FindMap<VerdictKey, VerdictValue>("verdict");
        var packet = TestPackets.Ipv4(TestPackets.Udp, 1, 53);

        Assert.Equal(BpfObjects.TcActOk, tcNoop.TestRun(packet, new byte[packet.Length], 100).ReturnValue);
        Assert.Equal(BpfObjects.TcActOk, tcParse.TestRun(packet, new byte[packet.Length]).ReturnValue);
        verdict.Update(VerdictKey.For(TestPackets.Udp, 53), new VerdictValue { Action = VerdictAction.Drop });
        Assert.Equal(BpfObjects.TcActShot, tcParse.TestRun(packet, new byte[packet.Length]).ReturnValue);
    }

    [SkippableFact]
    public void TooSmallAnOutputBufferIsAnError()
    {
        var packet = TestPackets.Ipv4(TestPackets.Udp, 1, 2);
        var e = Assert.Throws<BpfException>(() => _ingress.TestRun(packet, new byte[10]));
        Assert.Equal(Errno.ENOSPC, e.Errno);
        Assert.StartsWith("failed to test-run program test_filter_ing", e.Message, StringComparison.Ordinal);
    }
}
