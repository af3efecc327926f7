using System.Text;
using Membrane.Linux.Interop;

namespace Membrane.Linux.Sockets;

/// <summary>
/// The few ethtool settings Membrane needs, through the SIOCETHTOOL ioctl on a socket of the
/// calling thread's network namespace (run it through NetNs.Run for another namespace).
/// </summary>
public static unsafe class Ethtool
{
    /// <summary>
    /// Turns transmit checksum offload on or off (what <c>ethtool -K IF tx on|off</c> does).
    /// With it on (the veth default) locally sent TCP/UDP frames carry only a partial
    /// checksum (CHECKSUM_PARTIAL) that the hardware, or nobody, completes later; a capture
    /// of them shows "bad" checksums. Turning it off also turns off TSO, which depends on it.
    /// </summary>
    public static void SetTransmitChecksumOffload(string interfaceName, bool enabled)
    {
        var value = new Libc.EthtoolValue { cmd = Libc.ETHTOOL_STXCSUM, data = enabled ? 1u : 0u };
        Call(interfaceName, ref value, $"set transmit checksum offload {(enabled ? "on" : "off")} on {interfaceName}");
    }

    /// <summary>True when transmit checksum offload is on.</summary>
    public static bool GetTransmitChecksumOffload(string interfaceName)
    {
        var value = new Libc.EthtoolValue { cmd = Libc.ETHTOOL_GTXCSUM };
        Call(interfaceName, ref value, $"read transmit checksum offload of {interfaceName}");
        return value.data != 0;
    }

    private static void Call(string interfaceName, ref Libc.EthtoolValue value, string operation)
    {
        ArgumentException.ThrowIfNullOrEmpty(interfaceName);
        var request = default(Libc.IfreqData);
        var name = new Span<byte>(request.ifr_name, 16);
        if (Encoding.UTF8.GetByteCount(interfaceName) > 15)
        {
            throw new ArgumentException($"invalid interface name '{interfaceName}' (at most 15 bytes)", nameof(interfaceName));
        }
        Encoding.UTF8.GetBytes(interfaceName, name);
        var raw = Libc.Socket(Libc.AF_INET, Libc.SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0);
        if (raw < 0)
        {
            throw new IOException($"failed to {operation}: {Libc.LastErrno.Describe()}");
        }
        using var fd = new SafeFileDescriptor(raw);
        fixed (Libc.EthtoolValue* v = &value)
        {
            request.ifr_data = v;
            if (Libc.Ioctl(fd, Libc.SIOCETHTOOL, (nint)(&request)) != 0)
            {
                throw new IOException($"failed to {operation}: {Libc.LastErrno.Describe()}");
            }
        }
    }
}
