namespace Membrane.Capture.Tests;

/// <summary>Deterministic packet bytes and timestamps for the capture tests.</summary>
internal static class SampleFrames
{
    /// <summary>2023-11-14T22:13:20Z plus a sub-second part with every nanosecond digit set.</summary>
    public const long BaseTimestamp = 1_700_000_000_123_456_789;

    /// <summary>
    /// An Ethernet/IPv4/UDP frame of <paramref name="length"/> bytes (≥ 42) whose payload is a
    /// pattern seeded by <paramref name="seed"/>, so that every frame differs.
    /// </summary>
    public static byte[] EthernetUdp(int length, int seed)
    {
        var frame = new byte[Math.Max(length, 42)];
        byte[] header =
        [
            0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, // eth
            0x45, 0x00, 0, 0, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00,                   // ipv4
            198, 18, 0, 1, 198, 18, 0, 2,
            0x30, 0x39, 0x00, 0x35, 0, 0, 0x00, 0x00,                                           // udp
        ];
        header.CopyTo(frame, 0);
        var ipLength = frame.Length - 14;
        frame[16] = (byte)(ipLength >> 8);
        frame[17] = (byte)ipLength;
        frame[38] = (byte)((ipLength - 20) >> 8);
        frame[39] = (byte)(ipLength - 20);
        var checksum = Checksum(frame.AsSpan(14, 20));
        frame[24] = (byte)(checksum >> 8);
        frame[25] = (byte)checksum;
        for (var i = 42; i < frame.Length; i++)
        {
            frame[i] = (byte)(i * 31 + seed * 7);
        }
        return frame;
    }

    /// <summary>A raw IPv4 packet (no link-layer header) of <paramref name="length"/> bytes.</summary>
    public static byte[] RawIpv4(int length, int seed) => EthernetUdp(length + 14, seed)[14..];

    private static ushort Checksum(ReadOnlySpan<byte> header)
    {
        uint sum = 0;
        for (var i = 0; i + 1 < header.Length; i += 2)
        {
            sum += (uint)(header[i] << 8 | header[i + 1]);
        }
        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return (ushort)~sum;
    }
}
