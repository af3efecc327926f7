using System.Globalization;
using Membrane.Testing;

namespace Membrane.Cli.Tests.Oracle;

/// <summary>
/// tshark as the oracle. Every run uses the preferences that make tshark a stateless dissector
/// like ours (no reassembly, raw sequence numbers) and decodes Cilium's VXLAN port.
/// </summary>
internal static class Tshark
{
    /// <summary>The aggregator between occurrences of one field: a character no value we compare contains.</summary>
    public const char Aggregator = '|';

    public static readonly string[] StatelessPreferences =
    [
        "-d", "udp.port==8472,vxlan",
        "-o", "ip.defragment:FALSE",
        "-o", "ipv6.defragment:FALSE",
        "-o", "tcp.relative_sequence_numbers:FALSE",
    ];

    private static readonly Lazy<HashSet<string>> s_knownFields = new(LoadKnownFields);

    /// <summary>Every field and protocol filter name this tshark knows (<c>tshark -G fields</c>).</summary>
    public static HashSet<string> KnownFields => s_knownFields.Value;

    /// <summary>
    /// <c>tshark -T fields -E occurrence=a</c> for <paramref name="fields"/>: per packet (in order), per field,
    /// the list of occurrences. tshark prints <c>&lt;MISSING&gt;</c> for an empty byte string; those are dropped,
    /// as the decoder does not emit empty byte strings.
    /// </summary>
    public static List<Dictionary<string, List<string>>> Fields(string capture, IReadOnlyList<string> fields)
    {
        var args = new List<string> { "-r", capture, "-n" };
        args.AddRange(StatelessPreferences);
        args.AddRange(["-T", "fields", "-E", "occurrence=a", "-E", $"aggregator={Aggregator}", "-E", "separator=/t", "-E", "quote=n"]);
        foreach (var field in fields)
        {
            args.Add("-e");
            args.Add(field);
        }
        var (code, stdout, stderr) = Tools.Run(Tools.Find("tshark")!, args, timeout: TimeSpan.FromMinutes(5));
        Assert.True(code == 0, $"tshark -T fields failed on {capture} (exit {code}): {stderr}");
        var packets = new List<Dictionary<string, List<string>>>();
        foreach (var line in stdout.Split('\n'))
        {
            if (line.Length == 0)
            {
                continue;
            }
            var columns = line.Split('\t');
            Assert.True(columns.Length == fields.Count, $"tshark printed {columns.Length} columns for {fields.Count} fields: {line}");
            var packet = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            for (var i = 0; i < fields.Count; i++)
            {
                packet[fields[i]] = columns[i].Length == 0 ? [] :
                    columns[i].Split(Aggregator).Where(v => v != "<MISSING>").ToList();
            }
            packets.Add(packet);
        }
        return packets;
    }

    /// <summary>One node of <c>tshark -q -z io,phs</c>.</summary>
    public sealed record PhsNode(string Protocol, long Frames, long Bytes, List<PhsNode> Children);

    /// <summary>The protocol hierarchy tshark computes (<c>-z io,phs</c>), as a tree under a nameless root.</summary>
    public static PhsNode ProtocolHierarchy(string capture)
    {
        var args = new List<string> { "-r", capture, "-n", "-q" };
        args.AddRange(StatelessPreferences);
        args.AddRange(["-z", "io,phs"]);
        var (code, stdout, stderr) = Tools.Run(Tools.Find("tshark")!, args, timeout: TimeSpan.FromMinutes(5));
        Assert.True(code == 0, $"tshark -z io,phs failed on {capture} (exit {code}): {stderr}");
        var root = new PhsNode("", 0, 0, []);
        var stack = new List<PhsNode> { root };
        foreach (var line in stdout.Split('\n'))
        {
            // "    udp                                  frames:1376 bytes:167432": two spaces per level.
            var framesAt = line.IndexOf("frames:", StringComparison.Ordinal);
            if (framesAt < 0 || line.StartsWith("Filter", StringComparison.Ordinal))
            {
                continue;
            }
            var indent = line.Length - line.TrimStart().Length;
            var parts = line.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var node = new PhsNode(parts[0],
                long.Parse(parts[1]["frames:".Length..], CultureInfo.InvariantCulture),
                long.Parse(parts[2]["bytes:".Length..], CultureInfo.InvariantCulture), []);
            var level = indent / 2;
            stack.RemoveRange(level + 1, stack.Count - level - 1);
            stack[level].Children.Add(node);
            stack.Add(node);
        }
        return root;
    }

    private static HashSet<string> LoadKnownFields()
    {
        var (code, stdout, stderr) = Tools.Run(Tools.Find("tshark")!, ["-G", "fields"], timeout: TimeSpan.FromMinutes(2));
        Assert.True(code == 0, $"tshark -G fields failed: {stderr}");
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in stdout.Split('\n'))
        {
            var columns = line.Split('\t');
            if (columns.Length > 2 && columns[0] is "F" or "P")
            {
                names.Add(columns[2]);
            }
        }
        return names;
    }
}
