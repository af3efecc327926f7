using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Membrane.Packets;

/// <summary>
/// The Internet checksum: RFC 1071 one's-complement sums (8 bytes per step), RFC 1624 incremental
/// updates, and the TCP/UDP/ICMPv6 pseudo-headers (RFC 9293 §3.1, RFC 768, RFC 8200 §8.1).
/// </summary>
/// <remarks>
/// A "sum" here is an unfolded one's-complement accumulator over big-endian 16-bit words; pass it
/// between calls to checksum data in pieces, then <see cref="Finish"/> it. Pieces must start at even
/// offsets of the checksummed whole except the last.
/// </remarks>
public static class InternetChecksum
{
    /// <summary>Adds <paramref name="data"/> to a running sum (RFC 1071 §4.1, odd length padded with a zero byte).</summary>
    public static uint Sum(ReadOnlySpan<byte> data, uint initial = 0)
    {
        // RFC 1071 §2(B): the sum is byte-order independent, so add native-endian 64-bit words into a
        // 64-bit accumulator (end-around carry folded once at the end) and swap the folded result.
        // MemoryMarshal.Cast reinterprets without copying and keeps every access bounds-checked (no unsafe code).
        ulong acc = 0;
        ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(data);
        int w = 0;
        for (; w + 4 <= words.Length; w += 4)
        {
            ulong a = words[w], b = words[w + 1], c = words[w + 2], d = words[w + 3];
            acc += (a & 0xFFFF_FFFF) + (a >> 32) + (b & 0xFFFF_FFFF) + (b >> 32)
                 + (c & 0xFFFF_FFFF) + (c >> 32) + (d & 0xFFFF_FFFF) + (d >> 32);
        }
        for (; w < words.Length; w++)
        {
            ulong a = words[w];
            acc += (a & 0xFFFF_FFFF) + (a >> 32);
        }
        ReadOnlySpan<byte> tail = data.Slice(words.Length * 8);
        if (tail.Length >= 4)
        {
            acc += MemoryMarshal.Read<uint>(tail);
            tail = tail.Slice(4);
        }
        if (tail.Length >= 2)
        {
            acc += MemoryMarshal.Read<ushort>(tail);
            tail = tail.Slice(2);
        }
        if (tail.Length == 1)
        {
            // The odd byte is the high-order byte of a big-endian word padded with zero.
            acc += BitConverter.IsLittleEndian ? tail[0] : (ulong)tail[0] << 8;
        }
        ushort folded = Fold64(acc);
        if (BitConverter.IsLittleEndian)
        {
            folded = BinaryPrimitives.ReverseEndianness(folded);
        }
        return Add(initial, folded);
    }

    /// <summary>One's-complement addition of two running sums (kept unfolded below 2^17).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Add(uint sum, uint value)
    {
        ulong s = (ulong)sum + value;
        s = (s & 0xFFFF) + (s >> 16);
        s = (s & 0xFFFF) + (s >> 16);
        return (uint)s;
    }

    /// <summary>Folds a running sum to 16 bits (end-around carry) without complementing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Fold(uint sum)
    {
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ushort Fold64(ulong acc)
    {
        acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
        acc = (acc & 0xFFFF_FFFF) + (acc >> 32);
        return Fold((uint)(acc & 0xFFFF) + (uint)(acc >> 16));
    }

    /// <summary>The checksum field value for a running sum: the one's complement of the folded sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Finish(uint sum) => (ushort)~Fold(sum);

    /// <summary>The RFC 1071 checksum of <paramref name="data"/> (the value to store in a checksum field).</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => Finish(Sum(data));

    /// <summary>
    /// True when <paramref name="data"/>, which includes its checksum field, sums to all ones
    /// (RFC 1071 §1: the receiver's check).
    /// </summary>
    public static bool IsValid(ReadOnlySpan<byte> data, uint initial = 0) => Fold(Sum(data, initial)) == 0xFFFF;

    /// <summary>RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit field changed from m to m'.</summary>
    public static ushort Update(ushort checksum, ushort oldValue, ushort newValue)
    {
        uint sum = (ushort)~checksum;
        sum = Add(sum, (ushort)~oldValue);
        sum = Add(sum, newValue);
        return (ushort)~Fold(sum);
    }

    /// <summary>RFC 1624 update for a 32-bit field (an IPv4 address or a port pair), as two 16-bit words.</summary>
    public static ushort Update(ushort checksum, uint oldValue, uint newValue)
    {
        uint sum = (ushort)~checksum;
        sum = Add(sum, (ushort)~(oldValue >> 16));
        sum = Add(sum, (ushort)~(oldValue & 0xFFFF));
        sum = Add(sum, newValue >> 16);
        sum = Add(sum, newValue & 0xFFFF);
        return (ushort)~Fold(sum);
    }

    /// <summary>RFC 1624 update for a run of bytes that changed (same length, starting at an even offset), e.g. an IPv6 address.</summary>
    public static ushort Update(ushort checksum, ReadOnlySpan<byte> oldBytes, ReadOnlySpan<byte> newBytes)
    {
        if (oldBytes.Length != newBytes.Length)
        {
            ThrowHelper.ThrowArgument("checksum update", "old and new byte runs differ in length");
        }
        // ~m summed over the words equals ~(sum of m) in one's-complement arithmetic.
        uint sum = (ushort)~checksum;
        sum = Add(sum, (ushort)~Fold(Sum(oldBytes)));
        sum = Sum(newBytes, sum);
        return (ushort)~Fold(sum);
    }

    /// <summary>The IPv4 pseudo-header sum (RFC 9293 §3.1, RFC 768): src, dst, zero, protocol, upper-layer length.</summary>
    public static uint PseudoHeaderSum(Ipv4Address source, Ipv4Address destination, byte protocol, int upperLayerLength)
    {
        ulong s = (ulong)(source.Value >> 16) + (source.Value & 0xFFFF)
                + (destination.Value >> 16) + (destination.Value & 0xFFFF)
                + protocol + (uint)(upperLayerLength & 0xFFFF);
        return Fold64(s);
    }

    /// <summary>The IPv6 pseudo-header sum (RFC 8200 §8.1): src, dst, 32-bit upper-layer length, zeros, next header.</summary>
    public static uint PseudoHeaderSum(in Ipv6Address source, in Ipv6Address destination, byte nextHeader, int upperLayerLength)
    {
        ulong s = Words(source.High) + Words(source.Low) + Words(destination.High) + Words(destination.Low)
                + ((uint)upperLayerLength >> 16) + ((uint)upperLayerLength & 0xFFFF) + nextHeader;
        return Fold64(s);

        static ulong Words(ulong v) => (v >> 48) + ((v >> 32) & 0xFFFF) + ((v >> 16) & 0xFFFF) + (v & 0xFFFF);
    }
}

/// <summary>The result of verifying a checksum: a wrong checksum is reported, never fatal.</summary>
public enum ChecksumStatus : byte
{
    /// <summary>This layer has no checksum (Ethernet, VLAN, ARP, IPv6, VXLAN, …).</summary>
    NotApplicable = 0,
    /// <summary>The checksum verifies.</summary>
    Good,
    /// <summary>The checksum is wrong.</summary>
    Bad,
    /// <summary>The sender left the checksum out (UDP over IPv4 with checksum 0, RFC 768).</summary>
    Absent,
    /// <summary>The covered bytes were not all captured (or the datagram is a fragment), so it cannot be checked.</summary>
    Unverifiable,
}
