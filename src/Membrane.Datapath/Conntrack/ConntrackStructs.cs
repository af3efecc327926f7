using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Membrane.Linux.Bpf.Datapath;

// The C# mirrors of the conntrack structs and enums (bpf/lib/conntrack.h). Each carries
// [CTwin] naming its C twin; ConntrackLayoutTests reads from_pod.o's BTF and fails when a
// size, an offset or an enum value differs. "__be" fields hold network-order bytes.
namespace Membrane.Datapath.Conntrack;

/// <summary>
/// The state of a tracked connection. TCP states are Linux nf_conntrack's (same numbers,
/// include/uapi/linux/netfilter/nf_conntrack_tcp.h); UDP, ICMP echo and other protocols are
/// pseudo-connections that are either unreplied or replied. C twin: enum ct_state.
/// </summary>
[CTwin("ct_state")]
public enum CtState : byte
{
    /// <summary>No connection (only ever the "before" of a first packet).</summary>
    [CTwin("CT_STATE_NONE")] None = 0,
    /// <summary>A SYN was seen from the originator.</summary>
    [CTwin("CT_STATE_SYN_SENT")] SynSent = 1,
    /// <summary>The SYN-ACK was seen.</summary>
    [CTwin("CT_STATE_SYN_RECV")] SynRecv = 2,
    /// <summary>The handshake's ACK was seen (or a connection was picked up mid-stream).</summary>
    [CTwin("CT_STATE_ESTABLISHED")] Established = 3,
    /// <summary>A FIN was seen from one side.</summary>
    [CTwin("CT_STATE_FIN_WAIT")] FinWait = 4,
    /// <summary>The first FIN was acknowledged; the other side may still send.</summary>
    [CTwin("CT_STATE_CLOSE_WAIT")] CloseWait = 5,
    /// <summary>FINs were seen from both sides; waiting for the last ACK.</summary>
    [CTwin("CT_STATE_LAST_ACK")] LastAck = 6,
    /// <summary>The last ACK was seen.</summary>
    [CTwin("CT_STATE_TIME_WAIT")] TimeWait = 7,
    /// <summary>Reset.</summary>
    [CTwin("CT_STATE_CLOSE")] Close = 8,
    /// <summary>Simultaneous open: a SYN was seen from both sides.</summary>
    [CTwin("CT_STATE_SYN_SENT2")] SynSent2 = 9,
    /// <summary>Non-TCP: only the originator has sent.</summary>
    [CTwin("CT_STATE_UNREPLIED")] Unreplied = 16,
    /// <summary>Non-TCP: both sides have sent.</summary>
    [CTwin("CT_STATE_REPLIED")] Replied = 17,
}

/// <summary>What conntrack made of one packet. C twin: enum ct_result.</summary>
[CTwin("ct_result")]
public enum CtResult : byte
{
    /// <summary>The packet opens a connection (an entry is created for it).</summary>
    [CTwin("CT_RESULT_NEW")] New = 1,
    /// <summary>The packet belongs to a tracked connection, from its originator.</summary>
    [CTwin("CT_RESULT_ESTABLISHED")] Established = 2,
    /// <summary>The packet belongs to a tracked connection, from its responder.</summary>
    [CTwin("CT_RESULT_REPLY")] Reply = 3,
    /// <summary>An ICMP error about a packet of a tracked connection.</summary>
    [CTwin("CT_RESULT_RELATED")] Related = 4,
    /// <summary>The packet fits no connection and cannot open one (the datapath drops it).</summary>
    [CTwin("CT_RESULT_INVALID")] Invalid = 5,
    /// <summary>Not subject to tracking (later fragments, neighbour discovery, link-local IPv6).</summary>
    [CTwin("CT_RESULT_UNTRACKED")] Untracked = 6,
}

/// <summary>The direction of a packet relative to its connection. C twin: enum ct_dir.</summary>
[CTwin("ct_dir")]
public enum CtDirection : byte
{
    /// <summary>From the side that opened the connection.</summary>
    [CTwin("CT_DIR_ORIGINAL")] Original = 0,
    /// <summary>From the side that was connected to.</summary>
    [CTwin("CT_DIR_REPLY")] Reply = 1,
}

/// <summary>Which endpoint hook saw a connection's first packet. C twin: enum ct_origin.</summary>
[CTwin("ct_origin")]
public enum CtOrigin : byte
{
    /// <summary>Not set (never in a live entry).</summary>
    Unknown = 0,
    /// <summary>The endpoint opened the connection (from_pod).</summary>
    [CTwin("CT_ORIGIN_FROM_POD")] FromPod = 1,
    /// <summary>The node's stack opened it toward the endpoint (to_pod).</summary>
    [CTwin("CT_ORIGIN_TO_POD")] ToPod = 2,
}

/// <summary>Flags of a conntrack entry. C twin: enum ct_entry_flags.</summary>
[CTwin("ct_entry_flags")]
[Flags]
public enum CtEntryFlags : byte
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary>The responder has sent at least one packet.</summary>
    [CTwin("CT_F_REPLY_SEEN")] ReplySeen = 1,
}

/// <summary>
/// Key of the "ct4" map: the tuple of a connection's first packet. C twin: struct ct_key4
/// (16 bytes). ICMP echo: the request's identifier is <see cref="SourcePort"/>, a reply's
/// is <see cref="DestinationPort"/>.
/// </summary>
[CTwin("ct_key4")]
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct CtKey4
{
    /// <summary>Source address as on the wire (__be32).</summary>
    [CTwin("saddr")][FieldOffset(0)] public uint SourceAddress;
    /// <summary>Destination address as on the wire (__be32).</summary>
    [CTwin("daddr")][FieldOffset(4)] public uint DestinationAddress;
    /// <summary>Source port, network order (__be16).</summary>
    [CTwin("sport")][FieldOffset(8)] public ushort SourcePortBe;
    /// <summary>Destination port, network order (__be16).</summary>
    [CTwin("dport")][FieldOffset(10)] public ushort DestinationPortBe;
    /// <summary>IPPROTO_*.</summary>
    [CTwin("proto")][FieldOffset(12)] public byte Protocol;
    /// <summary>Zero for connections (reserved).</summary>
    [CTwin("flags")][FieldOffset(13)] public byte Flags;
    /// <summary>Always zero.</summary>
    [CTwin("pad")][FieldOffset(14)] public ushort Pad;

    /// <summary>The source port (or ICMP echo request identifier), host order.</summary>
    public readonly ushort SourcePort => BinaryPrimitives.ReverseEndianness(SourcePortBe);

    /// <summary>The destination port (or ICMP echo reply identifier), host order.</summary>
    public readonly ushort DestinationPort => BinaryPrimitives.ReverseEndianness(DestinationPortBe);
}

/// <summary>Key of the "ct6" map. C twin: struct ct_key6 (40 bytes).</summary>
[CTwin("ct_key6")]
[StructLayout(LayoutKind.Explicit, Size = 40)]
public struct CtKey6
{
    /// <summary>Source address as on the wire (__be32[4]).</summary>
    [CTwin("saddr")][FieldOffset(0)] public Bytes16 SourceAddress;
    /// <summary>Destination address as on the wire (__be32[4]).</summary>
    [CTwin("daddr")][FieldOffset(16)] public Bytes16 DestinationAddress;
    /// <summary>Source port, network order (__be16).</summary>
    [CTwin("sport")][FieldOffset(32)] public ushort SourcePortBe;
    /// <summary>Destination port, network order (__be16).</summary>
    [CTwin("dport")][FieldOffset(34)] public ushort DestinationPortBe;
    /// <summary>IPPROTO_*.</summary>
    [CTwin("proto")][FieldOffset(36)] public byte Protocol;
    /// <summary>Zero for connections (reserved).</summary>
    [CTwin("flags")][FieldOffset(37)] public byte Flags;
    /// <summary>Always zero.</summary>
    [CTwin("pad")][FieldOffset(38)] public ushort Pad;

    /// <summary>The source port (or ICMP echo request identifier), host order.</summary>
    public readonly ushort SourcePort => BinaryPrimitives.ReverseEndianness(SourcePortBe);

    /// <summary>The destination port (or ICMP echo reply identifier), host order.</summary>
    public readonly ushort DestinationPort => BinaryPrimitives.ReverseEndianness(DestinationPortBe);
}

/// <summary>
/// Value of the "ct4" and "ct6" maps: one connection. C twin: struct ct_entry (56 bytes).
/// Times are whole seconds of CLOCK_MONOTONIC.
/// </summary>
[CTwin("ct_entry")]
[StructLayout(LayoutKind.Explicit, Size = 56)]
public struct CtEntry
{
    /// <summary>Packets from the originator.</summary>
    [CTwin("packets_orig")][FieldOffset(0)] public ulong PacketsOriginal;
    /// <summary>Bytes from the originator (skb->len).</summary>
    [CTwin("bytes_orig")][FieldOffset(8)] public ulong BytesOriginal;
    /// <summary>Packets from the responder.</summary>
    [CTwin("packets_reply")][FieldOffset(16)] public ulong PacketsReply;
    /// <summary>Bytes from the responder.</summary>
    [CTwin("bytes_reply")][FieldOffset(24)] public ulong BytesReply;
    /// <summary>The entry expires when CLOCK_MONOTONIC passes this second.</summary>
    [CTwin("lifetime")][FieldOffset(32)] public uint Lifetime;
    /// <summary>The second the entry was made.</summary>
    [CTwin("created")][FieldOffset(36)] public uint Created;
    /// <summary>The originator's security identity (0: not known).</summary>
    [CTwin("src_identity")][FieldOffset(40)] public uint SourceIdentity;
    /// <summary>Reverse-NAT index (0: none).</summary>
    [CTwin("rev_nat_index")][FieldOffset(44)] public ushort ReverseNatIndex;
    /// <summary>The connection's state.</summary>
    [CTwin("state")][FieldOffset(46)] public CtState State;
    /// <summary>The hook that opened it.</summary>
    [CTwin("origin")][FieldOffset(47)] public CtOrigin Origin;
    /// <summary>TCP flags seen from the originator.</summary>
    [CTwin("tcp_flags_orig")][FieldOffset(48)] public byte TcpFlagsOriginal;
    /// <summary>TCP flags seen from the responder.</summary>
    [CTwin("tcp_flags_reply")][FieldOffset(49)] public byte TcpFlagsReply;
    /// <summary>Entry flags.</summary>
    [CTwin("flags")][FieldOffset(50)] public CtEntryFlags Flags;
    /// <summary>Zero.</summary>
    [CTwin("pad")][FieldOffset(51)] public byte Pad;
    /// <summary>The second of the last packet counted.</summary>
    [CTwin("last_seen")][FieldOffset(52)] public uint LastSeen;
}

/// <summary>
/// The single value of the "ct_config" array map: lifetimes in seconds per class of state;
/// 0 means the datapath's default. C twin: struct ct_config.
/// </summary>
[CTwin("ct_config")]
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct CtConfig
{
    /// <summary>SYN_SENT, SYN_RECV, SYN_SENT2.</summary>
    [CTwin("tcp_syn")][FieldOffset(0)] public uint TcpSyn;
    /// <summary>ESTABLISHED, FIN_WAIT, CLOSE_WAIT.</summary>
    [CTwin("tcp_established")][FieldOffset(4)] public uint TcpEstablished;
    /// <summary>LAST_ACK, TIME_WAIT, CLOSE.</summary>
    [CTwin("tcp_close")][FieldOffset(8)] public uint TcpClose;
    /// <summary>UDP, ICMP and other protocols.</summary>
    [CTwin("other")][FieldOffset(12)] public uint Other;
}
