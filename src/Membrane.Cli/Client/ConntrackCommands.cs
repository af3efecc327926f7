using System.CommandLine;
using System.Globalization;
using Membrane.Agent.Conntrack;
using Membrane.Api;

namespace Membrane.Cli.Client;

/// <summary>
/// <c>membrane bpf ct list|flush|stats|gc</c>: the datapath's connection tracking tables, as
/// <c>cilium bpf ct list global</c> shows them but one line per connection in words.
/// </summary>
internal static class ConntrackCommands
{
    public static Command Create()
    {
        var ct = new Command("ct", "The datapath's connection tracking tables (IPv4 and IPv6)");
        ct.Subcommands.Add(List());
        ct.Subcommands.Add(Flush());
        ct.Subcommands.Add(Stats());
        ct.Subcommands.Add(Gc());
        return ct;
    }

    private static Command List()
    {
        var output = ClientCommand.Output();
        var family = new Option<string?>("--family") { Description = "Only ipv4 or ipv6 connections" };
        family.AcceptOnlyFromAmong("ipv4", "ipv6");
        var protocol = new Option<string?>("--protocol") { Description = "Only this protocol: tcp, udp, icmp, icmpv6, sctp or a number" };
        var address = new Option<string?>("--address") { Description = "Only connections with this address at either end" };
        var port = new Option<int?>("--port") { Description = "Only connections with this port (or ICMP echo id) at either end" };
        output.Description = """
            Output format: text (a table) or json: an array sorted by family, protocol, source,
            destination, each element {family ("ipv4"|"ipv6"), protocol ("tcp"|"udp"|"icmp"|
            "icmpv6"|"sctp"|number), protocolNumber, source, sourcePort, destination,
            destinationPort (ports absent for ICMP), icmpId (echo identifier, ICMP only), state
            (SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE,
            SYN_SENT2; UNREPLIED|REPLIED for non-TCP), origin ("from-pod"|"to-pod"), replySeen,
            packetsOriginal, bytesOriginal, packetsReply, bytesReply, tcpFlagsOriginal,
            tcpFlagsReply (arrays of "FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"; TCP
            only), sourceIdentity, ageSeconds, idleSeconds, expiresInSeconds (negative: expired,
            removed by the next garbage collection)}
            """;
        var list = new Command("list",
            "List the tracked connections: protocol, originator -> responder, state, the hook that opened it, packets and bytes each way, time to expiry")
        {
            family, protocol, address, port, output,
        };
        list.SetClientAction(async (client, parse, ct) =>
        {
            var entries = await client.BpfConntrackAsync(parse.GetValue(family), parse.GetValue(protocol), parse.GetValue(address),
                parse.GetValue(port), ct).ConfigureAwait(false);
            if (parse.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(entries, ApiJsonContext.Default.ListBpfConntrackEntry);
                return 0;
            }
            WriteTable(entries, Console.Out);
            return 0;
        });
        return list;
    }

    /// <summary>The text form of <c>bpf ct list</c>.</summary>
    internal static void WriteTable(IReadOnlyList<BpfConntrackEntry> entries, TextWriter output)
    {
        var table = new TableWriter("PROTO", "SOURCE", "DESTINATION", "STATE", "ORIGIN", "PACKETS ->/<-", "BYTES ->/<-", "EXPIRES IN");
        foreach (var e in entries)
        {
            table.Add(e.Protocol,
                Endpoint(e.Source, e.SourcePort) + (e.IcmpId is { } id ? $" id={id}" : ""),
                Endpoint(e.Destination, e.DestinationPort),
                e.State, e.Origin,
                $"{e.PacketsOriginal}/{e.PacketsReply}",
                $"{e.BytesOriginal}/{e.BytesReply}",
                e.ExpiresInSeconds < 0 ? "expired" : ConntrackSettings.Format(TimeSpan.FromSeconds(e.ExpiresInSeconds)));
        }
        table.Write(output);
    }

    // 198.18.0.2:80, [fd00::2]:80 (RFC 3986 3.2.2), or the bare address without a port.
    private static string Endpoint(string address, int? port) =>
        port is not { } p ? address : address.Contains(':', StringComparison.Ordinal) ? $"[{address}]:{p}" : $"{address}:{p}";

    private static Command Flush()
    {
        var output = ClientCommand.Output();
        output.Description = """Output format: text or json: {"deleted": N}""";
        var flush = new Command("flush", "Delete every entry of both conntrack tables (connections carry on: their next packet is tracked afresh)")
        {
            output,
        };
        flush.SetClientAction(async (client, parse, ct) =>
        {
            var flushed = await client.BpfConntrackFlushAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(flushed, ApiJsonContext.Default.ConntrackFlushResponse);
                return 0;
            }
            Console.WriteLine($"Flushed {flushed.Deleted} conntrack {(flushed.Deleted == 1 ? "entry" : "entries")}");
            return 0;
        });
        return flush;
    }

    private static Command Stats()
    {
        var output = ClientCommand.Output();
        output.Description = """
            Output format: text or json: {timeouts: {tcpSyn, tcpEstablished, tcpClose, other}
            (seconds), gcMode ("adaptive"|"fixed"), gcIntervalSeconds, gcMinIntervalSeconds,
            gcMaxIntervalSeconds, nextGc (UTC), pressureThreshold, runs, deletedTotal, lastGc:
            {time, trigger ("interval"|"request"), durationMs, scanned, deleted, tables: [{family,
            scanned, deleted, entries, maxEntries, fill (0-1), pressure}]}}
            """;
        var stats = new Command("stats", "Table fill and pressure, the lifetimes in force, and the garbage collector's interval and last run")
        {
            output,
        };
        stats.SetClientAction(async (client, parse, ct) =>
        {
            var s = await client.BpfConntrackStatsAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(s, ApiJsonContext.Default.ConntrackStatsResponse);
                return 0;
            }
            WriteStats(s, DateTimeOffset.UtcNow, Console.Out);
            return 0;
        });
        return stats;
    }

    /// <summary>The text form of <c>bpf ct stats</c>, with "next in" relative to <paramref name="now"/>.</summary>
    internal static void WriteStats(ConntrackStatsResponse s, DateTimeOffset now, TextWriter output)
    {
        static string D(double seconds) => ConntrackSettings.Format(TimeSpan.FromSeconds(Math.Round(seconds)));

        if (s.LastGc is { } last)
        {
            var table = new TableWriter("TABLE", "ENTRIES", "MAX", "FILL", "PRESSURE");
            foreach (var t in last.Tables)
            {
                table.Add(t.Family, t.Entries.ToString(CultureInfo.InvariantCulture), t.MaxEntries.ToString(CultureInfo.InvariantCulture),
                    (t.Fill * 100).ToString("0.0", CultureInfo.InvariantCulture) + "%", t.Pressure ? "YES" : "no");
            }
            table.Write(output);
            output.WriteLine();
        }
        output.WriteLine($"Timeouts:   tcp-syn {D(s.Timeouts.TcpSyn)}, tcp-established {D(s.Timeouts.TcpEstablished)}, tcp-close {D(s.Timeouts.TcpClose)}, other {D(s.Timeouts.Other)}");
        var bounds = s.GcMode == "fixed" ? "fixed" : $"adaptive, {D(s.GcMinIntervalSeconds)} to {D(s.GcMaxIntervalSeconds)}";
        var next = s.NextGc is { } at ? $", next in {D(Math.Max(0, (at - now).TotalSeconds))}" : "";
        output.WriteLine($"GC:         every {D(s.GcIntervalSeconds)} ({bounds}){next}");
        output.WriteLine(s.LastGc is { } run
            ? $"Last GC:    {run.Time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)}Z ({run.Trigger}), {run.Deleted} of {run.Scanned} entries expired, {run.DurationMs.ToString("0.0", CultureInfo.InvariantCulture)} ms"
            : "Last GC:    none yet");
        output.WriteLine($"Runs:       {s.Runs}, {s.DeletedTotal} entries removed in total");
        if (s.LastGc?.Tables.Any(t => t.Pressure) == true)
        {
            output.WriteLine($"Warning:    a table is over {s.PressureThreshold * 100:0}% full: new connections evict the least recently used ones (raise --ct-max-entries)");
        }
    }

    private static Command Gc()
    {
        var output = ClientCommand.Output();
        output.Description = "Output format: text or json: the run, as the lastGc member of bpf ct stats";
        var gc = new Command("gc", "Garbage-collect the conntrack tables now (the agent also does so on its own schedule)")
        {
            output,
        };
        gc.SetClientAction(async (client, parse, ct) =>
        {
            var run = await client.BpfConntrackGcAsync(ct).ConfigureAwait(false);
            if (parse.GetValue(output) == "json")
            {
                ClientCommand.WriteJson(run, ApiJsonContext.Default.ConntrackGcRunInfo);
                return 0;
            }
            Console.WriteLine($"Removed {run.Deleted} expired of {run.Scanned} entries ({string.Join(", ", run.Tables.Select(t => $"{t.Family} {t.Deleted} of {t.Scanned}"))}) in {run.DurationMs.ToString("0.0", CultureInfo.InvariantCulture)} ms");
            return 0;
        });
        return gc;
    }
}
