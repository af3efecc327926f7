using PacketDotNet;

namespace Membrane.Benchmarks;

/// <summary>
/// The comparison the issue names: PacketDotNet 1.4.8's <c>Packet.ParsePacket</c> pulling the
/// same fields Membrane's flow key holds (addresses, protocol, ports, VLAN id). PacketDotNet
/// does not follow VXLAN/Geneve, so for tunnelled frames it stops at the outer header — it
/// does strictly less work than Membrane there, which favours the baseline.
/// </summary>
public static class PacketDotNetBaseline
{
    /// <summary>Parses one frame and folds its flow fields into a checksum (so nothing is optimised away).</summary>
    public static long FlowFields(byte[] frame)
    {
        var packet = Packet.ParsePacket(LinkLayers.Ethernet, frame);
        long acc = 0;
        if (packet.Extract<Ieee8021QPacket>() is { } vlan)
        {
            acc += vlan.VlanIdentifier;
        }
        if (packet.Extract<IPPacket>() is { } ip)
        {
            acc += H(ip.SourceAddress) ^ H(ip.DestinationAddress);
            acc += (int)ip.Protocol;
            if (ip.PayloadPacket is TransportPacket transport)
            {
                acc += transport.SourcePort ^ (transport.DestinationPort << 16);
            }
        }
        return acc;
    }

    /// <summary>Parses one frame and touches every header field PacketDotNet decodes ("full dissection").</summary>
    public static long AllFields(byte[] frame)
    {
        var packet = Packet.ParsePacket(LinkLayers.Ethernet, frame);
        long acc = 0;
        for (var p = packet; p is not null; p = p.PayloadPacket)
        {
            acc += p switch
            {
                EthernetPacket e => H(e.SourceHardwareAddress) ^ (int)e.Type,
                Ieee8021QPacket v => v.VlanIdentifier + (int)v.PriorityControlPoint,
                ArpPacket a => (int)a.Operation + H(a.SenderProtocolAddress),
                IPv4Packet v4 => v4.TimeToLive + v4.Id + v4.FragmentOffset + v4.Checksum + H(v4.SourceAddress) + v4.TotalLength,
                IPv6Packet v6 => v6.HopLimit + v6.FlowLabel + H(v6.SourceAddress) + v6.PayloadLength,
                TcpPacket t => t.SequenceNumber + t.AcknowledgmentNumber + t.WindowSize + t.Flags + t.Checksum + (t.OptionsCollection?.Count ?? 0),
                UdpPacket u => u.SourcePort + u.Length + u.Checksum,
                IcmpV4Packet i4 => (int)i4.TypeCode + i4.Id + i4.Sequence,
                IcmpV6Packet i6 => (int)i6.Type + i6.Code,
                _ => 1,
            };
        }
        return acc;
    }

    // Some PacketDotNet properties are null for malformed or truncated headers.
    private static int H(object? value) => value?.GetHashCode() ?? 0;
}
