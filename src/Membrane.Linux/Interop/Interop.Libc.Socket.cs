using System.Runtime.InteropServices;

namespace Membrane.Linux.Interop;

/// <summary>The BSD socket calls used for AF_NETLINK and AF_PACKET sockets (sys/socket.h).</summary>
internal static unsafe partial class Libc
{
    internal const int AF_NETLINK = 16;
    internal const int AF_PACKET = 17;
    internal const int SOCK_RAW = 3;
    internal const int SOCK_CLOEXEC = 0x80000;

    internal const int SOL_SOCKET = 1;
    internal const int SO_RCVBUF = 8;
    internal const int SO_SNDBUF = 7;
    internal const int SO_RCVTIMEO = 20;

    internal const int MSG_PEEK = 0x02;
    internal const int MSG_TRUNC = 0x20;
    internal const int MSG_DONTWAIT = 0x40;

    /// <summary>SO_TIMESTAMPNS (asm-generic/socket.h, SO_TIMESTAMPNS_OLD): stamp received packets in ns.</summary>
    internal const int SO_TIMESTAMPNS = 35;

    /// <summary>SIOCGSTAMPNS (asm-generic/sockios.h): the timestamp of the last packet received.</summary>
    internal const nuint SIOCGSTAMPNS = 0x8907;

    /// <summary>struct timespec (64-bit).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Timespec
    {
        public long tv_sec;
        public long tv_nsec;
    }

    internal const int AF_INET = 2;
    internal const int SOCK_DGRAM = 2;

    /// <summary>SIOCETHTOOL (linux/sockios.h): the legacy ethtool ioctl.</summary>
    internal const nuint SIOCETHTOOL = 0x8946;

    // linux/ethtool.h commands taking a struct ethtool_value
    internal const uint ETHTOOL_GTXCSUM = 0x16;
    internal const uint ETHTOOL_STXCSUM = 0x17;

    /// <summary>struct ethtool_value (linux/ethtool.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct EthtoolValue
    {
        public uint cmd;
        public uint data;
    }

    /// <summary>struct ifreq (linux/if.h), 40 bytes on 64-bit: a 16-byte name, then a union whose ifr_data is used here.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 40)]
    internal struct IfreqData
    {
        public fixed byte ifr_name[16];
        public void* ifr_data;
    }

    /// <summary>ETH_P_ALL (linux/if_ether.h): every protocol, for AF_PACKET.</summary>
    internal const ushort ETH_P_ALL = 0x0003;

    /// <summary>struct sockaddr_nl (linux/netlink.h): 12 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockaddrNl
    {
        public ushort nl_family;
        public ushort nl_pad;
        public uint nl_pid;
        public uint nl_groups;
    }

    /// <summary>struct sockaddr_ll (linux/if_packet.h): 20 bytes; sll_protocol is big-endian.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SockaddrLl
    {
        public ushort sll_family;
        public ushort sll_protocol;
        public int sll_ifindex;
        public ushort sll_hatype;
        public byte sll_pkttype;
        public byte sll_halen;
        public ulong sll_addr;
    }

    /// <summary>struct timeval (x86_64/arm64 glibc): two 64-bit fields.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct Timeval
    {
        public long tv_sec;
        public long tv_usec;
    }

    [LibraryImport(Libraries.Libc, EntryPoint = "socket", SetLastError = true)]
    internal static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Libraries.Libc, EntryPoint = "bind", SetLastError = true)]
    internal static partial int Bind(SafeFileDescriptor fd, void* addr, int addrlen);

    [LibraryImport(Libraries.Libc, EntryPoint = "getsockname", SetLastError = true)]
    internal static partial int GetSockName(SafeFileDescriptor fd, void* addr, ref int addrlen);

    [LibraryImport(Libraries.Libc, EntryPoint = "setsockopt", SetLastError = true)]
    internal static partial int SetSockOpt(SafeFileDescriptor fd, int level, int optname, void* optval, int optlen);

    [LibraryImport(Libraries.Libc, EntryPoint = "sendto", SetLastError = true)]
    internal static partial nint SendTo(SafeFileDescriptor fd, void* buf, nuint len, int flags, void* addr, int addrlen);

    [LibraryImport(Libraries.Libc, EntryPoint = "recvfrom", SetLastError = true)]
    internal static partial nint RecvFrom(SafeFileDescriptor fd, void* buf, nuint len, int flags, void* addr, int* addrlen);

    /// <summary>struct pollfd (poll.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        public int fd;
        public short events;
        public short revents;
    }

    internal const short POLLIN = 0x001;

    [LibraryImport(Libraries.Libc, EntryPoint = "poll", SetLastError = true)]
    internal static partial int Poll(PollFd* fds, nuint nfds, int timeoutMs);
}
