using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using static Membrane.Linux.Interop.Netlink;

namespace Membrane.Linux.Netlink;

public sealed partial class Rtnetlink
{
    /// <summary>
    /// Adds a permanent neighbour entry (static ARP / NDP): <paramref name="address"/> is at
    /// <paramref name="linkAddress"/> on the interface, never resolved or expired. With
    /// <paramref name="replace"/> an existing entry is overwritten instead of failing with EEXIST.
    /// </summary>
    public void AddNeighbour(int interfaceIndex, IPAddress address, PhysicalAddress linkAddress, bool replace = false)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(linkAddress);
        var operation = $"add neighbour {address} lladdr {linkAddress} on link {interfaceIndex}";
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_NEWNEIGH, (ushort)(NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL)));
        WriteNeighbourHeader(ref msg, interfaceIndex, address, NUD_PERMANENT);
        msg.AddAddress(NDA_DST, address);
        msg.Add(NDA_LLADDR, linkAddress.GetAddressBytes());
        _socket.Execute(operation, buffer.Slice(0, msg.Written.Length));
    }

    /// <summary>Deletes a neighbour entry.</summary>
    public void DeleteNeighbour(int interfaceIndex, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_DELNEIGH, 0);
        WriteNeighbourHeader(ref msg, interfaceIndex, address, 0);
        msg.AddAddress(NDA_DST, address);
        _socket.Execute($"delete neighbour {address} on link {interfaceIndex}", buffer.Slice(0, msg.Written.Length));
    }

    /// <summary>Lists neighbour entries, optionally of one family and/or one interface.</summary>
    public IReadOnlyList<NeighbourInfo> GetNeighbours(AddressFamily family = AddressFamily.Unspecified, int? interfaceIndex = null)
    {
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_GETNEIGH, 0);
        msg.AppendHeader(NDMSG_SIZE)[0] = FamilyOf(family);
        var all = _socket.Dump<NeighbourInfo>("list neighbours", buffer.Slice(0, msg.Written.Length), TryParseNeighbour);
        return interfaceIndex is { } index ? all.FindAll(n => n.InterfaceIndex == index) : all;
    }

    private static void WriteNeighbourHeader(ref NetlinkMessageBuilder msg, int interfaceIndex, IPAddress address, ushort state)
    {
        var header = msg.AppendHeader(NDMSG_SIZE);
        header[0] = FamilyOf(address.AddressFamily);
        BinaryPrimitives.WriteInt32LittleEndian(header.Slice(4), interfaceIndex);
        BinaryPrimitives.WriteUInt16LittleEndian(header.Slice(8), state);
    }

    /// <summary>Parses RTM_NEWNEIGH: struct ndmsg then NDA_* attributes.</summary>
    internal static bool TryParseNeighbour(NetlinkMessage message, out NeighbourInfo neighbour)
    {
        neighbour = null!;
        var payload = message.Payload;
        if (message.Type != RTM_NEWNEIGH || payload.Length < NDMSG_SIZE)
        {
            return false;
        }
        var family = payload[0];
        var index = BinaryPrimitives.ReadInt32LittleEndian(payload.Slice(4));
        var state = (NeighbourState)BinaryPrimitives.ReadUInt16LittleEndian(payload.Slice(8));
        IPAddress? address = null;
        PhysicalAddress? mac = null;
        var attrs = new NetlinkAttributeReader(payload.Slice(NDMSG_SIZE));
        while (attrs.TryRead(out var type, out var value))
        {
            switch (type)
            {
                case NDA_DST when TryReadAddress(family, value, out var a):
                    address = a;
                    break;
                case NDA_LLADDR:
                    mac = new PhysicalAddress(value.ToArray());
                    break;
            }
        }
        if (address is null)
        {
            return false;
        }
        neighbour = new NeighbourInfo(index, address, mac, state);
        return true;
    }
}
