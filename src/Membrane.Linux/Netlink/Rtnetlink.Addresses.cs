using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using static Membrane.Linux.Interop.Netlink;

namespace Membrane.Linux.Netlink;

public sealed partial class Rtnetlink
{
    /// <summary>
    /// Adds <paramref name="address"/>/<paramref name="prefixLength"/> to an interface, as
    /// <c>ip addr add</c> does (the kernel also adds the prefix route unless
    /// <see cref="AddressFlags.NoPrefixRoute"/>). Pass <see cref="AddressFlags.NoDad"/> for
    /// an IPv6 address that must be usable at once instead of tentative for about a second.
    /// </summary>
    public void AddAddress(int interfaceIndex, IPAddress address, int prefixLength, AddressFlags flags = AddressFlags.None)
    {
        var operation = $"add address {address}/{prefixLength} to link {interfaceIndex}";
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        WriteAddressRequest(ref msg, interfaceIndex, address, prefixLength, flags);
        _socket.Execute(operation, buffer.Slice(0, msg.Written.Length));
    }

    /// <summary>Removes an address from an interface.</summary>
    public void DeleteAddress(int interfaceIndex, IPAddress address, int prefixLength)
    {
        var operation = $"delete address {address}/{prefixLength} from link {interfaceIndex}";
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_DELADDR, 0);
        WriteAddressRequest(ref msg, interfaceIndex, address, prefixLength, AddressFlags.None);
        _socket.Execute(operation, buffer.Slice(0, msg.Written.Length));
    }

    /// <summary>Lists addresses, optionally of one family and/or one interface.</summary>
    public IReadOnlyList<AddressInfo> GetAddresses(AddressFamily family = AddressFamily.Unspecified, int? interfaceIndex = null)
    {
        Span<byte> buffer = stackalloc byte[RequestBufferSize];
        var msg = new NetlinkMessageBuilder(buffer, RTM_GETADDR, 0);
        var header = msg.AppendHeader(IFADDRMSG_SIZE);
        header[0] = FamilyOf(family);
        // With strict checking ifa_index filters in the kernel (inet_valid_dump_ifaddr_req); filter here too for older kernels.
        BinaryPrimitives.WriteInt32LittleEndian(header.Slice(4), interfaceIndex ?? 0);
        var all = _socket.Dump<AddressInfo>("list addresses", buffer.Slice(0, msg.Written.Length), TryParseAddress);
        return interfaceIndex is { } index ? all.FindAll(a => a.InterfaceIndex == index) : all;
    }

    private static void WriteAddressRequest(ref NetlinkMessageBuilder msg, int interfaceIndex, IPAddress address, int prefixLength, AddressFlags flags)
    {
        ArgumentNullException.ThrowIfNull(address);
        var family = FamilyOf(address.AddressFamily);
        var maxPrefix = family == AF_INET ? 32 : 128;
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, maxPrefix);
        ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
        var header = msg.AppendHeader(IFADDRMSG_SIZE);
        header[0] = family;
        header[1] = (byte)prefixLength;
        header[2] = (byte)flags; // the low 8 flag bits; IFA_FLAGS below carries all 32
        BinaryPrimitives.WriteInt32LittleEndian(header.Slice(4), interfaceIndex);
        // Like iproute2 without a peer: IFA_LOCAL and IFA_ADDRESS both hold the address.
        msg.AddAddress(IFA_LOCAL, address);
        msg.AddAddress(IFA_ADDRESS, address);
        if (flags != AddressFlags.None)
        {
            msg.AddU32(IFA_FLAGS, (uint)flags);
        }
    }

    /// <summary>Parses RTM_NEWADDR: struct ifaddrmsg then IFA_* attributes.</summary>
    internal static bool TryParseAddress(NetlinkMessage message, out AddressInfo info)
    {
        info = null!;
        var payload = message.Payload;
        if (message.Type != RTM_NEWADDR || payload.Length < IFADDRMSG_SIZE)
        {
            return false;
        }
        var family = payload[0];
        var prefixLength = payload[1];
        var flags = (AddressFlags)payload[2];
        var scope = (RouteScope)payload[3];
        var index = BinaryPrimitives.ReadInt32LittleEndian(payload.Slice(4));
        IPAddress? local = null, address = null;
        var attrs = new NetlinkAttributeReader(payload.Slice(IFADDRMSG_SIZE));
        while (attrs.TryRead(out var type, out var value))
        {
            switch (type)
            {
                case IFA_LOCAL when TryReadAddress(family, value, out var a):
                    local = a;
                    break;
                case IFA_ADDRESS when TryReadAddress(family, value, out var a):
                    address = a;
                    break;
                case IFA_FLAGS when value.Length >= 4:
                    flags = (AddressFlags)BinaryPrimitives.ReadUInt32LittleEndian(value);
                    break;
            }
        }
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on point-to-point
        // links and the only one IPv6 sends (include/uapi/linux/if_addr.h).
        var own = local ?? address;
        if (own is null)
        {
            return false;
        }
        info = new AddressInfo(index, own, prefixLength, scope, flags);
        return true;
    }
}
