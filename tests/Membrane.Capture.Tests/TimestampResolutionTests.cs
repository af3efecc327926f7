namespace Membrane.Capture.Tests;

public class TimestampResolutionTests
{
    [Theory]
    [InlineData(6, false, 6, 1_000_000UL, "10^-6 s")]
    [InlineData(9, false, 9, 1_000_000_000UL, "10^-9 s")]
    [InlineData(0, false, 0, 1UL, "10^-0 s")]
    [InlineData(0x80 | 10, true, 10, 1024UL, "2^-10 s")]
    [InlineData(0x80 | 63, true, 63, 9_223_372_036_854_775_808UL, "2^-63 s")]
    public void DecodesTheTsresolByte(byte value, bool powerOfTwo, int exponent, ulong unitsPerSecond, string text)
    {
        var resolution = new TimestampResolution(value);
        Assert.Equal((powerOfTwo, exponent, unitsPerSecond, text, true), (resolution.IsPowerOfTwo, resolution.Exponent, resolution.UnitsPerSecond, resolution.ToString(), resolution.IsSupported));
    }

    [Fact]
    public void UnitsBeyondSixtyFourBitsAreUnsupported()
    {
        Assert.False(new TimestampResolution(20).IsSupported);
        Assert.False(new TimestampResolution(0x80 | 64).IsSupported);
        Assert.False(new TimestampResolution(20).TryToNanoseconds(1, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => TimestampResolution.PowerOfTen(20));
        Assert.Throws<ArgumentOutOfRangeException>(() => TimestampResolution.PowerOfTwo(64));
    }

    [Theory]
    [InlineData(6, 1_700_000_000_123_456UL, 1_700_000_000_123_456_000L)]
    [InlineData(9, 1_700_000_000_123_456_789UL, 1_700_000_000_123_456_789L)]
    [InlineData(12, 123_456_789_999UL, 123_456_789L)]           // finer than 1 ns: truncated
    [InlineData(0x80 | 30, 1UL << 30, 1_000_000_000L)]           // exactly one second
    [InlineData(0x80 | 1, 3UL, 1_500_000_000L)]                   // three half-seconds
    public void ConvertsUnitsToNanoseconds(byte value, ulong units, long nanoseconds)
    {
        Assert.True(new TimestampResolution(value).TryToNanoseconds(units, out var result));
        Assert.Equal(nanoseconds, result);
    }

    [Fact]
    public void OverflowIsReportedNotWrapped()
    {
        Assert.False(TimestampResolution.Nanoseconds.TryToNanoseconds(ulong.MaxValue, out _));
        Assert.False(TimestampResolution.PowerOfTen(12).TryFromNanoseconds(long.MaxValue, out _));
        Assert.False(TimestampResolution.Nanoseconds.TryFromNanoseconds(-1, out _));
    }

    [Fact]
    public void FinerPowerOfTwoUnitsRoundTripEveryNanosecond()
    {
        var random = new Random(1071);
        // The largest nanosecond count whose 2^-n unit count still fits 64 bits, per exponent.
        foreach (var (exponent, limit) in new[] { (30, 4_000_000_000_000_000_000L), (31, 4_000_000_000_000_000_000L), (40, 16_000_000_000_000_000L), (50, 15_000_000_000_000L) })
        {
            var resolution = TimestampResolution.PowerOfTwo(exponent);
            for (var i = 0; i < 2000; i++)
            {
                var ns = random.NextInt64(0, limit);
                Assert.True(resolution.TryFromNanoseconds(ns, out var units));
                Assert.True(resolution.TryToNanoseconds(units, out var back));
                Assert.Equal(ns, back);
            }
        }
    }
}
