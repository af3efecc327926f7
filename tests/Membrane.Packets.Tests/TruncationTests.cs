using CsCheck;

namespace Membrane.Packets.Tests;

// Kestrel-style: feed every prefix of a frame. Each prefix must end either in a typed error at an offset inside
// the prefix, or in a valid shorter parse — never in an exception.
public class TruncationTests
{
    public static TheoryData<string> FrameNames()
    {
        var data = new TheoryData<string>();
        foreach (var f in SampleFrames.All)
        {
            data.Add(f.Name);
        }
        return data;
    }

    private static List<Layer> Walk(ReadOnlySpan<byte> frame, LinkType link, DissectorOptions? options, out ParseError error)
    {
        var layers = new List<Layer>();
        var d = new PacketDissector(frame, link, options);
        while (d.TryNext(out var l))
        {
            layers.Add(l);
        }
        error = d.Error;
        return layers;
    }

    [Theory]
    [MemberData(nameof(FrameNames))]
    public void EveryPrefixGivesATypedErrorOrAShorterParse(string name)
    {
        var (_, frame, link) = SampleFrames.All.Single(f => f.Name == name);
        var full = Walk(frame, link, null, out var fullError);
        Assert.False(fullError.IsError, fullError.Message);

        for (int cut = 0; cut < frame.Length; cut++)
        {
            var prefix = frame.AsSpan(0, cut);
            var layers = Walk(prefix, link, null, out var error);
            foreach (var l in layers)
            {
                Assert.True(l.Offset + l.Length <= l.End && l.End <= cut, $"{name}[..{cut}]: {l} escapes the prefix");
                LayerFields.Touch(prefix, l);
            }
            if (error.IsError)
            {
                Assert.InRange(error.Offset, 0, cut);
                Assert.StartsWith("failed to parse ", error.Message);
                // Everything before the error is what the full frame has there.
                for (int i = 0; i < layers.Count; i++)
                {
                    Assert.Equal((full[i].Kind, full[i].Offset), (layers[i].Kind, layers[i].Offset));
                }
            }
            else
            {
                // A shorter parse: the same layers, the last possibly cut to payload.
                for (int i = 0; i < layers.Count; i++)
                {
                    bool same = full[i].Kind == layers[i].Kind && full[i].Offset == layers[i].Offset;
                    bool cutToPayload = i == layers.Count - 1 && layers[i].Kind == LayerKind.Payload;
                    Assert.True(same || cutToPayload, $"{name}[..{cut}]: layer {i} is {layers[i]}, full frame has {full[i]}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(FrameNames))]
    public void EveryPrefixWithTruncationAllowedNeverThrowsAndKeepsLayersInside(string name)
    {
        var (_, frame, link) = SampleFrames.All.Single(f => f.Name == name);
        var lenient = new DissectorOptions { AllowTruncated = true };
        for (int cut = 0; cut <= frame.Length; cut++)
        {
            var prefix = frame.AsSpan(0, cut);
            var layers = Walk(prefix, link, lenient, out var error);
            foreach (var l in layers)
            {
                Assert.True(l.End <= cut);
                LayerFields.Touch(prefix, l);
            }
            if (error.IsError)
            {
                Assert.InRange(error.Offset, 0, cut);
            }
            FlowKeyExtractor.TryExtract(prefix, link, lenient, out _);
        }
    }

    [Fact]
    public void EveryPrefixOfRandomFramesGivesATypedErrorOrAShorterParse()
    {
        Gen.Select(PacketSpec.Gens.Packet, Gen.Double[0, 1]).Sample((spec, where) =>
        {
            var frame = spec.Build();
            int cut = (int)(where * frame.Length);
            var layers = Walk(frame.AsSpan(0, cut), LinkType.Ethernet, null, out var error);
            Assert.True(error.IsError || layers.Count > 0 || cut == 0);
            if (error.IsError)
            {
                Assert.InRange(error.Offset, 0, cut);
            }
            foreach (var l in layers)
            {
                Assert.True(l.End <= cut);
            }
        }, iter: 3000);
    }

    [Fact]
    public void TruncatedEthernetHeaderIsReportedAtOffsetZero()
    {
        var frame = SampleFrames.All[0].Frame;
        Walk(frame.AsSpan(0, 13), LinkType.Ethernet, null, out var error);
        Assert.Equal(new ParseError(ParseErrorReason.Truncated, 0, LayerKind.Ethernet), error);
        Walk(frame.AsSpan(0, 14), LinkType.Ethernet, null, out error);
        Assert.Equal(new ParseError(ParseErrorReason.Truncated, 14, LayerKind.IPv4), error);
    }
}
