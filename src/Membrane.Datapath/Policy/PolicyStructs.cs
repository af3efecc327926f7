using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Membrane.Linux.Bpf.Datapath;

// The C# mirrors of the policy structs and enums (bpf/lib/policy.h). Each carries [CTwin]
// naming its C twin; EndpointLayoutTests reads from_pod.o's BTF and fails when a size, an
// offset or an enum value differs. "__be" fields hold network-order bytes.
namespace Membrane.Datapath.Policy;

/// <summary>The identities with a fixed number (DESIGN.md "Identities"). C twin: enum reserved_identity.</summary>
[CTwin("reserved_identity")]
public enum WellKnownIdentity : uint
{
    /// <summary>Unknown; in a policy key: any peer.</summary>
    [CTwin("IDENTITY_UNKNOWN")] Unknown = 0,
    /// <summary>The node itself.</summary>
    [CTwin("IDENTITY_HOST")] Host = 1,
    /// <summary>Anything outside the cluster (the ipcache's default).</summary>
    [CTwin("IDENTITY_WORLD")] World = 2,
    /// <summary>An endpoint Membrane does not manage.</summary>
    [CTwin("IDENTITY_UNMANAGED")] Unmanaged = 3,
    /// <summary>Health checking.</summary>
    [CTwin("IDENTITY_HEALTH")] Health = 4,
    /// <summary>An endpoint whose labels are not known yet.</summary>
    [CTwin("IDENTITY_INIT")] Init = 5,
    /// <summary>Another node of the cluster.</summary>
    [CTwin("IDENTITY_REMOTE_NODE")] RemoteNode = 6,
}

/// <summary>Which way a policy entry applies, seen from its endpoint. C twin: enum policy_dir.</summary>
[CTwin("policy_dir")]
public enum PolicyDirection : byte
{
    /// <summary>Traffic into the endpoint.</summary>
    [CTwin("POLICY_INGRESS")] Ingress = 1,
    /// <summary>Traffic out of the endpoint.</summary>
    [CTwin("POLICY_EGRESS")] Egress = 2,
}

/// <summary>The prefix lengths of a policy key. C twin: enum policy_prefix.</summary>
[CTwin("policy_prefix")]
public enum PolicyPrefix : uint
{
    /// <summary>Endpoint, peer identity and direction match; any protocol.</summary>
    [CTwin("POLICY_PREFIX_ANY_PROTO")] AnyProtocol = 72,
    /// <summary>... and the protocol; any port.</summary>
    [CTwin("POLICY_PREFIX_ANY_PORT")] AnyPort = 80,
    /// <summary>... and every port bit.</summary>
    [CTwin("POLICY_PREFIX_FULL")] Full = 96,
}

/// <summary>What decided a policy verdict. C twin: enum policy_match.</summary>
[CTwin("policy_match")]
public enum PolicyMatch : byte
{
    /// <summary>The direction is not enforced for the endpoint.</summary>
    [CTwin("POLICY_MATCH_NONE")] None = 0,
    /// <summary>An entry for the peer's identity.</summary>
    [CTwin("POLICY_MATCH_PEER")] Peer = 1,
    /// <summary>An entry for any peer.</summary>
    [CTwin("POLICY_MATCH_ANY_PEER")] AnyPeer = 2,
    /// <summary>No entry: the enforced direction's default deny.</summary>
    [CTwin("POLICY_MATCH_DEFAULT")] Default = 3,
}

/// <summary>
/// Key of the "policy_allow" and "policy_deny" LPM tries. C twin: struct policy_key (16
/// bytes). <see cref="PrefixLength"/> counts the bits after it that must match.
/// </summary>
[CTwin("policy_key")]
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct PolicyKey : IEquatable<PolicyKey>
{
    /// <summary>LPM prefix length (<see cref="PolicyPrefix"/> and up to 16 port bits).</summary>
    [CTwin("prefixlen")][FieldOffset(0)] public uint PrefixLength;
    /// <summary>The endpoint's host-side veth ifindex.</summary>
    [CTwin("endpoint")][FieldOffset(4)] public uint Endpoint;
    /// <summary>The peer identity; 0 = any peer.</summary>
    [CTwin("identity")][FieldOffset(8)] public uint Identity;
    /// <summary>The direction.</summary>
    [CTwin("direction")][FieldOffset(12)] public PolicyDirection Direction;
    /// <summary>IPPROTO_*.</summary>
    [CTwin("protocol")][FieldOffset(13)] public byte Protocol;
    /// <summary>The port (ICMP: the type), network byte order (__be16).</summary>
    [CTwin("dport")][FieldOffset(14)] public ushort PortBigEndian;

    /// <summary>The port, host order.</summary>
    public readonly ushort Port => BinaryPrimitives.ReverseEndianness(PortBigEndian);

    // Keys are dictionary keys when the agent diffs an endpoint's entries: without these the
    // default struct equality boxes on every hash and compare.

    /// <inheritdoc/>
    public readonly bool Equals(PolicyKey other) =>
        PrefixLength == other.PrefixLength && Endpoint == other.Endpoint && Identity == other.Identity &&
        Direction == other.Direction && Protocol == other.Protocol && PortBigEndian == other.PortBigEndian;

    /// <inheritdoc/>
    public override readonly bool Equals(object? obj) => obj is PolicyKey other && Equals(other);

    /// <inheritdoc/>
    public override readonly int GetHashCode() => HashCode.Combine(PrefixLength, Endpoint, Identity, Direction, Protocol, PortBigEndian);

    /// <summary>Field-wise equality.</summary>
    public static bool operator ==(PolicyKey left, PolicyKey right) => left.Equals(right);

    /// <summary>Field-wise inequality.</summary>
    public static bool operator !=(PolicyKey left, PolicyKey right) => !left.Equals(right);
}

/// <summary>Value of the policy tries. C twin: struct policy_entry.</summary>
[CTwin("policy_entry")]
[StructLayout(LayoutKind.Explicit, Size = 4)]
public struct PolicyEntry
{
    /// <summary>The agent's number for the rule that made the entry.</summary>
    [CTwin("rule")][FieldOffset(0)] public uint Rule;
}

/// <summary>Key of the "ipcache" LPM trie. C twin: struct ipcache_key (24 bytes).</summary>
/// <summary>Which verdicts an exact policy key holds. C twin: enum policy_exact_flags (bpf/lib/policy.h).</summary>
[CTwin("policy_exact_flags")]
[Flags]
public enum PolicyExactFlags : uint
{
    /// <summary>None.</summary>
    None = 0,
    [CTwin("POLICY_EXACT_ALLOW")] Allow = 1,
    [CTwin("POLICY_EXACT_DENY")] Deny = 2,
}

/// <summary>
/// The value of the "policy_exact" hash: both verdicts of one exact key (one port, every port
/// of a protocol, or every protocol). C twin: struct policy_exact.
/// </summary>
[CTwin("policy_exact")]
[StructLayout(LayoutKind.Explicit, Size = 12)]
public struct PolicyExact : IEquatable<PolicyExact>
{
    /// <summary>The allow entry's rule (when <see cref="Flags"/> has Allow).</summary>
    [CTwin("allow_rule")][FieldOffset(0)] public uint AllowRule;
    /// <summary>The deny entry's rule (when <see cref="Flags"/> has Deny).</summary>
    [CTwin("deny_rule")][FieldOffset(4)] public uint DenyRule;
    /// <summary>Which of the two the key holds.</summary>
    [CTwin("flags")][FieldOffset(8)] public PolicyExactFlags Flags;

    /// <inheritdoc/>
    public readonly bool Equals(PolicyExact other) => AllowRule == other.AllowRule && DenyRule == other.DenyRule && Flags == other.Flags;

    /// <inheritdoc/>
    public override readonly bool Equals(object? obj) => obj is PolicyExact other && Equals(other);

    /// <inheritdoc/>
    public override readonly int GetHashCode() => HashCode.Combine(AllowRule, DenyRule, Flags);
}

/// <summary>
/// The single value of the "policy_config" array: whether any endpoint has deny entries or
/// port-range entries (the datapath skips what cannot match). C twin: struct policy_config.
/// </summary>
[CTwin("policy_config")]
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct PolicyConfig : IEquatable<PolicyConfig>
{
    /// <summary>Nonzero: some endpoint has deny entries.</summary>
    [CTwin("denies")][FieldOffset(0)] public uint Denies;
    /// <summary>Nonzero: some endpoint has port-range entries in the tries.</summary>
    [CTwin("ranges")][FieldOffset(4)] public uint Ranges;

    /// <inheritdoc/>
    public readonly bool Equals(PolicyConfig other) => Denies == other.Denies && Ranges == other.Ranges;

    /// <inheritdoc/>
    public override readonly bool Equals(object? obj) => obj is PolicyConfig other && Equals(other);

    /// <inheritdoc/>
    public override readonly int GetHashCode() => HashCode.Combine(Denies, Ranges);
}

[CTwin("ipcache_key")]
[StructLayout(LayoutKind.Explicit, Size = 24)]
public struct IpcacheKey
{
    /// <summary>32 (family and padding) + the address prefix length.</summary>
    [CTwin("prefixlen")][FieldOffset(0)] public uint PrefixLength;
    /// <summary>4 or 6.</summary>
    [CTwin("family")][FieldOffset(4)] public byte Family;
    /// <summary>Zero.</summary>
    [CTwin("pad")][FieldOffset(5)] public Bytes3 Pad;
    /// <summary>The address as on the wire (IPv4 in the first four bytes).</summary>
    [CTwin("addr")][FieldOffset(8)] public Bytes16 Address;
}

/// <summary>Value of the ipcache. C twin: struct ipcache_entry.</summary>
[CTwin("ipcache_entry")]
[StructLayout(LayoutKind.Explicit, Size = 4)]
public struct IpcacheEntry
{
    /// <summary>The identity of the addresses the key covers.</summary>
    [CTwin("identity")][FieldOffset(0)] public uint Identity;
}

/// <summary>
/// A policy verdict record of the event ring buffer. C twin: struct policy_verdict_event
/// (128 bytes); network byte order throughout. The header's flags byte is the
/// <see cref="PolicyDirection"/>.
/// </summary>
[CTwin("policy_verdict_event")]
[StructLayout(LayoutKind.Explicit, Size = 128)]
public struct PolicyVerdictEvent
{
    [CTwin("header")][FieldOffset(0)] public EventHeader Header;
    /// <summary>0 allowed, else the drop reason (__be16).</summary>
    [CTwin("reason")][FieldOffset(8)] public ushort ReasonBigEndian;
    /// <summary>Valid bytes in <see cref="Data"/> (__be16).</summary>
    [CTwin("captured")][FieldOffset(10)] public ushort CapturedBigEndian;
    /// <summary>The endpoint's host-side veth (__be32).</summary>
    [CTwin("ifindex")][FieldOffset(12)] public uint IfindexBigEndian;
    /// <summary>The whole packet's length (__be32).</summary>
    [CTwin("packet_length")][FieldOffset(16)] public uint PacketLengthBigEndian;
    /// <summary>The peer's identity (__be32).</summary>
    [CTwin("peer_identity")][FieldOffset(20)] public uint PeerIdentityBigEndian;
    /// <summary>The deciding entry's rule, 0 for the default (__be32).</summary>
    [CTwin("rule")][FieldOffset(24)] public uint RuleBigEndian;
    /// <summary>The port as in the policy key (__be16).</summary>
    [CTwin("dport")][FieldOffset(28)] public ushort PortBigEndian;
    [CTwin("l4_proto")][FieldOffset(30)] public byte L4Protocol;
    [CTwin("match")][FieldOffset(31)] public PolicyMatch Match;
    /// <summary>The first bytes of the packet.</summary>
    [CTwin("data")][FieldOffset(32)] public CapturedBytes Data;
}

/// <summary>The packet bytes a record carries (EVENT_CAPTURE_LEN: 96).</summary>
[System.Runtime.CompilerServices.InlineArray(DropEvent.CaptureLength)]
public struct CapturedBytes
{
    private byte _element;
}
