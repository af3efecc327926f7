using System.CommandLine;
using System.Text;
using System.Text.Json;
using Membrane.Api;

namespace Membrane.Cli.Client;

/// <summary>
/// <c>membrane monitor</c>: the datapath's raw ring-buffer records as the agent reads them,
/// undecoded (type, subtype, length, id, body in hex), for debugging the datapath itself, as
/// <c>cilium-dbg monitor --hex</c> does.
/// </summary>
internal static class MonitorCommand
{
    public static Command Create()
    {
        var count = new Option<int?>("--count", "-n") { Description = "Stop after N records", HelpName = "N" };
        var output = new Option<string>("--output", "-o")
        {
            Description = """
                Output format: text (one line a record: TYPE sub_type=N len=N id=0xXXXXXXXX and the body's
                bytes in hex) or json (one object a line: time, type, type_name, sub_type, length, id, body)
                """,
            DefaultValueFactory = _ => "text",
        }.AcceptOnlyFromAmong("text", "json");
        var command = new Command("monitor",
            "Stream the datapath's raw records (drop, trace, policy-verdict) as they arrive, until Ctrl-C or --count; membrane observe shows them decoded")
        {
            count, output,
        };
        command.SetClientAction(async (client, parse, outer) =>
        {
            if (parse.GetValue(count) is < 1)
            {
                await Console.Error.WriteLineAsync($"error: failed to read --count {parse.GetValue(count)}: it must be at least 1").ConfigureAwait(false);
                return 1;
            }
            var max = parse.GetValue(count);
            using var interrupt = new FlowInterrupt(outer);
            var ct = interrupt.Token;
            var json = parse.GetValue(output) == "json";
            // Flushed after every record and never disposed: a dispose after a failed write would flush (and fail) again.
            var stdout = new StreamWriter(FlowWriter.OpenStandardOutput(), new UTF8Encoding(false), 1 << 16) { AutoFlush = false };
            var seen = 0;
            try
            {
                await foreach (var record in client.MonitorAsync(ct).ConfigureAwait(false))
                {
                    try
                    {
                        stdout.Write(json ? JsonSerializer.Serialize(record, ApiJsonContext.Default.MonitorRecord) : Format(record));
                        stdout.Write('\n');
                        stdout.Flush();
                    }
                    catch (IOException)
                    {
                        // The reader went away (`membrane monitor | head`): the end, as SIGPIPE would be.
                        return 0;
                    }
                    if (++seen == max)
                    {
                        break;
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                // Ctrl-C: the normal end of the stream.
            }
            catch (Exception e) when (seen > 0 && e is HttpRequestException or IOException or JsonException)
            {
                await Console.Error.WriteLineAsync($"error: failed to read the agent's record stream after {seen} record(s): {e.Message}").ConfigureAwait(false);
                return 1;
            }
            return 0;
        });
        return command;
    }

    /// <summary>The text line of a record: <c>drop sub_type=133 len=96 id=0x01000005 00 08 00 00 …</c>.</summary>
    internal static string Format(MonitorRecord record)
    {
        var text = new StringBuilder();
        text.Append(record.TypeName is { Length: > 0 } name ? name : $"type-{record.Type}")
            .Append(" sub_type=").Append(record.SubType)
            .Append(" len=").Append(record.Length)
            .Append(" id=0x").Append(record.Id.ToString("x8", System.Globalization.CultureInfo.InvariantCulture));
        var body = record.Body.AsSpan().Trim();
        for (var i = 0; i < body.Length; i++)
        {
            // The agent sends plain hex; pair the digits into bytes, skipping any separators it may add.
            if (!char.IsAsciiHexDigit(body[i]))
            {
                continue;
            }
            if (i + 1 < body.Length && char.IsAsciiHexDigit(body[i + 1]))
            {
                text.Append(' ').Append(char.ToLowerInvariant(body[i])).Append(char.ToLowerInvariant(body[i + 1]));
                i++;
            }
            else
            {
                text.Append(' ').Append(char.ToLowerInvariant(body[i]));
            }
        }
        return text.ToString();
    }
}
