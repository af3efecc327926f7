using System.Text;
using System.Text.Json;
using Membrane.Api;

namespace Membrane.Cli.Client;

/// <summary>
/// Prints a flow stream in one of <c>membrane observe</c>'s output forms. Each line is flushed
/// as it is written, so a follow stream shows flows as they happen even through a pipe.
/// </summary>
internal abstract class FlowWriter
{
    /// <summary>The output forms, the default first.</summary>
    public static readonly string[] Formats = ["compact", "json", "table"];

    /// <summary>A writer for <paramref name="format"/> (one of <see cref="Formats"/>).</summary>
    public static FlowWriter Create(string format, TextWriter stdout, TextWriter stderr, bool color, bool follow) => format switch
    {
        "json" => new JsonFlowWriter(stdout),
        "table" => new TableFlowWriter(stdout, stderr, follow),
        _ => new CompactFlowWriter(stdout, stderr, color),
    };

    /// <summary>Prints one line of the stream (a flow or a lost-events notice).</summary>
    public abstract void Write(FlowLine line);

    /// <summary>The stream has ended (or was interrupted): prints what is held back.</summary>
    public virtual void Complete()
    {
    }

    /// <summary>
    /// Standard output as a plain file descriptor stream. Console's own stream swallows EPIPE
    /// (it pretends a write to a reader that went away succeeded), so `membrane observe -f | head`
    /// would stream into nothing until Ctrl-C; through fd 1 directly the write fails with an
    /// IOException (.NET ignores SIGPIPE) and the command ends, as SIGPIPE ends hubble.
    /// </summary>
    public static Stream OpenStandardOutput() =>
        new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);

    /// <summary>What compact and table print on stderr for a lost-events line.</summary>
    protected static string LostText(LostEvents lost) => $"EVENTS LOST: {lost.NumEventsLost} ({lost.Source})";
}

/// <summary><c>-o json</c>: each line of the stream as one JSON object (<c>{"flow":{…}}</c> or <c>{"lost_events":{…}}</c>), as hubble's jsonpb output.</summary>
internal sealed class JsonFlowWriter(TextWriter stdout) : FlowWriter
{
    public override void Write(FlowLine line)
    {
        stdout.Write(JsonSerializer.Serialize(line, ApiJsonContext.Default.FlowLine));
        stdout.Write('\n');
        stdout.Flush();
    }
}

/// <summary>
/// <c>-o compact</c>: one line a flow, hubble's compact form —
/// <c>Nov 27 22:51:28.123: default/web:34567 (ID:258) -> default/db:5432 (ID:257) to-endpoint FORWARDED (TCP Flags: SYN)</c>;
/// a reply is printed destination first with <c>&lt;-</c>; a drop adds its reason after the
/// verdict, a policy verdict its direction before it. ANSI colours when asked for.
/// </summary>
internal sealed class CompactFlowWriter(TextWriter stdout, TextWriter stderr, bool color) : FlowWriter
{
    private const string Reset = "\e[0m", Red = "\e[31m", Green = "\e[32m", Yellow = "\e[33m", Magenta = "\e[35m", Cyan = "\e[36m";

    public override void Write(FlowLine line)
    {
        if (line.LostEvents is { } lost)
        {
            stderr.WriteLine(Paint(Yellow, LostText(lost)));
            stderr.Flush();
        }
        if (line.Flow is { } flow)
        {
            stdout.Write(Format(flow));
            stdout.Write('\n');
            stdout.Flush();
        }
    }

    /// <summary>The compact line of <paramref name="flow"/> (without a newline).</summary>
    public string Format(Flow flow)
    {
        var source = Paint(Cyan, FlowFormat.Source(flow)) + " " + Paint(Magenta, FlowFormat.Identity(flow.Source));
        var destination = Paint(Cyan, FlowFormat.Destination(flow)) + " " + Paint(Magenta, FlowFormat.Identity(flow.Destination));
        var arrow = FlowFormat.Arrow(flow);
        if (flow.IsReply == true)
        {
            (source, destination) = (destination, source);
        }
        var text = new StringBuilder();
        text.Append(FlowFormat.Time(flow.Time)).Append(": ")
            .Append(source.TrimEnd()).Append(' ').Append(arrow).Append(' ').Append(destination.TrimEnd())
            .Append(' ').Append(FlowFormat.Kind(flow));
        if (flow.EventType.Type == FlowNames.EventPolicyVerdict && FlowFormat.Direction(flow) is { } direction)
        {
            text.Append(' ').Append(direction);
        }
        var dropped = flow.Verdict == FlowNames.Dropped;
        text.Append(' ').Append(Paint(dropped ? Red : Green, flow.Verdict));
        if (FlowFormat.Reason(flow) is { } reason)
        {
            text.Append(' ').Append(Paint(Red, $"({reason})"));
        }
        if (flow.Summary is { Length: > 0 } summary)
        {
            text.Append(" (").Append(summary).Append(')');
        }
        return text.ToString();
    }

    private string Paint(string code, string text) => color && text.Length > 0 ? code + text + Reset : text;
}

/// <summary>
/// <c>-o table</c>: TIMESTAMP SOURCE DESTINATION TYPE VERDICT SUMMARY in aligned columns.
/// A finite stream is aligned as a whole when it ends; a follow stream cannot wait for its
/// end, so each row is printed at once with columns that widen as wider values arrive.
/// </summary>
internal sealed class TableFlowWriter(TextWriter stdout, TextWriter stderr, bool follow) : FlowWriter
{
    private static readonly string[] Headers = ["TIMESTAMP", "SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY"];
    private readonly TableWriter _table = new(Headers);
    // Follow mode's starting widths: a timestamp, a pod with a port, a kind, a verdict with a reason.
    private readonly int[] _widths = [19, 30, 30, 20, 10, 0];
    private bool _headerWritten;

    public override void Write(FlowLine line)
    {
        if (line.LostEvents is { } lost)
        {
            stderr.WriteLine(LostText(lost));
            stderr.Flush();
        }
        if (line.Flow is not { } flow)
        {
            return;
        }
        var kind = FlowFormat.Kind(flow);
        if (flow.EventType.Type == FlowNames.EventPolicyVerdict && FlowFormat.Direction(flow) is { } direction)
        {
            kind += " " + direction;
        }
        string[] row =
        [
            FlowFormat.Time(flow.Time),
            $"{FlowFormat.Source(flow)} {FlowFormat.Identity(flow.Source)}".TrimEnd(),
            $"{FlowFormat.Destination(flow)} {FlowFormat.Identity(flow.Destination)}".TrimEnd(),
            kind,
            FlowFormat.Reason(flow) is { } reason ? $"{flow.Verdict} ({reason})" : flow.Verdict,
            flow.Summary,
        ];
        if (!follow)
        {
            _table.Add(row);
            return;
        }
        if (!_headerWritten)
        {
            WriteRow(Headers);
            _headerWritten = true;
        }
        WriteRow(row);
    }

    public override void Complete()
    {
        if (!follow)
        {
            _table.Write(stdout);
        }
        else if (!_headerWritten)
        {
            WriteRow(Headers);
        }
        stdout.Flush();
    }

    private void WriteRow(string[] cells)
    {
        var text = new StringBuilder();
        for (var i = 0; i < cells.Length; i++)
        {
            _widths[i] = Math.Max(_widths[i], cells[i].Length);
            text.Append(i == cells.Length - 1 ? cells[i] : cells[i].PadRight(_widths[i] + 3));
        }
        stdout.WriteLine(text.ToString().TrimEnd());
        stdout.Flush();
    }
}
