using Membrane.Capture;

namespace Membrane.Benchmarks;

/// <summary>
/// The frames of a capture held in memory, back to back in one array, so that a benchmark
/// measures parsing and not I/O or allocation. The capture is the 1M-packet container mix
/// from gen_mix.py (bench/run.sh makes it); MEMBRANE_BENCH_PCAP names it.
/// </summary>
public sealed class FrameCorpus
{
    public byte[] Bytes { get; }
    public int[] Offsets { get; }
    public int[] Lengths { get; }
    public int Count => Offsets.Length;
    public long TotalBytes { get; }

    private FrameCorpus(byte[] bytes, int[] offsets, int[] lengths, long total)
    {
        Bytes = bytes;
        Offsets = offsets;
        Lengths = lengths;
        TotalBytes = total;
    }

    // Inlined, so that reaching frame i costs Membrane's loops no more than PacketDotNet's array load.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> Frame(int i) => Bytes.AsSpan(Offsets[i], Lengths[i]);

    public static string DefaultPath =>
        Environment.GetEnvironmentVariable("MEMBRANE_BENCH_PCAP") is { Length: > 0 } p ? p
            : Path.Combine(AppContext.BaseDirectory, "mix.pcap");

    private static FrameCorpus? s_cached;

    /// <summary>Loads (once per process) up to <paramref name="max"/> frames of the capture.</summary>
    public static FrameCorpus Load(int max = int.MaxValue)
    {
        if (s_cached is not null)
        {
            return s_cached;
        }
        var path = DefaultPath;
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"failed to load the benchmark capture: {path} does not exist (bench/run.sh generates it; set MEMBRANE_BENCH_PCAP)");
        }
        using var reader = CaptureReader.Open(path);
        var buffer = new MemoryStream();
        var offsets = new List<int>();
        var lengths = new List<int>();
        while (offsets.Count < max && reader.TryReadNext(out var packet))
        {
            offsets.Add((int)buffer.Position);
            lengths.Add(packet.CapturedLength);
            buffer.Write(packet.Span);
        }
        if (reader.Error is { } error)
        {
            throw new InvalidDataException($"failed to read the benchmark capture {path}: {error}");
        }
        return s_cached = new FrameCorpus(buffer.ToArray(), [.. offsets], [.. lengths], buffer.Length);
    }
}
