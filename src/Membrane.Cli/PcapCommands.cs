using System.CommandLine;
using Membrane.Capture;
using Membrane.Cli.Decode;

namespace Membrane.Cli;

/// <summary>
/// <c>membrane pcap decode FILE [--output text|json] [--count N]</c> and
/// <c>membrane pcap stats FILE [--output text|json]</c>: offline analysis of pcap and pcapng files.
/// A file that cannot be opened, or that turns out corrupt part-way, gives a message on stderr
/// naming the file and the byte offset and a non-zero exit code, after every good packet before
/// the problem has been printed (and counted).
/// </summary>
internal static class PcapCommands
{
    /// <summary>Exit code for a file that is missing, unreadable or corrupt.</summary>
    public const int ExitBadFile = 1;

    private const int OutputBufferSize = 1 << 16;

    public static Command Create()
    {
        var pcap = new Command("pcap", "Offline capture-file tools: decode and stats");
        pcap.Subcommands.Add(CreateDecode());
        pcap.Subcommands.Add(CreateStats());
        return pcap;
    }

    private static Option<string> OutputOption() =>
        new Option<string>("--output", "-o")
        {
            Description = "Output format: text (an indented tree) or json (one object per line)",
            DefaultValueFactory = _ => "text",
        }.AcceptOnlyFromAmong("text", "json");

    private static Command CreateDecode()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "A pcap or pcapng file" };
        var output = OutputOption();
        var count = new Option<int?>("--count", "-c") { Description = "Stop after this many packets" };
        count.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is < 1)
            {
                result.AddError("--count must be a positive number of packets");
            }
        });
        var command = new Command("decode", "Print every packet's full field breakdown (Wireshark field names and formats)")
        {
            file,
            output,
        };
        command.Options.Add(count);
        command.SetAction(parseResult =>
        {
            using var stdout = new BufferedStream(Console.OpenStandardOutput(), OutputBufferSize);
            return Decode(parseResult.GetValue(file)!.FullName, ParseFormat(parseResult.GetValue(output)),
                parseResult.GetValue(count), stdout, Console.Error);
        });
        return command;
    }

    private static Command CreateStats()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "A pcap or pcapng file" };
        var output = OutputOption();
        var command = new Command("stats", "Count packets, bytes, rate and the protocol hierarchy of a capture")
        {
            file,
            output,
        };
        command.SetAction(parseResult =>
        {
            using var stdout = new BufferedStream(Console.OpenStandardOutput(), OutputBufferSize);
            return Stats(parseResult.GetValue(file)!.FullName, ParseFormat(parseResult.GetValue(output)), stdout, Console.Error);
        });
        return command;
    }

    private static DecodeFormat ParseFormat(string? value) => value == "json" ? DecodeFormat.Json : DecodeFormat.Text;

    /// <summary>Decodes <paramref name="path"/> to <paramref name="stdout"/>; returns the exit code.</summary>
    internal static int Decode(string path, DecodeFormat format, int? count, Stream stdout, TextWriter stderr)
    {
        if (!TryOpen(path, stderr, out var reader))
        {
            return ExitBadFile;
        }
        using (reader)
        using (var writer = DecodeWriter.Create(stdout, format))
        {
            for (long n = 0; count is null || n < count; n++)
            {
                switch (reader.ReadNext(out var packet))
                {
                    case CaptureReadStatus.Packet:
                        writer.WritePacket(packet.Number, packet.TimestampNanoseconds, packet.OriginalLength, packet.LinkType, packet.Span, packet.Comments);
                        break;
                    case CaptureReadStatus.EndOfFile:
                        return 0;
                    default:
                        // Everything good before the break is out before the complaint.
                        writer.Flush();
                        ReportBadFile(path, reader.Error!.Value, stderr);
                        return ExitBadFile;
                }
            }
        }
        return 0;
    }

    /// <summary>Writes the statistics of <paramref name="path"/> to <paramref name="stdout"/>; returns the exit code.</summary>
    internal static int Stats(string path, DecodeFormat format, Stream stdout, TextWriter stderr)
    {
        if (!TryOpen(path, stderr, out var reader))
        {
            return ExitBadFile;
        }
        var stats = new CaptureStatistics();
        CaptureError? error = null;
        using (reader)
        {
            CaptureReadStatus status;
            while ((status = reader.ReadNext(out var packet)) == CaptureReadStatus.Packet)
            {
                stats.WritePacket(packet.Number, packet.TimestampNanoseconds, packet.OriginalLength, packet.LinkType, packet.Span);
            }
            if (status == CaptureReadStatus.Error)
            {
                error = reader.Error;
            }
        }
        // The statistics of the good part are still worth printing; the exit code says the file was bad.
        if (format == DecodeFormat.Json)
        {
            stats.WriteJson(stdout);
            stdout.Flush();
        }
        else
        {
            using var text = new StreamWriter(stdout, leaveOpen: true);
            stats.WriteText(text);
        }
        if (error is { } e)
        {
            ReportBadFile(path, e, stderr);
            return ExitBadFile;
        }
        return 0;
    }

    private static bool TryOpen(string path, TextWriter stderr, out CaptureReader reader)
    {
        reader = null!;
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"membrane: failed to open capture file {path}: {e.Message}");
            return false;
        }
        if (!CaptureReader.TryOpen(stream, out var opened, out var error))
        {
            ReportBadFile(path, error, stderr);
            return false;
        }
        reader = opened!;
        return true;
    }

    // CaptureError.Message reads "at byte N: what was expected, what was found".
    private static void ReportBadFile(string path, CaptureError error, TextWriter stderr) =>
        stderr.WriteLine($"membrane: failed to read capture file {path} {error.Message} ({error.Reason})");
}
