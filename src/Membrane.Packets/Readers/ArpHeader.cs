using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>An ARP packet (RFC 826) with variable hardware and protocol address lengths.</summary>
public readonly ref struct ArpHeader
{
    /// <summary>The fixed part: htype, ptype, hlen, plen, oper.</summary>
    public const int FixedLength = 8;

    /// <summary>An Ethernet/IPv4 ARP packet's length: 28 bytes.</summary>
    public const int EthernetIpv4Length = 28;

    private readonly ReadOnlySpan<byte> _data;

    internal ArpHeader(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>
    /// Reads the packet; never throws. Fails when an address length is 0 or contradicts its type (Ethernet 6,
    /// IPv4 4), or when the addresses the length fields announce are not all present.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryRead(ReadOnlySpan<byte> data, out ArpHeader header, out ParseError error)
    {
        header = default;
        if (data.Length < FixedLength)
        {
            error = new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Arp);
            return false;
        }
        // RFC 826: the address lengths must be what the address types say (Ethernet 6, IPv4 4), and never 0.
        byte hlen = data[4];
        byte plen = data[5];
        ushort htype = BinaryPrimitives.ReadUInt16BigEndian(data);
        ushort ptype = BinaryPrimitives.ReadUInt16BigEndian(data.Slice(2));
        if (hlen == 0 || (htype == 1 && hlen != 6))
        {
            error = new ParseError(ParseErrorReason.BadAddressLength, 4, LayerKind.Arp);
            return false;
        }
        if (plen == 0 || (ptype == EtherTypes.IPv4 && plen != 4))
        {
            error = new ParseError(ParseErrorReason.BadAddressLength, 5, LayerKind.Arp);
            return false;
        }
        int total = FixedLength + (2 * (hlen + plen));
        if (data.Length < total)
        {
            error = new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Arp);
            return false;
        }
        header = new ArpHeader(data);
        error = default;
        return true;
    }

    /// <summary>Reads the packet or throws <see cref="PacketParseException"/>.</summary>
    public static ArpHeader Read(ReadOnlySpan<byte> data)
    {
        if (!TryRead(data, out var h, out var e))
        {
            ThrowHelper.ThrowParse(e);
        }
        return h;
    }

    /// <summary><c>arp.hw.type</c> (1 = Ethernet).</summary>
    public ushort HardwareType => BinaryPrimitives.ReadUInt16BigEndian(_data);

    /// <summary><c>arp.proto.type</c> (0x0800 = IPv4).</summary>
    public ushort ProtocolType => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(2, 2));

    /// <summary><c>arp.hw.size</c>.</summary>
    public byte HardwareLength => _data[4];

    /// <summary><c>arp.proto.size</c>.</summary>
    public byte ProtocolLength => _data[5];

    /// <summary><c>arp.opcode</c>.</summary>
    public ushort Operation
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(6, 2));
    }

    /// <summary>The packet's length: 8 + 2 × (hlen + plen).</summary>
    public int Length
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => FixedLength + (2 * (HardwareLength + ProtocolLength));
    }

    /// <summary>The raw sender hardware address (<c>arp.src.hw</c>).</summary>
    public ReadOnlySpan<byte> SenderHardwareAddress => _data.Slice(FixedLength, HardwareLength);

    /// <summary>The raw sender protocol address (<c>arp.src.proto</c>).</summary>
    public ReadOnlySpan<byte> SenderProtocolAddress
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _data.Slice(FixedLength + HardwareLength, ProtocolLength);
    }

    /// <summary>The raw target hardware address (<c>arp.dst.hw</c>).</summary>
    public ReadOnlySpan<byte> TargetHardwareAddress => _data.Slice(FixedLength + HardwareLength + ProtocolLength, HardwareLength);

    /// <summary>The raw target protocol address (<c>arp.dst.proto</c>).</summary>
    public ReadOnlySpan<byte> TargetProtocolAddress => _data.Slice(FixedLength + (2 * HardwareLength) + ProtocolLength, ProtocolLength);

    /// <summary>True for Ethernet/IPv4 ARP (hlen 6, plen 4), where the typed address accessors apply.</summary>
    public bool IsEthernetIpv4 => HardwareLength == 6 && ProtocolLength == 4;

    /// <summary><c>arp.src.hw_mac</c> (only when <see cref="IsEthernetIpv4"/>).</summary>
    public MacAddress SenderMac => MacAddress.Read(SenderHardwareAddress);

    /// <summary><c>arp.src.proto_ipv4</c> (only when <see cref="IsEthernetIpv4"/>).</summary>
    public Ipv4Address SenderIpv4
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Ipv4Address.Read(SenderProtocolAddress);
    }

    /// <summary><c>arp.dst.hw_mac</c> (only when <see cref="IsEthernetIpv4"/>).</summary>
    public MacAddress TargetMac => MacAddress.Read(TargetHardwareAddress);

    /// <summary><c>arp.dst.proto_ipv4</c> (only when <see cref="IsEthernetIpv4"/>).</summary>
    public Ipv4Address TargetIpv4 => Ipv4Address.Read(TargetProtocolAddress);

    /// <summary>Writes an Ethernet/IPv4 ARP packet; returns 28.</summary>
    public static int WriteEthernetIpv4(Span<byte> destination, ArpOperation operation,
        MacAddress senderMac, Ipv4Address senderIp, MacAddress targetMac, Ipv4Address targetIp)
    {
        if (destination.Length < EthernetIpv4Length)
        {
            ThrowHelper.ThrowDestinationTooSmall("ARP packet", EthernetIpv4Length, destination.Length);
        }
        BinaryPrimitives.WriteUInt16BigEndian(destination, 1);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), EtherTypes.IPv4);
        destination[4] = 6;
        destination[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(6), (ushort)operation);
        senderMac.Write(destination.Slice(8));
        senderIp.Write(destination.Slice(14));
        targetMac.Write(destination.Slice(18));
        targetIp.Write(destination.Slice(24));
        return EthernetIpv4Length;
    }
}
