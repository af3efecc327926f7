using System.Globalization;

namespace Membrane.Capture;

/// <summary>
/// The unit of a timestamp, encoded as pcapng's <c>if_tsresol</c> byte
/// (draft-ietf-opsawg-pcapng §4.2): the low 7 bits are an exponent; the high bit clear means
/// a negative power of ten (6 = microseconds), set means a negative power of two.
/// Classic pcap uses 10^-6 (magic 0xA1B2C3D4) or 10^-9 (magic 0xA1B23C4D).
/// </summary>
public readonly struct TimestampResolution : IEquatable<TimestampResolution>
{
    private const int MaxPowerOfTen = 19; // 10^19 is the largest power of ten a ulong holds
    private const int MaxPowerOfTwo = 63;
    private const long NanosecondsPerSecond = 1_000_000_000;

    private static readonly ulong[] s_powersOfTen = BuildPowersOfTen();

    /// <summary>Wraps a raw <c>if_tsresol</c> value.</summary>
    public TimestampResolution(byte value) => Value = value;

    /// <summary>The raw <c>if_tsresol</c> byte.</summary>
    public byte Value { get; }

    /// <summary>10^-6 s, pcapng's default when an interface has no <c>if_tsresol</c>.</summary>
    public static TimestampResolution Microseconds => new(6);

    /// <summary>10^-9 s.</summary>
    public static TimestampResolution Nanoseconds => new(9);

    /// <summary>True when the unit is 2^-<see cref="Exponent"/> seconds, false for 10^-<see cref="Exponent"/>.</summary>
    public bool IsPowerOfTwo => (Value & 0x80) != 0;

    /// <summary>The exponent: the unit is 10^-Exponent (or 2^-Exponent) seconds.</summary>
    public int Exponent => Value & 0x7F;

    /// <summary>
    /// True when timestamps in this unit can be converted: exponents up to 19 (powers of ten)
    /// or 63 (powers of two), beyond which one second no longer fits the 64-bit counter.
    /// </summary>
    public bool IsSupported => IsPowerOfTwo ? Exponent <= MaxPowerOfTwo : Exponent <= MaxPowerOfTen;

    /// <summary>A resolution of 10^-<paramref name="exponent"/> seconds.</summary>
    public static TimestampResolution PowerOfTen(int exponent)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(exponent);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(exponent, MaxPowerOfTen);
        return new TimestampResolution((byte)exponent);
    }

    /// <summary>A resolution of 2^-<paramref name="exponent"/> seconds.</summary>
    public static TimestampResolution PowerOfTwo(int exponent)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(exponent);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(exponent, MaxPowerOfTwo);
        return new TimestampResolution((byte)(0x80 | exponent));
    }

    /// <summary>How many units make one second (only when <see cref="IsSupported"/>).</summary>
    public ulong UnitsPerSecond => IsPowerOfTwo ? 1UL << Exponent : s_powersOfTen[Exponent];

    /// <summary>
    /// Converts a count of units to nanoseconds, truncating toward zero when the unit is finer
    /// than a nanosecond. Returns false when the resolution is unsupported or the result does
    /// not fit a <see cref="long"/> (beyond the year 2262).
    /// </summary>
    public bool TryToNanoseconds(ulong units, out long nanoseconds)
    {
        nanoseconds = 0;
        if (!IsSupported)
        {
            return false;
        }
        UInt128 ns;
        if (IsPowerOfTwo)
        {
            ns = ((UInt128)units * NanosecondsPerSecond) >> Exponent;
        }
        else if (Exponent <= 9)
        {
            ns = (UInt128)units * s_powersOfTen[9 - Exponent];
        }
        else
        {
            ns = units / s_powersOfTen[Exponent - 9];
        }
        if (ns > long.MaxValue)
        {
            return false;
        }
        nanoseconds = (long)ns;
        return true;
    }

    /// <summary>
    /// Converts nanoseconds (≥ 0) to a count of units. A coarser unit truncates; a finer
    /// power-of-two unit rounds up, so that converting back yields the same nanosecond.
    /// Returns false when the resolution is unsupported or the count overflows 64 bits.
    /// </summary>
    public bool TryFromNanoseconds(long nanoseconds, out ulong units)
    {
        units = 0;
        if (!IsSupported || nanoseconds < 0)
        {
            return false;
        }
        UInt128 result;
        if (IsPowerOfTwo)
        {
            var scaled = (UInt128)(ulong)nanoseconds << Exponent;
            result = scaled / NanosecondsPerSecond;
            if (Exponent >= 30 && scaled % NanosecondsPerSecond != 0)
            {
                result++; // 2^30 > 10^9: the unit is finer than 1 ns, round up (see summary)
            }
        }
        else if (Exponent <= 9)
        {
            result = (ulong)nanoseconds / s_powersOfTen[9 - Exponent];
        }
        else
        {
            result = (UInt128)(ulong)nanoseconds * s_powersOfTen[Exponent - 9];
        }
        if (result > ulong.MaxValue)
        {
            return false;
        }
        units = (ulong)result;
        return true;
    }

    /// <inheritdoc/>
    public bool Equals(TimestampResolution other) => Value == other.Value;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is TimestampResolution other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => Value;

    /// <summary>Equality of the raw <c>if_tsresol</c> values.</summary>
    public static bool operator ==(TimestampResolution left, TimestampResolution right) => left.Equals(right);

    /// <summary>Inequality of the raw <c>if_tsresol</c> values.</summary>
    public static bool operator !=(TimestampResolution left, TimestampResolution right) => !left.Equals(right);

    /// <summary>"10^-6 s" or "2^-30 s".</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"{(IsPowerOfTwo ? 2 : 10)}^-{Exponent} s");

    private static ulong[] BuildPowersOfTen()
    {
        var table = new ulong[MaxPowerOfTen + 1];
        table[0] = 1;
        for (var i = 1; i < table.Length; i++)
        {
            table[i] = table[i - 1] * 10;
        }
        return table;
    }
}
