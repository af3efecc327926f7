using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;
using Membrane.Packets;

namespace Membrane.Datapath.Tests;

/// <summary>
/// from_pod run by the kernel itself (BPF_PROG_TEST_RUN) on packets from Membrane.Packets'
/// builder. Without a context the kernel runs a tc program on the calling namespace's
/// loopback (net/bpf/test_run.c bpf_prog_test_run_skb: skb->dev = net->loopback_dev), so
/// the program sees ifindex 1: the source endpoint is written under ifindex 1. The kernel
/// does not perform the redirect in a test run; bpf_redirect_peer only records the target
/// and returns TC_ACT_REDIRECT, which is what is asserted here, with the rewritten packet.
/// The real redirect is covered by EndpointLiveTests.
/// </summary>
[Collection("kernel")]
public sealed class FromPodTestRunTests : IDisposable
{
    private const int LoopbackIfindex = 1;
    private const int DestinationIfindex = 4242; // a test run never resolves it

    private static readonly MacAddress SourceMac = MacAddress.Parse("02:00:00:00:00:10");
    private static readonly MacAddress SourceHostMac = MacAddress.Parse("02:00:00:00:01:10");
    private static readonly MacAddress DestinationMac = MacAddress.Parse("02:00:00:00:00:20");
    private static readonly MacAddress DestinationHostMac = MacAddress.Parse("02:00:00:00:01:20");
    private static readonly Ipv4Address Source4 = Ipv4Address.Parse("198.18.0.10");
    private static readonly Ipv4Address Destination4 = Ipv4Address.Parse("198.18.0.20");
    private static readonly Ipv6Address Source6 = Ipv6Address.Parse("fd00:198:18::10");
    private static readonly Ipv6Address Destination6 = Ipv6Address.Parse("fd00:198:18::20");

    private readonly DatapathTestScope _scope = new();
    private readonly Datapath _datapath;

    public FromPodTestRunTests()
    {
        _datapath = Datapath.Open(_scope.Options);
        _datapath.UpsertEndpoint(Entry(LoopbackIfindex, Source4, Source6, SourceMac, SourceHostMac));
        _datapath.UpsertEndpoint(Entry(DestinationIfindex, Destination4, Destination6, DestinationMac, DestinationHostMac));
    }

    public void Dispose()
    {
        _datapath.Dispose();
        _scope.Dispose();
    }

    private static EndpointEntry Entry(int ifindex, Ipv4Address v4, Ipv6Address v6, MacAddress mac, MacAddress hostMac) =>
        new(ifindex, IPAddress.Parse(v4.ToString()), IPAddress.Parse(v6.ToString()),
            PhysicalAddress.Parse(mac.ToString()), PhysicalAddress.Parse(hostMac.ToString()), 300);

    private (uint Verdict, byte[] Out) Run(byte[] packet)
    {
        var output = new byte[packet.Length + 64];
        var result = _datapath.Program.TestRun(packet, output);
        return (result.ReturnValue, output[..result.DataOutLength]);
    }

    private static byte[] Build(Func<byte[], int> build)
    {
        var buffer = new byte[256];
        return buffer[..build(buffer)];
    }

    private static byte[] Udp4(Ipv4Address src, Ipv4Address dst, MacAddress srcMac, byte ttl = 64) => Build(buf =>
    {
        var b = new PacketBuilder(buf);
        b.Ethernet(SourceHostMac, srcMac);
        b.Ipv4(src, dst, ttl: ttl, identification: 7);
        b.Udp(40000, 53);
        b.Payload(18, 0xab);
        return b.Finish();
    });

    private static byte[] Tcp6(Ipv6Address src, Ipv6Address dst, MacAddress srcMac, byte hopLimit = 64) => Build(buf =>
    {
        var b = new PacketBuilder(buf);
        b.Ethernet(SourceHostMac, srcMac);
        b.Ipv6(src, dst, hopLimit: hopLimit);
        b.Tcp(40000, 80, flags: TcpFlags.Syn);
        return b.Finish();
    });

    private static byte[] Icmp4(Ipv4Address src, Ipv4Address dst) => Build(buf =>
    {
        var b = new PacketBuilder(buf);
        b.Ethernet(SourceHostMac, SourceMac);
        b.Ipv4(src, dst);
        b.Icmpv4Echo(request: true, 1, 1);
        b.Payload(8, 1);
        return b.Finish();
    });

    private static readonly Ipv4Address Gateway4 = Ipv4Address.Parse("198.18.0.1");
    private static readonly Ipv6Address Gateway6 = Ipv6Address.Parse("fd00:198:18::1");

    private static byte[] Arp(MacAddress senderMac, Ipv4Address senderIp, Ipv4Address? target = null) => Build(buf =>
    {
        var b = new PacketBuilder(buf);
        b.Ethernet(MacAddress.Broadcast, SourceMac);
        b.Arp(ArpOperation.Request, senderMac, senderIp, new MacAddress(0), target ?? Gateway4);
        return b.Finish();
    });

    private static byte[] NeighbourSolicitation(Ipv6Address source, Ipv6Address target, MacAddress optionMac) => Build(buf =>
    {
        var b = new PacketBuilder(buf);
        // To the target's solicited-node multicast group (RFC 4291 2.7.1), as Linux sends it.
        b.Ethernet(MacAddress.Parse("33:33:ff:00:00:01"), SourceMac);
        b.Ipv6(source, Ipv6Address.Parse("ff02::1:ff00:1"), hopLimit: 255);
        b.NeighborSolicitation(target, optionMac);
        return b.Finish();
    });

    private void AssertToTheStackUnchanged(byte[] packet)
    {
        var (verdict, output) = Run(packet);
        Assert.Equal(DatapathObjects.TcActOk, verdict);
        Assert.Equal(packet, output);
    }

    private ulong Count(int reason) => _datapath.PacketsFor(reason);

    [SkippableFact]
    public void Ipv4ToALocalPodIsRedirectedWithBothMacsRewrittenAndTheTtlDecremented()
    {
        var packet = Udp4(Source4, Destination4, SourceMac);
        var (verdict, output) = Run(packet);

        Assert.Equal(DatapathObjects.TcActRedirect, verdict);
        Assert.Equal(packet.Length, output.Length);
        Assert.Equal(DestinationMac, MacAddress.Read(output));
        Assert.Equal(DestinationHostMac, MacAddress.Read(output.AsSpan(6)));
        Assert.Equal(63, output[14 + 8]);
        // RFC 1624: the incremental update leaves a header whose checksum verifies.
        Assert.True(InternetChecksum.IsValid(output.AsSpan(14, 20)), "IPv4 header checksum is wrong after the TTL decrement");
        // Nothing but the MACs, the TTL and the header checksum changed.
        Assert.Equal(packet.AsSpan(12, 10).ToArray(), output.AsSpan(12, 10).ToArray());
        Assert.Equal(packet.AsSpan(14 + 12).ToArray(), output.AsSpan(14 + 12).ToArray());
        Assert.Equal(1ul, Count(0));
    }

    [SkippableFact]
    public void Ipv6ToALocalPodIsRedirectedWithTheHopLimitDecremented()
    {
        var packet = Tcp6(Source6, Destination6, SourceMac);
        var (verdict, output) = Run(packet);

        Assert.Equal(DatapathObjects.TcActRedirect, verdict);
        Assert.Equal(DestinationMac, MacAddress.Read(output));
        Assert.Equal(DestinationHostMac, MacAddress.Read(output.AsSpan(6)));
        Assert.Equal(63, output[14 + 7]);
        Assert.Equal(packet.AsSpan(14 + 8).ToArray(), output.AsSpan(14 + 8).ToArray());
        Assert.Equal(1ul, _datapath.ReadMetrics().Single(m => m.Reason == 0 && m.L3 == 6 && m.L4Protocol == IpProtocols.Tcp).Packets);
    }

    [SkippableFact]
    public void IcmpToALocalPodIsRedirected()
    {
        var (verdict, _) = Run(Icmp4(Source4, Destination4));
        Assert.Equal(DatapathObjects.TcActRedirect, verdict);
    }

    [SkippableTheory]
    [InlineData(4)]
    [InlineData(6)]
    public void ANonLocalDestinationGoesToTheStackUnchanged(int family)
    {
        var packet = family == 4
            ? Udp4(Source4, Ipv4Address.Parse("198.19.7.7"), SourceMac)
            : Tcp6(Source6, Ipv6Address.Parse("fd00:198:18:ff::7"), SourceMac);
        var (verdict, output) = Run(packet);
        Assert.Equal(DatapathObjects.TcActOk, verdict);
        Assert.Equal(packet, output);
        Assert.Equal(1ul, Count(0));
    }

    [SkippableTheory]
    [InlineData(4)]
    [InlineData(6)]
    public void AnExpiringTtlGoesToTheStackUnchangedSoThatItAnswersTimeExceeded(int family)
    {
        var packet = family == 4 ? Udp4(Source4, Destination4, SourceMac, ttl: 1) : Tcp6(Source6, Destination6, SourceMac, hopLimit: 1);
        var (verdict, output) = Run(packet);
        Assert.Equal(DatapathObjects.TcActOk, verdict);
        Assert.Equal(packet, output);
    }

    [SkippableTheory]
    [InlineData(4)]
    [InlineData(6)]
    public async Task ASpoofedSourceIpIsDroppedCountedAndReported(int family)
    {
        await using var events = _datapath.OpenEvents();
        var packet = family == 4
            ? Udp4(Ipv4Address.Parse("198.18.0.99"), Destination4, SourceMac)
            : Tcp6(Ipv6Address.Parse("fd00:198:18::99"), Destination6, SourceMac);
        var (verdict, _) = Run(packet);

        Assert.Equal(DatapathObjects.TcActShot, verdict);
        Assert.Equal(1ul, Count((int)EndpointDropReason.SpoofedIp));
        Assert.Equal(0ul, Count(0));
        var drop = await NextDrop(events);
        Assert.Equal((int)EndpointDropReason.SpoofedIp, drop.Reason);
        Assert.Equal("spoofed-source-ip", drop.ReasonName);
        Assert.Equal(LoopbackIfindex, drop.Ifindex);
        Assert.Equal(Direction.Ingress, drop.Direction);
        Assert.Equal(family == 4 ? IpProtocols.Udp : IpProtocols.Tcp, drop.L4Protocol);
        Assert.Equal(packet.Length, drop.PacketLength);
        Assert.Equal(packet.AsSpan(0, Math.Min(packet.Length, DropEvent.CaptureLength)).ToArray(), drop.Packet);
    }

    [SkippableFact]
    public async Task ASpoofedSourceMacIsDroppedCountedAndReported()
    {
        await using var events = _datapath.OpenEvents();
        var packet = Udp4(Source4, Destination4, MacAddress.Parse("02:00:00:00:00:99"));
        var (verdict, _) = Run(packet);

        Assert.Equal(DatapathObjects.TcActShot, verdict);
        Assert.Equal(1ul, Count((int)EndpointDropReason.SpoofedMac));
        var drop = await NextDrop(events);
        Assert.Equal((int)EndpointDropReason.SpoofedMac, drop.Reason);
        Assert.Equal(packet, drop.Packet);
    }

    [SkippableFact]
    public void APacketOnADeviceWithoutAnEndpointIsDropped()
    {
        Assert.True(_datapath.DeleteEndpoint(LoopbackIfindex));
        var (verdict, _) = Run(Udp4(Source4, Destination4, SourceMac));
        Assert.Equal(DatapathObjects.TcActShot, verdict);
        Assert.Equal(1ul, Count((int)EndpointDropReason.UnknownEndpoint));
        // Its addresses went with it; the other endpoint's stayed.
        Assert.False(_datapath.TryGetEndpointByAddress(IPAddress.Parse("198.18.0.10"), out _));
        Assert.True(_datapath.TryGetEndpointByAddress(IPAddress.Parse("198.18.0.20"), out var other));
        Assert.Equal(DestinationIfindex, other.Ifindex);
    }

    [SkippableFact]
    public void AnEndpointWhoseSlotAnotherEndpointHoldsIsFoundInTheHash()
    {
        // ifindex 65,537 shares slot 1 with the loopback's endpoint: whoever came first keeps it.
        const int Collider = 65_537;
        Assert.True(_datapath.DeleteEndpoint(LoopbackIfindex));
        Assert.Equal(0u, _datapath.EndpointSlots[LoopbackIfindex].Ifindex);
        _datapath.UpsertEndpoint(Entry(Collider, Ipv4Address.Parse("198.18.0.30"), Ipv6Address.Parse("fd00:198:18::30"),
            MacAddress.Parse("02:00:00:00:00:30"), MacAddress.Parse("02:00:00:00:01:30")));
        _datapath.UpsertEndpoint(Entry(LoopbackIfindex, Source4, Source6, SourceMac, SourceHostMac));
        Assert.Equal((uint)Collider, _datapath.EndpointSlots[LoopbackIfindex].Ifindex);

        Assert.Equal(DatapathObjects.TcActRedirect, Run(Udp4(Source4, Destination4, SourceMac)).Verdict);

        // The holder goes: its slot is emptied, the other endpoint is still found, and claims the slot when written again.
        Assert.True(_datapath.DeleteEndpoint(Collider));
        Assert.Equal(0u, _datapath.EndpointSlots[LoopbackIfindex].Ifindex);
        Assert.Equal(DatapathObjects.TcActRedirect, Run(Udp4(Source4, Destination4, SourceMac)).Verdict);
        _datapath.UpsertEndpoint(Entry(LoopbackIfindex, Source4, Source6, SourceMac, SourceHostMac) with { EgressPolicy = true });
        Assert.Equal((uint)LoopbackIfindex, _datapath.EndpointSlots[LoopbackIfindex].Ifindex);
        Assert.Equal(EndpointFlags.EgressPolicy, _datapath.EndpointSlots[LoopbackIfindex].Flags & EndpointFlags.EgressPolicy);
    }

    [SkippableFact]
    public void ADeletedEndpointsSlotIsEmptiedSoItsDeviceStopsForwarding()
    {
        Assert.Equal((uint)LoopbackIfindex, _datapath.EndpointSlots[LoopbackIfindex].Ifindex);
        Assert.True(_datapath.DeleteEndpoint(LoopbackIfindex));
        Assert.Equal(0u, _datapath.EndpointSlots[LoopbackIfindex].Ifindex);
        Assert.Equal(DatapathObjects.TcActShot, Run(Udp4(Source4, Destination4, SourceMac)).Verdict);
    }

    [SkippableTheory]
    [InlineData(4)]
    [InlineData(6)]
    public void AnEndpointFarFromTheOthersIsStillDeliveredLocally(int family)
    {
        // The endpoint prefix held 198.18.0.0/27 and fd00:198:18::/122; writing this endpoint widens it first.
        var far4 = Ipv4Address.Parse("198.19.200.1");
        var far6 = Ipv6Address.Parse("fd00:198:18:ffff::1");
        var farMac = MacAddress.Parse("02:00:00:00:00:40");
        _datapath.UpsertEndpoint(Entry(4343, far4, far6, farMac, MacAddress.Parse("02:00:00:00:01:40")));
        var prefix = _datapath.EndpointPrefixes[0];
        Assert.True(prefix.Covers(IPAddress.Parse("198.18.0.10")) && prefix.Covers(IPAddress.Parse("198.19.200.1")));
        Assert.False(prefix.Covers(IPAddress.Parse("198.51.100.7")));

        var packet = family == 4 ? Udp4(Source4, far4, SourceMac) : Tcp6(Source6, far6, SourceMac);
        var (verdict, output) = Run(packet);
        Assert.Equal(DatapathObjects.TcActRedirect, verdict);
        Assert.Equal(farMac, MacAddress.Read(output));
    }

    [SkippableFact]
    public void AnArpRequestForTheGatewayIsAnsweredInPlaceWithTheHostSideMac()
    {
        var (verdict, output) = Run(Arp(SourceMac, Source4));

        // bpf_redirect(skb->ifindex) sends the reply back out of the host side to the pod.
        Assert.Equal(DatapathObjects.TcActRedirect, verdict);
        Assert.Equal(SourceMac, MacAddress.Read(output));
        Assert.Equal(SourceHostMac, MacAddress.Read(output.AsSpan(6)));
        var arp = ArpHeader.Read(output.AsSpan(14));
        Assert.Equal((ushort)ArpOperation.Reply, arp.Operation);
        Assert.Equal(SourceHostMac, arp.SenderMac);
        Assert.Equal(Gateway4, arp.SenderIpv4);
        Assert.Equal(SourceMac, arp.TargetMac);
        Assert.Equal(Source4, arp.TargetIpv4);
        Assert.Equal(1ul, Count(0));
    }

    [SkippableFact]
    public void ArpProbesAndGratuitousArpGoToTheStack()
    {
        // A probe (RFC 5227 2.1.1) has sender IP 0.0.0.0; an answer would say the address is taken.
        var probe = Arp(SourceMac, new Ipv4Address(0), target: Source4);
        AssertToTheStackUnchanged(probe);
        // Gratuitous ARP announces the pod's own address.
        var announcement = Arp(SourceMac, Source4, target: Source4);
        AssertToTheStackUnchanged(announcement);
    }

    [SkippableFact]
    public void ArpSpeakingForAnotherAddressOrMacIsDropped()
    {
        Assert.Equal(DatapathObjects.TcActShot, Run(Arp(SourceMac, Destination4)).Verdict);
        Assert.Equal(DatapathObjects.TcActShot, Run(Arp(DestinationMac, Source4)).Verdict);
        Assert.Equal(1ul, Count((int)EndpointDropReason.SpoofedIp));
        Assert.Equal(1ul, Count((int)EndpointDropReason.SpoofedMac));
        var byReason = _datapath.ReadMetricsByReason();
        Assert.Equal(["spoofed-source-ip", "spoofed-source-mac"], byReason.Select(m => m.ReasonName));
        Assert.All(byReason, m => Assert.Equal(Direction.Ingress, m.Direction));
        Assert.All(byReason, m => Assert.Equal(42ul, m.Bytes)); // Ethernet 14 + ARP 28
    }

    [SkippableTheory]
    [InlineData("fd00:198:18::10")] // from the pod's address
    [InlineData("fe80::10")]        // from its link-local address
    public void ANeighbourSolicitationForTheGatewayIsAnsweredWithAnAdvertisement(string source)
    {
        var from = Ipv6Address.Parse(source);
        var (verdict, output) = Run(NeighbourSolicitation(from, Gateway6, SourceMac));

        Assert.Equal(DatapathObjects.TcActRedirect, verdict);
        Assert.Equal(SourceMac, MacAddress.Read(output));
        Assert.Equal(SourceHostMac, MacAddress.Read(output.AsSpan(6)));
        var ip6 = output.AsSpan(14, 40);
        Assert.Equal(255, ip6[7]); // RFC 4861 7.1.2
        Assert.Equal(Gateway6, Ipv6Address.Read(ip6[8..]));
        Assert.Equal(from, Ipv6Address.Read(ip6[24..]));
        var na = output.AsSpan(54);
        Assert.Equal(32, na.Length);
        Assert.Equal(Icmpv6Types.NeighborAdvertisement, na[0]);
        Assert.Equal(0xe0u, na[4]); // Router | Solicited | Override
        Assert.Equal(Gateway6, Ipv6Address.Read(na[8..]));
        Assert.Equal(NdOptionTypes.TargetLinkLayerAddress, na[24]);
        Assert.Equal(1, na[25]);
        Assert.Equal(SourceHostMac, MacAddress.Read(na[26..]));
        // RFC 4443 2.3: the checksum covers the pseudo-header (RFC 8200 8.1) and the message.
        var pseudo = new byte[40];
        ip6.Slice(8, 32).CopyTo(pseudo);
        BinaryPrimitives.WriteUInt32BigEndian(pseudo.AsSpan(32), (uint)na.Length);
        pseudo[39] = IpProtocols.Icmpv6;
        Assert.True(InternetChecksum.IsValid(na, InternetChecksum.Sum(pseudo)), "ICMPv6 checksum of the advertisement is wrong");
    }

    [SkippableFact]
    public void DuplicateAddressDetectionAndSolicitationsForThePodsOwnAddressGoToTheStack()
    {
        // DAD (RFC 4862 5.4.2) comes from ::; an answer would make the pod give its address up.
        var dad = NeighbourSolicitation(Ipv6Address.Parse("::"), Source6, SourceMac);
        AssertToTheStackUnchanged(dad);
        var own = NeighbourSolicitation(Ipv6Address.Parse("fe80::10"), Source6, SourceMac);
        AssertToTheStackUnchanged(own);
    }

    [SkippableFact]
    public void ASolicitationWhoseOptionNamesAnotherMacIsDropped()
    {
        var (verdict, _) = Run(NeighbourSolicitation(Source6, Gateway6, DestinationMac));
        Assert.Equal(DatapathObjects.TcActShot, verdict);
        Assert.Equal(1ul, Count((int)EndpointDropReason.SpoofedMac));
    }

    [SkippableFact]
    public void LinkLocalControlTrafficGoesToTheStack()
    {
        var packet = Build(buf =>
        {
            var b = new PacketBuilder(buf);
            b.Ethernet(MacAddress.Parse("33:33:00:00:00:02"), SourceMac);
            b.Ipv6(Ipv6Address.Parse("fe80::10"), Ipv6Address.Parse("ff02::2"), hopLimit: 255);
            b.RouterSolicitation(SourceMac);
            return b.Finish();
        });
        var (verdict, output) = Run(packet);
        Assert.Equal(DatapathObjects.TcActOk, verdict);
        Assert.Equal(packet, output);
    }

    [SkippableFact]
    public void AnUnsupportedEthertypeIsDropped()
    {
        var packet = Build(buf =>
        {
            var b = new PacketBuilder(buf);
            b.Ethernet(SourceHostMac, SourceMac, etherType: 0x88cc); // LLDP
            b.Payload(46);
            return b.Finish();
        });
        Assert.Equal(DatapathObjects.TcActShot, Run(packet).Verdict);
        Assert.Equal(1ul, Count((int)DropReason.UnsupportedL3));
    }

    [SkippableFact]
    public void AnIpv4HeaderLongerThanThePacketIsDroppedAsInvalid()
    {
        // IHL 15 claims 60 bytes of header; 28 bytes of IP follow the Ethernet header. (A
        // frame cut inside the IPv4 header cannot be tested: the kernel refuses to test-run it.)
        var packet = Udp4(Source4, Destination4, SourceMac)[..(14 + 28)];
        packet[14] = 0x4f;
        Assert.Equal(DatapathObjects.TcActShot, Run(packet).Verdict);
        Assert.Equal(1ul, Count((int)DropReason.InvalidPacket));
    }

    private static async Task<DatapathDrop> NextDrop(BpfRingBufferReader events)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await foreach (var record in events.ReadAllAsync(timeout.Token))
        {
            Assert.True(DatapathDrop.TryDecode(record.Span, out var drop, out var error, out var offset), $"undecodable record: {error} at {offset}");
            return drop!;
        }
        throw new InvalidOperationException("the ring buffer ended without a record");
    }
}
