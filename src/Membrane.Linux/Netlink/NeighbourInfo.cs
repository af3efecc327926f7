using System.Net;
using System.Net.NetworkInformation;

namespace Membrane.Linux.Netlink;

/// <summary>Neighbour (ARP/NDP) entry state (NUD_* in linux/neighbour.h, same values).</summary>
[Flags]
public enum NeighbourState : ushort
{
    /// <summary>No state.</summary>
    None = 0x00,
    /// <summary>Resolution in progress.</summary>
    Incomplete = 0x01,
    /// <summary>Confirmed reachable.</summary>
    Reachable = 0x02,
    /// <summary>Not confirmed recently.</summary>
    Stale = 0x04,
    /// <summary>Waiting before probing.</summary>
    Delay = 0x08,
    /// <summary>Probing.</summary>
    Probe = 0x10,
    /// <summary>Resolution failed.</summary>
    Failed = 0x20,
    /// <summary>No resolution needed (point-to-point, multicast).</summary>
    NoArp = 0x40,
    /// <summary>Static: never expires or is re-resolved.</summary>
    Permanent = 0x80,
}

/// <summary>A neighbour table entry (RTM_NEWNEIGH).</summary>
/// <param name="InterfaceIndex">The interface (in the namespace it was read from).</param>
/// <param name="Address">The neighbour's IP address.</param>
/// <param name="LinkAddress">Its MAC address, when resolved.</param>
/// <param name="State">NUD state.</param>
public sealed record NeighbourInfo(int InterfaceIndex, IPAddress Address, PhysicalAddress? LinkAddress, NeighbourState State);
