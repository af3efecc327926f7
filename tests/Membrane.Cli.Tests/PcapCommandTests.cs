using System.CommandLine;
using System.Text;
using System.Text.Json;
using Membrane.Capture;
using Membrane.Cli.Decode;
using Membrane.Cli.Tests.Oracle;
using Membrane.Packets;

namespace Membrane.Cli.Tests;

/// <summary>
/// <c>pcap decode</c> and <c>pcap stats</c> as a user meets them: options, bad files, output shapes.
/// These use captures written by our own builders and writer, so they need no external tool.
/// </summary>
public sealed class PcapCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("membrane-pcap-cmd-").FullName;
    private readonly List<byte[]> _frames = TestCaptures.BuilderFrames();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string WriteCapture(string name = "frames.pcap")
    {
        var path = Path.Combine(_dir, name);
        using var file = File.Create(path);
        using var writer = new PcapWriter(file, Capture.LinkType.Ethernet);
        for (var i = 0; i < _frames.Count; i++)
        {
            writer.WritePacket(1_700_000_000_000_000_000L + (i * 1_000_000L), _frames[i]);
        }
        return path;
    }

    private static (int Exit, string Stdout, string Stderr) Decode(string path, DecodeFormat format = DecodeFormat.Json, int? count = null)
    {
        using var stdout = new MemoryStream();
        var stderr = new StringWriter();
        var exit = PcapCommands.Decode(path, format, count, stdout, stderr);
        return (exit, Encoding.UTF8.GetString(stdout.ToArray()), stderr.ToString());
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void JsonHasOneObjectPerPacketWithTheDocumentedShape()
    {
        var (exit, stdout, stderr) = Decode(WriteCapture());
        Assert.Equal(0, exit);
        Assert.Equal("", stderr);
        var lines = Lines(stdout);
        Assert.Equal(_frames.Count, lines.Length);
        for (var i = 0; i < lines.Length; i++)
        {
            using var doc = JsonDocument.Parse(lines[i]);
            var root = doc.RootElement;
            Assert.Equal(i + 1, root.GetProperty("number").GetInt64());
            Assert.Equal(_frames[i].Length, root.GetProperty("length").GetInt32());
            Assert.Equal(_frames[i].Length, root.GetProperty("capturedLength").GetInt32());
            Assert.EndsWith("Z", root.GetProperty("timestamp").GetString());
            var first = root.GetProperty("layers")[0];
            Assert.Equal("eth", first.GetProperty("protocol").GetString());
            Assert.Equal(0, first.GetProperty("offset").GetInt32());
            Assert.Equal(JsonValueKind.Array, root.GetProperty("errors").ValueKind);
        }
        Assert.StartsWith("{\"number\":1,\"timestamp\":\"2023-11-14T22:13:20.000000000Z\",\"length\":", lines[0]);
    }

    [Fact]
    public void CountStopsAfterThatManyPackets()
    {
        var path = WriteCapture();
        Assert.Equal(3, Lines(Decode(path, count: 3).Stdout).Length);
        var text = Decode(path, DecodeFormat.Text, count: 2).Stdout;
        Assert.Equal(2, Lines(text).Count(l => l.StartsWith("Frame ", StringComparison.Ordinal)));
        Assert.Equal(_frames.Count, Lines(Decode(path, count: 1000).Stdout).Length);
    }

    [Theory]
    [InlineData("pcap decode f.pcap --output yaml")]
    [InlineData("pcap stats f.pcap --output xml")]
    [InlineData("pcap decode f.pcap --count 0")]
    [InlineData("pcap decode f.pcap --count -3")]
    [InlineData("pcap decode")]
    public void BadArgumentsAreRejectedByTheParser(string commandLine)
    {
        var root = new RootCommand { PcapCommands.Create() };
        Assert.NotEmpty(root.Parse(commandLine).Errors);
    }

    [Theory]
    [InlineData("pcap decode f.pcap --output json --count 5")]
    [InlineData("pcap decode f.pcap -o text -c 1")]
    [InlineData("pcap stats f.pcap --output json")]
    public void GoodArgumentsParse(string commandLine)
    {
        var root = new RootCommand { PcapCommands.Create() };
        Assert.Empty(root.Parse(commandLine).Errors);
    }

    [Fact]
    public void MissingFileNamesTheFile()
    {
        var path = Path.Combine(_dir, "nope.pcap");
        var (exit, stdout, stderr) = Decode(path);
        Assert.NotEqual(0, exit);
        Assert.Equal("", stdout);
        Assert.Contains("failed to open capture file " + path, stderr);
    }

    [Fact]
    public void NotACaptureNamesTheFileAndTheOffset()
    {
        var path = Path.Combine(_dir, "text.pcap");
        File.WriteAllText(path, "this is not a capture file at all");
        var (exit, stdout, stderr) = Decode(path);
        Assert.NotEqual(0, exit);
        Assert.Equal("", stdout);
        Assert.Contains(path, stderr);
        Assert.Contains("at byte 0", stderr);
        Assert.Contains("BadMagic", stderr);
    }

    /// <summary>
    /// Cut the file at every byte of its first records: the packets wholly before the cut are printed,
    /// then the complaint names the file and the offset; a cut at a record boundary is a clean end.
    /// </summary>
    [Fact]
    public void TruncatedFilePrintsEveryGoodPacketThenNamesTheOffset()
    {
        var whole = File.ReadAllBytes(WriteCapture());
        var recordEnds = new List<int>();
        for (int at = 24, i = 0; i < _frames.Count; i++)
        {
            at += 16 + _frames[i].Length;
            recordEnds.Add(at);
        }
        var cut = Path.Combine(_dir, "cut.pcap");
        for (var length = 24; length <= recordEnds[3]; length++)
        {
            File.WriteAllBytes(cut, whole.AsSpan(0, length).ToArray());
            var complete = recordEnds.Count(end => end <= length);
            var (exit, stdout, stderr) = Decode(cut);
            Assert.True(complete == Lines(stdout).Length, $"cut at {length}: {Lines(stdout).Length} packets printed, {complete} complete");
            if (length == 24 || recordEnds.Contains(length))
            {
                Assert.True(exit == 0, $"cut at a record boundary ({length}) is a clean end: {stderr}");
                continue;
            }
            Assert.NotEqual(0, exit);
            Assert.Contains(cut, stderr);
            Assert.Contains("at byte ", stderr);
            Assert.Contains("TruncatedRecord", stderr);
        }
    }

    [Fact]
    public void CorruptPcapngBlockIsReportedAfterTheGoodPackets()
    {
        var path = Path.Combine(_dir, "bad.pcapng");
        using (var file = File.Create(path))
        using (var writer = new PcapNgWriter(file))
        {
            var nic = writer.AddInterface(Capture.LinkType.Ethernet);
            foreach (var frame in _frames.Take(3))
            {
                writer.WritePacket(nic, 1_700_000_000_000_000_000L, frame);
            }
        }
        var bytes = File.ReadAllBytes(path);
        // Corrupt the total length of the third enhanced packet block (the last block in the file).
        var third = bytes.Length - (32 + ((_frames[2].Length + 3) & ~3));
        bytes[third + 4] = 0x07;
        File.WriteAllBytes(path, bytes);
        var (exit, stdout, stderr) = Decode(path);
        Assert.NotEqual(0, exit);
        Assert.Equal(2, Lines(stdout).Length);
        Assert.Contains(path, stderr);
        Assert.Contains($"at byte {third + 4}", stderr);
    }

    [Fact]
    public void PcapngCommentsAreShown()
    {
        var path = Path.Combine(_dir, "comments.pcapng");
        using (var file = File.Create(path))
        using (var writer = new PcapNgWriter(file))
        {
            var nic = writer.AddInterface(Capture.LinkType.Ethernet);
            writer.WritePacket(nic, 1_700_000_000_000_000_000L, _frames[0], comment: "first, \"quoted\"");
            writer.WritePacket(nic, 1_700_000_000_000_000_001L, _frames[1]);
        }
        var lines = Lines(Decode(path).Stdout);
        using (var doc = JsonDocument.Parse(lines[0]))
        {
            Assert.Equal("first, \"quoted\"", doc.RootElement.GetProperty("comments")[0].GetString());
        }
        using (var doc = JsonDocument.Parse(lines[1]))
        {
            Assert.False(doc.RootElement.TryGetProperty("comments", out _));
        }
        Assert.Contains("    Comment: first, \"quoted\"", Lines(Decode(path, DecodeFormat.Text).Stdout));
    }

    [Fact]
    public void StatsOfATruncatedFileCountTheGoodPartAndFail()
    {
        var whole = File.ReadAllBytes(WriteCapture());
        var cut = Path.Combine(_dir, "cut.pcap");
        File.WriteAllBytes(cut, whole.AsSpan(0, whole.Length - 5).ToArray());
        using var stdout = new MemoryStream();
        var stderr = new StringWriter();
        var exit = PcapCommands.Stats(cut, DecodeFormat.Json, stdout, stderr);
        Assert.NotEqual(0, exit);
        Assert.Contains(cut, stderr.ToString());
        using var doc = JsonDocument.Parse(stdout.ToArray());
        Assert.Equal(_frames.Count - 1, doc.RootElement.GetProperty("packets").GetInt64());
    }

    [Fact]
    public void TextIsAnIndentedTreeWithFilterNames()
    {
        var (exit, text, _) = Decode(WriteCapture(), DecodeFormat.Text);
        Assert.Equal(0, exit);
        var lines = text.Split('\n');
        Assert.StartsWith("Frame 1: ", lines[0]);
        Assert.Equal("Ethernet II [eth] at byte 0", lines[1]);
        Assert.Equal("    Destination: 02:42:c6:12:00:02 [eth.dst]", lines[2]);
        Assert.Contains("Internet Protocol Version 4 [ip] at byte 14", lines);
        Assert.Contains("    Source Address: 198.18.0.1 [ip.src]", lines);
        Assert.Contains("Virtual eXtensible Local Area Network [vxlan] at byte 50", lines);
        Assert.Contains("    VXLAN Network Identifier (VNI): 291 [vxlan.vni]", lines);
        // Refinements of a field sit one step under it, as in tshark's subtrees.
        Assert.Contains("    Flags: 0x02 [ip.flags]", lines);
        Assert.Contains("        Don't fragment: 1 [ip.flags.df]", lines);
        Assert.Contains("        TCP Flags: ··········S· [tcp.flags.str]", lines);
        Assert.Contains("IEEE 802.1ad [ieee8021ad] at byte 14", lines);
        Assert.Equal(_frames.Count, lines.Count(l => l.StartsWith("Frame ", StringComparison.Ordinal)));
    }

    [Fact]
    public void AQuotedDatagramIsNestedAndABadChecksumIsReportedButDecodingGoesOn()
    {
        // An ICMP port unreachable quoting a UDP datagram, with the outer IPv4 checksum spoiled.
        Span<byte> buffer = stackalloc byte[256];
        var quoted = new PacketBuilder(buffer.Slice(128));
        quoted.Ipv4(Ipv4Address.Parse("198.18.0.1"), Ipv4Address.Parse("198.18.0.9"));
        quoted.Udp(33434, 33435);
        var quotedLength = quoted.Finish();
        var b = new PacketBuilder(buffer);
        b.Ethernet(MacAddress.Parse("02:00:00:00:00:01"), MacAddress.Parse("02:00:00:00:00:02"));
        b.Ipv4(Ipv4Address.Parse("198.18.0.9"), Ipv4Address.Parse("198.18.0.1"));
        b.Icmpv4(3, 3);
        b.Payload(buffer.Slice(128, quotedLength).ToArray());
        var frame = buffer.Slice(0, b.Finish()).ToArray();
        frame[24] ^= 0xFF; // the IPv4 header checksum

        using var text = new MemoryStream();
        using (var writer = DecodeWriter.Create(text, DecodeFormat.Text))
        {
            writer.WritePacket(1, 0, frame.Length, Capture.LinkType.Ethernet, frame);
        }
        var lines = Encoding.UTF8.GetString(text.ToArray()).Split('\n');
        Assert.Contains("    Internet Protocol Version 4 [ip] at byte 42", lines);
        Assert.Contains("        Destination Address: 198.18.0.9 [ip.dst]", lines);
        Assert.Contains("    User Datagram Protocol [udp] at byte 62", lines);
        Assert.Contains(lines, l => l.StartsWith("    [Error BadChecksum at byte 24: failed to verify IPv4 checksum at byte 24: found 0x", StringComparison.Ordinal));

        using var json = new MemoryStream();
        using (var writer = DecodeWriter.Create(json, DecodeFormat.Json))
        {
            writer.WritePacket(1, 0, frame.Length, Capture.LinkType.Ethernet, frame);
        }
        var packet = DecodedPacket.Parse(json.ToArray()).Single();
        Assert.Equal(["eth", "ip", "icmp", "ip", "udp"], packet.Layers.Select(l => l.Protocol));
        Assert.Equal([0, 0, 0, 1, 1], packet.Layers.Select(l => l.Depth));
        var error = Assert.Single(packet.Errors);
        Assert.Equal(("BadChecksum", 24), (error.Reason, error.Offset));
    }

    [Fact]
    public void AMalformedHeaderEndsTheWalkWithItsReasonAndOffset()
    {
        var frame = (byte[])_frames[8].Clone(); // Ethernet, IPv4, ICMP echo reply
        frame[14] = 0x43; // IHL 3: below the minimum of 5 (RFC 791)
        using var json = new MemoryStream();
        using (var writer = DecodeWriter.Create(json, DecodeFormat.Json))
        {
            writer.WritePacket(8, 0, frame.Length, Capture.LinkType.Ethernet, frame);
        }
        var packet = DecodedPacket.Parse(json.ToArray()).Single();
        Assert.Equal(["eth"], packet.Layers.Select(l => l.Protocol));
        var error = Assert.Single(packet.Errors);
        Assert.Equal(("BadHeaderLength", 14), (error.Reason, error.Offset));
        Assert.StartsWith("failed to parse IPv4 header at byte 14", error.Message);
    }

    [Fact]
    public void UnsupportedLinkTypeIsAnErrorNotACrash()
    {
        using var json = new MemoryStream();
        using (var writer = DecodeWriter.Create(json, DecodeFormat.Json))
        {
            writer.WritePacket(1, 0, 4, (Capture.LinkType)105, [1, 2, 3, 4]); // IEEE 802.11
        }
        var packet = DecodedPacket.Parse(json.ToArray()).Single();
        Assert.Empty(packet.Layers);
        Assert.Equal("UnsupportedLinkType", Assert.Single(packet.Errors).Reason);
    }
}
