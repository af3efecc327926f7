using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Membrane.Capture.Internal;

/// <summary>
/// Reads and writes integers in a byte order chosen at run time: pcap and pcapng are written
/// in the writer's native order, announced by the magic (pcap) or byte-order magic (pcapng).
/// </summary>
internal static class Endian
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort U16(ReadOnlySpan<byte> span, bool bigEndian) =>
        bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(span) : BinaryPrimitives.ReadUInt16LittleEndian(span);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint U32(ReadOnlySpan<byte> span, bool bigEndian) =>
        bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(span) : BinaryPrimitives.ReadUInt32LittleEndian(span);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long I64(ReadOnlySpan<byte> span, bool bigEndian) =>
        bigEndian ? BinaryPrimitives.ReadInt64BigEndian(span) : BinaryPrimitives.ReadInt64LittleEndian(span);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write16(Span<byte> span, ushort value, bool bigEndian)
    {
        if (bigEndian)
        {
            BinaryPrimitives.WriteUInt16BigEndian(span, value);
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(span, value);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write32(Span<byte> span, uint value, bool bigEndian)
    {
        if (bigEndian)
        {
            BinaryPrimitives.WriteUInt32BigEndian(span, value);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(span, value);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write64(Span<byte> span, long value, bool bigEndian)
    {
        if (bigEndian)
        {
            BinaryPrimitives.WriteInt64BigEndian(span, value);
        }
        else
        {
            BinaryPrimitives.WriteInt64LittleEndian(span, value);
        }
    }
}
