using System.Buffers.Binary;
using System.Runtime.InteropServices;

// The C# mirrors of every struct and enum shared with the datapath (bpf/lib/*.h), in one
// place. Each carries [CTwin] naming its C twin; DatapathLayoutTests reads the compiled
// objects' BTF and fails when a size, an offset or an enum value differs. Fields keep the
// C byte order: "__be" fields hold network-order bytes and are exposed through converting
// properties; the rest are host order (little-endian on the machines Membrane runs on).
namespace Membrane.Linux.Bpf.Datapath;

/// <summary>Names the C struct, member, enum or enumerator a C# mirror stands for.</summary>
[AttributeUsage(AttributeTargets.Struct | AttributeTargets.Field | AttributeTargets.Enum)]
public sealed class CTwinAttribute(string name) : Attribute
{
    /// <summary>The C name.</summary>
    public string Name { get; } = name;
}

/// <summary>Direction of the hook a program runs at. C twin: enum membrane_dir (bpf/lib/common.h).</summary>
[CTwin("membrane_dir")]
public enum Direction : byte
{
    [CTwin("DIR_UNKNOWN")] Unknown = 0,
    [CTwin("DIR_INGRESS")] Ingress = 1,
    [CTwin("DIR_EGRESS")] Egress = 2,
}

/// <summary>Why a packet was dropped (0: it was not). C twin: enum drop_reason (bpf/lib/drop_reasons.h).</summary>
[CTwin("drop_reason")]
public enum DropReason : ushort
{
    [CTwin("REASON_FORWARDED")] Forwarded = 0,
    [CTwin("DROP_INVALID_PACKET")] InvalidPacket = 1,
    [CTwin("DROP_UNSUPPORTED_L3")] UnsupportedL3 = 2,
    [CTwin("DROP_POLICY")] Policy = 3,
    [CTwin("DROP_TTL_EXCEEDED")] TtlExceeded = 4,
    [CTwin("DROP_EXT_HDR_LIMIT")] ExtensionHeaderLimit = 5,
    /// <summary>Conntrack: the packet fits no connection and cannot open one.</summary>
    [CTwin("DROP_CT_INVALID")] ConntrackInvalid = 6,
    /// <summary>Conntrack: the new connection's entry could not be stored.</summary>
    [CTwin("DROP_CT_MAP_FULL")] ConntrackMapFull = 7,
    /// <summary>Policy: an enforced direction and no rule allowed the connection.</summary>
    [CTwin("DROP_POLICY_DENIED")] PolicyDenied = 8,
    /// <summary>Policy: a deny rule matched.</summary>
    [CTwin("DROP_POLICY_DENY")] PolicyDeny = 9,
}

/// <summary>What the verdict map tells the program to do. C twin: enum verdict_action (bpf/lib/maps.h).</summary>
[CTwin("verdict_action")]
public enum VerdictAction : byte
{
    [CTwin("ACTION_NONE")] None = 0,
    [CTwin("ACTION_ALLOW")] Allow = 1,
    [CTwin("ACTION_DROP")] Drop = 2,
    /// <summary>Allow and act as a router hop: decrement the IPv4 TTL (fixing the checksum) or IPv6 hop limit.</summary>
    [CTwin("ACTION_ROUTE")] Route = 3,
}

/// <summary>Record types of the event ring buffer (the low nibble of the seed frame's first byte). C twin: enum event_type (bpf/lib/events.h).</summary>
[CTwin("event_type")]
public enum EventType : byte
{
    [CTwin("EVENT_DROP")] Drop = 1,
    [CTwin("EVENT_TRACE")] Trace = 2,
    [CTwin("EVENT_POLICY_VERDICT")] PolicyVerdict = 3,
}

/// <summary>The L4 protocols the metrics count apart. C twin: enum metrics_l4 (bpf/lib/maps.h).</summary>
[CTwin("metrics_l4")]
public enum MetricsL4Class : byte
{
    [CTwin("METRICS_L4_NONE")] None = 0,
    [CTwin("METRICS_L4_TCP")] Tcp = 1,
    [CTwin("METRICS_L4_UDP")] Udp = 2,
    [CTwin("METRICS_L4_ICMP")] Icmp = 3,
    [CTwin("METRICS_L4_ICMPV6")] Icmpv6 = 4,
    [CTwin("METRICS_L4_SCTP")] Sctp = 5,
    [CTwin("METRICS_L4_OTHER")] Other = 6,
    [CTwin("METRICS_L4_CLASSES")] Classes = 7,
}

/// <summary>The dimensions of the "metrics" array. C twin: enum metrics_layout (bpf/lib/maps.h).</summary>
[CTwin("metrics_layout")]
public enum MetricsLayout
{
    [CTwin("METRICS_REASONS")] Reasons = 128,
    [CTwin("METRICS_DIRECTIONS")] Directions = 3,
    [CTwin("METRICS_L3_CLASSES")] L3Classes = 3,
    [CTwin("METRICS_SLOTS")] Slots = 128 * 3 * 3 * 7,
}

/// <summary>
/// What one slot of the per-CPU "metrics" array counts. C twin: struct metrics_key
/// (bpf/lib/maps.h); all single bytes. The array is indexed by <see cref="ToSlot"/>
/// (metrics_slot in C), which keeps five L4 protocols apart and lumps the others together as
/// <see cref="OtherProtocol"/>.
/// </summary>
[CTwin("metrics_key")]
[StructLayout(LayoutKind.Explicit, Size = 4)]
public struct MetricsKey
{
    /// <summary>The <see cref="L4Protocol"/> of "another protocol" (IPPROTO_RAW).</summary>
    public const byte OtherProtocol = 255;

    /// <summary>Why (0 = forwarded).</summary>
    [CTwin("reason")][FieldOffset(0)] public byte Reason;
    /// <summary>The hook's direction.</summary>
    [CTwin("direction")][FieldOffset(1)] public Direction Direction;
    /// <summary>IPPROTO_* (0 for non-IP).</summary>
    [CTwin("l4_proto")][FieldOffset(2)] public byte L4Protocol;
    /// <summary>4, 6, or 0 for non-IP.</summary>
    [CTwin("l3")][FieldOffset(3)] public byte L3;

    /// <summary>The reason as the enum.</summary>
    public readonly DropReason DropReason => (DropReason)Reason;

    /// <summary>The array slot that counts this key (metrics_slot in bpf/lib/maps.h).</summary>
    public readonly uint ToSlot()
    {
        var l3 = L3 switch { 4 => 1u, 6 => 2u, _ => 0u };
        var l4 = (uint)ClassOf(L4Protocol);
        var direction = (byte)Direction < (int)MetricsLayout.Directions ? (uint)Direction : 0u;
        return ((((uint)Reason & ((uint)MetricsLayout.Reasons - 1)) * (uint)MetricsLayout.Directions + direction)
            * (uint)MetricsLayout.L3Classes + l3) * (uint)MetricsL4Class.Classes + l4;
    }

    /// <summary>The key a slot counts (its L4 protocol is <see cref="OtherProtocol"/> for the shared slot).</summary>
    public static MetricsKey FromSlot(uint slot)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(slot, (uint)MetricsLayout.Slots);
        var l4 = (MetricsL4Class)(slot % (uint)MetricsL4Class.Classes);
        slot /= (uint)MetricsL4Class.Classes;
        var l3 = (slot % (uint)MetricsLayout.L3Classes) switch { 1 => (byte)4, 2 => (byte)6, _ => (byte)0 };
        slot /= (uint)MetricsLayout.L3Classes;
        var direction = (Direction)(slot % (uint)MetricsLayout.Directions);
        return new MetricsKey
        {
            Reason = (byte)(slot / (uint)MetricsLayout.Directions),
            Direction = direction,
            L3 = l3,
            L4Protocol = l4 switch
            {
                MetricsL4Class.Tcp => 6,
                MetricsL4Class.Udp => 17,
                MetricsL4Class.Icmp => 1,
                MetricsL4Class.Icmpv6 => 58,
                MetricsL4Class.Sctp => 132,
                MetricsL4Class.Other => OtherProtocol,
                _ => 0,
            },
        };
    }

    private static MetricsL4Class ClassOf(byte protocol) => protocol switch
    {
        0 => MetricsL4Class.None,
        6 => MetricsL4Class.Tcp,
        17 => MetricsL4Class.Udp,
        1 => MetricsL4Class.Icmp,
        58 => MetricsL4Class.Icmpv6,
        132 => MetricsL4Class.Sctp,
        _ => MetricsL4Class.Other,
    };
}

/// <summary>Value of the "metrics" map, one per CPU. C twin: struct metrics_value; host byte order.</summary>
[CTwin("metrics_value")]
[StructLayout(LayoutKind.Explicit, Size = 16)]
public struct MetricsValue
{
    [CTwin("packets")][FieldOffset(0)] public ulong Packets;
    [CTwin("bytes")][FieldOffset(8)] public ulong Bytes;
}

/// <summary>Key of the "verdict" map. C twin: struct verdict_key (bpf/lib/maps.h).</summary>
[CTwin("verdict_key")]
[StructLayout(LayoutKind.Explicit, Size = 4)]
public struct VerdictKey
{
    /// <summary>IPPROTO_*.</summary>
    [CTwin("l4_proto")][FieldOffset(0)] public byte L4Protocol;
    [CTwin("pad")][FieldOffset(1)] public byte Pad;
    /// <summary>Destination port, network byte order (__be16); use <see cref="DestinationPort"/>.</summary>
    [CTwin("dport")][FieldOffset(2)] public ushort DestinationPortBigEndian;

    /// <summary>The destination port in host order (0: every port of the protocol).</summary>
    public ushort DestinationPort
    {
        readonly get => EventHeader.FromBig(DestinationPortBigEndian);
        set => DestinationPortBigEndian = EventHeader.FromBig(value); // the swap is its own inverse
    }

    /// <summary>The key for <paramref name="protocol"/> traffic to <paramref name="port"/> (0 = any port).</summary>
    public static VerdictKey For(byte protocol, ushort port) => new() { L4Protocol = protocol, DestinationPort = port };
}

/// <summary>Value of the "verdict" map. C twin: struct verdict_value; host byte order.</summary>
[CTwin("verdict_value")]
[StructLayout(LayoutKind.Explicit, Size = 8)]
public unsafe struct VerdictValue
{
    [CTwin("action")][FieldOffset(0)] public VerdictAction Action;
    [CTwin("pad")][FieldOffset(1)] public fixed byte Pad[3];
    /// <summary>Matches seen by the datapath (a non-atomic hint).</summary>
    [CTwin("hits")][FieldOffset(4)] public uint Hits;
}

/// <summary>
/// The 8-byte seed-frame header that starts every ring-buffer record. C twin: struct
/// event_header (bpf/lib/events.h); network byte order throughout (`!BBH I`).
/// </summary>
[CTwin("event_header")]
[StructLayout(LayoutKind.Explicit, Size = 8)]
public struct EventHeader
{
    /// <summary>Version (high nibble, 1) and type (low nibble).</summary>
    [CTwin("version_type")][FieldOffset(0)] public byte VersionType;
    /// <summary>The record's subtype.</summary>
    [CTwin("flags")][FieldOffset(1)] public byte Flags;
    /// <summary>Total length, header included (__be16).</summary>
    [CTwin("length")][FieldOffset(2)] public ushort LengthBigEndian;
    /// <summary>Sequence number or flow hash (__be32).</summary>
    [CTwin("id")][FieldOffset(4)] public uint IdBigEndian;

    /// <summary>The frame version (1).</summary>
    public readonly int Version => VersionType >> 4;

    /// <summary>The record type.</summary>
    public readonly EventType Type => (EventType)(VersionType & 0x0f);

    /// <summary>Total length in host order.</summary>
    public readonly ushort Length => FromBig(LengthBigEndian);

    /// <summary>Id in host order.</summary>
    public readonly uint Id => FromBig(IdBigEndian);

    internal static ushort FromBig(ushort v) => BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(v) : v;

    internal static uint FromBig(uint v) => BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(v) : v;
}

/// <summary>
/// A drop record. C twin: struct drop_event (bpf/lib/events.h); network byte order
/// throughout. Read records with <see cref="DatapathEventReader"/> rather than by casting.
/// </summary>
[CTwin("drop_event")]
[StructLayout(LayoutKind.Explicit, Size = 120)]
public unsafe struct DropEvent
{
    /// <summary>Bytes of packet a record carries (EVENT_CAPTURE_LEN).</summary>
    public const int CaptureLength = 96;

    [CTwin("header")][FieldOffset(0)] public EventHeader Header;
    /// <summary>enum drop_reason (__be16).</summary>
    [CTwin("reason")][FieldOffset(8)] public ushort ReasonBigEndian;
    /// <summary>Valid bytes in <see cref="Data"/> (__be16).</summary>
    [CTwin("captured")][FieldOffset(10)] public ushort CapturedBigEndian;
    /// <summary>The device the program ran on (__be32).</summary>
    [CTwin("ifindex")][FieldOffset(12)] public uint IfindexBigEndian;
    /// <summary>The whole packet's length (__be32).</summary>
    [CTwin("packet_length")][FieldOffset(16)] public uint PacketLengthBigEndian;
    [CTwin("direction")][FieldOffset(20)] public Direction Direction;
    [CTwin("l4_proto")][FieldOffset(21)] public byte L4Protocol;
    [CTwin("reserved")][FieldOffset(22)] public ushort Reserved;
    /// <summary>The first bytes of the packet.</summary>
    [CTwin("data")][FieldOffset(24)] public fixed byte Data[CaptureLength];

    /// <summary>Offset of <see cref="Data"/> in the record.</summary>
    public const int DataOffset = 24;
}

/// <summary>Where a trace record saw its packet (the header's flags byte). C twin: enum trace_point (bpf/lib/events.h); Cilium's monitor numbers.</summary>
[CTwin("trace_point")]
public enum TracePoint : byte
{
    /// <summary>Delivered into a pod.</summary>
    [CTwin("TRACE_TO_ENDPOINT")] ToEndpoint = 0,
    /// <summary>A pod's packet handed to the node's stack.</summary>
    [CTwin("TRACE_TO_STACK")] ToStack = 3,
}

/// <summary>
/// A trace record: a forwarded packet. C twin: struct trace_event (bpf/lib/events.h);
/// network byte order throughout. Read records with <see cref="DatapathEventReader"/>.
/// </summary>
[CTwin("trace_event")]
[StructLayout(LayoutKind.Explicit, Size = 128)]
public unsafe struct TraceEvent
{
    [CTwin("header")][FieldOffset(0)] public EventHeader Header;
    [CTwin("reserved0")][FieldOffset(8)] public ushort Reserved0;
    /// <summary>Valid bytes in <see cref="Data"/> (__be16).</summary>
    [CTwin("captured")][FieldOffset(10)] public ushort CapturedBigEndian;
    /// <summary>The endpoint's host-side veth (__be32).</summary>
    [CTwin("ifindex")][FieldOffset(12)] public uint IfindexBigEndian;
    /// <summary>The whole packet's length (__be32).</summary>
    [CTwin("packet_length")][FieldOffset(16)] public uint PacketLengthBigEndian;
    /// <summary>Identity of the packet's source address (__be32).</summary>
    [CTwin("src_identity")][FieldOffset(20)] public uint SourceIdentityBigEndian;
    /// <summary>Identity of its destination address (__be32).</summary>
    [CTwin("dst_identity")][FieldOffset(24)] public uint DestinationIdentityBigEndian;
    /// <summary>enum ct_result.</summary>
    [CTwin("ct_result")][FieldOffset(28)] public byte ConntrackResult;
    [CTwin("l4_proto")][FieldOffset(29)] public byte L4Protocol;
    [CTwin("tcp_flags")][FieldOffset(30)] public byte TcpFlags;
    [CTwin("reserved1")][FieldOffset(31)] public byte Reserved1;
    /// <summary>The first bytes of the packet.</summary>
    [CTwin("data")][FieldOffset(32)] public fixed byte Data[DropEvent.CaptureLength];

    /// <summary>Offset of <see cref="Data"/> in the record.</summary>
    public const int DataOffset = 32;
}
