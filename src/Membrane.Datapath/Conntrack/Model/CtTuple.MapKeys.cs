using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Membrane.Packets;

namespace Membrane.Datapath.Conntrack;

// Conversions between the model's tuple and the datapath's map keys (struct ct_key4/ct_key6, whose
// address and port fields hold network-order bytes), so that the differential test can compare a
// dump of the ct4/ct6 maps with ConntrackModel.Entries. Written through bytes, so they hold on any
// host byte order.
public readonly partial record struct CtTuple
{
    /// <summary>The tuple of a "ct4" map key.</summary>
    public static CtTuple FromKey(in CtKey4 key)
    {
        Span<byte> b = stackalloc byte[4];
        MemoryMarshal.Write(b, in key.SourceAddress);
        var source = new IpAddress(Ipv4Address.Read(b));
        MemoryMarshal.Write(b, in key.DestinationAddress);
        var destination = new IpAddress(Ipv4Address.Read(b));
        return new CtTuple(source, destination, FromNetworkOrder(key.SourcePortBe), FromNetworkOrder(key.DestinationPortBe), key.Protocol);
    }

    /// <summary>The tuple of a "ct6" map key.</summary>
    public static CtTuple FromKey(in CtKey6 key) => new(
        new IpAddress(Ipv6Address.Read(key.SourceAddress)),
        new IpAddress(Ipv6Address.Read(key.DestinationAddress)),
        FromNetworkOrder(key.SourcePortBe), FromNetworkOrder(key.DestinationPortBe), key.Protocol);

    /// <summary>The "ct4" map key of an IPv4 tuple (flags and pad zero, as the datapath writes them).</summary>
    public CtKey4 ToKey4()
    {
        if (Family != 4)
        {
            throw new InvalidOperationException($"failed to make a ct4 key: {this} is not IPv4");
        }
        Span<byte> b = stackalloc byte[4];
        Source.AsIpv4.Write(b);
        uint source = MemoryMarshal.Read<uint>(b);
        Destination.AsIpv4.Write(b);
        uint destination = MemoryMarshal.Read<uint>(b);
        return new CtKey4
        {
            SourceAddress = source,
            DestinationAddress = destination,
            SourcePortBe = ToNetworkOrder(SourcePort),
            DestinationPortBe = ToNetworkOrder(DestinationPort),
            Protocol = Protocol,
        };
    }

    /// <summary>The "ct6" map key of an IPv6 tuple.</summary>
    public CtKey6 ToKey6()
    {
        if (Family != 6)
        {
            throw new InvalidOperationException($"failed to make a ct6 key: {this} is not IPv6");
        }
        var key = new CtKey6
        {
            SourcePortBe = ToNetworkOrder(SourcePort),
            DestinationPortBe = ToNetworkOrder(DestinationPort),
            Protocol = Protocol,
        };
        Source.Bits.Write(key.SourceAddress);
        Destination.Bits.Write(key.DestinationAddress);
        return key;
    }

    // A __be16 field: its two bytes in memory are big-endian.
    private static ushort FromNetworkOrder(ushort field)
    {
        Span<byte> b = stackalloc byte[2];
        MemoryMarshal.Write(b, in field);
        return BinaryPrimitives.ReadUInt16BigEndian(b);
    }

    private static ushort ToNetworkOrder(ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(b, value);
        return MemoryMarshal.Read<ushort>(b);
    }
}
