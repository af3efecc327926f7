using System.Buffers.Binary;
using System.Net;
using System.Text;
using static Membrane.Linux.Interop.Netlink;

namespace Membrane.Linux.Netlink;

/// <summary>
/// Builds one netlink request into a caller-supplied buffer (usually stackalloc'd): the
/// 16-byte nlmsghdr, the family's fixed header, then 4-byte aligned attributes, with nested
/// attributes whose length is patched when they end. The sequence and port id are filled in
/// by the socket when it sends the message.
/// </summary>
public ref struct NetlinkMessageBuilder
{
    private readonly Span<byte> _buffer;
    private int _length;

    /// <summary>Starts a message of <paramref name="type"/> with <paramref name="flags"/> in <paramref name="buffer"/>.</summary>
    public NetlinkMessageBuilder(Span<byte> buffer, ushort type, ushort flags)
    {
        if (buffer.Length < NLMSG_HDRLEN)
        {
            throw new ArgumentException("failed to start netlink message: buffer smaller than a header", nameof(buffer));
        }
        _buffer = buffer;
        _buffer.Slice(0, NLMSG_HDRLEN).Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.Slice(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.Slice(6), flags);
        _length = NLMSG_HDRLEN;
    }

    /// <summary>The bytes written so far (nlmsg_len is kept current).</summary>
    public readonly ReadOnlySpan<byte> Written => _buffer.Slice(0, _length);

    /// <summary>Reserves <paramref name="size"/> zeroed bytes for the fixed header (ifinfomsg, rtmsg, ...) and returns them.</summary>
    public Span<byte> AppendHeader(int size) => Reserve(size, aligned: true);

    /// <summary>Appends an attribute with raw bytes.</summary>
    public void Add(ushort type, scoped ReadOnlySpan<byte> value)
    {
        var attr = Reserve(NLA_HDRLEN + value.Length, aligned: true);
        BinaryPrimitives.WriteUInt16LittleEndian(attr, (ushort)(NLA_HDRLEN + value.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(attr.Slice(2), type);
        value.CopyTo(attr.Slice(NLA_HDRLEN));
    }

    /// <summary>Appends a u8 attribute.</summary>
    public void AddU8(ushort type, byte value)
    {
        Span<byte> v = [value];
        Add(type, v);
    }

    /// <summary>Appends a host-order u16 attribute.</summary>
    public void AddU16(ushort type, ushort value)
    {
        Span<byte> v = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(v, value);
        Add(type, v);
    }

    /// <summary>Appends a network-order (big-endian) u16 attribute, e.g. a UDP port.</summary>
    public void AddU16BigEndian(ushort type, ushort value)
    {
        Span<byte> v = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(v, value);
        Add(type, v);
    }

    /// <summary>Appends a host-order u32 attribute.</summary>
    public void AddU32(ushort type, uint value)
    {
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(v, value);
        Add(type, v);
    }

    /// <summary>Appends a NUL-terminated string attribute (NLA_NUL_STRING / NLA_STRING).</summary>
    public void AddString(ushort type, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var max = Encoding.UTF8.GetMaxByteCount(value.Length) + 1;
        Span<byte> v = max <= 256 ? stackalloc byte[256] : new byte[max];
        var n = Encoding.UTF8.GetBytes(value, v);
        v[n] = 0;
        Add(type, v.Slice(0, n + 1));
    }

    /// <summary>Appends an IPv4 (4 bytes) or IPv6 (16 bytes) address attribute, network order.</summary>
    public void AddAddress(ushort type, IPAddress address)
    {
        Span<byte> v = stackalloc byte[16];
        if (!address.TryWriteBytes(v, out var n))
        {
            throw new ArgumentException($"failed to encode address {address}", nameof(address));
        }
        Add(type, v.Slice(0, n));
    }

    /// <summary>Opens a nested attribute; pass the returned token to <see cref="EndNested"/>.</summary>
    public int BeginNested(ushort type)
    {
        var start = _length;
        var attr = Reserve(NLA_HDRLEN, aligned: true);
        BinaryPrimitives.WriteUInt16LittleEndian(attr.Slice(2), (ushort)(type | NLA_F_NESTED));
        return start;
    }

    /// <summary>Opens a nested attribute without NLA_F_NESTED (VETH_INFO_PEER and IFLA_INFO_DATA predate the flag).</summary>
    public int BeginNestedLegacy(ushort type)
    {
        var start = _length;
        var attr = Reserve(NLA_HDRLEN, aligned: true);
        BinaryPrimitives.WriteUInt16LittleEndian(attr.Slice(2), type);
        return start;
    }

    /// <summary>Closes the nested attribute started at <paramref name="token"/>, patching its length.</summary>
    public void EndNested(int token)
    {
        var length = _length - token;
        if (length > ushort.MaxValue)
        {
            throw new InvalidOperationException("failed to close nested netlink attribute: longer than 65535 bytes");
        }
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.Slice(token), (ushort)length);
    }

    private Span<byte> Reserve(int size, bool aligned)
    {
        var padded = aligned ? (size + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1) : size;
        if (_length + padded > _buffer.Length)
        {
            throw new InvalidOperationException($"failed to build netlink message: more than {_buffer.Length} bytes");
        }
        var span = _buffer.Slice(_length, padded);
        span.Clear();
        _length += padded;
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer, (uint)_length);
        return span.Slice(0, size);
    }
}
