using System.Buffers.Binary;

namespace Membrane.Packets.Tests;

public class PacketBuilderTests
{
    [Fact]
    public void NextProtocolFieldsFollowTheNextLayer()
    {
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ethernet(SampleFrames.MacB, SampleFrames.MacA);
            b.Vlan(7, tpid: EtherTypes.QinQ);
            b.Ipv6(SampleFrames.Pod6a, SampleFrames.Pod6b);
            b.Ipv6HopByHop();
            b.Ipv6Fragment(0, false, 1);
            b.Icmpv6Echo(true, 1, 1);
        });
        Assert.Equal(EtherTypes.QinQ, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)));
        Assert.Equal(EtherTypes.IPv6, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(16)));
        Assert.Equal(IpProtocols.HopByHopOptions, frame[18 + 6]);
        Assert.Equal(IpProtocols.Fragment, frame[18 + 40]);
        Assert.Equal(IpProtocols.Icmpv6, frame[18 + 48]);
        Assert.Equal(8 + 8 + 8, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(18 + 4)));
    }

    [Fact]
    public void ExplicitNextProtocolIsKept()
    {
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ethernet(SampleFrames.MacB, SampleFrames.MacA, etherType: 0x88B5);
            b.Ipv4(SampleFrames.Pod1, SampleFrames.Pod2, protocol: 253);
            b.Udp(1, 2);
        });
        Assert.Equal(0x88B5, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)));
        Assert.Equal(253, frame[14 + 9]);
    }

    [Fact]
    public void UdpChecksumThatComputesToZeroIsSentAsAllOnes()
    {
        // Find the two payload bytes that make the one's-complement sum all ones, so the checksum computes to 0.
        var probe = Build([0, 0]);
        ushort c = BinaryPrimitives.ReadUInt16BigEndian(probe.AsSpan(20 + 6));
        var payload = new byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(payload, c);
        var frame = Build(payload);

        Assert.Equal(0xFFFF, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(20 + 6)));
        var udp = new PacketDissector(frame, LinkType.RawIp);
        udp.TryNext(out _);
        udp.TryNext(out var layer);
        Assert.Equal(ChecksumStatus.Good, layer.VerifyChecksum(frame));

        static byte[] Build(byte[] payload) => SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ipv4(SampleFrames.Pod1, SampleFrames.Pod2);
            b.Udp(1000, 2000);
            b.Payload(payload);
        });
    }

    [Fact]
    public void UdpWithoutChecksumLeavesZero()
    {
        var frame = SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ipv4(SampleFrames.Pod1, SampleFrames.Pod2);
            b.Udp(1000, TunnelPorts.Vxlan, computeChecksum: false);
            b.Vxlan(5);
        });
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(20 + 6)));
    }

    [Fact]
    public void IncrementalUpdateAfterNatMatchesARebuiltPacket()
    {
        // RFC 1624 as NAT uses it: rewrite the source address and port, patch the IP and TCP checksums.
        var before = Tcp(SampleFrames.Pod1, 40000);
        var after = Tcp(Ipv4Address.Parse("198.18.9.9"), 50000);
        var patched = before.ToArray();
        uint oldIp = BinaryPrimitives.ReadUInt32BigEndian(patched.AsSpan(12));
        uint newIp = Ipv4Address.Parse("198.18.9.9").Value;
        BinaryPrimitives.WriteUInt32BigEndian(patched.AsSpan(12), newIp);
        BinaryPrimitives.WriteUInt16BigEndian(patched.AsSpan(10), InternetChecksum.Update(BinaryPrimitives.ReadUInt16BigEndian(patched.AsSpan(10)), oldIp, newIp));
        ushort tcpCheck = BinaryPrimitives.ReadUInt16BigEndian(patched.AsSpan(20 + 16));
        tcpCheck = InternetChecksum.Update(tcpCheck, oldIp, newIp);
        tcpCheck = InternetChecksum.Update(tcpCheck, (ushort)40000, (ushort)50000);
        BinaryPrimitives.WriteUInt16BigEndian(patched.AsSpan(20), 50000);
        BinaryPrimitives.WriteUInt16BigEndian(patched.AsSpan(20 + 16), tcpCheck);
        Assert.Equal(after, patched);

        static byte[] Tcp(Ipv4Address src, ushort sport) => SampleFrames.Make((ref PacketBuilder b) =>
        {
            b.Ipv4(src, SampleFrames.Pod2, identification: 77);
            b.Tcp(sport, 443, 1, 2, TcpFlags.Ack, 1000);
            b.Payload([1, 2, 3, 4, 5]);
        });
    }

    [Fact]
    public void MisuseIsRefusedWithAMessage()
    {
        var buffer = new byte[256];
        AssertRefused("failed to build VLAN tag", () => { var b = new PacketBuilder(buffer); b.Vlan(1); });
        AssertRefused("failed to build IPv4 header", () => { var b = new PacketBuilder(buffer); b.Ipv4(default, default, options: new byte[41]); });
        AssertRefused("failed to build TCP header", () => { var b = new PacketBuilder(buffer); b.Ipv4(default, default); b.Tcp(1, 2, options: new byte[44]); });
        AssertRefused("failed to build Geneve option", () => GeneveHeader.WriteOption(buffer, 1, 1, new byte[125]));
        AssertRefused("failed to build ND option", () => { var b = new PacketBuilder(buffer); b.NdOption(1, [1]); });
        AssertRefused("failed to build seed frame", () => { var b = new PacketBuilder(buffer); b.Seed(16, 0, 0); });
        AssertRefused("failed to build packet", () => { var b = new PacketBuilder(buffer); b.Payload(1); b.Finish(); b.Finish(); });
        AssertRefused("failed to build TCP checksum", () => { var b = new PacketBuilder(buffer); b.Tcp(1, 2); b.Finish(); });
    }

    private static void AssertRefused(string prefix, Action build)
    {
        var e = Assert.Throws<ArgumentException>(build);
        Assert.StartsWith(prefix, e.Message);
    }

    [Fact]
    public void StaticHeaderWritersProduceReadableHeaders()
    {
        var buf = new byte[64];
        Assert.Equal(14, EthernetHeader.Write(buf, SampleFrames.MacB, SampleFrames.MacA, EtherTypes.Arp));
        var eth = EthernetHeader.Read(buf);
        Assert.Equal((SampleFrames.MacB, SampleFrames.MacA, EtherTypes.Arp), (eth.Destination, eth.Source, eth.EtherType));

        int hl = Ipv4Header.Write(buf, SampleFrames.Pod1, SampleFrames.Pod2, IpProtocols.Udp, 44 - 24, ttl: 9, options: [1, 1, 1, 0]);
        Assert.Equal(24, hl);
        var ip = Ipv4Header.Read(buf.AsSpan(0, 44));
        Assert.Equal(ChecksumStatus.Good, ip.VerifyChecksum());
        Assert.Equal((9, 44, 24), (ip.TimeToLive, (int)ip.TotalLength, ip.HeaderLength));

        Assert.Equal(8, VxlanHeader.Write(buf, 0xFFFFFF));
        Assert.Equal(0xFFFFFFu, VxlanHeader.Read(buf).Vni);

        var ex = Assert.Throws<PacketParseException>(() => Ipv4Header.Read(buf.AsSpan(0, 10)));
        Assert.Equal(ParseErrorReason.Truncated, ex.Error.Reason);
    }
}
