using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>A VXLAN header (RFC 7348 §5): flags (I = VNI valid), 24-bit VNI, then an inner Ethernet frame.</summary>
public readonly ref struct VxlanHeader
{
    /// <summary>The header's length: 8 bytes.</summary>
    public const int Length = 8;

    /// <summary>The I flag: the VNI is valid.</summary>
    public const byte VniValidFlag = 0x08;

    private readonly ReadOnlySpan<byte> _data;

    internal VxlanHeader(ReadOnlySpan<byte> data) => _data = data;

    /// <summary>Reads the header. Never throws.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryRead(ReadOnlySpan<byte> data, out VxlanHeader header, out ParseError error)
    {
        if (data.Length < Length)
        {
            header = default;
            error = new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Vxlan);
            return false;
        }
        header = new VxlanHeader(data);
        error = default;
        return true;
    }

    /// <summary>Reads the header or throws <see cref="PacketParseException"/>.</summary>
    public static VxlanHeader Read(ReadOnlySpan<byte> data)
    {
        if (!TryRead(data, out var h, out var e))
        {
            ThrowHelper.ThrowParse(e);
        }
        return h;
    }

    /// <summary><c>vxlan.flags</c>: the first 16 bits (flags byte and the reserved/GBP bits after it).</summary>
    public ushort FlagsField
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt16BigEndian(_data);
    }

    /// <summary>The flags byte (RFC 7348: only I = 0x08 is defined).</summary>
    public byte Flags
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => _data[0];
    }

    /// <summary><c>vxlan.flags.i</c>.</summary>
    public bool VniValid => (_data[0] & VniValidFlag) != 0;

    /// <summary><c>vxlan.gbp</c>: bytes 2–3 (group policy id in the GBP extension, otherwise reserved).</summary>
    public ushort GroupPolicyId => BinaryPrimitives.ReadUInt16BigEndian(_data.Slice(2, 2));

    /// <summary><c>vxlan.vni</c>: the 24-bit network identifier.</summary>
    public uint Vni
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => BinaryPrimitives.ReadUInt32BigEndian(_data.Slice(4, 4)) >> 8;
    }

    /// <summary><c>vxlan.reserved_8</c>: the last byte.</summary>
    public byte Reserved => _data[7];

    /// <summary>The inner Ethernet frame.</summary>
    public ReadOnlySpan<byte> Payload => _data.Slice(Length);

    /// <summary>Writes a header with the I flag; returns 8.</summary>
    public static int Write(Span<byte> destination, uint vni, byte flags = VniValidFlag)
    {
        if (destination.Length < Length)
        {
            ThrowHelper.ThrowDestinationTooSmall("VXLAN header", Length, destination.Length);
        }
        BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)flags << 24);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(4), (vni & 0xFFFFFF) << 8);
        return Length;
    }
}
