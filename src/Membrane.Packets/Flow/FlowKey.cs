namespace Membrane.Packets;

/// <summary>
/// A 5-tuple: addresses, protocol, ports, and the datagram's fragment state. Ports are 0 when the protocol has
/// none (ICMP) or the datagram is a non-first fragment. A fixed-size value; never allocates.
/// </summary>
public struct FiveTuple : IEquatable<FiveTuple>
{
    /// <summary>Source address (4 or 6 in <see cref="IpAddress.Version"/>; 0 when no IP header was read).</summary>
    public IpAddress Source;

    /// <summary>Destination address.</summary>
    public IpAddress Destination;

    /// <summary>The upper-layer protocol (after IPv6 extension headers; 50/51 when the chain stops at ESP/AH).</summary>
    public byte Protocol;

    /// <summary>Source port (TCP, UDP, SCTP, UDP-Lite).</summary>
    public ushort SourcePort;

    /// <summary>Destination port.</summary>
    public ushort DestinationPort;

    /// <summary>Whether the datagram is a fragment.</summary>
    public FragmentState Fragment;

    /// <summary>4, 6, or 0 when empty.</summary>
    public readonly byte IpVersion => Source.Version;

    /// <summary>True when an IP header was read.</summary>
    public readonly bool IsValid => Source.Version != 0;

    /// <inheritdoc/>
    public override readonly string ToString() =>
        IpVersion == 6 ? $"[{Source}]:{SourcePort} -> [{Destination}]:{DestinationPort} proto {Protocol}{FragText}"
        : $"{Source}:{SourcePort} -> {Destination}:{DestinationPort} proto {Protocol}{FragText}";

    private readonly string FragText => Fragment == FragmentState.None ? "" : $" frag {Fragment}";

    public readonly bool Equals(FiveTuple other) => Source == other.Source && Destination == other.Destination
        && Protocol == other.Protocol && SourcePort == other.SourcePort && DestinationPort == other.DestinationPort
        && Fragment == other.Fragment;
    public override readonly bool Equals(object? obj) => obj is FiveTuple t && Equals(t);
    public override readonly int GetHashCode() => HashCode.Combine(Source, Destination, Protocol, SourcePort, DestinationPort, Fragment);
    public static bool operator ==(FiveTuple a, FiveTuple b) => a.Equals(b);
    public static bool operator !=(FiveTuple a, FiveTuple b) => !a.Equals(b);
}

/// <summary>Which tunnel carried the inner packet of a <see cref="FlowKey"/>.</summary>
public enum TunnelKind : byte
{
    None = 0,
    Vxlan,
    Geneve,
    /// <summary>IPv4/IPv6 in IPv4/IPv6 (RFC 2003, RFC 2473).</summary>
    IpInIp,
}

/// <summary>
/// What <see cref="FlowKeyExtractor"/> finds: the outer 5-tuple, the inner one behind a tunnel, VLAN ids, VNI.
/// A plain mutable value with fields, so that the extractor writes it in place.
/// </summary>
public struct FlowKey
{
    /// <summary>The outermost IP 5-tuple.</summary>
    public FiveTuple Outer;

    /// <summary>The 5-tuple of the packet inside the first tunnel (valid when <see cref="Tunnel"/> is not None and the inner IP header was read).</summary>
    public FiveTuple Inner;

    /// <summary>The tunnel, if any.</summary>
    public TunnelKind Tunnel;

    /// <summary>The VXLAN or Geneve VNI (24 bits).</summary>
    public uint Vni;

    /// <summary>The outermost 802.1Q/802.1ad VLAN id (valid when <see cref="HasVlan"/>).</summary>
    public ushort VlanId;

    /// <summary>The second VLAN id of a QinQ stack (0 when there is none).</summary>
    public ushort InnerVlanId;

    /// <summary>True when the outer frame carried at least one VLAN tag.</summary>
    public bool HasVlan;

    /// <summary>True when an inner 5-tuple was read.</summary>
    public readonly bool HasInner => Inner.IsValid;

    /// <inheritdoc/>
    public override readonly string ToString() =>
        $"{Outer}{(HasVlan ? $" vlan {VlanId}" : "")}{(Tunnel != TunnelKind.None ? $" {Tunnel} vni {Vni} inner {Inner}" : "")}";
}
