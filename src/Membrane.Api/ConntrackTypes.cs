using System.Text.Json.Serialization;

namespace Membrane.Api;

/// <summary>
/// One connection of the datapath's conntrack tables (GET /v1/bpf/ct). The tuple is the
/// originator's first packet: <see cref="Source"/> opened the connection to
/// <see cref="Destination"/>. ICMP echo entries carry the echo identifier in
/// <see cref="IcmpId"/> and no ports.
/// </summary>
public sealed record BpfConntrackEntry
{
    /// <summary>"ipv4" or "ipv6": the table.</summary>
    [JsonPropertyName("family")] public required string Family { get; init; }
    /// <summary>"tcp", "udp", "icmp", "icmpv6", "sctp", or the IP protocol number for others.</summary>
    [JsonPropertyName("protocol")] public required string Protocol { get; init; }
    /// <summary>The IP protocol number.</summary>
    [JsonPropertyName("protocolNumber")] public int ProtocolNumber { get; init; }
    [JsonPropertyName("source")] public required string Source { get; init; }
    /// <summary>Absent for ICMP.</summary>
    [JsonPropertyName("sourcePort")] public int? SourcePort { get; init; }
    [JsonPropertyName("destination")] public required string Destination { get; init; }
    /// <summary>Absent for ICMP.</summary>
    [JsonPropertyName("destinationPort")] public int? DestinationPort { get; init; }
    /// <summary>The ICMP echo identifier (ICMP and ICMPv6 only).</summary>
    [JsonPropertyName("icmpId")] public int? IcmpId { get; init; }
    /// <summary>Linux's conntrack state name: SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE, SYN_SENT2; UNREPLIED or REPLIED for non-TCP.</summary>
    [JsonPropertyName("state")] public required string State { get; init; }
    /// <summary>"from-pod" (the endpoint opened it) or "to-pod" (the node's stack opened it toward the endpoint).</summary>
    [JsonPropertyName("origin")] public required string Origin { get; init; }
    /// <summary>True once the responder has sent.</summary>
    [JsonPropertyName("replySeen")] public bool ReplySeen { get; init; }
    [JsonPropertyName("packetsOriginal")] public ulong PacketsOriginal { get; init; }
    [JsonPropertyName("bytesOriginal")] public ulong BytesOriginal { get; init; }
    [JsonPropertyName("packetsReply")] public ulong PacketsReply { get; init; }
    [JsonPropertyName("bytesReply")] public ulong BytesReply { get; init; }
    /// <summary>TCP flags seen from the originator ("SYN", "ACK", "FIN", "RST", "PSH", "URG", "ECE", "CWR"); absent for non-TCP.</summary>
    [JsonPropertyName("tcpFlagsOriginal")] public IReadOnlyList<string>? TcpFlagsOriginal { get; init; }
    /// <summary>TCP flags seen from the responder; absent for non-TCP.</summary>
    [JsonPropertyName("tcpFlagsReply")] public IReadOnlyList<string>? TcpFlagsReply { get; init; }
    /// <summary>The originator's security identity (0: not known).</summary>
    [JsonPropertyName("sourceIdentity")] public uint SourceIdentity { get; init; }
    /// <summary>Seconds since the entry was made.</summary>
    [JsonPropertyName("ageSeconds")] public long AgeSeconds { get; init; }
    /// <summary>Seconds since its last packet.</summary>
    [JsonPropertyName("idleSeconds")] public long IdleSeconds { get; init; }
    /// <summary>Seconds until it expires; negative: expired, removed by the next garbage collection.</summary>
    [JsonPropertyName("expiresInSeconds")] public long ExpiresInSeconds { get; init; }
}

/// <summary>The answer to DELETE /v1/bpf/ct (flush).</summary>
public sealed record ConntrackFlushResponse(
    [property: JsonPropertyName("deleted")] int Deleted);

/// <summary>What one garbage collection found in one conntrack table.</summary>
public sealed record ConntrackTableStats
{
    /// <summary>"ipv4" or "ipv6".</summary>
    [JsonPropertyName("family")] public required string Family { get; init; }
    /// <summary>Entries read.</summary>
    [JsonPropertyName("scanned")] public int Scanned { get; init; }
    /// <summary>Expired entries removed.</summary>
    [JsonPropertyName("deleted")] public int Deleted { get; init; }
    /// <summary>Entries left after the run.</summary>
    [JsonPropertyName("entries")] public int Entries { get; init; }
    /// <summary>The table's size (--ct-max-entries when it was made).</summary>
    [JsonPropertyName("maxEntries")] public int MaxEntries { get; init; }
    /// <summary>entries / maxEntries, 0 … 1.</summary>
    [JsonPropertyName("fill")] public double Fill { get; init; }
    /// <summary>True when fill is above the pressure threshold: new connections evict the least recently used ones.</summary>
    [JsonPropertyName("pressure")] public bool Pressure { get; init; }
}

/// <summary>One garbage collection of the conntrack tables (POST /v1/bpf/ct/gc; <c>lastGc</c> of the stats).</summary>
public sealed record ConntrackGcRunInfo
{
    /// <summary>When the run started (UTC).</summary>
    [JsonPropertyName("time")] public required DateTimeOffset Time { get; init; }
    /// <summary>"interval" (the agent's schedule) or "request" (POST /v1/bpf/ct/gc).</summary>
    [JsonPropertyName("trigger")] public required string Trigger { get; init; }
    [JsonPropertyName("durationMs")] public double DurationMs { get; init; }
    [JsonPropertyName("scanned")] public int Scanned { get; init; }
    [JsonPropertyName("deleted")] public int Deleted { get; init; }
    /// <summary>ipv4 then ipv6.</summary>
    [JsonPropertyName("tables")] public IReadOnlyList<ConntrackTableStats> Tables { get; init; } = [];
}

/// <summary>Conntrack lifetimes in seconds, as the datapath applies them.</summary>
public sealed record ConntrackTimeoutsInfo
{
    [JsonPropertyName("tcpSyn")] public long TcpSyn { get; init; }
    [JsonPropertyName("tcpEstablished")] public long TcpEstablished { get; init; }
    [JsonPropertyName("tcpClose")] public long TcpClose { get; init; }
    [JsonPropertyName("other")] public long Other { get; init; }
}

/// <summary>GET /v1/bpf/ct/stats: table pressure and the conntrack garbage collector.</summary>
public sealed record ConntrackStatsResponse
{
    /// <summary>The lifetimes the datapath gives entries.</summary>
    [JsonPropertyName("timeouts")] public required ConntrackTimeoutsInfo Timeouts { get; init; }
    /// <summary>"adaptive" or "fixed" (--ct-gc-interval).</summary>
    [JsonPropertyName("gcMode")] public required string GcMode { get; init; }
    /// <summary>The interval before the next scheduled run.</summary>
    [JsonPropertyName("gcIntervalSeconds")] public double GcIntervalSeconds { get; init; }
    /// <summary>The adaptive interval's bounds.</summary>
    [JsonPropertyName("gcMinIntervalSeconds")] public double GcMinIntervalSeconds { get; init; }
    [JsonPropertyName("gcMaxIntervalSeconds")] public double GcMaxIntervalSeconds { get; init; }
    /// <summary>When the next scheduled run is due (absent before the first run).</summary>
    [JsonPropertyName("nextGc")] public DateTimeOffset? NextGc { get; init; }
    /// <summary>The fill above which a table is under pressure (0.9).</summary>
    [JsonPropertyName("pressureThreshold")] public double PressureThreshold { get; init; }
    /// <summary>Runs since the agent started, scheduled and requested.</summary>
    [JsonPropertyName("runs")] public long Runs { get; init; }
    /// <summary>Entries all those runs removed.</summary>
    [JsonPropertyName("deletedTotal")] public long DeletedTotal { get; init; }
    /// <summary>The most recent run, absent before the first.</summary>
    [JsonPropertyName("lastGc")] public ConntrackGcRunInfo? LastGc { get; init; }
}
