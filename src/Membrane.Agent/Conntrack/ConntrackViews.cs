using System.Globalization;
using Membrane.Api;
using Membrane.Datapath;
using Membrane.Datapath.Conntrack;
using Membrane.Packets;

namespace Membrane.Agent.Conntrack;

/// <summary>The API's views (Membrane.Api) of conntrack entries, runs and stats, and the names they use.</summary>
public static class ConntrackViews
{
    private const byte Sctp = 132; // IANA protocol-numbers

    /// <summary>TCP header flag bits, low to high (RFC 9293 3.1; ECE/CWR RFC 3168).</summary>
    private static readonly string[] s_tcpFlags = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];

    /// <summary>The API form of an entry.</summary>
    public static BpfConntrackEntry ToApi(ConntrackEntry e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var tcp = e.Protocol == IpProtocols.Tcp;
        return new BpfConntrackEntry
        {
            Family = ConntrackCollector.Name(e.Family),
            Protocol = ProtocolName(e.Protocol),
            ProtocolNumber = e.Protocol,
            Source = e.Source.ToString(),
            SourcePort = e.IsIcmp ? null : e.SourcePort,
            Destination = e.Destination.ToString(),
            DestinationPort = e.IsIcmp ? null : e.DestinationPort,
            IcmpId = e.IcmpId,
            State = StateName(e.State),
            Origin = e.Origin switch
            {
                CtOrigin.FromPod => "from-pod",
                CtOrigin.ToPod => "to-pod",
                _ => "unknown",
            },
            ReplySeen = e.ReplySeen,
            PacketsOriginal = e.PacketsOriginal,
            BytesOriginal = e.BytesOriginal,
            PacketsReply = e.PacketsReply,
            BytesReply = e.BytesReply,
            TcpFlagsOriginal = tcp ? TcpFlagNames(e.TcpFlagsOriginal) : null,
            TcpFlagsReply = tcp ? TcpFlagNames(e.TcpFlagsReply) : null,
            SourceIdentity = e.SourceIdentity,
            AgeSeconds = (long)e.Age.TotalSeconds,
            IdleSeconds = (long)e.Idle.TotalSeconds,
            ExpiresInSeconds = (long)e.ExpiresIn.TotalSeconds,
        };
    }

    /// <summary>The API form of a garbage collection.</summary>
    public static ConntrackGcRunInfo ToApi(ConntrackGcRun run)
    {
        ArgumentNullException.ThrowIfNull(run);
        return new ConntrackGcRunInfo
        {
            Time = run.Time,
            Trigger = run.Trigger == ConntrackGcTrigger.Interval ? "interval" : "request",
            DurationMs = Math.Round(run.Result.Duration.TotalMilliseconds, 3),
            Scanned = run.Result.Scanned,
            Deleted = run.Result.Deleted,
            Tables = [.. run.Result.Tables.Select(t => new ConntrackTableStats
            {
                Family = ConntrackCollector.Name(t.Family),
                Scanned = t.Scanned,
                Deleted = t.Deleted,
                Entries = t.Alive,
                MaxEntries = t.MaxEntries,
                Fill = Math.Round(t.Fill, 6),
                Pressure = t.Fill > ConntrackGcInterval.PressureFill,
            })],
        };
    }

    /// <summary>The answer of GET /v1/bpf/ct/stats.</summary>
    public static ConntrackStatsResponse Stats(ConntrackCollector collector, ConntrackTimeouts timeouts)
    {
        ArgumentNullException.ThrowIfNull(collector);
        ArgumentNullException.ThrowIfNull(timeouts);
        return new ConntrackStatsResponse
        {
            Timeouts = new ConntrackTimeoutsInfo
            {
                TcpSyn = (long)timeouts.TcpSyn.TotalSeconds,
                TcpEstablished = (long)timeouts.TcpEstablished.TotalSeconds,
                TcpClose = (long)timeouts.TcpClose.TotalSeconds,
                Other = (long)timeouts.Other.TotalSeconds,
            },
            GcMode = collector.FixedInterval is null ? "adaptive" : "fixed",
            GcIntervalSeconds = collector.Interval.TotalSeconds,
            GcMinIntervalSeconds = (collector.FixedInterval ?? ConntrackGcInterval.Min).TotalSeconds,
            GcMaxIntervalSeconds = (collector.FixedInterval ?? ConntrackGcInterval.Max).TotalSeconds,
            NextGc = collector.NextRun,
            PressureThreshold = ConntrackGcInterval.PressureFill,
            Runs = collector.Runs,
            DeletedTotal = collector.DeletedTotal,
            LastGc = collector.LastRun is { } run ? ToApi(run) : null,
        };
    }

    /// <summary>Linux's name of a conntrack state (uapi nf_conntrack_tcp.h; UNREPLIED/REPLIED for pseudo-connections).</summary>
    public static string StateName(CtState state) => state switch
    {
        CtState.None => "NONE",
        CtState.SynSent => "SYN_SENT",
        CtState.SynRecv => "SYN_RECV",
        CtState.Established => "ESTABLISHED",
        CtState.FinWait => "FIN_WAIT",
        CtState.CloseWait => "CLOSE_WAIT",
        CtState.LastAck => "LAST_ACK",
        CtState.TimeWait => "TIME_WAIT",
        CtState.Close => "CLOSE",
        CtState.SynSent2 => "SYN_SENT2",
        CtState.Unreplied => "UNREPLIED",
        CtState.Replied => "REPLIED",
        _ => ((byte)state).ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>"tcp", "udp", "icmp", "icmpv6", "sctp", else the number.</summary>
    public static string ProtocolName(byte protocol) => protocol switch
    {
        IpProtocols.Tcp => "tcp",
        IpProtocols.Udp => "udp",
        IpProtocols.Icmp => "icmp",
        IpProtocols.Icmpv6 => "icmpv6",
        Sctp => "sctp",
        _ => protocol.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>Reads a protocol as <see cref="ProtocolName"/> writes it (or any number 0–255).</summary>
    public static bool TryParseProtocol(string text, out byte protocol)
    {
        switch (text.ToLowerInvariant())
        {
            case "tcp":
                protocol = IpProtocols.Tcp;
                return true;
            case "udp":
                protocol = IpProtocols.Udp;
                return true;
            case "icmp":
                protocol = IpProtocols.Icmp;
                return true;
            case "icmpv6" or "ipv6-icmp":
                protocol = IpProtocols.Icmpv6;
                return true;
            case "sctp":
                protocol = Sctp;
                return true;
            default:
                return byte.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out protocol);
        }
    }

    /// <summary>The names of the bits set in a TCP flags byte, FIN first.</summary>
    public static IReadOnlyList<string> TcpFlagNames(byte flags) =>
        [.. s_tcpFlags.Where((_, bit) => (flags & (1 << bit)) != 0)];
}
