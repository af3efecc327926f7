using Membrane.Packets;

namespace Membrane.Benchmarks;

/// <summary>Membrane's side of "full dissection": walk every layer (tunnels included) and read its header fields.</summary>
public static class MembraneDissection
{
    /// <summary>
    /// Options that decode what PacketDotNet 1.4.8 decodes: VXLAN on its IANA port 4789 only (not Linux's
    /// 8472), no Geneve, no datagram quoted by an ICMP error.
    /// </summary>
    public static readonly DissectorOptions PacketDotNetHeaders = new()
    {
        VxlanPorts = new PortSet(TunnelPorts.Vxlan),
        GenevePorts = PortSet.Empty,
        FollowIcmpErrors = false,
        IncludePayload = false,
    };

    public static long AllFields(ReadOnlySpan<byte> frame, DissectorOptions? options = null)
    {
        long acc = 0;
        var d = new PacketDissector(frame, LinkType.Ethernet, options);
        while (d.TryNext(out var layer))
        {
            switch (layer.Kind)
            {
                case LayerKind.Ethernet:
                    var e = layer.AsEthernet(frame);
                    acc += (long)e.Source.Value ^ e.EtherType;
                    break;
                case LayerKind.Vlan:
                    var v = layer.AsVlan(frame);
                    acc += v.VlanId + v.Priority;
                    break;
                case LayerKind.Arp:
                    var a = layer.AsArp(frame);
                    acc += a.Operation + a.SenderIpv4.GetHashCode();
                    break;
                case LayerKind.IPv4:
                    var v4 = layer.AsIpv4(frame);
                    acc += v4.TimeToLive + v4.Identification + v4.FragmentOffsetBytes + v4.HeaderChecksum + v4.Source.GetHashCode() + v4.TotalLength;
                    break;
                case LayerKind.IPv6:
                    var v6 = layer.AsIpv6(frame);
                    acc += v6.HopLimit + v6.FlowLabel + v6.Source.GetHashCode() + v6.PayloadLength;
                    break;
                case LayerKind.Tcp:
                    var t = layer.AsTcp(frame);
                    acc += t.SequenceNumber + t.AcknowledgmentNumber + t.Window + t.Checksum;
                    foreach (var option in t.GetOptions())
                    {
                        acc += (byte)option.Kind;
                    }
                    break;
                case LayerKind.Udp:
                    var u = layer.AsUdp(frame);
                    acc += u.SourcePort + u.LengthField + u.Checksum;
                    break;
                case LayerKind.Icmpv4:
                    var i4 = layer.AsIcmpv4(frame);
                    acc += i4.Type + i4.Identifier + i4.SequenceNumber;
                    break;
                case LayerKind.Icmpv6:
                    var i6 = layer.AsIcmpv6(frame);
                    acc += i6.Type + i6.Code;
                    break;
                case LayerKind.Vxlan:
                    acc += layer.AsVxlan(frame).Vni;
                    break;
                case LayerKind.Geneve:
                    var g = layer.AsGeneve(frame);
                    acc += g.Vni + g.ProtocolType;
                    break;
                default:
                    acc += layer.Length;
                    break;
            }
        }
        return acc;
    }
}
