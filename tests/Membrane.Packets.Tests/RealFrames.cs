using System.Buffers.Binary;
using Membrane.Testing;

namespace Membrane.Packets.Tests;

/// <summary>The frames of Data/mix-300.pcap (scapy-made container traffic), read with a minimal pcap reader.</summary>
public static class RealFrames
{
    public static IReadOnlyList<byte[]> All { get; } = Load(Path.Combine(Tools.RepoRoot, "tests", "Membrane.Packets.Tests", "Data", "mix-300.pcap"));

    private static List<byte[]> Load(string path)
    {
        // pcap (microsecond, little-endian, LINKTYPE_ETHERNET): a 24-byte file header, then 16-byte record headers.
        var bytes = File.ReadAllBytes(path);
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes) != 0xA1B2C3D4 || BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(20)) != 1)
        {
            throw new InvalidDataException($"failed to read {path}: not a little-endian Ethernet pcap");
        }
        var frames = new List<byte[]>();
        for (int at = 24; at + 16 <= bytes.Length;)
        {
            int caplen = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8));
            frames.Add(bytes.AsSpan(at + 16, caplen).ToArray());
            at += 16 + caplen;
        }
        return frames;
    }
}
