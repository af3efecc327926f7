using System.Buffers.Binary;
using Membrane.Linux.Interop;
using Membrane.Linux.Namespaces;
using Membrane.Linux.Netlink;

namespace Membrane.Linux.Sockets;

/// <summary>Which way a captured packet went (sll_pkttype, PACKET_* in linux/if_packet.h, same values).</summary>
public enum PacketType : byte
{
    /// <summary>Addressed to this host.</summary>
    Host = 0,
    /// <summary>Link-layer broadcast.</summary>
    Broadcast = 1,
    /// <summary>Link-layer multicast.</summary>
    Multicast = 2,
    /// <summary>Addressed to another host (seen in promiscuous mode).</summary>
    OtherHost = 3,
    /// <summary>Sent by this host.</summary>
    Outgoing = 4,
}

/// <summary>What <see cref="PacketSocket.TryReceive"/> got.</summary>
/// <param name="Length">Bytes copied into the buffer.</param>
/// <param name="OriginalLength">The packet's full length (larger than <paramref name="Length"/> when the buffer was too small).</param>
/// <param name="TimestampNanoseconds">The kernel's receive timestamp, nanoseconds since the Unix epoch.</param>
/// <param name="Type">Which way it went: to this host, broadcast, multicast, to another host, or sent by this host.</param>
public readonly record struct ReceivedPacket(int Length, int OriginalLength, long TimestampNanoseconds, PacketType Type);

/// <summary>
/// A live capture socket (AF_PACKET, SOCK_RAW, ETH_P_ALL) bound to one interface: every
/// frame the interface sends or receives, link-layer header included, as tcpdump sees it.
/// The socket and the interface index belong to the namespace of the thread that opened it
/// (<see cref="Open(NetNs, string)"/> resolves the name and binds on one thread inside the
/// namespace, so the index can never name a device of another namespace).
/// </summary>
public sealed unsafe class PacketSocket : IDisposable
{
    private readonly SafeFileDescriptor _fd;

    private PacketSocket(SafeFileDescriptor fd, LinkInfo link)
    {
        _fd = fd;
        Interface = link;
    }

    /// <summary>The interface, as read in the socket's namespace when it was opened.</summary>
    public LinkInfo Interface { get; }

    /// <summary>
    /// How many times the kernel reported the interface down (ENETDOWN): at bind time when it
    /// was not up yet, or later when it went down. The socket stays bound and frames flow
    /// again once the interface is up.
    /// </summary>
    public int DownCount { get; private set; }

    /// <summary>Opens a capture on <paramref name="interfaceName"/> inside <paramref name="ns"/>.</summary>
    public static PacketSocket Open(NetNs ns, string interfaceName)
    {
        ArgumentNullException.ThrowIfNull(ns);
        return ns.Run(() => Open(interfaceName));
    }

    /// <summary>Opens a capture on <paramref name="interfaceName"/> in the calling thread's namespace.</summary>
    public static PacketSocket Open(string interfaceName)
    {
        LinkInfo link;
        using (var rtnl = Rtnetlink.Open())
        {
            link = rtnl.GetLink(interfaceName);
        }
        var operation = $"open packet capture on {interfaceName}";
        // Protocol 0 at creation: the socket receives nothing until bind() names both the
        // protocol and the interface, so no frame of another interface slips in between
        // (what libpcap does).
        var raw = Libc.Socket(Libc.AF_PACKET, Libc.SOCK_RAW | Libc.SOCK_CLOEXEC, 0);
        if (raw < 0)
        {
            throw new IOException($"failed to {operation}: {Libc.LastErrno.Describe()}");
        }
        var fd = new SafeFileDescriptor(raw);
        try
        {
            var on = 1;
            // Kernel receive timestamps (read back per packet with SIOCGSTAMPNS).
            Libc.SetSockOpt(fd, Libc.SOL_SOCKET, Libc.SO_TIMESTAMPNS, &on, sizeof(int));
            var bufferSize = 4 << 20;
            Libc.SetSockOpt(fd, Libc.SOL_SOCKET, Libc.SO_RCVBUF, &bufferSize, sizeof(int));
            var addr = new Libc.SockaddrLl
            {
                sll_family = Libc.AF_PACKET,
                sll_protocol = BinaryPrimitives.ReverseEndianness(Libc.ETH_P_ALL), // network order
                sll_ifindex = link.Index,
            };
            if (Libc.Bind(fd, &addr, sizeof(Libc.SockaddrLl)) != 0)
            {
                throw new IOException($"failed to {operation} (ifindex {link.Index}): {Libc.LastErrno.Describe()}");
            }
            return new PacketSocket(fd, link);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for a frame and copies it into
    /// <paramref name="buffer"/> (cut to its size; <see cref="ReceivedPacket.OriginalLength"/>
    /// keeps the real length). False when nothing arrived in time.
    /// </summary>
    public bool TryReceive(Span<byte> buffer, TimeSpan timeout, out ReceivedPacket packet)
    {
        packet = default;
        var pfd = new Libc.PollFd { fd = _fd.Fd, events = Libc.POLLIN };
        var ready = Libc.Poll(&pfd, 1, (int)Math.Clamp(timeout.TotalMilliseconds, 0, int.MaxValue));
        if (ready == 0)
        {
            return false;
        }
        if (ready < 0)
        {
            var errno = Libc.LastErrno;
            if (errno == Errno.EINTR)
            {
                return false;
            }
            throw new IOException($"failed to wait for packets on {Interface.Name}: {errno.Describe()}");
        }
        var from = default(Libc.SockaddrLl);
        var fromLength = sizeof(Libc.SockaddrLl);
        nint n;
        fixed (byte* p = buffer)
        {
            // MSG_TRUNC: return the frame's real length even when the buffer is shorter.
            n = Libc.RecvFrom(_fd, p, (nuint)buffer.Length, Libc.MSG_TRUNC | Libc.MSG_DONTWAIT, &from, &fromLength);
        }
        if (n < 0)
        {
            var errno = Libc.LastErrno;
            if (errno is Errno.EAGAIN or Errno.EINTR)
            {
                return false;
            }
            if (errno == Errno.ENETDOWN)
            {
                // A pending sk_err (net/packet/af_packet.c packet_do_bind / packet_notifier), reported once.
                DownCount++;
                return false;
            }
            throw new IOException($"failed to receive a packet on {Interface.Name}: {errno.Describe()}");
        }
        Libc.Timespec ts;
        long stamp;
        if (Libc.Ioctl(_fd, Libc.SIOCGSTAMPNS, (nint)(&ts)) == 0)
        {
            stamp = (ts.tv_sec * 1_000_000_000) + ts.tv_nsec;
        }
        else
        {
            stamp = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks * 100;
        }
        packet = new ReceivedPacket((int)Math.Min(n, buffer.Length), (int)n, stamp, (PacketType)from.sll_pkttype);
        return true;
    }

    /// <inheritdoc/>
    public void Dispose() => _fd.Dispose();
}
