using CsCheck;

namespace Membrane.Packets.Tests;

// Random packet descriptions for builder → dissector round trips (CsCheck generators).
public sealed record VlanSpec(ushort Id, byte Priority, bool Dei, ushort Tpid);

public sealed record Ipv4Spec(Ipv4Address Source, Ipv4Address Destination, byte Ttl, ushort Id, bool Df, byte Dscp, byte Ecn, byte[] Options);

public sealed record Ipv6Spec(Ipv6Address Source, Ipv6Address Destination, byte HopLimit, byte TrafficClass, uint FlowLabel,
    byte[]? HopByHop, byte[]? DestinationOptions, byte[]? Routing, byte RoutingType, byte SegmentsLeft, uint? FragmentId)
{
    // RFC 8200 §8.1: the transport checksum names the final destination, which only type 0/2/4 routing
    // headers with at least one address let a reader find; otherwise it cannot be verified.
    public bool FinalDestinationUnknown => Routing is { } r && SegmentsLeft != 0 && (RoutingType is not (0 or 2 or 4) || r.Length < 20);
}

public sealed record TcpSpec(ushort SourcePort, ushort DestinationPort, uint Seq, uint Ack, TcpFlags Flags, ushort Window, ushort Urgent,
    ushort? Mss, byte? WindowScale, bool SackPermitted, (uint, uint)[] Sack, (uint, uint)? Timestamps, byte[]? Unknown);

public sealed record UdpSpec(ushort SourcePort, ushort DestinationPort);

public sealed record IcmpSpec(bool Request, ushort Id, ushort Seq);

public sealed record L4Spec(TcpSpec? Tcp, UdpSpec? Udp, IcmpSpec? Icmp);

public sealed record NetSpec(Ipv4Spec? V4, Ipv6Spec? V6, L4Spec L4);

public sealed record TunnelSpec(int Kind, uint Vni, (ushort Class, byte Type, byte[] Data)[] GeneveOptions, MacAddress Dst, MacAddress Src, NetSpec Inner);

public sealed record PacketSpec(MacAddress Dst, MacAddress Src, VlanSpec[] Vlans, NetSpec Outer, TunnelSpec? Tunnel, byte[] Payload)
{
    public static class Gens
    {
        private static ushort NotTunnelPort(ushort p) => p is TunnelPorts.Vxlan or TunnelPorts.VxlanLinux or TunnelPorts.Geneve ? (ushort)(p + 1) : p;

        public static readonly Gen<uint> UInt = Gen.Int.Select(i => unchecked((uint)i));
        public static readonly Gen<MacAddress> Mac = Gen.ULong.Select(v => new MacAddress(v));
        public static readonly Gen<Ipv4Address> V4 = UInt.Select(v => new Ipv4Address(v));
        public static readonly Gen<Ipv6Address> V6 = Gen.Select(Gen.ULong, Gen.ULong, (h, l) => new Ipv6Address(h, l));

        public static readonly Gen<VlanSpec> Vlan =
            from id in Gen.UShort[0, 4095]
            from pcp in Gen.Byte[0, 7]
            from dei in Gen.Bool
            from tpid in Gen.OneOfConst(EtherTypes.Vlan, EtherTypes.QinQ)
            select new VlanSpec(id, pcp, dei, tpid);

        // IPv4 options: NOPs and TLVs of kinds other than end-of-list, at most 40 bytes.
        public static readonly Gen<byte[]> Ipv4Options =
            Gen.OneOf(
                Gen.Const(new byte[] { 1 }),
                from kind in Gen.Byte[2, 255]
                from data in Gen.Byte.Array[0, 8]
                select (byte[])[kind, (byte)(data.Length + 2), .. data])
            .Array[0, 4]
            .Select(opts => opts.Aggregate(Array.Empty<byte>(), (acc, o) => acc.Length + o.Length <= 40 ? [.. acc, .. o] : acc));

        public static readonly Gen<Ipv4Spec> Ipv4 =
            from src in V4
            from dst in V4
            from ttl in Gen.Byte
            from id in Gen.UShort
            from df in Gen.Bool
            from dscp in Gen.Byte[0, 63]
            from ecn in Gen.Byte[0, 3]
            from options in Ipv4Options
            select new Ipv4Spec(src, dst, ttl, id, df, dscp, ecn, options);

        // Hop-by-hop/destination options: PadN-free TLVs of types ≥ 2 (the builder adds the padding).
        private static readonly Gen<byte[]> Ipv6Options =
            (from type in Gen.Byte[2, 255]
             from data in Gen.Byte.Array[0, 10]
             select (byte[])[type, (byte)data.Length, .. data])
            .Array[0, 3].Select(o => o.SelectMany(x => x).ToArray());

        public static readonly Gen<Ipv6Spec> Ipv6 =
            from src in V6
            from dst in V6
            from hlim in Gen.Byte
            from tc in Gen.Byte
            from flow in Gen.Int[0, 0xFFFFF]
            from hbh in Gen.Bool
            from hbhOpts in Ipv6Options
            from dsto in Gen.Bool
            from dstOpts in Ipv6Options
            from routing in Gen.Bool
            from addresses in Gen.Int[0, 2]
            from routingData in Gen.Byte.Array[4 + (16 * addresses)]
            from routingType in Gen.OneOfConst<byte>(0, 2, 3, 4)
            from segLeft in Gen.Byte
            from frag in Gen.Bool
            from fragId in UInt
            select new Ipv6Spec(src, dst, hlim, tc, (uint)flow, hbh ? hbhOpts : null, dsto ? dstOpts : null,
                routing ? routingData : null, routingType, segLeft, frag ? fragId : null);

        public static readonly Gen<TcpSpec> Tcp =
            from sp in Gen.UShort
            from dp in Gen.UShort
            from seq in UInt
            from ack in UInt
            from flags in Gen.UShort[0, 0x1FF]
            from win in Gen.UShort
            from urg in Gen.UShort
            from mss in Gen.UShort.Nullable()
            from ws in Gen.Byte[0, 14].Nullable()
            from sackOk in Gen.Bool
            from sack in Gen.Select(UInt, UInt).Array[0, 2]
            from ts in Gen.Select(UInt, UInt).Nullable()
            from unknown in Gen.Byte.Array[0, 2].Null()
            select new TcpSpec(sp, dp, seq, ack, (TcpFlags)flags, win, urg, mss, ws, sackOk, sack, ts, unknown);

        public static readonly Gen<L4Spec> L4 = Gen.OneOf(
            Tcp.Select(t => new L4Spec(t, null, null)),
            Gen.Select(Gen.UShort, Gen.UShort, (s, d) => new L4Spec(null, new UdpSpec(NotTunnelPort(s), NotTunnelPort(d)), null)),
            Gen.Select(Gen.Bool, Gen.UShort, Gen.UShort, (r, i, s) => new L4Spec(null, null, new IcmpSpec(r, i, s))));

        public static readonly Gen<NetSpec> Net = Gen.OneOf(
            Gen.Select(Ipv4, L4, (v4, l4) => new NetSpec(v4, null, l4)),
            Gen.Select(Ipv6, L4, (v6, l4) => new NetSpec(null, v6, l4)));

        public static readonly Gen<TunnelSpec> Tunnel =
            from kind in Gen.Int[1, 3]
            from vni in Gen.Int[0, 0xFFFFFF]
            from opts in Gen.Select(Gen.UShort, Gen.Byte, Gen.Byte.Array[0, 12]).Array[0, 3]
            from dst in Mac
            from src in Mac
            from inner in Net
            select new TunnelSpec(kind, (uint)vni, opts, dst, src, inner);

        public static readonly Gen<PacketSpec> Packet =
            from dst in Mac
            from src in Mac
            from vlans in Vlan.Array[0, 2]
            from outer in Net
            from tunnel in Tunnel.Null()
            from payload in Gen.Byte.Array[0, 40]
            select new PacketSpec(dst, src, vlans, tunnel is null ? outer : outer with { L4 = new L4Spec(null, new UdpSpec(40000, 0), null) }, tunnel, payload);
    }

    public byte[] Build()
    {
        var buffer = new byte[4096];
        var b = new PacketBuilder(buffer);
        b.Ethernet(Dst, Src);
        foreach (var v in Vlans)
        {
            b.Vlan(v.Id, v.Priority, v.Dei, v.Tpid);
        }
        if (Tunnel is null)
        {
            BuildNet(ref b, Outer, tunnelPort: 0);
        }
        else
        {
            ushort port = Tunnel.Kind switch { 1 => TunnelPorts.Vxlan, 2 => TunnelPorts.VxlanLinux, _ => TunnelPorts.Geneve };
            BuildNet(ref b, Outer, port);
            if (Tunnel.Kind == 3)
            {
                b.Geneve(Tunnel.Vni, EncodeGeneveOptions(Tunnel.GeneveOptions));
            }
            else
            {
                b.Vxlan(Tunnel.Vni);
            }
            b.Ethernet(Tunnel.Dst, Tunnel.Src);
            BuildNet(ref b, Tunnel.Inner, 0);
        }
        b.Payload(Payload);
        return buffer.AsSpan(0, b.Finish()).ToArray();
    }

    public static byte[] EncodeGeneveOptions((ushort Class, byte Type, byte[] Data)[] options)
    {
        var buf = new byte[256];
        int n = 0;
        foreach (var (c, t, d) in options)
        {
            n += GeneveHeader.WriteOption(buf.AsSpan(n), c, t, d);
        }
        return buf[..n];
    }

    public static byte[] EncodeTcpOptions(TcpSpec t) => EncodeTcpOptions(t, out _);

    public static byte[] EncodeTcpOptions(TcpSpec t, out bool unknownWritten)
    {
        unknownWritten = false;
        var buf = new byte[64];
        var w = new TcpOptionsWriter(buf);
        if (t.Mss is { } mss) { w.MaximumSegmentSize(mss); }
        if (t.WindowScale is { } ws) { w.WindowScale(ws); }
        if (t.SackPermitted) { w.SackPermitted(); }
        if (t.Sack.Length > 0) { w.Sack(t.Sack.Select(s => (s.Item1, s.Item2)).ToArray()); }
        if (t.Timestamps is { } ts) { w.NoOperation(); w.Timestamps(ts.Item1, ts.Item2); }
        if (t.Unknown is { } u && w.Written + 2 + u.Length <= 40) { w.Raw(0xFD, u); unknownWritten = true; }
        return w.WrittenSpan.ToArray();
    }

    private static void BuildNet(ref PacketBuilder b, NetSpec n, ushort tunnelPort)
    {
        if (n.V4 is { } v4)
        {
            b.Ipv4(v4.Source, v4.Destination, v4.Ttl, v4.Id, v4.Df, dscp: v4.Dscp, ecn: v4.Ecn, options: v4.Options);
        }
        else
        {
            var v6 = n.V6!;
            b.Ipv6(v6.Source, v6.Destination, v6.HopLimit, v6.TrafficClass, v6.FlowLabel);
            if (v6.HopByHop is { } h) { b.Ipv6HopByHop(h); }
            if (v6.DestinationOptions is { } d) { b.Ipv6DestinationOptions(d); }
            if (v6.Routing is { } r) { b.Ipv6Routing(v6.RoutingType, v6.SegmentsLeft, r); }
            if (v6.FragmentId is { } f) { b.Ipv6Fragment(0, false, f); }
        }
        if (tunnelPort != 0)
        {
            b.Udp(40000, tunnelPort);
        }
        else if (n.L4.Tcp is { } t)
        {
            b.Tcp(t.SourcePort, t.DestinationPort, t.Seq, t.Ack, t.Flags, t.Window, t.Urgent, EncodeTcpOptions(t));
        }
        else if (n.L4.Udp is { } u)
        {
            b.Udp(u.SourcePort, u.DestinationPort);
        }
        else
        {
            var i = n.L4.Icmp!;
            if (n.V4 is not null) { b.Icmpv4Echo(i.Request, i.Id, i.Seq); } else { b.Icmpv6Echo(i.Request, i.Id, i.Seq); }
        }
    }
}
