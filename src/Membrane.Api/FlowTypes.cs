using System.Text.Json.Serialization;

namespace Membrane.Api;

// Flows as the agent serves them (POST /v1/flows). Field names are Hubble's
// (cilium/api/v1/flow/flow.proto in its JSON form) wherever Hubble has one, so that what
// operators already pipe through jq for `hubble observe -o json` works on ours; what Hubble
// has no field for (the captured bytes) carries a name of our own.

/// <summary>One line of a flow stream: a flow, or a notice that records were lost (Hubble's GetFlowsResponse).</summary>
public sealed class FlowLine
{
    /// <summary>The flow.</summary>
    [JsonPropertyName("flow")] public Flow? Flow { get; set; }

    /// <summary>Records lost since the previous notice (the kernel's ring buffer or the agent's was full).</summary>
    [JsonPropertyName("lost_events")] public LostEvents? LostEvents { get; set; }

    /// <summary>The node that observed it.</summary>
    [JsonPropertyName("node_name")] public string? NodeName { get; set; }

    /// <summary>When it was observed.</summary>
    [JsonPropertyName("time")] public DateTimeOffset? Time { get; set; }
}

/// <summary>Records that never became flows.</summary>
public sealed class LostEvents
{
    /// <summary>Where they were lost: PERF_EVENT_RING_BUFFER (the kernel's ring buffer was full) or HUBBLE_RING_BUFFER (the agent's reader fell behind), as Hubble names them.</summary>
    [JsonPropertyName("source")] public string Source { get; set; } = "";

    /// <summary>How many.</summary>
    [JsonPropertyName("num_events_lost")] public ulong NumEventsLost { get; set; }
}

/// <summary>A flow: one datapath record, decoded and enriched with the endpoints' facts.</summary>
public sealed class Flow
{
    /// <summary>When the agent read the record.</summary>
    [JsonPropertyName("time")] public DateTimeOffset Time { get; set; }

    /// <summary>The flow's unique id: the same flow read twice has the same one (it names the agent run and the flow's place in its buffer).</summary>
    [JsonPropertyName("uuid")] public string? Uuid { get; set; }

    /// <summary>FORWARDED or DROPPED.</summary>
    [JsonPropertyName("verdict")] public string Verdict { get; set; } = "";

    /// <summary>The datapath's drop reason number (0 when not dropped).</summary>
    [JsonPropertyName("drop_reason")] public int? DropReason { get; set; }

    /// <summary>The drop reason's name, e.g. POLICY_DENIED.</summary>
    [JsonPropertyName("drop_reason_desc")] public string? DropReasonDesc { get; set; }

    /// <summary>The frame's MAC addresses.</summary>
    [JsonPropertyName("ethernet")] public FlowEthernet? Ethernet { get; set; }

    /// <summary>The IP header's addresses.</summary>
    [JsonPropertyName("IP")] public FlowIp? IP { get; set; }

    /// <summary>The transport header.</summary>
    [JsonPropertyName("l4")] public FlowLayer4? L4 { get; set; }

    /// <summary>The sender.</summary>
    [JsonPropertyName("source")] public FlowEndpoint? Source { get; set; }

    /// <summary>The receiver.</summary>
    [JsonPropertyName("destination")] public FlowEndpoint? Destination { get; set; }

    /// <summary>Always L3_L4 (the datapath has no L7 proxy).</summary>
    [JsonPropertyName("Type")] public string Type { get; set; } = "L3_L4";

    /// <summary>The node that observed the flow.</summary>
    [JsonPropertyName("node_name")] public string? NodeName { get; set; }

    /// <summary>Cilium's monitor message type (1 drop, 4 trace, 5 policy verdict) and its subtype.</summary>
    [JsonPropertyName("event_type")] public FlowEventType EventType { get; set; } = new();

    /// <summary>INGRESS or EGRESS from the point of view of the endpoint whose policy applies; TRAFFIC_DIRECTION_UNKNOWN otherwise.</summary>
    [JsonPropertyName("traffic_direction")] public string TrafficDirection { get; set; } = FlowNames.DirectionUnknown;

    /// <summary>For a trace record, where the packet was seen: TO_ENDPOINT, TO_STACK, …</summary>
    [JsonPropertyName("trace_observation_point")] public string? TraceObservationPoint { get; set; }

    /// <summary>For a policy verdict, which kind of entry decided: identity (an entry for the peer's identity), any-identity (an entry for every peer), default-deny (no entry: the enforced direction's default).</summary>
    [JsonPropertyName("policy_match_type")] public string? PolicyMatchType { get; set; }

    /// <summary>True when the packet is a reply of a tracked connection; null when the record does not say.</summary>
    [JsonPropertyName("is_reply")] public bool? IsReply { get; set; }

    /// <summary>The device the datapath saw the packet on.</summary>
    [JsonPropertyName("interface")] public FlowInterface? Interface { get; set; }

    /// <summary>A human summary, as Hubble's (e.g. "TCP Flags: SYN").</summary>
    [JsonPropertyName("Summary")] public string Summary { get; set; } = "";

    /// <summary>The whole packet's length in bytes.</summary>
    [JsonPropertyName("packet_length")] public int? PacketLength { get; set; }

    /// <summary>The packet's first bytes as the datapath captured them; only when asked for (<see cref="ObserveRequest.IncludePacket"/>).</summary>
    [JsonPropertyName("packet_data")] public byte[]? PacketData { get; set; }
}

/// <summary>MAC addresses.</summary>
public sealed class FlowEthernet
{
    /// <summary>Source MAC.</summary>
    [JsonPropertyName("source")] public string Source { get; set; } = "";
    /// <summary>Destination MAC.</summary>
    [JsonPropertyName("destination")] public string Destination { get; set; } = "";
}

/// <summary>IP addresses.</summary>
public sealed class FlowIp
{
    /// <summary>Source address.</summary>
    [JsonPropertyName("source")] public string Source { get; set; } = "";
    /// <summary>Destination address.</summary>
    [JsonPropertyName("destination")] public string Destination { get; set; } = "";
    /// <summary>IPv4 or IPv6.</summary>
    [JsonPropertyName("ipVersion")] public string IpVersion { get; set; } = "";
}

/// <summary>The transport header; one member is set.</summary>
public sealed class FlowLayer4
{
    /// <summary>TCP.</summary>
    [JsonPropertyName("TCP")] public FlowTcp? TCP { get; set; }
    /// <summary>UDP.</summary>
    [JsonPropertyName("UDP")] public FlowPorts? UDP { get; set; }
    /// <summary>SCTP.</summary>
    [JsonPropertyName("SCTP")] public FlowPorts? SCTP { get; set; }
    /// <summary>ICMP for IPv4.</summary>
    [JsonPropertyName("ICMPv4")] public FlowIcmp? ICMPv4 { get; set; }
    /// <summary>ICMP for IPv6.</summary>
    [JsonPropertyName("ICMPv6")] public FlowIcmp? ICMPv6 { get; set; }
}

/// <summary>Ports of a UDP or SCTP packet.</summary>
public class FlowPorts
{
    /// <summary>Source port.</summary>
    [JsonPropertyName("source_port")] public int SourcePort { get; set; }
    /// <summary>Destination port.</summary>
    [JsonPropertyName("destination_port")] public int DestinationPort { get; set; }
}

/// <summary>A TCP segment's ports and flags.</summary>
public sealed class FlowTcp : FlowPorts
{
    /// <summary>The flags that are set.</summary>
    [JsonPropertyName("flags")] public FlowTcpFlags? Flags { get; set; }
}

/// <summary>TCP flags; only the set ones are written.</summary>
public sealed class FlowTcpFlags
{
    /// <summary>FIN.</summary>
    [JsonPropertyName("FIN")] public bool? FIN { get; set; }
    /// <summary>SYN.</summary>
    [JsonPropertyName("SYN")] public bool? SYN { get; set; }
    /// <summary>RST.</summary>
    [JsonPropertyName("RST")] public bool? RST { get; set; }
    /// <summary>PSH.</summary>
    [JsonPropertyName("PSH")] public bool? PSH { get; set; }
    /// <summary>ACK.</summary>
    [JsonPropertyName("ACK")] public bool? ACK { get; set; }
    /// <summary>URG.</summary>
    [JsonPropertyName("URG")] public bool? URG { get; set; }
    /// <summary>ECE.</summary>
    [JsonPropertyName("ECE")] public bool? ECE { get; set; }
    /// <summary>CWR.</summary>
    [JsonPropertyName("CWR")] public bool? CWR { get; set; }

    /// <summary>The set flags' names in wire order (FIN first), e.g. ["SYN", "ACK"].</summary>
    public IEnumerable<string> Names()
    {
        if (FIN == true) yield return "FIN";
        if (SYN == true) yield return "SYN";
        if (RST == true) yield return "RST";
        if (PSH == true) yield return "PSH";
        if (ACK == true) yield return "ACK";
        if (URG == true) yield return "URG";
        if (ECE == true) yield return "ECE";
        if (CWR == true) yield return "CWR";
    }

    /// <summary>The flags of a TCP header's flag byte (RFC 9293 3.1).</summary>
    public static FlowTcpFlags FromByte(byte flags) => new()
    {
        FIN = (flags & 0x01) != 0 ? true : null,
        SYN = (flags & 0x02) != 0 ? true : null,
        RST = (flags & 0x04) != 0 ? true : null,
        PSH = (flags & 0x08) != 0 ? true : null,
        ACK = (flags & 0x10) != 0 ? true : null,
        URG = (flags & 0x20) != 0 ? true : null,
        ECE = (flags & 0x40) != 0 ? true : null,
        CWR = (flags & 0x80) != 0 ? true : null,
    };
}

/// <summary>ICMP type and code.</summary>
public sealed class FlowIcmp
{
    /// <summary>Type.</summary>
    [JsonPropertyName("type")] public int Type { get; set; }
    /// <summary>Code.</summary>
    [JsonPropertyName("code")] public int Code { get; set; }
}

/// <summary>One side of a flow, with what the agent knows about it.</summary>
public sealed class FlowEndpoint
{
    /// <summary>The local endpoint's id; 0 when the address is not a pod of this node.</summary>
    [JsonPropertyName("ID")] public long ID { get; set; }
    /// <summary>The security identity.</summary>
    [JsonPropertyName("identity")] public uint Identity { get; set; }
    /// <summary>The pod's namespace.</summary>
    [JsonPropertyName("namespace")] public string? Namespace { get; set; }
    /// <summary>The identity's labels as source:key=value (reserved:world for the reserved ones).</summary>
    [JsonPropertyName("labels")] public List<string> Labels { get; set; } = [];
    /// <summary>The pod's name.</summary>
    [JsonPropertyName("pod_name")] public string? PodName { get; set; }
}

/// <summary>Cilium's monitor message type and subtype.</summary>
public sealed class FlowEventType
{
    /// <summary>1 drop, 4 trace, 5 policy verdict (Cilium's monitor API numbers).</summary>
    [JsonPropertyName("type")] public int Type { get; set; }
    /// <summary>For a drop its reason, for a trace its observation point.</summary>
    [JsonPropertyName("sub_type")] public int SubType { get; set; }
}

/// <summary>The device a packet was seen on.</summary>
public sealed class FlowInterface
{
    /// <summary>ifindex in the agent's namespace.</summary>
    [JsonPropertyName("index")] public int Index { get; set; }
    /// <summary>Its name, when it still exists.</summary>
    [JsonPropertyName("name")] public string? Name { get; set; }
}

/// <summary>
/// A flow filter in Hubble's sense: every member that is set must match (AND), and within a
/// member any one value is enough (OR). An empty filter matches everything.
/// </summary>
public sealed class FlowFilter
{
    /// <summary>Source pod as [namespace/]name-prefix.</summary>
    [JsonPropertyName("source_pod")] public List<string>? SourcePod { get; set; }
    /// <summary>Destination pod as [namespace/]name-prefix.</summary>
    [JsonPropertyName("destination_pod")] public List<string>? DestinationPod { get; set; }
    /// <summary>Source label selectors (k=v, k, !k, k!=v, comma = AND).</summary>
    [JsonPropertyName("source_label")] public List<string>? SourceLabel { get; set; }
    /// <summary>Destination label selectors.</summary>
    [JsonPropertyName("destination_label")] public List<string>? DestinationLabel { get; set; }
    /// <summary>Source identities.</summary>
    [JsonPropertyName("source_identity")] public List<uint>? SourceIdentity { get; set; }
    /// <summary>Destination identities.</summary>
    [JsonPropertyName("destination_identity")] public List<uint>? DestinationIdentity { get; set; }
    /// <summary>Source addresses or CIDRs.</summary>
    [JsonPropertyName("source_ip")] public List<string>? SourceIp { get; set; }
    /// <summary>Destination addresses or CIDRs.</summary>
    [JsonPropertyName("destination_ip")] public List<string>? DestinationIp { get; set; }
    /// <summary>Source ports.</summary>
    [JsonPropertyName("source_port")] public List<int>? SourcePort { get; set; }
    /// <summary>Destination ports.</summary>
    [JsonPropertyName("destination_port")] public List<int>? DestinationPort { get; set; }
    /// <summary>L4 protocols: tcp, udp, sctp, icmp (both families), icmpv4, icmpv6.</summary>
    [JsonPropertyName("protocol")] public List<string>? Protocol { get; set; }
    /// <summary>Verdicts: FORWARDED, DROPPED.</summary>
    [JsonPropertyName("verdict")] public List<string>? Verdict { get; set; }
    /// <summary>Record kinds: drop, policy-verdict, trace, or trace:POINT (e.g. trace:to-endpoint).</summary>
    [JsonPropertyName("event_type")] public List<string>? EventType { get; set; }
    /// <summary>TCP flag sets, e.g. "SYN" or "SYN,ACK": a flow matches one when it has every flag of the set.</summary>
    [JsonPropertyName("tcp_flags")] public List<string>? TcpFlags { get; set; }
    /// <summary>Traffic directions: ingress, egress.</summary>
    [JsonPropertyName("traffic_direction")] public List<string>? TrafficDirection { get; set; }
}

/// <summary>
/// POST /v1/flows: which flows to stream. A flow is sent when it matches any filter of
/// <see cref="Whitelist"/> (or the list is empty) and no filter of <see cref="Blacklist"/>, as
/// Hubble's GetFlowsRequest.
/// </summary>
public sealed class ObserveRequest
{
    /// <summary>The last N matching flows of the agent's buffer (0: all of them). With <see cref="Follow"/> and no N, none: only new flows.</summary>
    [JsonPropertyName("number")] public int Number { get; set; }
    /// <summary>Keep the stream open and send new flows as they happen.</summary>
    [JsonPropertyName("follow")] public bool Follow { get; set; }
    /// <summary>Only flows at or after this time.</summary>
    [JsonPropertyName("since")] public DateTimeOffset? Since { get; set; }
    /// <summary>Only flows before this time (a follow stream ends when the time has passed).</summary>
    [JsonPropertyName("until")] public DateTimeOffset? Until { get; set; }
    /// <summary>Filters of which one must match.</summary>
    [JsonPropertyName("whitelist")] public List<FlowFilter>? Whitelist { get; set; }
    /// <summary>Filters of which none may match.</summary>
    [JsonPropertyName("blacklist")] public List<FlowFilter>? Blacklist { get; set; }
    /// <summary>Send each flow's captured bytes (<see cref="Flow.PacketData"/>), e.g. to write a capture file.</summary>
    [JsonPropertyName("include_packet")] public bool IncludePacket { get; set; }
}

/// <summary>One raw datapath record, as `membrane monitor` shows it (GET /v1/monitor).</summary>
public sealed class MonitorRecord
{
    /// <summary>When the agent read it.</summary>
    [JsonPropertyName("time")] public DateTimeOffset Time { get; set; }
    /// <summary>The record type number (the low nibble of the seed frame's first byte).</summary>
    [JsonPropertyName("type")] public int Type { get; set; }
    /// <summary>The type's name: drop, trace, policy-verdict, or unknown.</summary>
    [JsonPropertyName("type_name")] public string TypeName { get; set; } = "";
    /// <summary>The subtype byte.</summary>
    [JsonPropertyName("sub_type")] public int SubType { get; set; }
    /// <summary>The record's length (header included).</summary>
    [JsonPropertyName("length")] public int Length { get; set; }
    /// <summary>The record id.</summary>
    [JsonPropertyName("id")] public uint Id { get; set; }
    /// <summary>The body after the 8-byte header, in hex.</summary>
    [JsonPropertyName("body")] public string Body { get; set; } = "";
}

/// <summary>GET /v1/flows/status: the observer's counters.</summary>
public sealed class FlowStatusResponse
{
    /// <summary>Flows the buffer holds now.</summary>
    [JsonPropertyName("num_flows")] public int NumFlows { get; set; }
    /// <summary>Flows it can hold.</summary>
    [JsonPropertyName("max_flows")] public int MaxFlows { get; set; }
    /// <summary>Records read since the agent started.</summary>
    [JsonPropertyName("seen_flows")] public ulong SeenFlows { get; set; }
    /// <summary>Records the kernel could not write because its ring buffer was full.</summary>
    [JsonPropertyName("lost_kernel")] public ulong LostKernel { get; set; }
    /// <summary>Records the agent's reader dropped because it fell behind.</summary>
    [JsonPropertyName("lost_agent")] public ulong LostAgent { get; set; }
    /// <summary>Records that could not be decoded.</summary>
    [JsonPropertyName("undecodable")] public ulong Undecodable { get; set; }
    /// <summary>The datapath's trace aggregation: none, medium, maximum.</summary>
    [JsonPropertyName("monitor_aggregation")] public string MonitorAggregation { get; set; } = "";
}

/// <summary>Names of the flow fields' values, shared by the agent and the CLI.</summary>
public static class FlowNames
{
    /// <summary>Hubble's unknown direction.</summary>
    public const string DirectionUnknown = "TRAFFIC_DIRECTION_UNKNOWN";
    /// <summary>Forwarded.</summary>
    public const string Forwarded = "FORWARDED";
    /// <summary>Dropped.</summary>
    public const string Dropped = "DROPPED";
    /// <summary>Cilium's monitor type of a drop.</summary>
    public const int EventDrop = 1;
    /// <summary>Cilium's monitor type of a trace.</summary>
    public const int EventTrace = 4;
    /// <summary>Cilium's monitor type of a policy verdict.</summary>
    public const int EventPolicyVerdict = 5;
}
