using System.Globalization;
using System.Text.Json;
using Membrane.Cli.Decode;
using Membrane.Testing;

namespace Membrane.Cli.Tests.Oracle;

/// <summary>
/// <c>membrane pcap stats</c> against tshark: the protocol hierarchy against <c>tshark -q -z io,phs</c>
/// (restricted to the protocols Membrane dissects), the per-protocol packet counts against
/// <c>frame.protocols</c>, and the totals and elapsed time against the frames themselves.
/// </summary>
public class StatsOracleTests
{
    private static readonly HashSet<string> s_vocabulary = new(StringComparer.Ordinal)
    {
        "sll", "eth", "vlan", "ieee8021ad", "arp", "ip", "ipv6", "ipv6.hopopts", "ipv6.routing", "ipv6.dstopts", "ipv6.fraghdr",
        "ah", "esp", "tcp", "udp", "icmp", "icmpv6", "vxlan", "geneve",
    };

    public static TheoryData<string> Files => ["corpus.pcap", "corpus.pcapng", "cooked2.pcap", "builders.pcap", "demo"];

    [SkippableTheory]
    [MemberData(nameof(Files))]
    public void StatsEqualTsharks(string file)
    {
        TestCaptures.RequireTools();
        var path = file == "demo" ? DemoCapture() : TestCaptures.PathOf(file);

        using var output = new MemoryStream();
        Assert.Equal(0, PcapCommands.Stats(path, DecodeFormat.Json, output, TextWriter.Null));
        using var doc = JsonDocument.Parse(output.ToArray());
        var ours = doc.RootElement;

        // Totals and time from the frames tshark reads.
        var frames = Tshark.Fields(path, ["frame.len", "frame.time_relative", "frame.protocols"]);
        Assert.Equal(frames.Count, ours.GetProperty("packets").GetInt64());
        Assert.Equal(frames.Sum(f => long.Parse(f["frame.len"][0], CultureInfo.InvariantCulture)), ours.GetProperty("bytes").GetInt64());
        var seconds = double.Parse(frames[^1]["frame.time_relative"][0], CultureInfo.InvariantCulture);
        Assert.Equal(seconds, ours.GetProperty("seconds").GetDouble(), 6);
        if (seconds > 0)
        {
            Assert.Equal(frames.Count / seconds, ours.GetProperty("packetsPerSecond").GetDouble(), 1);
        }

        // Packets containing each protocol, from tshark's frame.protocols.
        var expectedCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var frame in frames)
        {
            foreach (var protocol in frame["frame.protocols"][0].Split(':').Where(s_vocabulary.Contains).Distinct())
            {
                expectedCounts[protocol] = expectedCounts.GetValueOrDefault(protocol) + 1;
            }
        }
        var actualCounts = ours.GetProperty("protocols").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt64(), StringComparer.Ordinal);
        Assert.Equal(expectedCounts.OrderBy(p => p.Key, StringComparer.Ordinal), actualCounts.OrderBy(p => p.Key, StringComparer.Ordinal));

        // The hierarchy, node by node, against io,phs without the application protocols Membrane does not dissect.
        var expected = Render(Project(Tshark.ProtocolHierarchy(path)).Children);
        var actual = Render(ours.GetProperty("hierarchy").EnumerateArray().Select(FromJson).ToList());
        Assert.Equal(expected, actual);
    }

    private static Tshark.PhsNode Project(Tshark.PhsNode node) =>
        node with { Children = node.Children.Where(c => s_vocabulary.Contains(c.Protocol)).Select(Project).ToList() };

    private static Tshark.PhsNode FromJson(JsonElement e) => new(
        e.GetProperty("protocol").GetString()!, e.GetProperty("packets").GetInt64(), e.GetProperty("bytes").GetInt64(),
        e.TryGetProperty("children", out var children) ? children.EnumerateArray().Select(FromJson).ToList() : []);

    /// <summary>The tree as indented lines, children sorted by name, so a difference reads like phs output.</summary>
    private static string Render(List<Tshark.PhsNode> nodes, int depth = 0) =>
        string.Concat(nodes.OrderBy(n => n.Protocol, StringComparer.Ordinal).Select(n =>
            $"{new string(' ', depth * 2)}{n.Protocol} frames:{n.Frames} bytes:{n.Bytes}\n" + Render(n.Children, depth + 1)));

    /// <summary>The capture `make demo` analyses, made by scripts/gen_demo_capture.py.</summary>
    private static string DemoCapture()
    {
        var path = Path.Combine(TestCaptures.Directory, "demo.pcap");
        if (!File.Exists(path))
        {
            var script = Path.Combine(Tools.RepoRoot, "scripts", "gen_demo_capture.py");
            var (code, stdout, stderr) = Tools.Run(Tools.DebianPython, [script, "3000", path]);
            Assert.True(code == 0, $"{script} failed (exit {code}): {stdout}{stderr}");
        }
        return path;
    }
}
