using System.Buffers.Binary;
using System.Globalization;

namespace Membrane.Cli.Decode;

/// <summary>
/// Formats field values into UTF-8 exactly as <c>tshark -T fields -e NAME</c> (Wireshark 4.0,
/// Debian 12's tshark) prints them, one formatter per Wireshark field type. Checked against
/// tshark 4.0.17 on the corpus (tests/corpus/make_corpus.py):
/// <list type="bullet">
/// <item>FT_UINT* with BASE_DEC: decimal, no padding (<c>ip.ttl</c> → <c>64</c>).</item>
/// <item>FT_UINT* with BASE_HEX: <c>0x</c> and as many lowercase digits as the field type is wide,
/// not the bitfield: <c>eth.type</c> (uint16) → <c>0x0800</c>, <c>ip.flags</c> (uint8) → <c>0x02</c>,
/// <c>tcp.flags</c> (uint16) → <c>0x0012</c>, <c>geneve.vni</c> (uint24) → <c>0x000001</c>,
/// <c>ipv6.tclass</c> (uint32) → <c>0x00000028</c>.</item>
/// <item>FT_BOOLEAN: <c>0</c> or <c>1</c> (Wireshark 4.2 changed this to False/True; 4.0 prints digits).</item>
/// <item>FT_BYTES: lowercase hex without separators (<c>-T json</c> uses colons; <c>-T fields</c> does not);
/// an empty byte field prints as <c>&lt;MISSING&gt;</c>, so the decoder does not emit empty byte fields.</item>
/// <item>FT_ETHER: <c>aa:bb:cc:dd:ee:ff</c>; FT_IPv4: dotted quad; FT_IPv6: RFC 5952 text as glibc's
/// inet_ntop writes it (longest zero run compressed, leftmost on a tie, runs of one group kept, and the
/// IPv4-compatible/-mapped forms with a dotted tail).</item>
/// </list>
/// Every method writes into its destination span and returns the byte count; callers pass a
/// buffer of at least <see cref="MaxScalarLength"/> bytes (bytes fields: twice the input).
/// </summary>
internal static class TsharkFormat
{
    /// <summary>Enough for any scalar value: an IPv6 address with a dotted tail is at most 45 bytes.</summary>
    public const int MaxScalarLength = 64;

    /// <summary>0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the seconds <see cref="DateTime"/> can represent.</summary>
    private const long MinUnixSeconds = -62_135_596_800;
    private const long MaxUnixSeconds = 253_402_300_799;

    private static ReadOnlySpan<byte> HexDigits => "0123456789abcdef"u8;

    public static int Decimal(ulong value, Span<byte> destination)
    {
        value.TryFormat(destination, out var n, default, CultureInfo.InvariantCulture);
        return n;
    }

    public static int SignedDecimal(long value, Span<byte> destination)
    {
        value.TryFormat(destination, out var n, default, CultureInfo.InvariantCulture);
        return n;
    }

    /// <summary><c>0x</c> followed by exactly <paramref name="digits"/> lowercase hex digits.</summary>
    public static int Hex(ulong value, int digits, Span<byte> destination)
    {
        destination[0] = (byte)'0';
        destination[1] = (byte)'x';
        for (var i = digits - 1; i >= 0; i--)
        {
            destination[2 + i] = HexDigits[(int)(value & 0xF)];
            value >>= 4;
        }
        return digits + 2;
    }

    public static int Boolean(bool value, Span<byte> destination)
    {
        destination[0] = value ? (byte)'1' : (byte)'0';
        return 1;
    }

    public static int Bytes(ReadOnlySpan<byte> value, Span<byte> destination)
    {
        for (var i = 0; i < value.Length; i++)
        {
            destination[2 * i] = HexDigits[value[i] >> 4];
            destination[(2 * i) + 1] = HexDigits[value[i] & 0xF];
        }
        return value.Length * 2;
    }

    public static int Mac(ReadOnlySpan<byte> value, Span<byte> destination)
    {
        var n = 0;
        for (var i = 0; i < 6; i++)
        {
            if (i > 0)
            {
                destination[n++] = (byte)':';
            }
            destination[n++] = HexDigits[value[i] >> 4];
            destination[n++] = HexDigits[value[i] & 0xF];
        }
        return n;
    }

    public static int Ipv4(ReadOnlySpan<byte> value, Span<byte> destination)
    {
        var n = 0;
        for (var i = 0; i < 4; i++)
        {
            if (i > 0)
            {
                destination[n++] = (byte)'.';
            }
            n += Decimal(value[i], destination.Slice(n));
        }
        return n;
    }

    /// <summary>RFC 5952 text with glibc inet_ntop's rules (what Wireshark's ws_inet_ntop6 produces).</summary>
    public static int Ipv6(ReadOnlySpan<byte> value, Span<byte> destination)
    {
        Span<ushort> words = stackalloc ushort[8];
        for (var i = 0; i < 8; i++)
        {
            words[i] = BinaryPrimitives.ReadUInt16BigEndian(value.Slice(2 * i));
        }
        // The longest run of zero words (at least two, RFC 5952 §4.2.2), the first one on a tie (§4.2.3).
        int bestStart = -1, bestLength = 0;
        for (var i = 0; i < 8;)
        {
            if (words[i] != 0)
            {
                i++;
                continue;
            }
            var start = i;
            while (i < 8 && words[i] == 0)
            {
                i++;
            }
            if (i - start > bestLength)
            {
                bestStart = start;
                bestLength = i - start;
            }
        }
        if (bestLength < 2)
        {
            bestStart = -1;
        }
        var n = 0;
        for (var i = 0; i < 8; i++)
        {
            if (i == bestStart)
            {
                destination[n++] = (byte)':';
                i += bestLength - 1;
                if (i == 7)
                {
                    destination[n++] = (byte)':';
                }
                continue;
            }
            if (i > 0)
            {
                destination[n++] = (byte)':';
            }
            // glibc: an IPv4-compatible (::a.b.c.d) or IPv4-mapped (::ffff:a.b.c.d) address ends in dotted form.
            if (i == 6 && bestStart == 0 && (bestLength == 6 || (bestLength == 5 && words[5] == 0xFFFF)))
            {
                return n + Ipv4(value.Slice(12), destination.Slice(n));
            }
            words[i].TryFormat(destination.Slice(n), out var w, "x", CultureInfo.InvariantCulture);
            n += w;
        }
        return n;
    }

    /// <summary>ISO 8601 UTC with nanoseconds: <c>2023-11-14T22:13:20.011000000Z</c>.</summary>
    public static int Timestamp(long unixNanoseconds, Span<byte> destination)
    {
        var seconds = Math.DivRem(unixNanoseconds, 1_000_000_000L, out var nanos);
        if (nanos < 0)
        {
            seconds--;
            nanos += 1_000_000_000L;
        }
        if (seconds is < MinUnixSeconds or > MaxUnixSeconds)
        {
            // Beyond what DateTime can hold (a pcapng timestamp is 64 bits): print the epoch seconds instead.
            var m = SignedDecimal(seconds, destination);
            destination[m++] = (byte)'.';
            nanos.TryFormat(destination.Slice(m), out var digits, "D9", CultureInfo.InvariantCulture);
            return m + digits;
        }
        var time = DateTime.UnixEpoch.AddSeconds(seconds);
        time.TryFormat(destination, out var n, "yyyy-MM-dd'T'HH:mm:ss", CultureInfo.InvariantCulture);
        destination[n++] = (byte)'.';
        nanos.TryFormat(destination.Slice(n), out var w, "D9", CultureInfo.InvariantCulture);
        n += w;
        destination[n++] = (byte)'Z';
        return n;
    }
}
