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
                if (!TryFinalDestination(packet, n, layer.Offset, out var destination))
                {
                    return false;
                }
                sum = InternetChecksum.PseudoHeaderSum(Ipv6Address.Read(packet.Slice(n + 8)), destination, protocol, length);
                return true;
            default:
                return false;
        }
    }

    // RFC 8200 §8.1: with a routing header whose segments left is non-zero, the pseudo-header names the final
    // destination, which the routing header holds: the last address of a type 0/2 header (RFC 2460, RFC 6275),
    // the first entry of a segment routing header's list (RFC 8754 §2). Other routing types (RPL's compressed
    // addresses) cannot be resolved here, and the checksum is reported unverifiable.
    internal static bool TryFinalDestination(ReadOnlySpan<byte> packet, int ipv6, int upperLayer, out Ipv6Address destination)
    {
        destination = Ipv6Address.Read(packet.Slice(ipv6 + 24));
        byte next = packet[ipv6 + 6];
        int at = ipv6 + Ipv6Header.Length;
        for (int i = 0; i < Ipv6ChainState.DefaultMaxHeaders && at + 8 <= upperLayer; i++)
        {
            if (next is not (IpProtocols.HopByHopOptions or IpProtocols.Routing or IpProtocols.DestinationOptions or IpProtocols.Fragment))
            {
                break;
            }
            int len = next == IpProtocols.Fragment ? 8 : (packet[at + 1] + 1) * 8;
            if (at + len > upperLayer)
            {
                return false;
            }
            if (next == IpProtocols.Routing && packet[at + 3] != 0)
            {
                switch (packet[at + 2])
                {
                    case 0 or 2 when len >= 24:
                        destination = Ipv6Address.Read(packet.Slice(at + len - 16));
                        break;
                    case 4 when len >= 24:
                        destination = Ipv6Address.Read(packet.Slice(at + 8));
                        break;
                    default:
                        return false;
                }
            }
            next = packet[at];
            at += len;
        }
        return true;
    }
}
