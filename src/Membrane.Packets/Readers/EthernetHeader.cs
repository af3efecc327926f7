using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>An Ethernet II header (IEEE 802.3 §3.2): destination, source, EtherType.</summary>
public readonly ref struct EthernetHeader
{
    /// <summary>The header's length: 14 bytes.</summary>
    public const int Length = 14;

    private readonly ReadOnlySpan<byte> _data;

    internal EthernetHeader(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>Reads the header at the start of <paramref name="data"/>; never throws.</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out EthernetHeader header, out ParseError error)
    {
        if (data.Length < Length)
        {
            header = default;
            error = new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Ethernet);
            return false;
        }
        header = new EthernetHeader(data);
        error = default;
        return true;
    }

    /// <summary>Reads the header or throws <see cref="PacketParseException"/>.</summary>
    public static EthernetHeader Read(ReadOnlySpan<byte> data)
    {
        if (!TryRead(data, out var h, out var e))
        {
            ThrowHelper.ThrowParse(e);
        }
        return h;
    }

    /// <summary><c>eth.dst</c>.</summary>
    public MacAddress Destination
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => MacAddress.Read(_data);
    }

    /// <summary><c>eth.src</c>.</summary>
    public MacAddress Source
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => MacAddress.Read(_data.Slice(6, 6));
    }

    /// <summary><c>eth.type</c> (or an 802.3 length when below 0x0600).</summary>
    public ushort EtherType
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(12, 2));
    }

    /// <summary>The 14 header bytes.</summary>
    public ReadOnlySpan<byte> Bytes => _data.Slice(0, Length);

    /// <summary>Everything after the header.</summary>
    public ReadOnlySpan<byte> Payload => _data.Slice(Length);

    /// <summary>Writes a header; returns 14.</summary>
    public static int Write(Span<byte> destination, MacAddress dst, MacAddress src, ushort etherType)
    {
        if (destination.Length < Length)
        {
            ThrowHelper.ThrowDestinationTooSmall("Ethernet header", Length, destination.Length);
        }
        dst.Write(destination);
        src.Write(destination.Slice(6));
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(12), etherType);
        return Length;
    }
}

/// <summary>
/// One 802.1Q / 802.1ad tag's last four bytes (IEEE 802.1Q §9.6): the TCI (PCP, DEI, VID) and the next
/// EtherType. The tag's TPID (0x8100, 0x88a8) is the EtherType field of the header before it.
/// </summary>
public readonly ref struct VlanHeader
{
    /// <summary>The tag's length after its TPID: 4 bytes.</summary>
    public const int Length = 4;

    private readonly ReadOnlySpan<byte> _data;

    internal VlanHeader(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>Reads the tag at the start of <paramref name="data"/>; never throws.</summary>
    public static bool TryRead(ReadOnlySpan<byte> data, out VlanHeader header, out ParseError error)
    {
        if (data.Length < Length)
        {
            header = default;
            error = new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Vlan);
            return false;
        }
        header = new VlanHeader(data);
        error = default;
        return true;
    }

    /// <summary>Reads the tag or throws <see cref="PacketParseException"/>.</summary>
    public static VlanHeader Read(ReadOnlySpan<byte> data)
    {
        if (!TryRead(data, out var h, out var e))
        {
            ThrowHelper.ThrowParse(e);
        }
        return h;
    }

    /// <summary>The tag control information (16 bits).</summary>
    public ushort Tci
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt16BigEndian(_data);
    }

    /// <summary><c>vlan.priority</c>: the 3-bit priority code point.</summary>
    public byte Priority
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (byte)(_data[0] >> 5);
    }

    /// <summary><c>vlan.dei</c>: drop eligible indicator (formerly CFI).</summary>
    public bool DropEligible
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (_data[0] & 0x10) != 0;
    }

    /// <summary><c>vlan.id</c>: the 12-bit VLAN identifier.</summary>
    public ushort VlanId
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (ushort)(Tci & 0x0FFF);
    }

    /// <summary><c>vlan.etype</c>: the EtherType after the tag.</summary>
    public ushort EtherType
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(2, 2));
    }

    /// <summary>Everything after the tag.</summary>
    public ReadOnlySpan<byte> Payload => _data.Slice(Length);

    /// <summary>True for the TPIDs that introduce a tag (0x8100, 0x88a8, 0x9100).</summary>
    public static bool IsTagType(ushort etherType) =>
        etherType is EtherTypes.Vlan or EtherTypes.QinQ or EtherTypes.QinQLegacy;

    /// <summary>Writes TCI and next EtherType; returns 4.</summary>
    public static int Write(Span<byte> destination, ushort vlanId, byte priority, bool dropEligible, ushort etherType)
    {
        if (destination.Length < Length)
        {
            ThrowHelper.ThrowDestinationTooSmall("VLAN tag", Length, destination.Length);
        }
        ushort tci = (ushort)(((priority & 7) << 13) | (dropEligible ? 0x1000 : 0) | (vlanId & 0x0FFF));
        BinaryPrimitives.WriteUInt16BigEndian(destination, tci);
        BinaryPrimitives.WriteUInt16BigEndian(destination.Slice(2), etherType);
        return Length;
    }
}
