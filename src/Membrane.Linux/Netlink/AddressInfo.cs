using System.Net;

namespace Membrane.Linux.Netlink;

/// <summary>Address flags (IFA_F_* in linux/if_addr.h, same values).</summary>
[Flags]
public enum AddressFlags : uint
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary>A secondary address (IPv4: another address in an already covered prefix).</summary>
    Secondary = 0x01,
    /// <summary>IPv6: skip duplicate address detection, usable at once.</summary>
    NoDad = 0x02,
    /// <summary>IPv6 optimistic DAD (RFC 4429).</summary>
    Optimistic = 0x04,
    /// <summary>IPv6 DAD found a duplicate.</summary>
    DadFailed = 0x08,
    /// <summary>Mobile IPv6 home address.</summary>
    HomeAddress = 0x10,
    /// <summary>Preferred lifetime expired.</summary>
    Deprecated = 0x20,
    /// <summary>IPv6 DAD still running: the address cannot be used yet.</summary>
    Tentative = 0x40,
    /// <summary>No lifetime (configured, not autoconfigured).</summary>
    Permanent = 0x80,
    /// <summary>Manage temporary addresses from this prefix (RFC 4941).</summary>
    ManageTempAddress = 0x100,
    /// <summary>Do not add the prefix route for this address.</summary>
    NoPrefixRoute = 0x200,
}

/// <summary>An interface address as rtnetlink reports it (RTM_NEWADDR).</summary>
/// <param name="InterfaceIndex">The interface it is on (in the namespace it was read from).</param>
/// <param name="Address">The local address.</param>
/// <param name="PrefixLength">The prefix length.</param>
/// <param name="Scope">Its scope (host for 127.0.0.1, link for fe80::/10, universe otherwise).</param>
/// <param name="Flags">IFA_F_* flags.</param>
public sealed record AddressInfo(int InterfaceIndex, IPAddress Address, int PrefixLength, RouteScope Scope, AddressFlags Flags)
{
    /// <summary>The prefix the address lives in.</summary>
    public IPNetwork Network => new(Truncate(Address, PrefixLength), PrefixLength);

    private static IPAddress Truncate(IPAddress address, int prefixLength)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var n);
        bytes = bytes.Slice(0, n);
        for (var i = 0; i < n; i++)
        {
            var keep = Math.Clamp(prefixLength - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }
        return new IPAddress(bytes);
    }
}
