using Membrane.Packets;

namespace Membrane.Datapath.Conntrack;

/// <summary>
/// The key of a connection: addresses, ports and protocol in one orientation (conntrack-spec.md "Keys"):
/// TCP, UDP and SCTP use their ports; an ICMP echo request uses (identifier, 0) and an echo reply
/// (0, identifier) so that the reply's reversed tuple equals the request's; other protocols use 0/0.
/// A fixed-size value: hashing and comparing it never allocates.
/// </summary>
/// <param name="Source">Source address (IPv4 or IPv6; both addresses of one tuple have the same family).</param>
/// <param name="Destination">Destination address.</param>
/// <param name="SourcePort">Source port (or the echo identifier of a request).</param>
/// <param name="DestinationPort">Destination port (or the echo identifier of a reply).</param>
/// <param name="Protocol">The IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, …).</param>
public readonly partial record struct CtTuple(IpAddress Source, IpAddress Destination, ushort SourcePort, ushort DestinationPort, byte Protocol)
{
    /// <summary>IPPROTO_TCP.</summary>
    public const byte TcpProtocol = IpProtocols.Tcp;

    /// <summary>The address family, 4 or 6 (0 for the default tuple).</summary>
    public byte Family => Source.Version;

    /// <summary>The same flow seen from the other side: addresses and ports swapped.</summary>
    public CtTuple Reverse() => new(Destination, Source, DestinationPort, SourcePort, Protocol);

    /// <inheritdoc/>
    public override string ToString() => Family == 6
        ? $"[{Source}]:{SourcePort} -> [{Destination}]:{DestinationPort} proto {Protocol}"
        : $"{Source}:{SourcePort} -> {Destination}:{DestinationPort} proto {Protocol}";
}
