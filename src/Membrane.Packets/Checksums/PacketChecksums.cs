using System.Buffers.Binary;

namespace Membrane.Packets;

/// <summary>Checksum verification for layers found by the dissector.</summary>
public static class PacketChecksums
{
    /// <summary>Verifies <paramref name="layer"/>'s checksum over <paramref name="packet"/>; see <see cref="Layer.VerifyChecksum"/>.</summary>
    public static ChecksumStatus Verify(ReadOnlySpan<byte> packet, in Layer layer)
    {
        if ((uint)layer.End > (uint)packet.Length || (uint)layer.Offset > (uint)layer.End)
        {
            return ChecksumStatus.Unverifiable;
        }
        switch (layer.Kind)
        {
            case LayerKind.IPv4:
                return layer.AsIpv4(packet).VerifyChecksum();
            case LayerKind.Icmpv4:
                return (layer.Flags & (LayerFlags.Truncated | LayerFlags.InsideIcmpError)) != 0
                    ? ChecksumStatus.Unverifiable
                    : layer.AsIcmpv4(packet).VerifyChecksum();
            case LayerKind.Tcp:
            case LayerKind.Udp:
            case LayerKind.Icmpv6:
                if ((layer.Flags & (LayerFlags.Truncated | LayerFlags.InsideIcmpError)) != 0)
                {
                    return ChecksumStatus.Unverifiable;
                }
                if (layer.Kind == LayerKind.Udp)
                {
                    var udp = layer.AsUdp(packet);
                    if (udp.Checksum == 0 && NetworkVersion(packet, layer.NetworkOffset) == 4)
                    {
                        return ChecksumStatus.Absent;
                    }
                }
                if (!TryPseudoHeaderSum(packet, layer, out uint sum))
                {
                    return ChecksumStatus.Unverifiable;
                }
                return InternetChecksum.IsValid(layer.Region(packet), sum) ? ChecksumStatus.Good : ChecksumStatus.Bad;
            default:
                return ChecksumStatus.NotApplicable;
        }
    }

    private static int NetworkVersion(ReadOnlySpan<byte> packet, int offset) =>
        (uint)offset < (uint)packet.Length ? packet[offset] >> 4 : 0;

    /// <summary>The pseudo-header sum for a TCP, UDP or ICMPv6 layer, from the IP header at <see cref="Layer.NetworkOffset"/>.</summary>
    public static bool TryPseudoHeaderSum(ReadOnlySpan<byte> packet, in Layer layer, out uint sum)
    {
        sum = 0;
        byte protocol = layer.Kind switch
        {
            LayerKind.Tcp => IpProtocols.Tcp,
            LayerKind.Udp => IpProtocols.Udp,
            LayerKind.Icmpv6 => IpProtocols.Icmpv6,
            _ => 0,
        };
        int n = layer.NetworkOffset;
        if (protocol == 0 || n < 0)
        {
            return false;
        }
        int length = layer.End - layer.Offset;
        switch (NetworkVersion(packet, n))
        {
            case 4 when n + 20 <= packet.Length:
                sum = InternetChecksum.PseudoHeaderSum(
                    new Ipv4Address(BinaryPrimitives.ReadUInt32BigEndian(packet.Slice(n + 12))),
                    new Ipv4Address(BinaryPrimitives.ReadUInt32BigEndian(packet.Slice(n + 16))), protocol, length);
                return true;
            case 6 when n + 40 <= packet.Length:
                // RFC 8200 §8.1: with a routing header the final destination would be used; Membrane's traffic
                // has none with segments left, so the header's destination is the right one.
                sum = InternetChecksum.PseudoHeaderSum(Ipv6Address.Read(packet.Slice(n + 8)), Ipv6Address.Read(packet.Slice(n + 24)), protocol, length);
                return true;
            default:
                return false;
        }
    }
}
