using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Numerics;

namespace Membrane.Agent.Ipam;

/// <summary>
/// The addresses of one pod CIDR and which of them are taken: a bitmap with one bit per
/// address and a next-fit cursor. Allocation costs a scan of 64-bit words from the cursor
/// (a /16 is 1024 words), never a walk over stored rows.
/// </summary>
/// <remarks>
/// Reserved, never handed out: offset 0 (the IPv4 network address; in IPv6 the Subnet-Router
/// anycast address, RFC 4291 §2.6.1), offset 1 (the gateway: the first usable address, which
/// pods route through) and, for IPv4, the last address (the broadcast address, RFC 919/922).
/// A very large prefix (an IPv6 /64) is used only through its first <see cref="MaxAddresses"/>
/// addresses: a node never runs a million pods, and the bitmap stays 128 KiB.
/// Not thread-safe: <see cref="IpamAllocator"/> guards it.
/// </remarks>
public sealed class IpPool
{
    /// <summary>The most addresses of one CIDR that are managed.</summary>
    public const int MaxAddresses = 1 << 20;

    private readonly ulong[] _bits;
    private readonly UInt128 _base;
    private readonly int _size;
    private readonly int _broadcast;
    private int _cursor;

    /// <summary>Creates the pool of <paramref name="cidr"/>.</summary>
    /// <exception cref="ArgumentException">The prefix leaves no usable address.</exception>
    public IpPool(IPNetwork cidr)
    {
        Cidr = cidr;
        Family = cidr.BaseAddress.AddressFamily;
        var bits = Family == AddressFamily.InterNetwork ? 32 : 128;
        var hostBits = bits - cidr.PrefixLength;
        var total = hostBits >= 62 ? long.MaxValue : 1L << hostBits;
        _size = (int)Math.Min(total, MaxAddresses);
        _broadcast = Family == AddressFamily.InterNetwork && total == _size ? _size - 1 : -1;
        Capacity = _size - 2 - (_broadcast >= 0 ? 1 : 0);
        if (Capacity < 1)
        {
            throw new ArgumentException(
                $"failed to use pod CIDR {cidr}: /{cidr.PrefixLength} leaves no address for pods once the network, gateway and broadcast addresses are reserved",
                nameof(cidr));
        }
        _base = ToNumber(cidr.BaseAddress);
        _bits = new ulong[(_size + 63) / 64];
        // Bits past the end of the last word count as taken, so the scan never returns them.
        if (_size % 64 != 0)
        {
            _bits[^1] = ~0UL << (_size % 64);
        }
        SetBit(0);
        SetBit(GatewayOffset);
        if (_broadcast >= 0)
        {
            SetBit(_broadcast);
        }
        Gateway = ToAddress(GatewayOffset);
        _cursor = GatewayOffset + 1;
    }

    private const int GatewayOffset = 1;

    /// <summary>The pod CIDR.</summary>
    public IPNetwork Cidr { get; }

    /// <summary>IPv4 or IPv6.</summary>
    public AddressFamily Family { get; }

    /// <summary>The gateway address (the first usable one): reserved, the pods' next hop.</summary>
    public IPAddress Gateway { get; }

    /// <summary>How many addresses can be handed out.</summary>
    public int Capacity { get; }

    /// <summary>How many are handed out.</summary>
    public int InUse { get; private set; }

    /// <summary>"IPv4" or "IPv6", for messages.</summary>
    public string FamilyName => Family == AddressFamily.InterNetwork ? "IPv4" : "IPv6";

    /// <summary>Takes the next free address after the cursor; false when the pool is full.</summary>
    public bool TryAllocate(out IPAddress address)
    {
        if (InUse < Capacity)
        {
            // Next fit from the cursor: a released address is reused only after the rest of
            // the range, so a late packet for a deleted pod does not reach its successor.
            var words = _bits.Length;
            var start = _cursor / 64;
            for (var n = 0; n <= words; n++)
            {
                var w = (start + n) % words;
                var free = ~_bits[w];
                if (n == 0)
                {
                    free &= ~0UL << (_cursor % 64); // in the cursor's word, only bits at or after it
                }
                if (free != 0)
                {
                    var offset = w * 64 + BitOperations.TrailingZeroCount(free);
                    SetBit(offset);
                    InUse++;
                    _cursor = offset + 1 == _size ? 0 : offset + 1;
                    address = ToAddress(offset);
                    return true;
                }
            }
        }
        address = IPAddress.None;
        return false;
    }

    /// <summary>Marks <paramref name="address"/> taken (loading from the store); false if it already was.</summary>
    public bool TryMarkAllocated(IPAddress address)
    {
        if (!TryGetOffset(address, out var offset) || IsReserved(offset) || TestBit(offset))
        {
            return false;
        }
        SetBit(offset);
        InUse++;
        return true;
    }

    /// <summary>Returns <paramref name="address"/> to the pool; false if it was not taken.</summary>
    public bool Free(IPAddress address)
    {
        if (!TryGetOffset(address, out var offset) || IsReserved(offset) || !TestBit(offset))
        {
            return false;
        }
        _bits[offset / 64] &= ~(1UL << (offset % 64));
        InUse--;
        return true;
    }

    /// <summary>True when <paramref name="address"/> lies in the managed part of the CIDR.</summary>
    public bool Contains(IPAddress address) => TryGetOffset(address, out _);

    /// <summary>True when <paramref name="address"/> is taken or reserved.</summary>
    public bool IsTaken(IPAddress address) => TryGetOffset(address, out var offset) && TestBit(offset);

    private bool IsReserved(int offset) =>
        offset is 0 or GatewayOffset || offset == _broadcast;

    private bool TryGetOffset(IPAddress address, out int offset)
    {
        offset = 0;
        if (address.AddressFamily != Family || !Cidr.Contains(address))
        {
            return false;
        }
        var delta = ToNumber(address) - _base;
        if (delta >= (UInt128)_size)
        {
            return false;
        }
        offset = (int)delta;
        return true;
    }

    private bool TestBit(int offset) => (_bits[offset / 64] & (1UL << (offset % 64))) != 0;

    private void SetBit(int offset) => _bits[offset / 64] |= 1UL << (offset % 64);

    private IPAddress ToAddress(int offset) => FromNumber(_base + (UInt128)(uint)offset, Family);

    /// <summary>The gateway of <paramref name="cidr"/>: its first usable address (base + 1).</summary>
    public static IPAddress FirstUsable(IPNetwork cidr) => FromNumber(ToNumber(cidr.BaseAddress) + 1, cidr.BaseAddress.AddressFamily);

    /// <summary><paramref name="address"/> with every bit past <paramref name="prefix"/> cleared.</summary>
    public static IPAddress Mask(IPAddress address, int prefix)
    {
        var bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var mask = prefix == 0 ? UInt128.Zero : UInt128.MaxValue << (bits - prefix);
        if (bits == 32)
        {
            mask &= uint.MaxValue;
        }
        return FromNumber(ToNumber(address) & mask, address.AddressFamily);
    }

    private static IPAddress FromNumber(UInt128 value, AddressFamily family)
    {
        if (family == AddressFamily.InterNetwork)
        {
            Span<byte> v4 = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(v4, (uint)value);
            return new IPAddress(v4);
        }
        Span<byte> v6 = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(v6, value);
        return new IPAddress(v6);
    }

    private static UInt128 ToNumber(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        return written == 4
            ? BinaryPrimitives.ReadUInt32BigEndian(bytes)
            : BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }
}
