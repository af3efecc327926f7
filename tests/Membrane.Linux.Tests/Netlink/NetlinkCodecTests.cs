using System.Buffers.Binary;
using System.Net;
using System.Text;
using Membrane.Linux.Netlink;

namespace Membrane.Linux.Tests.Netlink;

/// <summary>The netlink message/attribute codec over crafted bytes (no kernel needed).</summary>
public sealed class NetlinkCodecTests
{
    [Fact]
    public void BuilderLaysOutHeaderFixedHeaderAndAlignedNestedAttributes()
    {
        Span<byte> buffer = stackalloc byte[256];
        var msg = new NetlinkMessageBuilder(buffer, type: 16, flags: 0x0600);
        msg.AppendHeader(16);
        msg.AddString(3, "ab");           // 4 + 3 bytes, padded to 8
        var nest = msg.BeginNested(18);
        msg.AddU8(1, 7);                  // 4 + 1, padded to 8
        msg.AddU16BigEndian(15, 4789);    // 4 + 2, padded to 8
        msg.EndNested(nest);
        msg.AddAddress(1, IPAddress.Parse("198.18.0.1"));

        var expected = new byte[]
        {
            68, 0, 0, 0, 16, 0, 0x00, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr: len 68, type 16, flags 0x600
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,         // ifinfomsg
            7, 0, 3, 0, (byte)'a', (byte)'b', 0, 0,                // IFLA_IFNAME "ab\0" + pad
            20, 0, 18, 0x80,                                        // nested, NLA_F_NESTED, length 20
            5, 0, 1, 0, 7, 0, 0, 0,
            6, 0, 15, 0, 0x12, 0xb5, 0, 0,                          // 4789 big-endian
            8, 0, 1, 0, 198, 18, 0, 1,
        };
        Assert.Equal(expected, msg.Written.ToArray());
    }

    [Fact]
    public void BuilderRefusesToOverflowItsBuffer()
    {
        var buffer = new byte[32];
        Assert.Throws<InvalidOperationException>(() =>
        {
            var msg = new NetlinkMessageBuilder(buffer, 16, 0);
            msg.AddString(3, "a name that does not fit");
        });
    }

    [Fact]
    public void AttributeReaderRoundTripsTypesAndStripsFlagBits()
    {
        Span<byte> buffer = stackalloc byte[128];
        var msg = new NetlinkMessageBuilder(buffer, 16, 0);
        msg.AddU32(4, 1500);
        var nest = msg.BeginNested(18);
        msg.AddString(1, "veth");
        msg.EndNested(nest);
        var reader = new NetlinkAttributeReader(msg.Written.Slice(16));
        Assert.True(reader.TryRead(out var type, out var value));
        Assert.Equal(4, type);
        Assert.Equal(1500u, BinaryPrimitives.ReadUInt32LittleEndian(value));
        Assert.True(reader.TryRead(out type, out value));
        Assert.Equal(18, type);
        var inner = new NetlinkAttributeReader(value);
        Assert.True(inner.TryRead(out type, out var kind));
        Assert.Equal(1, type);
        Assert.Equal("veth\0", Encoding.ASCII.GetString(kind));
        Assert.False(inner.TryRead(out _, out _));
        Assert.Equal(NetlinkReadStatus.End, inner.Status);
        Assert.False(reader.TryRead(out _, out _));
        Assert.Equal(NetlinkReadStatus.End, reader.Status);
    }

    public static TheoryData<int> Prefixes() => new(Enumerable.Range(0, SampleLink().Length + 1));

    /// <summary>Every prefix of a valid RTM_NEWLINK datagram: the readers stop with a reason, never throw.</summary>
    [Theory]
    [MemberData(nameof(Prefixes))]
    public void EveryTruncationStopsWithAReason(int length)
    {
        var datagram = SampleLink().AsSpan(0, length);
        var messages = new NetlinkMessageReader(datagram);
        if (messages.TryRead(out var message))
        {
            Assert.Equal(length, SampleLink().Length);
            Assert.True(Rtnetlink.TryParseLink(message, out var link));
            Assert.Equal("mb0", link.Name);
            Assert.Equal(1400, link.Mtu);
            Assert.Equal("veth", link.Kind);
            Assert.Equal(7, link.Index);
        }
        else
        {
            Assert.Equal(length == 0 ? NetlinkReadStatus.End : length < 16 ? NetlinkReadStatus.TruncatedHeader : NetlinkReadStatus.BadLength, messages.Status);
        }
        // The attribute run alone, cut anywhere, also parses up to the cut and stops cleanly.
        if (length > 32)
        {
            var attrs = new NetlinkAttributeReader(datagram.Slice(32));
            var count = 0;
            while (attrs.TryRead(out _, out _))
            {
                count++;
            }
            Assert.NotEqual(NetlinkReadStatus.Ok, attrs.Status);
            Assert.True(count <= 3);
        }
    }

    [Fact]
    public void RandomBytesNeverThrow()
    {
        var random = new Random(1234);
        var bytes = new byte[96];
        for (var i = 0; i < 20_000; i++)
        {
            random.NextBytes(bytes);
            // Give the header a plausible length now and then so the payload parsers run too.
            if (i % 2 == 0)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)random.Next(16, bytes.Length + 1));
            }
            var reader = new NetlinkMessageReader(bytes);
            while (reader.TryRead(out var m))
            {
                Rtnetlink.TryParseLink(m, out _);
                Rtnetlink.TryParseAddress(m, out _);
                Rtnetlink.TryParseRoute(m, out _);
                Rtnetlink.TryParseNeighbour(m, out _);
                NetlinkSocket.ReadError(m, out _, out _);
            }
        }
    }

    [Fact]
    public void CappedErrorCarriesErrnoMessageAndOffset()
    {
        // struct nlmsgerr { int error = -EEXIST; struct nlmsghdr msg; } + NLMSGERR_ATTR_MSG + NLMSGERR_ATTR_OFFS
        var payload = new List<byte>();
        payload.AddRange(BitConverter.GetBytes(-17));
        payload.AddRange(new byte[16]);
        payload.AddRange(Attr(1, Encoding.ASCII.GetBytes("Link already exists\0")));
        payload.AddRange(Attr(2, BitConverter.GetBytes(36)));
        var datagram = Message(type: 2, flags: 0x100 | 0x200, payload.ToArray());
        var reader = new NetlinkMessageReader(datagram);
        Assert.True(reader.TryRead(out var message));
        Assert.Equal(Errno.EEXIST, NetlinkSocket.ReadError(message, out var text, out var offset));
        Assert.Equal("Link already exists", text);
        Assert.Equal(36, offset);
    }

    [Fact]
    public void UncappedErrorSkipsTheEchoedRequest()
    {
        var request = Message(type: 16, flags: 5, [1, 2, 3, 4, 5, 6]); // 22 bytes, padded to 24 by the kernel
        var payload = new List<byte>();
        payload.AddRange(BitConverter.GetBytes(-22));
        payload.AddRange(request.AsSpan(0, 22).ToArray());
        payload.AddRange(new byte[2]);
        payload.AddRange(Attr(1, Encoding.ASCII.GetBytes("mtu greater than device maximum\0")));
        var reader = new NetlinkMessageReader(Message(type: 2, flags: 0x200, payload.ToArray()));
        Assert.True(reader.TryRead(out var message));
        Assert.Equal(Errno.EINVAL, NetlinkSocket.ReadError(message, out var text, out var offset));
        Assert.Equal("mtu greater than device maximum", text);
        Assert.Null(offset);
    }

    [Fact]
    public void AckIsNotAnError()
    {
        var reader = new NetlinkMessageReader(Message(type: 2, flags: 0x100, new byte[20]));
        Assert.True(reader.TryRead(out var message));
        Assert.Equal(Errno.None, NetlinkSocket.ReadError(message, out var text, out _));
        Assert.Null(text);
    }

    [Fact]
    public void ExceptionMessageFollowsTheConvention()
    {
        var e = new NetlinkException("create veth mb01a", Errno.EEXIST, "Link already exists");
        Assert.Equal("failed to create veth mb01a: File exists (kernel: Link already exists)", e.Message);
        Assert.Equal("failed to delete link 3: No such device", new NetlinkException("delete link 3", Errno.ENODEV).Message);
    }

    private static byte[] SampleLink()
    {
        var buffer = new byte[128];
        var msg = new NetlinkMessageBuilder(buffer, 16, 2);
        BinaryPrimitives.WriteInt32LittleEndian(msg.AppendHeader(16).Slice(4), 7);
        msg.AddString(3, "mb0");
        msg.AddU32(4, 1400);
        var info = msg.BeginNested(18);
        msg.AddString(1, "veth");
        msg.EndNested(info);
        return msg.Written.ToArray();
    }

    private static byte[] Attr(ushort type, byte[] value)
    {
        var padded = (4 + value.Length + 3) & ~3;
        var bytes = new byte[padded];
        BinaryPrimitives.WriteUInt16LittleEndian(bytes, (ushort)(4 + value.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), type);
        value.CopyTo(bytes, 4);
        return bytes;
    }

    private static byte[] Message(ushort type, ushort flags, byte[] payload)
    {
        var bytes = new byte[16 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, (uint)bytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(6), flags);
        payload.CopyTo(bytes, 16);
        return bytes;
    }
}
