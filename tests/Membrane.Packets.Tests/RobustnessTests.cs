using System.Buffers.Binary;
using System.Diagnostics;
using CsCheck;

namespace Membrane.Packets.Tests;

// A million deterministic mutations of real frames through the dissector (strict and lenient), every field
// accessor of every accepted layer, and the flow-key extractor: no exception may escape.
public class RobustnessTests
{
    private const int Mutations = 1_000_000;

    internal static List<(byte[] Frame, LinkType Link)> Corpus()
    {
        var corpus = SampleFrames.All.Select(f => (f.Frame, f.Link)).ToList();
        corpus.AddRange(RealFrames.All.Select(f => (f, LinkType.Ethernet)));
        var pcg = new PCG(7, 1071);
        for (int i = 0; i < 300; i++)
        {
            corpus.Add((PacketSpec.Gens.Packet.Generate(pcg, null, out _).Build(), LinkType.Ethernet));
        }
        return corpus;
    }

    [Fact]
    public void RealFramesDissectWithoutErrorAndWithGoodChecksums()
    {
        Assert.Equal(300, RealFrames.All.Count);
        var kinds = new HashSet<LayerKind>();
        foreach (var frame in RealFrames.All)
        {
            var d = new PacketDissector(frame);
            while (d.TryNext(out var layer))
            {
                kinds.Add(layer.Kind);
                var status = layer.VerifyChecksum(frame);
                Assert.True(status is ChecksumStatus.Good or ChecksumStatus.NotApplicable or ChecksumStatus.Absent,
                    $"{layer}: checksum {status} in {Convert.ToHexString(frame)}");
            }
            Assert.False(d.HasError, $"{d.Error.Message} in {Convert.ToHexString(frame)}");
            Assert.True(FlowKeyExtractor.TryExtract(frame, out _) || frame.AsSpan(12, 2).SequenceEqual(new byte[] { 0x08, 0x06 }));
        }
        // The corpus really covers the headers it is meant to.
        Assert.Superset(new HashSet<LayerKind> { LayerKind.Vlan, LayerKind.Arp, LayerKind.IPv4, LayerKind.IPv6, LayerKind.Tcp, LayerKind.Udp,
            LayerKind.Icmpv4, LayerKind.Icmpv6, LayerKind.Vxlan, LayerKind.Geneve, LayerKind.Payload }, kinds);
    }

    [Fact]
    public void MillionMutatedFramesNeverThrow()
    {
        var corpus = Corpus();
        var lenient = new DissectorOptions { AllowTruncated = true };
        var rng = new Random(20261127);
        var buffer = new byte[4096];
        var sw = Stopwatch.StartNew();
        long sink = 0;
        int errors = 0;
        for (int n = 0; n < Mutations; n++)
        {
            var (original, link) = corpus[rng.Next(corpus.Count)];
            original.CopyTo(buffer, 0);
            int length = original.Length;
            int strategy = rng.Next(5);
            try
            {
                length = Mutate(rng, strategy, original, link, buffer, length);

                var frame = buffer.AsSpan(0, length);
                sink += Walk(frame, link, null, ref errors);
                sink += Walk(frame, link, lenient, ref errors);
                if (FlowKeyExtractor.TryExtract(frame, link, DissectorOptions.Default, out var key))
                {
                    sink += key.Outer.SourcePort + key.Inner.DestinationPort + key.Vni;
                }
            }
            catch (Exception e)
            {
                Assert.Fail($"mutation {n} (strategy {strategy}) of a {original.Length}-byte {link} frame threw: {e}\nframe: {Convert.ToHexString(buffer, 0, length)}");
            }
        }
        // The mutations must actually reach the error paths, or the test proves little.
        Assert.True(errors > Mutations / 10, $"only {errors} walks ended in an error");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(60), $"took {sw.Elapsed}");
        Assert.NotEqual(0, sink);
    }

    [Fact]
    public void ArbitraryBytesNeverThrowForAnyLinkType()
    {
        Gen.Select(Gen.Byte.Array[0, 256], Gen.OneOfConst(LinkType.Ethernet, LinkType.RawIp, LinkType.Ipv4, LinkType.Ipv6, LinkType.Seed))
            .Sample((bytes, link) =>
            {
                int errors = 0;
                Walk(bytes, link, null, ref errors);
                Walk(bytes, link, new DissectorOptions { AllowTruncated = true }, ref errors);
                FlowKeyExtractor.TryExtract(bytes, link, DissectorOptions.Default, out _);
            }, iter: 20_000);
    }

    /// <summary>Applies one deterministic mutation to <paramref name="buffer"/> (a copy of <paramref name="original"/>); returns the new length.</summary>
    internal static int Mutate(Random rng, int strategy, byte[] original, LinkType link, byte[] buffer, int length)
    {
        Span<int> lengthFields = stackalloc int[64];
        switch (strategy)
        {
            case 0: // bit flips
                for (int k = rng.Next(1, 5); k > 0; k--)
                {
                    buffer[rng.Next(length)] ^= (byte)(1 << rng.Next(8));
                }
                break;
            case 1: // truncation
                length = rng.Next(length + 1);
                break;
            case 2: // length-field lies: rewrite a length/offset field the dissector relies on
            {
                int count = LengthFieldOffsets(original, link, lengthFields);
                if (count > 0)
                {
                    int at = lengthFields[rng.Next(count)];
                    if (at < 0)
                    {
                        // a nibble (IHL, TCP data offset): keep the other nibble
                        at = -at - 1;
                        buffer[at] = rng.Next(2) == 0 ? (byte)((buffer[at] & 0xF0) | rng.Next(16)) : (byte)((buffer[at] & 0x0F) | (rng.Next(16) << 4));
                    }
                    else
                    {
                        ushort lie = rng.Next(3) switch { 0 => (ushort)rng.Next(65536), 1 => (ushort)(BinaryPrimitives.ReadUInt16BigEndian(buffer.AsSpan(at)) + rng.Next(-16, 17)), _ => 0 };
                        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(at), lie);
                    }
                }
                break;
            }
            case 3: // random byte overwrites
                for (int k = rng.Next(1, 8); k > 0; k--)
                {
                    buffer[rng.Next(length)] = (byte)rng.Next(256);
                }
                break;
            default: // splice: delete or insert a run of bytes
            {
                int at = rng.Next(length);
                int run = rng.Next(1, 16);
                if (rng.Next(2) == 0)
                {
                    run = Math.Min(run, length - at);
                    buffer.AsSpan(at + run, length - at - run).CopyTo(buffer.AsSpan(at));
                    length -= run;
                }
                else
                {
                    original.AsSpan(at).CopyTo(buffer.AsSpan(at + run));
                    rng.NextBytes(buffer.AsSpan(at, run));
                    length += run;
                }
                break;
            }
        }
        return length;
    }

    private static long Walk(ReadOnlySpan<byte> frame, LinkType link, DissectorOptions? options, ref int errors)
    {
        long h = 0;
        var d = new PacketDissector(frame, link, options);
        while (d.TryNext(out var layer))
        {
            h += LayerFields.Touch(frame, layer);
        }
        if (d.HasError)
        {
            errors++;
            h += d.Error.Offset + (int)d.Error.Reason;
        }
        return h;
    }

    // Offsets of the 16-bit length fields in a frame (negative, as -offset-1, for length nibbles).
    private static int LengthFieldOffsets(byte[] frame, LinkType link, Span<int> into)
    {
        int n = 0;
        var d = new PacketDissector(frame, link);
        while (d.TryNext(out var l) && n < into.Length - 2)
        {
            switch (l.Kind)
            {
                case LayerKind.IPv4: into[n++] = l.Offset + 2; into[n++] = -(l.Offset) - 1; break;
                case LayerKind.IPv6: into[n++] = l.Offset + 4; break;
                case LayerKind.Udp: into[n++] = l.Offset + 4; break;
                case LayerKind.Tcp: into[n++] = -(l.Offset + 12) - 1; break;
                case LayerKind.Seed: into[n++] = l.Offset + 2; break;
                case LayerKind.Geneve: into[n++] = -(l.Offset) - 1; break;
                case LayerKind.Ipv6HopByHop or LayerKind.Ipv6Routing or LayerKind.Ipv6DestinationOptions: into[n++] = l.Offset; break;
            }
        }
        return n;
    }
}
