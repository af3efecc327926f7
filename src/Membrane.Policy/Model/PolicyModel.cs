using System.Net;
using Membrane.Policy.Identities;
using Membrane.Policy.Labels;
using Membrane.Policy.Selectors;

namespace Membrane.Policy.Model;

/// <summary>The two resource kinds Membrane imports.</summary>
public enum PolicyKind
{
    /// <summary><c>cilium.io/v2</c> CiliumNetworkPolicy.</summary>
    CiliumNetworkPolicy,
    /// <summary><c>networking.k8s.io/v1</c> NetworkPolicy.</summary>
    NetworkPolicy,
}

/// <summary>Which way traffic flows relative to the selected endpoint.</summary>
public enum TrafficDirection : byte
{
    /// <summary>Traffic to the endpoint.</summary>
    Ingress = 0,
    /// <summary>Traffic from the endpoint.</summary>
    Egress = 1,
}

/// <summary>What a matching rule does.</summary>
public enum RuleAction : byte
{
    /// <summary>Allow (Cilium <c>ingress</c>/<c>egress</c>, every NetworkPolicy rule).</summary>
    Allow = 0,
    /// <summary>Deny; beats every allow (Cilium <c>ingressDeny</c>/<c>egressDeny</c>).</summary>
    Deny = 1,
}

/// <summary>IP protocol numbers policy distinguishes (IANA "Assigned Internet Protocol Numbers").</summary>
public static class IpProtocol
{
    /// <summary>Any protocol (a wildcard in map entries).</summary>
    public const byte Any = 0;
    /// <summary>ICMP (RFC 792).</summary>
    public const byte Icmp = 1;
    /// <summary>TCP (RFC 9293).</summary>
    public const byte Tcp = 6;
    /// <summary>UDP (RFC 768).</summary>
    public const byte Udp = 17;
    /// <summary>ICMPv6 (RFC 4443).</summary>
    public const byte IcmpV6 = 58;

    /// <summary>The protocols that carry a port or an ICMP type policy can match on.</summary>
    public static IReadOnlyList<byte> WithPorts { get; } = [Tcp, Udp, Icmp, IcmpV6];

    /// <summary>
    /// Parses a protocol as <c>membrane policy trace --dport 80/TCP</c> takes it: TCP, UDP,
    /// ICMP, ICMPv6 or ANY (any case), or a number 0–255.
    /// </summary>
    public static bool TryParse(string text, out byte protocol)
    {
        switch (text.ToUpperInvariant())
        {
            case "ANY": protocol = Any; return true;
            case "TCP": protocol = Tcp; return true;
            case "UDP": protocol = Udp; return true;
            case "ICMP": protocol = Icmp; return true;
            case "ICMPV6": protocol = IcmpV6; return true;
            default:
                return byte.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out protocol);
        }
    }

    /// <summary>The name (<c>TCP</c>), or the number for others.</summary>
    public static string Name(byte protocol) => protocol switch
    {
        Any => "ANY",
        Icmp => "ICMP",
        Tcp => "TCP",
        Udp => "UDP",
        IcmpV6 => "ICMPv6",
        _ => protocol.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>
/// An inclusive range of destination ports, or of ICMP types for ICMP/ICMPv6 (Cilium carries
/// the ICMP type in the port field: <c>ICMPField.PortProtocol</c>). The whole range
/// 0–65535 is the wildcard.
/// </summary>
public readonly record struct PortRange(ushort First, ushort Last)
{
    /// <summary>Every port.</summary>
    public static PortRange All { get; } = new(0, ushort.MaxValue);

    /// <summary>One port.</summary>
    public static PortRange Single(ushort port) => new(port, port);

    /// <summary>Whether this is the wildcard.</summary>
    public bool IsAll => First == 0 && Last == ushort.MaxValue;

    /// <summary>Whether <paramref name="port"/> is in the range.</summary>
    public bool Contains(int port) => port >= First && port <= Last;

    /// <summary>Whether <paramref name="other"/> lies within this range.</summary>
    public bool Covers(PortRange other) => other.First >= First && other.Last <= Last;

    /// <summary>
    /// The range as port/prefix-length pairs (aligned power-of-two blocks, most significant
    /// bits first), the form an LPM-keyed policy map needs; Cilium's
    /// <c>PortRangeToMaskedPorts</c> does the same split. The wildcard is one pair (0, 0).
    /// </summary>
    public IReadOnlyList<(ushort Port, int PrefixLength)> ToMaskedPorts()
    {
        var result = new List<(ushort, int)>();
        var lo = (int)First;
        var hi = (int)Last;
        while (lo <= hi)
        {
            // The largest aligned block that starts at lo and stays within hi.
            var size = lo == 0 ? 1 << 16 : lo & -lo;
            while (lo + size - 1 > hi)
            {
                size >>= 1;
            }
            result.Add(((ushort)lo, 16 - System.Numerics.BitOperations.Log2((uint)size)));
            lo += size;
        }
        return result;
    }

    /// <summary><c>*</c>, <c>80</c> or <c>8000-8080</c>.</summary>
    public override string ToString() => IsAll ? "*" : First == Last ? $"{First}" : $"{First}-{Last}";
}

/// <summary>One L4 match: a concrete protocol (never <see cref="IpProtocol.Any"/>) and a port range.</summary>
/// <param name="Protocol">TCP, UDP, ICMP or ICMPv6.</param>
/// <param name="Ports">Ports (TCP/UDP) or ICMP types.</param>
public sealed record L4Match(byte Protocol, PortRange Ports)
{
    /// <summary>Whether a packet of <paramref name="protocol"/> to <paramref name="port"/> matches.</summary>
    public bool Matches(byte protocol, int port) => protocol == Protocol && Ports.Contains(port);

    /// <summary><c>80/TCP</c>, <c>*/UDP</c>.</summary>
    public override string ToString() => $"{Ports}/{IpProtocol.Name(Protocol)}";
}

/// <summary>Where something was written: file, document (1-based), line and column (1-based).</summary>
public sealed record SourceLocation(string File, int Document, int Line, int Column)
{
    public override string ToString() => $"{File}:{Line}:{Column} (document {Document})";
}

/// <summary>A policy's identity in the repository: its namespace and name.</summary>
public readonly record struct PolicyKey(string Namespace, string Name) : IComparable<PolicyKey>
{
    public int CompareTo(PolicyKey other)
    {
        var c = string.CompareOrdinal(Namespace, other.Namespace);
        return c != 0 ? c : string.CompareOrdinal(Name, other.Name);
    }

    /// <summary><c>namespace/name</c>.</summary>
    public override string ToString() => $"{Namespace}/{Name}";
}

/// <summary>Which written rule a compiled rule came from.</summary>
/// <param name="Policy">The policy.</param>
/// <param name="Kind">Its kind.</param>
/// <param name="Path">The field path of the rule (<c>spec.ingress[0]</c>).</param>
/// <param name="Location">Where the rule was written.</param>
public sealed record RuleOrigin(PolicyKey Policy, PolicyKind Kind, string Path, SourceLocation Location)
{
    /// <summary><c>default/allow-web spec.ingress[0]</c>.</summary>
    public override string ToString() => $"{Policy} {Path}";
}

/// <summary>A peer a rule allows or denies: endpoints by selector, or addresses by CIDR.</summary>
public abstract record PeerSelector
{
    /// <summary>Whether the peer (labels, and address where known) matches.</summary>
    public abstract bool Matches(LabelSet labels, IPAddress? address);

    /// <summary>Whether the identity is selected (resolution: peers are identities, not addresses).</summary>
    public abstract bool Selects(PolicyIdentity identity);
}

/// <summary>Peers whose labels a selector matches (<c>fromEndpoints</c>, <c>fromEntities</c>, <c>podSelector</c>, …).</summary>
/// <param name="Selector">The selector, already scoped to a namespace where the semantics require it.</param>
public sealed record EndpointPeer(EndpointSelector Selector) : PeerSelector
{
    public override bool Matches(LabelSet labels, IPAddress? address) => Selector.Matches(labels);

    public override bool Selects(PolicyIdentity identity) => Selector.Matches(identity.Labels);

    public override string ToString() => Selector.ToString();
}

/// <summary>
/// Peers outside the cluster by address: <c>fromCIDR</c>, <c>fromCIDRSet</c> (with
/// <c>except</c>) and NetworkPolicy <c>ipBlock</c>. As in Cilium, CIDR rules apply to
/// <c>world</c> only: a pod or node address is matched by its own identity, never by CIDR
/// ("CIDR rules do not apply to traffic where both sides of the connection are either
/// managed by Cilium or use an IP belonging to a node in the cluster", Cilium docs, L3
/// policy, IP/CIDR based).
/// </summary>
/// <param name="Cidr">The block.</param>
/// <param name="Except">Blocks inside <paramref name="Cidr"/> that are excluded.</param>
public sealed record CidrPeer(IPNetwork Cidr, IReadOnlyList<IPNetwork> Except) : PeerSelector
{
    /// <summary>
    /// A world peer whose address is in the block and in no except; a world peer of unknown
    /// address matches only a zero-length block (it is an address no rule names: Cilium's
    /// 0.0.0.0/0 is the world entity).
    /// </summary>
    public override bool Matches(LabelSet labels, IPAddress? address)
    {
        if (!labels.IsReserved("world"))
        {
            return false;
        }
        if (address is null)
        {
            return Cidr.PrefixLength == 0;
        }
        return Cidr.Contains(address) && !Except.Any(e => e.Contains(address));
    }

    /// <summary>
    /// A CIDR identity whose prefix lies in the block and in no except. Never the world
    /// identity itself: every block a rule names, a zero-length one too, gets a CIDR identity
    /// and an ipcache entry, so an address of the block's family always resolves to one of
    /// those; what is left with the world identity is an address of the other family, which
    /// the block does not contain (0.0.0.0/0 is not ::/0, as in <see cref="Matches"/>).
    /// </summary>
    public override bool Selects(PolicyIdentity identity) =>
        identity.IsWorld && identity.Prefix is { } p && Cidrs.IsWithin(p, Cidr) && !Except.Any(e => Cidrs.IsWithin(p, e));

    public override string ToString() =>
        Except.Count == 0 ? $"cidr:{Cidr}" : $"cidr:{Cidr} except {string.Join(",", Except)}";

    public bool Equals(CidrPeer? other) => other is not null && other.Cidr.Equals(Cidr) && other.Except.SequenceEqual(Except);

    public override int GetHashCode() => HashCode.Combine(Cidr, Except.Count);
}

/// <summary>
/// One compiled rule: for endpoints the owning <see cref="PolicySpec"/> selects, in one
/// direction, allow or deny traffic with these peers on these ports.
/// </summary>
/// <param name="Origin">Where it was written.</param>
/// <param name="Direction">Ingress or egress.</param>
/// <param name="Action">Allow or deny.</param>
/// <param name="Peers">The peers (their union); null = every peer; empty = no peer.</param>
/// <param name="Ports">The L4 matches (their union); null = every protocol and port.</param>
public sealed record PolicyRule(RuleOrigin Origin, TrafficDirection Direction, RuleAction Action,
    IReadOnlyList<PeerSelector>? Peers, IReadOnlyList<L4Match>? Ports)
{
    /// <summary>Whether the peer matches (null peers: any).</summary>
    public bool MatchesPeer(LabelSet labels, IPAddress? address) => Peers is null || Peers.Any(p => p.Matches(labels, address));

    /// <summary>Whether the L4 part matches (null ports: any).</summary>
    public bool MatchesPort(byte protocol, int port) => Ports is null || Ports.Any(p => p.Matches(protocol, port));

    public override string ToString() => Origin.ToString();
}

/// <summary>
/// One rule set with its subject: a CiliumNetworkPolicy <c>spec</c> (or one of <c>specs</c>),
/// or a NetworkPolicy's spec.
/// </summary>
/// <param name="Policy">The policy it belongs to.</param>
/// <param name="Path">Field path (<c>spec</c>, <c>specs[1]</c>).</param>
/// <param name="Subject">The endpoints it applies to, scoped to the policy's namespace.</param>
/// <param name="IngressDefaultDeny">Whether it puts selected endpoints into default-deny for ingress.</param>
/// <param name="EgressDefaultDeny">Whether it puts selected endpoints into default-deny for egress.</param>
/// <param name="Rules">The rules.</param>
public sealed record PolicySpec(PolicyKey Policy, string Path, EndpointSelector Subject, bool IngressDefaultDeny, bool EgressDefaultDeny,
    IReadOnlyList<PolicyRule> Rules)
{
    /// <summary>Whether it enforces <paramref name="direction"/>.</summary>
    public bool DefaultDeny(TrafficDirection direction) =>
        direction == TrafficDirection.Ingress ? IngressDefaultDeny : EgressDefaultDeny;

    /// <summary><c>ns/name spec</c>.</summary>
    public override string ToString() => $"{Policy} {Path}";
}

/// <summary>One imported policy: a CiliumNetworkPolicy or NetworkPolicy resource.</summary>
/// <param name="Key">Namespace and name.</param>
/// <param name="Kind">Its kind.</param>
/// <param name="Location">Where its document starts.</param>
/// <param name="SourceText">The YAML it was written as (for <c>policy get --output yaml</c>).</param>
/// <param name="Specs">Its rule sets.</param>
public sealed record PolicyResource(PolicyKey Key, PolicyKind Kind, SourceLocation Location, string SourceText, IReadOnlyList<PolicySpec> Specs)
{
    /// <summary>Every rule of every spec.</summary>
    public IEnumerable<PolicyRule> Rules => Specs.SelectMany(s => s.Rules);
}
