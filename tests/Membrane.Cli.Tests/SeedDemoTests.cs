using System.Text;
using Membrane.Cli.Tests.Oracle;
using Membrane.Packets;

namespace Membrane.Cli.Tests;

/// <summary><c>membrane seed demo</c> and seed frames in a capture (LINKTYPE_USER0).</summary>
public class SeedDemoTests
{
    [Fact]
    public void DemoPrintsTheFrameItsFieldsAndAChecksumThatVerifies()
    {
        var output = new StringWriter();
        var exit = SeedCommands.Demo(2, 1, 42, Encoding.UTF8.GetBytes("membrane seed frame demo"), output);
        Assert.Equal(0, exit);
        var lines = output.ToString().Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.Equal("seed frame: 32 bytes (8-byte header + 24-byte payload)", lines[0]);
        // Version 1 and type 2 share the first byte; flags 1; total length 32; id 42 (DESIGN.md: !BBH I).
        Assert.Equal("0000  12 01 00 20 00 00 00 2a  6d 65 6d 62 72 61 6e 65  ... ...*membrane", lines[1]);
        Assert.Contains("Membrane seed frame [seed] at byte 0", lines);
        Assert.Contains("    Type: 2 [seed.type]", lines);
        Assert.Contains("    Total Length: 32 [seed.length]", lines);
        Assert.Contains("    Id: 0x0000002a [seed.id]", lines);
        var checksum = InternetChecksum.Compute(SeedFrame.Build(2, 1, 42, "membrane seed frame demo"u8));
        Assert.Contains($"checksum (RFC 1071 over the whole frame): 0x{checksum:x4}", lines);
        Assert.Contains("checksum of frame + checksum:             0x0000 (verifies)", lines);
    }

    [Theory]
    [InlineData("")]
    [InlineData("odd")]
    public void EmptyAndOddPayloadsVerifyToo(string payload)
    {
        var output = new StringWriter();
        Assert.Equal(0, SeedCommands.Demo(1, 0, 7, Encoding.UTF8.GetBytes(payload), output));
        Assert.Contains($"seed frame: {8 + payload.Length} bytes", output.ToString());
        Assert.Contains("(verifies)", output.ToString());
    }

    [SkippableFact]
    public void SeedFramesInACaptureDecodeAsSeedLayers()
    {
        TestCaptures.RequireTools();
        var packets = DecodedPacket.DecodeFile(TestCaptures.PathOf(TestCaptures.SeedFile));
        Assert.Equal(2, packets.Count);
        var first = Assert.Single(packets[0].Layers);
        Assert.Equal("seed", first.Protocol);
        Assert.Equal(
            [("seed.version", "1"), ("seed.type", "2"), ("seed.flags", "0x01"), ("seed.length", "19"), ("seed.id", "0x0000002a"),
             ("seed.payload_length", "11"), ("seed.checksum", $"0x{InternetChecksum.Compute(SeedFrame.Build(2, 1, 42, "trace event"u8)):x4}")],
            first.Fields);
        Assert.Equal("0xdeadbeef", packets[1].Layers[0].Fields.Single(f => f.Name == "seed.id").Value);
        Assert.Empty(packets.SelectMany(p => p.Errors));
    }
}
