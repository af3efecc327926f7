namespace Membrane.Packets.Tests;

/// <summary>
/// Reads every field of a layer the way a decoder (the CLI, the observer) would, folding them into a number so
/// that nothing is optimised away. Used to prove that a layer the dissector accepted can be fully read.
/// </summary>
public static class LayerFields
{
    public static long Touch(ReadOnlySpan<byte> frame, in Layer layer)
    {
        long h = layer.Offset + layer.Length + layer.End + layer.Depth;
        h += (long)layer.VerifyChecksum(frame);
        switch (layer.Kind)
        {
            case LayerKind.Ethernet:
            {
                var e = layer.AsEthernet(frame);
                h += (long)e.Destination.Value + (long)e.Source.Value + e.EtherType;
                break;
            }
            case LayerKind.Vlan:
            {
                var v = layer.AsVlan(frame);
                h += v.Priority + (v.DropEligible ? 1 : 0) + v.VlanId + v.EtherType;
                break;
            }
            case LayerKind.Arp:
            {
                var a = layer.AsArp(frame);
                h += a.HardwareType + a.ProtocolType + a.Operation + a.SenderHardwareAddress.Length + a.TargetProtocolAddress.Length;
                if (a.IsEthernetIpv4)
                {
                    h += (long)a.SenderMac.Value + a.SenderIpv4.Value + (long)a.TargetMac.Value + a.TargetIpv4.Value;
                }
                break;
            }
            case LayerKind.IPv4:
            {
                var ip = layer.AsIpv4(frame);
                h += ip.Version + ip.HeaderLength + ip.Dscp + ip.Ecn + ip.TotalLength + ip.Identification + ip.Flags
                    + (ip.DontFragment ? 1 : 0) + (ip.MoreFragments ? 1 : 0) + (ip.ReservedFlag ? 1 : 0) + ip.FragmentOffsetBytes
                    + ip.TimeToLive + ip.Protocol + ip.HeaderChecksum + ip.Source.Value + ip.Destination.Value + ip.Payload.Length;
                foreach (var o in ip.GetOptions())
                {
                    h += o.Type + o.Length + o.Data.Length + o.Class + o.Number;
                }
                break;
            }
            case LayerKind.IPv6:
            {
                var ip = layer.AsIpv6(frame);
                h += ip.Version + ip.TrafficClass + ip.FlowLabel + ip.PayloadLength + ip.NextHeader + ip.HopLimit
                    + (long)ip.Source.High + (long)ip.Destination.Low;
                if (ip.TryFindUpperLayer(out var upper, out var e))
                {
                    h += upper.Protocol + upper.Offset;
                }
                else
                {
                    h += (long)e.Reason;
                }
                break;
            }
            case LayerKind.Ipv6HopByHop or LayerKind.Ipv6DestinationOptions:
            {
                var x = layer.AsIpv6Extension(frame);
                h += x.NextHeader + x.HeaderExtensionLength;
                foreach (var o in x.GetOptions())
                {
                    h += o.Type + o.DataLength + o.Data.Length;
                }
                break;
            }
            case LayerKind.Ipv6Routing:
            {
                var x = layer.AsIpv6Extension(frame);
                h += x.NextHeader + x.RoutingType + x.SegmentsLeft + x.RoutingData.Length;
                break;
            }
            case LayerKind.Ipv6Fragment:
            {
                var x = layer.AsIpv6Extension(frame);
                h += x.NextHeader + x.FragmentOffsetBytes + (x.MoreFragments ? 1 : 0) + x.Identification + x.FragmentReservedBits;
                break;
            }
            case LayerKind.Ah:
                h += layer.AsIpv6Extension(frame).AhSpi;
                break;
            case LayerKind.Tcp:
            {
                var t = layer.AsTcp(frame);
                h += t.SourcePort + t.DestinationPort + t.SequenceNumber + t.AcknowledgmentNumber + t.HeaderLength + (long)t.Flags
                    + t.FlagsField + t.Window + t.Checksum + t.UrgentPointer + t.Payload.Length;
                foreach (var o in t.GetOptions())
                {
                    h += (long)o.Kind + o.Length + o.Data.Length;
                    switch (o.Kind)
                    {
                        case TcpOptionKind.MaximumSegmentSize: h += o.MaximumSegmentSize; break;
                        case TcpOptionKind.WindowScale: h += o.WindowScaleShift + o.WindowScaleMultiplier; break;
                        case TcpOptionKind.Timestamps: h += o.TimestampValue + o.TimestampEchoReply; break;
                        case TcpOptionKind.Sack:
                            for (int i = 0; i < o.SackBlockCount; i++) { var (l, r) = o.GetSackBlock(i); h += l + r; }
                            break;
                    }
                }
                break;
            }
            case LayerKind.Udp:
            {
                var u = layer.AsUdp(frame);
                h += u.SourcePort + u.DestinationPort + u.LengthField + u.Checksum + u.Payload.Length;
                break;
            }
            case LayerKind.Icmpv4:
            {
                var i = layer.AsIcmpv4(frame);
                h += i.Type + i.Code + i.Checksum + i.Identifier + i.SequenceNumber + i.NextHopMtu + i.Pointer + i.Gateway.Value + i.Body.Length;
                break;
            }
            case LayerKind.Icmpv6:
            {
                var i = layer.AsIcmpv6(frame);
                h += i.Type + i.Code + i.Checksum + i.RestOfHeader + i.Body.Length;
                switch (i.Type)
                {
                    case Icmpv6Types.NeighborSolicitation or Icmpv6Types.NeighborAdvertisement:
                        h += (long)i.TargetAddress.Low + (i.RouterFlag ? 1 : 0) + (i.SolicitedFlag ? 1 : 0) + (i.OverrideFlag ? 1 : 0);
                        break;
                    case Icmpv6Types.RouterAdvertisement:
                        h += i.CurrentHopLimit + (i.ManagedFlag ? 1 : 0) + i.RouterLifetime + i.ReachableTime + i.RetransTimer;
                        break;
                    case Icmpv6Types.Redirect:
                        h += (long)i.TargetAddress.High + (long)i.RedirectDestination.Low;
                        break;
                }
                foreach (var o in i.GetNdOptions())
                {
                    h += o.Type + o.LengthUnits + o.Data.Length;
                    if (o.Type is NdOptionTypes.SourceLinkLayerAddress or NdOptionTypes.TargetLinkLayerAddress) { h += (long)o.LinkLayerAddress.Value; }
                    if (o.Type == NdOptionTypes.Mtu) { h += o.Mtu; }
                    if (o.Type == NdOptionTypes.PrefixInformation && o.LengthUnits == 4)
                    {
                        h += o.PrefixLength + o.ValidLifetime + o.PreferredLifetime + (long)o.Prefix.High + (o.OnLinkFlag ? 1 : 0) + (o.AutonomousFlag ? 1 : 0);
                    }
                }
                break;
            }
            case LayerKind.Vxlan:
            {
                var v = layer.AsVxlan(frame);
                h += v.FlagsField + v.Vni + v.GroupPolicyId + v.Reserved + (v.VniValid ? 1 : 0);
                break;
            }
            case LayerKind.Geneve:
            {
                var g = layer.AsGeneve(frame);
                h += g.Version + g.OptionsLength + (g.Oam ? 1 : 0) + (g.Critical ? 1 : 0) + g.ProtocolType + g.Vni + g.Reserved;
                foreach (var o in g.GetOptions())
                {
                    h += o.OptionClass + o.Type + o.LengthUnits + o.Data.Length + (o.IsCritical ? 1 : 0);
                }
                break;
            }
            case LayerKind.Seed:
            {
                var s = layer.AsSeed(frame);
                h += s.Version + s.Type + s.Flags + s.TotalLength + s.Id + s.Checksum + s.Payload.Length;
                break;
            }
            case LayerKind.Payload or LayerKind.Esp:
                h += layer.Header(frame).Length;
                break;
        }
        return h;
    }
}
