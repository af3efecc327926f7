using System.Buffers.Binary;
using CsCheck;

namespace Membrane.Packets.Tests;

public class InternetChecksumTests
{
    // The straightforward RFC 1071 §4.1 algorithm, as a reference for the 8-bytes-at-a-time one.
    private static ushort Reference(ReadOnlySpan<byte> data, uint initial = 0)
    {
        ulong sum = initial;
        int i = 0;
        for (; i + 1 < data.Length; i += 2)
        {
            sum += (uint)((data[i] << 8) | data[i + 1]);
        }
        if (i < data.Length)
        {
            sum += (uint)(data[i] << 8);
        }
        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return (ushort)~sum;
    }

    [Fact]
    public void Rfc1071WorkedExampleGivesItsSum()
    {
        // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2, so the checksum is 220d.
        byte[] data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        Assert.Equal(0xddf2, InternetChecksum.Fold(InternetChecksum.Sum(data)));
        Assert.Equal(0x220d, InternetChecksum.Compute(data));
    }

    [Fact]
    public void KnownIpv4HeaderChecksumIsReproduced()
    {
        // A classic example header (Wikipedia "IPv4 header checksum"): checksum b861.
        byte[] header = Convert.FromHexString("450000730000400040110000c0a80001c0a800c7");
        Assert.Equal(0xb861, InternetChecksum.Compute(header));
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(10), 0xb861);
        Assert.True(InternetChecksum.IsValid(header));
    }

    [Fact]
    public void OddLengthPadsTheLastByteAsTheHighOrderByte()
    {
        Assert.Equal(unchecked((ushort)~0xAB00), InternetChecksum.Compute([0xAB]));
        Assert.Equal(Reference([1, 2, 3]), InternetChecksum.Compute([1, 2, 3]));
    }

    [Fact]
    public void MatchesTheReferenceForEveryLengthAndInitialSum()
    {
        Gen.Select(Gen.Byte.Array[0, 300], Gen.UShort).Sample((data, initial) =>
            Assert.Equal(Reference(data, initial), InternetChecksum.Finish(InternetChecksum.Sum(data, initial))), iter: 5000);
    }

    [Fact]
    public void SummingInEvenPiecesEqualsSummingTheWhole()
    {
        Gen.Select(Gen.Byte.Array[0, 200], Gen.Int[0, 100]).Sample((data, cut) =>
        {
            int at = Math.Min(cut * 2, data.Length & ~1);
            uint partial = InternetChecksum.Sum(data.AsSpan(0, at));
            Assert.Equal(InternetChecksum.Compute(data), InternetChecksum.Finish(InternetChecksum.Sum(data.AsSpan(at), partial)));
        }, iter: 2000);
    }

    [Fact]
    public void DataWithItsChecksumVerifies()
    {
        Gen.Byte.Array[2, 200].Sample(data =>
        {
            var even = data.Length % 2 == 0 ? data : [.. data, 0];
            BinaryPrimitives.WriteUInt16BigEndian(even.AsSpan(0), 0);
            BinaryPrimitives.WriteUInt16BigEndian(even.AsSpan(0), InternetChecksum.Compute(even));
            Assert.True(InternetChecksum.IsValid(even));
        }, iter: 2000);
    }

    [Fact]
    public void IncrementalUpdateOfA16BitFieldEqualsFullRecompute()
    {
        // RFC 1624 eqn. 3 must agree with recomputing, for any header and any word changed.
        Gen.Select(Gen.Byte.Array[20, 60], Gen.Int[0, 29], Gen.UShort).Sample((data, word, value) =>
        {
            var bytes = data.Length % 2 == 0 ? data : data[..^1];
            int at = Math.Min(word, (bytes.Length / 2) - 1) * 2;
            ushort before = InternetChecksum.Compute(bytes);
            ushort old = BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(at));
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(at), value);
            ushort updated = InternetChecksum.Update(before, old, value);
            Assert.True(EquivalentChecksums(InternetChecksum.Compute(bytes), updated),
                $"full {InternetChecksum.Compute(bytes):x4} incremental {updated:x4}");
        }, iter: 5000);
    }

    [Fact]
    public void IncrementalUpdateOfAnAddressEqualsFullRecompute()
    {
        Gen.Select(Gen.Byte.Array[20], Gen.Int, Gen.Byte.Array[16], Gen.Byte.Array[16]).Sample((header, v4, oldV6, newV6) =>
        {
            // IPv4 NAT: rewrite the source address.
            BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(10), 0);
            ushort before = InternetChecksum.Compute(header);
            uint oldAddr = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(12));
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(12), (uint)v4);
            Assert.True(EquivalentChecksums(InternetChecksum.Compute(header), InternetChecksum.Update(before, oldAddr, (uint)v4)));

            // IPv6: a 16-byte run changed inside a larger checksummed area.
            var area = new byte[40];
            oldV6.CopyTo(area, 8);
            ushort c0 = InternetChecksum.Compute(area);
            newV6.CopyTo(area, 8);
            Assert.True(EquivalentChecksums(InternetChecksum.Compute(area), InternetChecksum.Update(c0, oldV6, newV6)));
        }, iter: 3000);
    }

    // RFC 1624 §3: eqn. 3 can yield 0xFFFF where a full computation yields 0x0000 (both are one's-complement
    // zero); the two are equivalent for the receiver's check, and only for an all-zero sum does it happen.
    private static bool EquivalentChecksums(ushort full, ushort incremental) =>
        full == incremental || (full == 0x0000 && incremental == 0xFFFF) || (full == 0xFFFF && incremental == 0x0000);

    [Fact]
    public void Ipv4PseudoHeaderSumMatchesTheBytesItStandsFor()
    {
        Gen.Select(Gen.Int, Gen.Int, Gen.Byte, Gen.UShort).Sample((src, dst, proto, len) =>
        {
            var bytes = new byte[12];
            BinaryPrimitives.WriteInt32BigEndian(bytes, src);
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), dst);
            bytes[9] = proto;
            BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(10), len);
            uint sum = InternetChecksum.PseudoHeaderSum(new Ipv4Address((uint)src), new Ipv4Address((uint)dst), proto, len);
            Assert.Equal(InternetChecksum.Fold(InternetChecksum.Sum(bytes)), InternetChecksum.Fold(sum));
        }, iter: 2000);
    }

    [Fact]
    public void Ipv6PseudoHeaderSumMatchesTheBytesItStandsFor()
    {
        Gen.Select(Gen.Byte.Array[16], Gen.Byte.Array[16], Gen.Byte, Gen.Int[0, 1 << 20]).Sample((src, dst, next, len) =>
        {
            // RFC 8200 §8.1: source, destination, 32-bit length, three zero bytes, next header.
            var bytes = new byte[40];
            src.CopyTo(bytes, 0);
            dst.CopyTo(bytes, 16);
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(32), len);
            bytes[39] = next;
            uint sum = InternetChecksum.PseudoHeaderSum(Ipv6Address.Read(src), Ipv6Address.Read(dst), next, len);
            Assert.Equal(InternetChecksum.Fold(InternetChecksum.Sum(bytes)), InternetChecksum.Fold(sum));
        }, iter: 2000);
    }
}
