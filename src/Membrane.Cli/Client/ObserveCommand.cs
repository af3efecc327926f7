using System.CommandLine;
using System.Text;
using Membrane.Api;

namespace Membrane.Cli.Client;

/// <summary>
/// <c>membrane observe</c>: the agent's flows as <c>hubble observe</c> shows them — the last N
/// of its buffer, a time range, or a follow stream — selected by hubble's filter flags (the
/// agent applies them), printed compact, as JSON or as a table, and optionally written to a
/// pcapng file with one comment per packet.
/// </summary>
internal static class ObserveCommand
{
    /// <summary>hubble observe's default when neither a count, a time range nor --follow is given.</summary>
    public const int DefaultLast = 20;

    /// <summary>
    /// "Every buffered flow" when following: the API reads number 0 with follow as "none, only new
    /// ones", so --all -f and --since T -f ask for the last N with N beyond any buffer.
    /// </summary>
    public const int EveryBufferedFlow = int.MaxValue;

    public static Command Create()
    {
        var last = new Option<int?>("--last")
        {
            Description = $"The last N matching flows of the agent's buffer (default {DefaultLast} unless --follow, --since, --until or --all is given; with --follow: N, then new ones; --follow alone: only new ones)",
            HelpName = "N",
        };
        var all = new Option<bool>("--all") { Description = "Every matching flow of the agent's buffer (it holds 4,096 by default); with --follow, then new ones" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep streaming new flows as they happen until Ctrl-C (or --until passes)" };
        var since = new Option<string?>("--since")
        {
            Description = "Only flows at or after this time: a duration back from now (30s, 5m, 1h30m) or RFC 3339 (2026-11-27T22:51:28Z)",
            HelpName = "TIME",
        };
        var until = new Option<string?>("--until")
        {
            Description = "Only flows before this time (same forms as --since); a follow stream ends when it has passed",
            HelpName = "TIME",
        };
        var output = new Option<string>("--output", "-o")
        {
            Description = """
                Output format: compact (default; one line a flow: time: source (identity) -> destination
                (identity) kind [direction] VERDICT [(drop reason)] (summary); replies are printed
                destination first with <-, <> when the record does not say), json (each line of the
                agent's stream, in Hubble's field names: {"flow": {time, uuid, verdict (FORWARDED|DROPPED),
                drop_reason, drop_reason_desc, ethernet {source, destination}, IP {source, destination,
                ipVersion}, l4 {TCP {source_port, destination_port, flags {FIN, SYN, RST, PSH, ACK, URG,
                ECE, CWR}} | UDP | SCTP {source_port, destination_port} | ICMPv4 | ICMPv6 {type, code}},
                source, destination {ID, identity, namespace, labels, pod_name}, Type, node_name,
                event_type {type, sub_type}, traffic_direction, trace_observation_point,
                policy_match_type, is_reply, interface {index, name}, Summary, packet_length}} or
                {"lost_events": {source, num_events_lost}}), or table (TIMESTAMP SOURCE DESTINATION TYPE
                VERDICT SUMMARY). compact and table report lost events on stderr as "EVENTS LOST: N (source)"
                """,
            DefaultValueFactory = _ => "compact",
        }.AcceptOnlyFromAmong(FlowWriter.Formats);
        var noColor = new Option<bool>("--no-color")
        {
            Description = "No ANSI colours in compact output (they are on only when stdout is a terminal and NO_COLOR is unset)",
        };
        var write = new Option<string?>("--write", "-w")
        {
            Description = """
                Also write the selected flows' captured packets to this pcapng file (link type Ethernet,
                one interface per device, each packet commented with verdict, drop reason, kind,
                direction, observation point, source/destination pod or address and identity: tshark
                -T fields -e frame.comment shows them). The flows are still printed in the --output
                form; in json the packet bytes are left out of stdout (they are in the file). A summary
                line goes to stderr at the end. Ctrl-C ends a --follow capture with a complete file
                """,
            HelpName = "FILE",
        };
        var printRaw = new Option<bool>("--print-raw-filters")
        {
            Description = "Print the request the flags make (count, times, whitelist and blacklist filters as the agent receives them, JSON) and exit without asking the agent, as hubble's flag of that name",
        };
        var filters = new FlowFilterFlags();

        var command = new Command("observe", """
            Show flows: who talked to whom, what was forwarded or dropped and why. Filters are hubble
            observe's: a flag given twice ORs its values, different flags AND, --not before a flag
            excludes what it matches; --pod/--label/--ip/--port/--identity match either end (given
            together, they must match at the same end; one-sided flags apply whichever end matched).
            Without --last, --all, --follow or a time range: the last 20 flows. Examples: membrane
            observe --verdict DROPPED -f; membrane observe --to-pod default/db --to-port 5432 --last
            100 -o json; membrane observe --pod web --not --type trace:to-stack --write web.pcapng
            """)
        {
            last, all, follow, since, until, output, noColor, write, printRaw,
        };
        foreach (var option in filters.Options)
        {
            command.Options.Add(option);
        }

        command.SetClientAction(async (client, parse, ct) =>
        {
            ObserveRequest request;
            try
            {
                request = BuildRequest(parse.GetValue(last), parse.GetValue(all), parse.GetValue(follow),
                    parse.GetValue(since), parse.GetValue(until), DateTimeOffset.UtcNow, filters.Build(parse));
            }
            catch (ArgumentException e)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}").ConfigureAwait(false);
                return 1;
            }
            var path = parse.GetValue(write);
            request.IncludePacket = path is not null;
            if (parse.GetValue(printRaw))
            {
                ClientCommand.WriteJson(request, ApiJsonContext.Default.ObserveRequest);
                return 0;
            }
            var format = parse.GetValue(output) ?? "compact";
            var color = format == "compact" && !parse.GetValue(noColor) && !Console.IsOutputRedirected &&
                        string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));
            return await RunAsync(client, request, format, color, path, ct).ConfigureAwait(false);
        });
        return command;
    }

    /// <summary>
    /// The request for the flags given: hubble's count rules (--last N; --all or a time range:
    /// every matching flow of the buffer, then with --follow new ones; --follow alone: only new
    /// flows; nothing: the last 20) and the filters.
    /// </summary>
    /// <exception cref="ArgumentException">A bad count or time, or conflicting flags.</exception>
    internal static ObserveRequest BuildRequest(int? last, bool all, bool follow, string? since, string? until, DateTimeOffset now,
        (List<FlowFilter>? Whitelist, List<FlowFilter>? Blacklist) filters)
    {
        if (last is < 1)
        {
            throw new ArgumentException($"failed to read --last {last}: it must be at least 1");
        }
        if (all && last is not null)
        {
            throw new ArgumentException("failed to read --all: it cannot be combined with --last");
        }
        var request = new ObserveRequest
        {
            Follow = follow,
            Since = Time("--since", since, now),
            Until = Time("--until", until, now),
            Whitelist = filters.Whitelist,
            Blacklist = filters.Blacklist,
        };
        if (request.Since is { } from && request.Until is { } to && from >= to)
        {
            throw new ArgumentException($"failed to read --since and --until: {from:O} is not before {to:O}");
        }
        var everything = all || request.Since is not null;
        request.Number = last ?? (follow
            ? everything ? EveryBufferedFlow : 0
            : everything || request.Until is not null ? 0 : DefaultLast);
        return request;
    }

    private static DateTimeOffset? Time(string flag, string? value, DateTimeOffset now) =>
        value is null ? null :
        FlowTime.TryParse(value, now, out var time, out var error) ? time :
        throw new ArgumentException($"failed to read {flag}: {error}");

    private static async Task<int> RunAsync(MembraneClient client, ObserveRequest request, string format, bool color, string? path,
        CancellationToken outer)
    {
        using var interrupt = new FlowInterrupt(outer);
        var ct = interrupt.Token;
        FlowCaptureFile? file = null;
        if (path is not null)
        {
            // Created before the agent is asked, so an unwritable path fails first.
            try
            {
                file = new FlowCaptureFile(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"error: failed to create {path}: {e.Message}").ConfigureAwait(false);
                return 1;
            }
        }
        var stdout = new StreamWriter(FlowWriter.OpenStandardOutput(), new UTF8Encoding(false), 1 << 16) { AutoFlush = false };
        var writer = FlowWriter.Create(format, stdout, Console.Error, color, request.Follow);
        var received = 0L;
        var exitCode = 0;
        // A reader that went away (`membrane observe -f | head`) ends the command quietly, as a
        // SIGPIPE ends hubble; .NET ignores SIGPIPE, so it shows as an IOException on write.
        var stdoutClosed = false;
        try
        {
            await foreach (var line in client.ObserveAsync(request, ct).ConfigureAwait(false))
            {
                received++;
                if (line.Flow is { } flow && file is not null)
                {
                    try
                    {
                        file.Write(flow);
                    }
                    catch (IOException e)
                    {
                        await Console.Error.WriteLineAsync($"error: failed to write {file.Path}: {e.Message}").ConfigureAwait(false);
                        exitCode = 1;
                        break;
                    }
                    // The bytes are in the file; on stdout they would only be a long base64 string.
                    flow.PacketData = null;
                }
                try
                {
                    writer.Write(line);
                }
                catch (IOException)
                {
                    stdoutClosed = true;
                    break;
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Ctrl-C: the normal end of a follow stream. What was received is printed and written below.
        }
        catch (Exception e) when (e is AgentUnreachableException or MembraneApiException && received == 0)
        {
            // Nothing came: no capture file is better than an empty one that looks like a result.
            if (file is not null)
            {
                file.Dispose();
                File.Delete(file.Path);
            }
            throw;
        }
        catch (Exception e) when (e is HttpRequestException or IOException or System.Text.Json.JsonException)
        {
            await Console.Error.WriteLineAsync($"error: failed to read the agent's flow stream after {received} line(s): {e.Message}").ConfigureAwait(false);
            exitCode = 1;
        }
        try
        {
            if (!stdoutClosed)
            {
                writer.Complete();
            }
            await stdout.DisposeAsync().ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The reader went away while the rest was printed: nothing more to tell it.
        }
        if (file is not null)
        {
            file.Dispose();
            await Console.Error.WriteLineAsync(
                $"wrote {file.Written} packet(s) to {file.Path}" + (file.WithoutPacket > 0 ? $"; {file.WithoutPacket} flow(s) carried no packet bytes" : ""))
                .ConfigureAwait(false);
        }
        return exitCode;
    }
}
