using Membrane.Packets;

namespace Membrane.Datapath.Conntrack;

/// <summary>
/// What conntrack needs to know about one packet, independent of its bytes: the tuple in packet orientation,
/// TCP flags, length, ICMP type/code/identifier, whether it is a later fragment, and for an ICMP error the
/// tuple of the packet it quotes. Build one with the factories (which keep the fields consistent, e.g. the
/// ICMP echo ports of conntrack-spec.md "Keys") or from an Ethernet frame with <see cref="TryFromFrame"/>.
/// </summary>
public readonly partial struct CtPacket
{
    private CtPacket(CtTuple tuple, byte tcpFlags, uint length, byte icmpType, byte icmpCode, ushort icmpIdentifier,
        bool isLaterFragment, CtTuple? quotedTuple)
    {
        if (tuple.Source.Version is not (4 or 6) || tuple.Source.Version != tuple.Destination.Version)
        {
            throw new ArgumentException($"failed to describe a packet: {tuple} mixes or lacks address families", nameof(tuple));
        }
        if (quotedTuple is { } q && q.Family != tuple.Family)
        {
            throw new ArgumentException($"failed to describe a packet: an IPv{tuple.Family} ICMP error cannot quote {q}", nameof(quotedTuple));
        }
        Tuple = tuple;
        TcpFlags = tcpFlags;
        Length = length;
        IcmpType = icmpType;
        IcmpCode = icmpCode;
        IcmpIdentifier = icmpIdentifier;
        IsLaterFragment = isLaterFragment;
        QuotedTuple = quotedTuple;
    }

    /// <summary>The lookup tuple in packet orientation (ICMP echo ports as in conntrack-spec.md "Keys").</summary>
    public CtTuple Tuple { get; }

    /// <summary>4 or 6.</summary>
    public byte Family => Tuple.Family;

    /// <summary>The IP protocol.</summary>
    public byte Protocol => Tuple.Protocol;

    /// <summary>The TCP flags byte (CWR ECE URG ACK PSH RST SYN FIN); 0 for other protocols.</summary>
    public byte TcpFlags { get; }

    /// <summary>The bytes the counters add for this packet (for a frame: the whole frame, as skb->len at tc).</summary>
    public uint Length { get; }

    /// <summary>The ICMP or ICMPv6 type (meaningful when <see cref="IsIcmp"/>).</summary>
    public byte IcmpType { get; }

    /// <summary>The ICMP or ICMPv6 code.</summary>
    public byte IcmpCode { get; }

    /// <summary>The echo identifier (0 for other ICMP types).</summary>
    public ushort IcmpIdentifier { get; }

    /// <summary>True for an IPv4/IPv6 fragment other than the first: it carries no L4 header (RFC 791, RFC 8200 §4.5).</summary>
    public bool IsLaterFragment { get; }

    /// <summary>
    /// For an ICMP error, the tuple of the packet it quotes, in that packet's orientation; null when the quote
    /// is missing or unusable (cut before the ports, a later fragment, an ICMP type that has no tuple).
    /// </summary>
    public CtTuple? QuotedTuple { get; }

    /// <summary>True for ICMP over IPv4 and ICMPv6 over IPv6.</summary>
    public bool IsIcmp => Family == 4 ? Protocol == IpProtocols.Icmp : Protocol == IpProtocols.Icmpv6;

    /// <summary>
    /// True for an IPv6 packet from a link-local (fe80::/10, RFC 4291 §2.5.6) or the unspecified (::) source,
    /// which conntrack leaves untracked (conntrack-spec.md step 6).
    /// </summary>
    public bool HasLinkLocalSource => Family == 6
        && ((Tuple.Source.Bits.High >> 54) == (0xFE80UL >> 6) || (Tuple.Source.Bits.High == 0 && Tuple.Source.Bits.Low == 0));

    /// <summary>A TCP segment.</summary>
    public static CtPacket Tcp(IpAddress source, IpAddress destination, ushort sourcePort, ushort destinationPort, byte tcpFlags, uint length) =>
        new(new CtTuple(source, destination, sourcePort, destinationPort, IpProtocols.Tcp), tcpFlags, length, 0, 0, 0, false, null);

    /// <summary>A UDP datagram.</summary>
    public static CtPacket Udp(IpAddress source, IpAddress destination, ushort sourcePort, ushort destinationPort, uint length) =>
        Ports(IpProtocols.Udp, source, destination, sourcePort, destinationPort, length);

    /// <summary>A packet of a protocol keyed by ports other than TCP: UDP or SCTP (132) per conntrack-spec.md "Keys" (UDP-Lite is keyed 0/0 there: use <see cref="Other"/>).</summary>
    public static CtPacket Ports(byte protocol, IpAddress source, IpAddress destination, ushort sourcePort, ushort destinationPort, uint length)
    {
        // ICMP of the other family (ICMPv6 in IPv4, ICMP in IPv6) is just another protocol here.
        if (protocol == IpProtocols.Tcp || protocol == (source.Version == 6 ? IpProtocols.Icmpv6 : IpProtocols.Icmp))
        {
            throw new ArgumentException($"failed to describe a packet: use the TCP or ICMP factory for protocol {protocol}", nameof(protocol));
        }
        return new(new CtTuple(source, destination, sourcePort, destinationPort, protocol), 0, length, 0, 0, 0, false, null);
    }

    /// <summary>A packet of a protocol without ports (GRE, ESP, …): tuple ports 0/0.</summary>
    public static CtPacket Other(byte protocol, IpAddress source, IpAddress destination, uint length) =>
        Ports(protocol, source, destination, 0, 0, length);

    /// <summary>
    /// An ICMP (over IPv4) or ICMPv6 (over IPv6) message that is not an error: echo request/reply (keyed by
    /// identifier) or any other type (keyed 0/0; the model finds it INVALID or UNTRACKED by its type).
    /// </summary>
    public static CtPacket Icmp(IpAddress source, IpAddress destination, byte type, byte code, ushort identifier, uint length) =>
        IcmpMessage(source, destination, type, code, identifier, null, length);

    /// <summary>An ICMP or ICMPv6 error quoting a packet with <paramref name="quotedTuple"/> (null: quote unusable).</summary>
    public static CtPacket IcmpError(IpAddress source, IpAddress destination, byte type, byte code, CtTuple? quotedTuple, uint length) =>
        IcmpMessage(source, destination, type, code, 0, quotedTuple, length);

    /// <summary>A later fragment: no L4 header, so no ports and no flags.</summary>
    public static CtPacket LaterFragment(byte protocol, IpAddress source, IpAddress destination, uint length) =>
        new(new CtTuple(source, destination, 0, 0, protocol), 0, length, 0, 0, 0, true, null);

    private static CtPacket IcmpMessage(IpAddress source, IpAddress destination, byte type, byte code, ushort identifier, CtTuple? quoted, uint length)
    {
        byte family = source.Version;
        byte protocol = family == 6 ? IpProtocols.Icmpv6 : IpProtocols.Icmp;
        (ushort sport, ushort dport) = EchoPorts(family, type, identifier);
        bool echo = IsEchoRequest(family, type) || IsEchoReply(family, type);
        return new(new CtTuple(source, destination, sport, dport, protocol), 0, length, type, code, echo ? identifier : (ushort)0, false, quoted);
    }

    /// <summary>ICMP echo request: type 8 (RFC 792) or 128 (RFC 4443 §4.1).</summary>
    public static bool IsEchoRequest(byte family, byte type) => type == (family == 6 ? Icmpv6Types.EchoRequest : Icmpv4Types.EchoRequest);

    /// <summary>ICMP echo reply: type 0 (RFC 792) or 129 (RFC 4443 §4.2).</summary>
    public static bool IsEchoReply(byte family, byte type) => type == (family == 6 ? Icmpv6Types.EchoReply : Icmpv4Types.EchoReply);

    /// <summary>
    /// The ICMP error types conntrack relates to a tracked flow (conntrack-spec.md step 5): IPv4 3, 4, 5, 11, 12
    /// (RFC 792); IPv6 1, 2, 3, 4 (RFC 4443 §3).
    /// </summary>
    public static bool IsErrorType(byte family, byte type) => family == 6
        ? type is Icmpv6Types.DestinationUnreachable or Icmpv6Types.PacketTooBig or Icmpv6Types.TimeExceeded or Icmpv6Types.ParameterProblem
        : Icmpv4Header.IsErrorType(type);

    /// <summary>
    /// ICMPv6 types Linux leaves untracked (nf_conntrack_proto_icmpv6.c, <c>noct_valid_new</c>): MLD 130–132 and
    /// 143 (RFC 2710, RFC 3810), router/neighbour discovery and redirect 133–137 (RFC 4861).
    /// </summary>
    public static bool IsUntrackedIcmpv6Type(byte type) => type is >= 130 and <= 137 or 143;

    // conntrack-spec.md "Keys": request (identifier, 0), reply (0, identifier), every other type 0/0.
    internal static (ushort SourcePort, ushort DestinationPort) EchoPorts(byte family, byte type, ushort identifier) =>
        IsEchoRequest(family, type) ? (identifier, (ushort)0)
        : IsEchoReply(family, type) ? ((ushort)0, identifier)
        : ((ushort)0, (ushort)0);

    /// <inheritdoc/>
    public override string ToString()
    {
        if (IsLaterFragment)
        {
            return $"{Tuple} later fragment, {Length} bytes";
        }
        if (Protocol == IpProtocols.Tcp)
        {
            return $"{Tuple} flags {TcpFlagNames(TcpFlags)}, {Length} bytes";
        }
        if (IsIcmp)
        {
            return QuotedTuple is { } q || IsErrorType(Family, IcmpType)
                ? $"{Tuple} icmp type {IcmpType} code {IcmpCode} quoting {(QuotedTuple?.ToString() ?? "nothing usable")}, {Length} bytes"
                : $"{Tuple} icmp type {IcmpType} code {IcmpCode} id {IcmpIdentifier}, {Length} bytes";
        }
        return $"{Tuple}, {Length} bytes";
    }

    /// <summary>"SYN|ACK"-style text for a flags byte ("none" when 0).</summary>
    public static string TcpFlagNames(byte flags)
    {
        if (flags == 0)
        {
            return "none";
        }
        ReadOnlySpan<string> names = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        var parts = new List<string>(8);
        for (int bit = 0; bit < 8; bit++)
        {
            if ((flags & (1 << bit)) != 0)
            {
                parts.Add(names[bit]);
            }
        }
        return string.Join('|', parts);
    }
}
