using System.Net;
using System.Text;
using Membrane.Cli.Decode;

namespace Membrane.Cli.Tests;

/// <summary>
/// The value formats, case by case. The oracle test checks them against tshark on real packets;
/// these pin the corners a corpus may not reach (RFC 5952's rules, 64-bit timestamps).
/// </summary>
public class TsharkFormatTests
{
    private delegate int Formatter(Span<byte> destination);

    private static string Run(Formatter format)
    {
        Span<byte> buffer = stackalloc byte[TsharkFormat.MaxScalarLength];
        return Encoding.UTF8.GetString(buffer.Slice(0, format(buffer)));
    }

    [Theory]
    [InlineData("::", "::")]
    [InlineData("::1", "::1")]
    [InlineData("1::", "1::")]
    [InlineData("fe80::1", "fe80::1")]
    [InlineData("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1")] // RFC 5952 §4.2.3: the first of equal runs
    [InlineData("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1")] // §4.2.2: a single zero group stays
    [InlineData("2001:0:0:1:0:0:0:1", "2001:0:0:1::1")] // §4.2.3: the longest run
    [InlineData("FD00:0198:0018::ABCD", "fd00:198:18::abcd")] // §4.3: lowercase, no leading zeros
    [InlineData("::ffff:198.18.0.1", "::ffff:198.18.0.1")] // IPv4-mapped keeps its dotted tail
    [InlineData("::198.18.0.1", "::198.18.0.1")] // IPv4-compatible, as glibc's inet_ntop prints it
    [InlineData("::2:3", "::0.2.0.3")]
    [InlineData("0:0:1::", "0:0:1::")]
    [InlineData("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8")]
    public void Ipv6IsCompressedAsInetNtopDoes(string address, string expected)
    {
        var bytes = IPAddress.Parse(address).GetAddressBytes();
        Assert.Equal(expected, Run(d => TsharkFormat.Ipv6(bytes, d)));
    }

    [Theory]
    [InlineData(0x0800UL, 4, "0x0800")]
    [InlineData(0x02UL, 2, "0x02")]
    [InlineData(0x123456UL, 6, "0x123456")]
    [InlineData(0x28UL, 8, "0x00000028")]
    [InlineData(0xFFFFUL, 4, "0xffff")]
    public void HexIsPaddedToTheFieldWidth(ulong value, int digits, string expected) =>
        Assert.Equal(expected, Run(d => TsharkFormat.Hex(value, digits, d)));

    [Fact]
    public void ScalarsAndAddresses()
    {
        Assert.Equal("0", Run(d => TsharkFormat.Decimal(0, d)));
        Assert.Equal("4294967295", Run(d => TsharkFormat.Decimal(uint.MaxValue, d)));
        Assert.Equal("1", Run(d => TsharkFormat.Boolean(true, d)));
        Assert.Equal("0", Run(d => TsharkFormat.Boolean(false, d)));
        Assert.Equal("02:42:c6:12:00:0a", Run(d => TsharkFormat.Mac([0x02, 0x42, 0xC6, 0x12, 0x00, 0x0A], d)));
        Assert.Equal("198.18.0.254", Run(d => TsharkFormat.Ipv4([198, 18, 0, 254], d)));
        Assert.Equal("0000002aff", Run(d => TsharkFormat.Bytes([0, 0, 0, 0x2A, 0xFF], d)));
    }

    [Theory]
    [InlineData(0L, "1970-01-01T00:00:00.000000000Z")]
    [InlineData(1_700_000_000_011_000_000L, "2023-11-14T22:13:20.011000000Z")]
    [InlineData(1_700_000_000_000_000_001L, "2023-11-14T22:13:20.000000001Z")]
    [InlineData(-1L, "1969-12-31T23:59:59.999999999Z")]
    public void TimestampsAreUtcWithNanoseconds(long nanoseconds, string expected) =>
        Assert.Equal(expected, Run(d => TsharkFormat.Timestamp(nanoseconds, d)));
}
