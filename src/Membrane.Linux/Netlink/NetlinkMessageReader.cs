using System.Buffers.Binary;
using static Membrane.Linux.Interop.Netlink;

namespace Membrane.Linux.Netlink;

/// <summary>Why a netlink reader stopped.</summary>
public enum NetlinkReadStatus : byte
{
    /// <summary>An item was read.</summary>
    Ok,
    /// <summary>The buffer is exhausted cleanly.</summary>
    End,
    /// <summary>Fewer bytes remain than a header needs.</summary>
    TruncatedHeader,
    /// <summary>A header's length field is smaller than the header or runs past the buffer.</summary>
    BadLength,
}

/// <summary>One netlink message (struct nlmsghdr and its payload) inside a received datagram.</summary>
public readonly ref struct NetlinkMessage
{
    internal NetlinkMessage(ushort type, ushort flags, uint sequence, uint portId, ReadOnlySpan<byte> payload)
    {
        Type = type;
        Flags = flags;
        Sequence = sequence;
        PortId = portId;
        Payload = payload;
    }

    /// <summary>nlmsg_type: NLMSG_ERROR/DONE or a family's message type (RTM_NEWLINK, ...).</summary>
    public ushort Type { get; }

    /// <summary>nlmsg_flags.</summary>
    public ushort Flags { get; }

    /// <summary>nlmsg_seq: the sequence number of the request this answers.</summary>
    public uint Sequence { get; }

    /// <summary>nlmsg_pid: the port id of the socket the message is addressed to.</summary>
    public uint PortId { get; }

    /// <summary>The bytes after the 16-byte header, up to nlmsg_len.</summary>
    public ReadOnlySpan<byte> Payload { get; }
}

/// <summary>
/// Walks the netlink messages of one datagram (NLMSG_NEXT in linux/netlink.h) without
/// allocating; a malformed length stops it with a status and the byte offset.
/// </summary>
public ref struct NetlinkMessageReader
{
    private readonly ReadOnlySpan<byte> _buffer;
    private int _offset;

    /// <summary>Reads the messages in <paramref name="datagram"/>.</summary>
    public NetlinkMessageReader(ReadOnlySpan<byte> datagram)
    {
        _buffer = datagram;
        _offset = 0;
        Status = NetlinkReadStatus.Ok;
    }

    /// <summary>Why the last <see cref="TryRead"/> returned what it did.</summary>
    public NetlinkReadStatus Status { get; private set; }

    /// <summary>The offset of the next message (or of the error).</summary>
    public readonly int Offset => _offset;

    /// <summary>Reads the next message; false at the end or on malformed input (see <see cref="Status"/>).</summary>
    public bool TryRead(out NetlinkMessage message)
    {
        message = default;
        var remaining = _buffer.Length - _offset;
        if (remaining <= 0)
        {
            Status = NetlinkReadStatus.End;
            return false;
        }
        if (remaining < NLMSG_HDRLEN)
        {
            Status = NetlinkReadStatus.TruncatedHeader;
            return false;
        }
        var header = _buffer.Slice(_offset);
        var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (length < NLMSG_HDRLEN || length > (uint)remaining)
        {
            Status = NetlinkReadStatus.BadLength;
            return false;
        }
        message = new NetlinkMessage(
            BinaryPrimitives.ReadUInt16LittleEndian(header.Slice(4)),
            BinaryPrimitives.ReadUInt16LittleEndian(header.Slice(6)),
            BinaryPrimitives.ReadUInt32LittleEndian(header.Slice(8)),
            BinaryPrimitives.ReadUInt32LittleEndian(header.Slice(12)),
            header.Slice(NLMSG_HDRLEN, (int)length - NLMSG_HDRLEN));
        // NLMSG_ALIGN: the next message starts on a 4-byte boundary; the last one may lack padding.
        _offset = Math.Min(_buffer.Length, _offset + (int)((length + NLMSG_ALIGNTO - 1) & ~(uint)(NLMSG_ALIGNTO - 1)));
        Status = NetlinkReadStatus.Ok;
        return true;
    }
}

/// <summary>
/// Walks a run of netlink attributes (struct nlattr TLVs, 4-byte aligned; linux/netlink.h)
/// without allocating. The type is reported without the NLA_F_NESTED / NLA_F_NET_BYTEORDER
/// bits. A malformed length stops it with a status and the byte offset.
/// </summary>
public ref struct NetlinkAttributeReader
{
    private readonly ReadOnlySpan<byte> _buffer;
    private int _offset;

    /// <summary>Reads the attributes in <paramref name="attributes"/>.</summary>
    public NetlinkAttributeReader(ReadOnlySpan<byte> attributes)
    {
        _buffer = attributes;
        _offset = 0;
        Status = NetlinkReadStatus.Ok;
    }

    /// <summary>Why the last <see cref="TryRead"/> returned what it did.</summary>
    public NetlinkReadStatus Status { get; private set; }

    /// <summary>The offset of the next attribute (or of the error).</summary>
    public readonly int Offset => _offset;

    /// <summary>Reads the next attribute; false at the end or on malformed input (see <see cref="Status"/>).</summary>
    public bool TryRead(out ushort type, out ReadOnlySpan<byte> value)
    {
        type = 0;
        value = default;
        var remaining = _buffer.Length - _offset;
        if (remaining <= 0)
        {
            Status = NetlinkReadStatus.End;
            return false;
        }
        if (remaining < NLA_HDRLEN)
        {
            Status = NetlinkReadStatus.TruncatedHeader;
            return false;
        }
        var header = _buffer.Slice(_offset);
        var length = BinaryPrimitives.ReadUInt16LittleEndian(header);
        if (length < NLA_HDRLEN || length > remaining)
        {
            Status = NetlinkReadStatus.BadLength;
            return false;
        }
        type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(header.Slice(2)) & NLA_TYPE_MASK);
        value = header.Slice(NLA_HDRLEN, length - NLA_HDRLEN);
        _offset = Math.Min(_buffer.Length, _offset + ((length + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1)));
        Status = NetlinkReadStatus.Ok;
        return true;
    }
}
