using System.Buffers.Binary;
using Membrane.Packets;

namespace Membrane.Cli.Decode;

// Linux "cooked" captures (what tcpdump -i any writes): LINKTYPE_LINUX_SLL and LINKTYPE_LINUX_SLL2
// (https://www.tcpdump.org/linktypes/LINKTYPE_LINUX_SLL.html, …_SLL2.html). The cooked header
// replaces the link layer; the network layer follows, and the dissector takes it from there.
internal static partial class PacketDecoder
{
    private const ushort LinuxCookedV1 = 113;
    private const ushort LinuxCookedV2 = 276;
    private const int LinuxCookedV1Length = 16;
    private const int LinuxCookedV2Length = 20;

    /// <summary>ARPHRD_ETHER and ARPHRD_LOOPBACK (linux/if_arp.h): the address is a MAC.</summary>
    private static bool IsEthernetLike(ushort hardwareType) => hardwareType is 1 or 772;

    /// <summary>Writes the <c>sll</c> layer; false when the header is cut short or names no network layer the dissector starts from.</summary>
    private static bool LinuxCooked(ReadOnlySpan<byte> data, bool v2, DecodeWriter w, out LinkType next, out int length)
    {
        next = default;
        length = v2 ? LinuxCookedV2Length : LinuxCookedV1Length;
        if (data.Length < length)
        {
            var error = new ParseError(ParseErrorReason.Truncated, 0, LayerKind.None);
            w.Error(ReasonName(error.Reason), 0, $"failed to parse Linux cooked header at byte 0: {ParseError.Describe(error.Reason)}");
            return false;
        }
        ushort protocol, hardwareType, addressLength;
        int addressAt;
        w.BeginLayer(Protocols.LinuxCooked, 0, 0);
        if (v2)
        {
            // SLL2: protocol, reserved, ifindex, ARPHRD type, packet type, address length, 8 address bytes.
            protocol = BinaryPrimitives.ReadUInt16BigEndian(data);
            hardwareType = BinaryPrimitives.ReadUInt16BigEndian(data.Slice(8));
            addressLength = data[11];
            addressAt = 12;
            w.Hex("sll.etype", "Protocol", protocol, 4);
            w.Uint("sll.ifindex", "Interface index", BinaryPrimitives.ReadUInt32BigEndian(data.Slice(4)));
            w.Uint("sll.hatype", "Link-layer address type", hardwareType);
            w.Uint("sll.pkttype", "Packet type", data[10]);
            w.Uint("sll.halen", "Link-layer address length", addressLength);
        }
        else
        {
            // SLL: packet type, ARPHRD type, address length, 8 address bytes, protocol.
            protocol = BinaryPrimitives.ReadUInt16BigEndian(data.Slice(14));
            hardwareType = BinaryPrimitives.ReadUInt16BigEndian(data.Slice(2));
            addressLength = BinaryPrimitives.ReadUInt16BigEndian(data.Slice(4));
            addressAt = 6;
            w.Uint("sll.pkttype", "Packet type", BinaryPrimitives.ReadUInt16BigEndian(data));
            w.Uint("sll.hatype", "Link-layer address type", hardwareType);
            w.Uint("sll.halen", "Link-layer address length", addressLength);
        }
        var address = data.Slice(addressAt, 8);
        var used = Math.Min((int)addressLength, 8);
        if (IsEthernetLike(hardwareType) && addressLength == 6)
        {
            w.Mac("sll.src.eth", "Source", address);
        }
        else
        {
            w.Bytes("sll.src.other", "Source", address.Slice(0, used));
        }
        w.Bytes("sll.unused", "Unused", address.Slice(used));
        if (!v2)
        {
            w.Hex("sll.etype", "Protocol", protocol, 4);
        }
        w.EndLayer();
        next = protocol switch
        {
            EtherTypes.IPv4 => LinkType.Ipv4,
            EtherTypes.IPv6 => LinkType.Ipv6,
            _ => default,
        };
        return next != default;
    }
}
