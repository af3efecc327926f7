using System.Buffers.Binary;
using System.Net;
using System.Runtime.CompilerServices;

namespace Membrane.Packets;

/// <summary>A 48-bit IEEE 802 MAC address held in a <see cref="ulong"/> (most significant byte first on the wire).</summary>
public readonly struct MacAddress : IEquatable<MacAddress>
{
    /// <summary>The address as a number whose low 48 bits are the six bytes in wire order.</summary>
    public ulong Value { get; }

    /// <summary>Creates an address from the low 48 bits of <paramref name="value"/>.</summary>
    public MacAddress(ulong value) => Value = value & 0xFFFF_FFFF_FFFFUL;

    /// <summary>ff:ff:ff:ff:ff:ff.</summary>
    public static MacAddress Broadcast => new(0xFFFF_FFFF_FFFFUL);

    /// <summary>Reads six bytes in wire order; <paramref name="source"/> must hold at least six bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static MacAddress Read(ReadOnlySpan<byte> source) =>
        new(((ulong)BinaryPrimitives.ReadUInt16BigEndian(source) << 32) | BinaryPrimitives.ReadUInt32BigEndian(source.Slice(2)));

    /// <summary>Writes the six bytes in wire order.</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)(Value >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(2), (uint)Value);
    }

    /// <summary>Parses <c>aa:bb:cc:dd:ee:ff</c> (or with dashes).</summary>
    public static MacAddress Parse(string text)
    {
        var parts = text.Split(':', '-');
        if (parts.Length != 6)
        {
            throw new FormatException($"failed to parse MAC address '{text}': expected six hex bytes");
        }
        ulong v = 0;
        foreach (var p in parts)
        {
            v = (v << 8) | byte.Parse(p, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        }
        return new MacAddress(v);
    }

    /// <summary>True for a group (multicast or broadcast) address: the I/G bit of the first byte.</summary>
    public bool IsMulticast => ((Value >> 40) & 1) != 0;

    /// <summary>Lower-case colon-separated hex, as Wireshark prints <c>eth.src</c>.</summary>
    public override string ToString() => string.Create(17, Value, static (span, v) =>
    {
        for (var i = 0; i < 6; i++)
        {
            var b = (byte)(v >> (40 - (8 * i)));
            span[i * 3] = HexLower[b >> 4];
            span[(i * 3) + 1] = HexLower[b & 0xF];
            if (i < 5)
            {
                span[(i * 3) + 2] = ':';
            }
        }
    });

    private const string HexLower = "0123456789abcdef";

    public bool Equals(MacAddress other) => Value == other.Value;
    public override bool Equals(object? obj) => obj is MacAddress m && Equals(m);
    public override int GetHashCode() => Value.GetHashCode();
    public static bool operator ==(MacAddress a, MacAddress b) => a.Value == b.Value;
    public static bool operator !=(MacAddress a, MacAddress b) => a.Value != b.Value;
}

/// <summary>An IPv4 address held as a 32-bit number (the four bytes read big-endian).</summary>
public readonly struct Ipv4Address : IEquatable<Ipv4Address>
{
    /// <summary>The address as a number: 10.0.0.1 is 0x0A000001.</summary>
    public uint Value { get; }

    /// <summary>Creates an address from its numeric value.</summary>
    public Ipv4Address(uint value) => Value = value;

    /// <summary>Creates a.b.c.d.</summary>
    public Ipv4Address(byte a, byte b, byte c, byte d) => Value = ((uint)a << 24) | ((uint)b << 16) | ((uint)c << 8) | d;

    /// <summary>Reads four bytes in wire order; <paramref name="source"/> must hold at least four bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Ipv4Address Read(ReadOnlySpan<byte> source) => new(BinaryPrimitives.ReadUInt32BigEndian(source));

    /// <summary>Writes the four bytes in wire order.</summary>
    public void Write(Span<byte> destination) => BinaryPrimitives.WriteUInt32BigEndian(destination, Value);

    /// <summary>Parses dotted-quad text.</summary>
    public static Ipv4Address Parse(string text)
    {
        var ip = IPAddress.Parse(text);
        if (ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
        {
            throw new FormatException($"failed to parse IPv4 address '{text}': not an IPv4 address");
        }
        Span<byte> b = stackalloc byte[4];
        ip.TryWriteBytes(b, out _);
        return Read(b);
    }

    /// <summary>Dotted-quad text, as Wireshark prints <c>ip.src</c>.</summary>
    public override string ToString() =>
        $"{Value >> 24}.{(Value >> 16) & 0xFF}.{(Value >> 8) & 0xFF}.{Value & 0xFF}";

    public bool Equals(Ipv4Address other) => Value == other.Value;
    public override bool Equals(object? obj) => obj is Ipv4Address a && Equals(a);
    public override int GetHashCode() => (int)Value;
    public static bool operator ==(Ipv4Address a, Ipv4Address b) => a.Value == b.Value;
    public static bool operator !=(Ipv4Address a, Ipv4Address b) => a.Value != b.Value;
}

/// <summary>An IPv6 address held as two 64-bit numbers (bytes 0–7 and 8–15, read big-endian). Never allocates.</summary>
public readonly struct Ipv6Address : IEquatable<Ipv6Address>
{
    /// <summary>Bytes 0–7 of the address, big-endian.</summary>
    public ulong High { get; }

    /// <summary>Bytes 8–15 of the address, big-endian.</summary>
    public ulong Low { get; }

    /// <summary>Creates an address from its two halves.</summary>
    public Ipv6Address(ulong high, ulong low)
    {
        High = high;
        Low = low;
    }

    /// <summary>Reads sixteen bytes in wire order; <paramref name="source"/> must hold at least sixteen bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Ipv6Address Read(ReadOnlySpan<byte> source) =>
        new(BinaryPrimitives.ReadUInt64BigEndian(source), BinaryPrimitives.ReadUInt64BigEndian(source.Slice(8)));

    /// <summary>The IPv4-mapped form ::ffff:a.b.c.d (RFC 4291 §2.5.5.2).</summary>
    public static Ipv6Address FromIpv4Mapped(Ipv4Address v4) => new(0, 0x0000_FFFF_0000_0000UL | v4.Value);

    /// <summary>Writes the sixteen bytes in wire order.</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64BigEndian(destination, High);
        BinaryPrimitives.WriteUInt64BigEndian(destination.Slice(8), Low);
    }

    /// <summary>Parses IPv6 text.</summary>
    public static Ipv6Address Parse(string text)
    {
        var ip = IPAddress.Parse(text);
        if (ip.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
        {
            throw new FormatException($"failed to parse IPv6 address '{text}': not an IPv6 address");
        }
        Span<byte> b = stackalloc byte[16];
        ip.TryWriteBytes(b, out _);
        return Read(b);
    }

    /// <summary>RFC 5952 text, as Wireshark prints <c>ipv6.src</c>.</summary>
    public override string ToString()
    {
        Span<byte> b = stackalloc byte[16];
        Write(b);
        return new IPAddress(b).ToString();
    }

    public bool Equals(Ipv6Address other) => High == other.High && Low == other.Low;
    public override bool Equals(object? obj) => obj is Ipv6Address a && Equals(a);
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public override int GetHashCode() => HashCode.Combine(High, Low);
    public static bool operator ==(Ipv6Address a, Ipv6Address b) => a.Equals(b);
    public static bool operator !=(Ipv6Address a, Ipv6Address b) => !a.Equals(b);
}

/// <summary>
/// An IPv4 or IPv6 address in one fixed-size value (IPv4 kept in its IPv4-mapped IPv6 form, RFC 4291 §2.5.5.2),
/// so that a flow key has one layout for both families and never allocates.
/// </summary>
public readonly struct IpAddress : IEquatable<IpAddress>
{
    /// <summary>The 128 bits; an IPv4 address appears as ::ffff:a.b.c.d.</summary>
    public Ipv6Address Bits { get; }

    /// <summary>4 or 6; 0 for the default (no address).</summary>
    public byte Version { get; }

    /// <summary>Wraps an IPv4 address.</summary>
    public IpAddress(Ipv4Address v4)
    {
        Bits = Ipv6Address.FromIpv4Mapped(v4);
        Version = 4;
    }

    /// <summary>Wraps an IPv6 address.</summary>
    public IpAddress(Ipv6Address v6)
    {
        Bits = v6;
        Version = 6;
    }

    /// <summary>The IPv4 address (meaningful only when <see cref="Version"/> is 4).</summary>
    public Ipv4Address AsIpv4 => new((uint)Bits.Low);

    /// <summary>The address in its family's text form; empty when <see cref="Version"/> is 0.</summary>
    public override string ToString() => Version switch { 4 => AsIpv4.ToString(), 6 => Bits.ToString(), _ => "" };

    public bool Equals(IpAddress other) => Version == other.Version && Bits.Equals(other.Bits);
    public override bool Equals(object? obj) => obj is IpAddress a && Equals(a);
    public override int GetHashCode() => HashCode.Combine(Bits, Version);
    public static bool operator ==(IpAddress a, IpAddress b) => a.Equals(b);
    public static bool operator !=(IpAddress a, IpAddress b) => !a.Equals(b);
}
