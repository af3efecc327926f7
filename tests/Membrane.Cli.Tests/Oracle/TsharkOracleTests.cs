using System.Text;
using Membrane.Cli.Decode;
using Membrane.Testing;
using Xunit.Abstractions;

namespace Membrane.Cli.Tests.Oracle;

/// <summary>
/// The oracle: every field <c>membrane pcap decode</c> emits that tshark also emits must be equal,
/// packet by packet, occurrence by occurrence; and the layers must be the protocols tshark lists in
/// <c>frame.protocols</c>, in the same order. The captures are generated during the test
/// (<see cref="TestCaptures"/>): scapy's corpus and our own builders' frames.
/// </summary>
public class TsharkOracleTests(ITestOutputHelper output)
{
    /// <summary>Layer names tshark may list that the decoder also produces (frame.protocols has more: ethertype, data, http …).</summary>
    private static readonly HashSet<string> s_layerVocabulary = new(StringComparer.Ordinal)
    {
        "sll", "eth", "vlan", "ieee8021ad", "arp", "ip", "ipv6", "ipv6.hopopts", "ipv6.routing", "ipv6.dstopts", "ipv6.fraghdr",
        "ah", "esp", "tcp", "udp", "icmp", "icmpv6", "vxlan", "geneve",
    };

    /// <summary>The fewest values each capture must have compared equal: an oracle that compares nothing proves nothing.</summary>
    public static TheoryData<string, int, int> Captures => new()
    {
        // file, minimum values compared, minimum distinct fields compared
        { "corpus.pcap", 2200, 195 },
        { "corpus.pcapng", 2200, 195 },
        { "rawip.pcap", 1650, 180 },
        { "cooked.pcap", 1700, 185 },
        { "cooked2.pcap", 1700, 185 },
        { "builders.pcap", 500, 160 },
        { "snaplen.pcap", 320, 100 },
    };

    [SkippableTheory]
    [MemberData(nameof(Captures))]
    public void EveryFieldWeEmitEqualsTsharks(string file, int minimumValues, int minimumFields)
    {
        TestCaptures.RequireTools();
        var path = TestCaptures.PathOf(file);
        var ours = DecodedPacket.DecodeFile(path);
        Assert.NotEmpty(ours);

        var names = ours.SelectMany(p => p.Layers).SelectMany(l => l.Fields).Select(f => f.Name)
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var unknown = names.Where(n => !Tshark.KnownFields.Contains(n)).ToList();
        Assert.True(unknown.Count == 0, "fields tshark 4.0 does not know (a typo, or a name from another version): " + string.Join(", ", unknown));

        var theirs = Tshark.Fields(path, ["frame.protocols", .. names]);
        Assert.True(theirs.Count == ours.Count, $"{file}: tshark read {theirs.Count} packets, membrane {ours.Count}");

        var mismatches = new List<string>();
        var compared = 0;
        var comparedFields = new HashSet<string>(StringComparer.Ordinal);
        var neverByTshark = new HashSet<string>(names, StringComparer.Ordinal);
        for (var i = 0; i < ours.Count; i++)
        {
            var number = ours[i].Number;
            var expectedLayers = theirs[i]["frame.protocols"].SelectMany(p => p.Split(':')).Where(s_layerVocabulary.Contains).ToList();
            var actualLayers = ours[i].Layers.Select(l => l.Protocol).ToList();
            // A header the snap length cut short is a truncation error for us; tshark still shows what there is of it.
            var cutShort = ours[i].CapturedLength < ours[i].Length &&
                ours[i].Errors.Any(e => e.Reason is "Truncated" or "HeaderLengthBeyondPacket");
            if (cutShort && expectedLayers.Count == actualLayers.Count + 1)
            {
                expectedLayers.RemoveAt(expectedLayers.Count - 1);
            }
            if (!expectedLayers.SequenceEqual(actualLayers))
            {
                mismatches.Add($"packet {number}: layers: ours [{string.Join(' ', actualLayers)}] tshark [{string.Join(' ', expectedLayers)}]");
            }
            foreach (var (name, values) in ours[i].Occurrences())
            {
                var expected = theirs[i][name];
                if (expected.Count == 0)
                {
                    continue; // tshark does not show this field here (a quoted header's tcp.len, say)
                }
                neverByTshark.Remove(name);
                if (!values.SequenceEqual(expected, StringComparer.Ordinal))
                {
                    mismatches.Add($"packet {number}: {name}: ours [{string.Join(Tshark.Aggregator, values)}] tshark [{string.Join(Tshark.Aggregator, expected)}]");
                    continue;
                }
                compared += values.Count;
                comparedFields.Add(name);
            }
        }

        output.WriteLine($"{file}: {ours.Count} packets, {compared} values of {comparedFields.Count} fields equal to tshark's");
        output.WriteLine($"emitted but never shown by tshark in this capture: {string.Join(", ", neverByTshark)}");
        Assert.True(mismatches.Count == 0,
            $"{file}: {mismatches.Count} differences from tshark (first 80):\n" + string.Join('\n', mismatches.Take(80)));
        Assert.True(compared >= minimumValues, $"{file}: only {compared} values compared (expected at least {minimumValues})");
        Assert.True(comparedFields.Count >= minimumFields, $"{file}: only {comparedFields.Count} distinct fields compared (expected at least {minimumFields})");
    }

    [SkippableFact]
    public void TheBuiltCliPrintsWhatTheDecoderPrints()
    {
        TestCaptures.RequireTools();
        var cli = CliBinary.Path;
        var path = TestCaptures.PathOf("corpus.pcap");
        var (code, stdout, stderr) = Tools.Run(cli, ["pcap", "decode", path, "--output", "json"]);
        Assert.True(code == 0, $"{cli} pcap decode failed (exit {code}): {stderr}");

        using var inProcess = new MemoryStream();
        Assert.Equal(0, PcapCommands.Decode(path, DecodeFormat.Json, null, inProcess, TextWriter.Null));
        Assert.Equal(Encoding.UTF8.GetString(inProcess.ToArray()), stdout);

        // And the end-to-end output holds up against tshark on a field everyone looks at.
        var packets = DecodedPacket.Parse(Encoding.UTF8.GetBytes(stdout));
        var theirs = Tshark.Fields(path, ["ip.src", "ipv6.dst", "tcp.flags", "vxlan.vni", "geneve.vni"]);
        for (var i = 0; i < packets.Count; i++)
        {
            foreach (var name in new[] { "ip.src", "ipv6.dst", "tcp.flags", "vxlan.vni", "geneve.vni" })
            {
                var ours = packets[i].Occurrences().GetValueOrDefault(name) ?? [];
                Assert.True(ours.SequenceEqual(theirs[i][name]), $"packet {i + 1} {name}: ours [{string.Join(',', ours)}] tshark [{string.Join(',', theirs[i][name])}]");
            }
        }
    }
}

/// <summary>The CLI as `make build` and the test build leave it: src/Membrane.Cli/bin/&lt;configuration&gt;/net10.0/membrane.</summary>
internal static class CliBinary
{
    public static string Path
    {
        get
        {
            // This assembly runs from tests/Membrane.Cli.Tests/bin/<configuration>/<tfm>/.
            var tfmDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(System.IO.Path.DirectorySeparatorChar));
            var configuration = tfmDir.Parent!.Name;
            var path = System.IO.Path.Combine(Tools.RepoRoot, "src", "Membrane.Cli", "bin", configuration, tfmDir.Name, "membrane");
            Assert.True(File.Exists(path), $"the CLI is not built at {path}");
            return path;
        }
    }
}
