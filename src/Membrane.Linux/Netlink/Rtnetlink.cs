using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Membrane.Linux.Namespaces;
using static Membrane.Linux.Interop.Netlink;

namespace Membrane.Linux.Netlink;

/// <summary>
/// rtnetlink (NETLINK_ROUTE) for one network namespace: links, addresses, routes and
/// neighbours. The namespace is the one the instance was opened in (<see cref="Open()"/>
/// uses the calling thread's; <see cref="Open(NetNs)"/> opens the socket inside another
/// namespace) and stays fixed whichever thread calls it. Thread-safe: requests are serialised.
/// Interface indexes are per namespace; never use an index read here in another namespace.
/// </summary>
public sealed partial class Rtnetlink : IDisposable
{
    /// <summary>Requests are small: a veth with its peer and a namespace is under 200 bytes.</summary>
    private const int RequestBufferSize = 512;

    private readonly NetlinkSocket _socket;

    private Rtnetlink(NetlinkSocket socket) => _socket = socket;

    /// <summary>Opens rtnetlink in the calling thread's network namespace.</summary>
    public static Rtnetlink Open() => new(NetlinkSocket.Open(NETLINK_ROUTE));

    /// <summary>Opens rtnetlink inside <paramref name="ns"/> (the socket is created on a thread in that namespace).</summary>
    public static Rtnetlink Open(NetNs ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        return ns.Run(Open);
    }

    /// <summary>How many dumps were restarted because the kernel changed the table while dumping it (NLM_F_DUMP_INTR).</summary>
    public int InterruptedDumps => _socket.InterruptedDumps;

    /// <inheritdoc/>
    public void Dispose() => _socket.Dispose();

    internal static byte FamilyOf(AddressFamily family) => family switch
    {
        AddressFamily.InterNetwork => AF_INET,
        AddressFamily.InterNetworkV6 => AF_INET6,
        AddressFamily.Unspecified => AF_UNSPEC,
        _ => throw new ArgumentException($"unsupported address family {family}", nameof(family)),
    };

    internal static AddressFamily FamilyOf(byte family) => family switch
    {
        AF_INET => AddressFamily.InterNetwork,
        AF_INET6 => AddressFamily.InterNetworkV6,
        _ => AddressFamily.Unknown,
    };

    internal static bool TryReadAddress(byte family, ReadOnlySpan<byte> value, out IPAddress address)
    {
        var size = family == AF_INET ? 4 : family == AF_INET6 ? 16 : -1;
        if (size < 0 || value.Length != size)
        {
            address = IPAddress.None;
            return false;
        }
        address = new IPAddress(value);
        return true;
    }

    internal static uint ReadU32(ReadOnlySpan<byte> value) =>
        value.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(value) : 0;

    internal static string ReadString(ReadOnlySpan<byte> value)
    {
        var end = value.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(end >= 0 ? value.Slice(0, end) : value);
    }

    /// <summary>Checks that <paramref name="name"/> is a valid interface name (IFNAMSIZ 16 with the NUL; no '/', ':' or whitespace; net/core/dev.c dev_valid_name).</summary>
    internal static void ValidateInterfaceName(string name, string paramName)
    {
        ArgumentException.ThrowIfNullOrEmpty(name, paramName);
        if (System.Text.Encoding.UTF8.GetByteCount(name) > 15 || name is "." or ".." ||
            name.AsSpan().IndexOfAny("/: \t\n\0") >= 0)
        {
            throw new ArgumentException($"invalid interface name '{name}' (at most 15 bytes, no '/', ':' or whitespace)", paramName);
        }
    }
}
