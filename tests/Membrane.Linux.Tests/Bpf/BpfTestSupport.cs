using System.Buffers.Binary;
using Membrane.Linux.Bpf;
using Membrane.Testing;

namespace Membrane.Linux.Tests.Bpf;

/// <summary>Where the build put the datapath objects (bpf/Membrane.Bpf.targets copies them beside the tests).</summary>
internal static class BpfObjects
{
    public static string PathOf(string name) => Path.Combine(AppContext.BaseDirectory, "bpf", name + ".o");

    public const string TestFilter = "test_filter";
    public const string Noop = "noop";
    public const string ParseLookup = "parse_lookup";

    /// <summary>tc return codes (include/uapi/linux/pkt_cls.h).</summary>
    public const uint TcActOk = 0;
    public const uint TcActShot = 2;
}

/// <summary>
/// Per-test guard for privileged BPF tests: checks root and the kernel features the test
/// needs (skip outside CI, fail under CI=true), hands out a private bpffs directory for
/// pins, and on Dispose asserts that every fd the test opened is closed and that no pin is
/// left. Kernel tests share the "kernel" collection, so they run one at a time and the
/// global fd count is the test's own.
/// </summary>
internal sealed class BpfTestScope : IDisposable
{
    private readonly long _openBefore;
    private string? _pinDir;

    public BpfTestScope(params BpfFeature[] features)
    {
        Requires.Root();
        Requires.That(File.Exists(BpfObjects.PathOf(BpfObjects.TestFilter)), "needs the compiled BPF objects (the build runs clang)");
        foreach (var f in features.Prepend(BpfFeature.Syscall))
        {
            Requires.That(BpfFeatures.Has(f), $"needs {BpfFeatures.Describe(f)} (Linux {BpfFeatures.SinceKernel(f)})");
        }
        _openBefore = SafeFileDescriptor.OpenCount;
    }

    /// <summary>A directory on bpffs for this test's pins, removed (and checked empty) on Dispose.</summary>
    public string PinDir => _pinDir ??= BpfFsForTests.CreateTestDir();

    public void Dispose()
    {
        if (_pinDir is not null)
        {
            var left = Directory.GetFileSystemEntries(_pinDir);
            foreach (var pin in left)
            {
                File.Delete(pin);
            }
            Directory.Delete(_pinDir);
            Assert.True(left.Length == 0, "pins left behind: " + string.Join(", ", left));
        }
        Assert.Equal(_openBefore, SafeFileDescriptor.OpenCount);
    }
}

/// <summary>
/// The bpffs this test run pins into: /sys/fs/bpf when it is a bpffs, otherwise a private
/// bpffs instance mounted under /run for this run and unmounted at process exit (a private
/// instance leaves nothing behind: its pins vanish with the mount).
/// </summary>
internal static class BpfFsForTests
{
    private static readonly Lazy<string> s_root = new(CreateRoot);
    private static int s_counter;

    public static string CreateTestDir()
    {
        var dir = Path.Combine(s_root.Value, $"t{Interlocked.Increment(ref s_counter)}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string CreateRoot()
    {
        if (BpfFs.IsBpfFs(BpfFs.DefaultRoot))
        {
            var dir = Path.Combine(BpfFs.DefaultRoot, RunPrefix.Value + "-bpftest");
            Directory.CreateDirectory(dir);
            AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(dir);
            return dir;
        }
        var mount = $"/run/{RunPrefix.Value}-bpffs";
        BpfFs.Mount(mount);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                BpfFs.Unmount(mount);
                Directory.Delete(mount);
            }
            catch (Exception e) when (e is IOException or BpfException)
            {
            }
        };
        return mount;
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Hand-built test packets (Ethernet II + IPv4/IPv6 + UDP/TCP) with valid checksums.</summary>
internal static class TestPackets
{
    public const byte Udp = 17;
    public const byte Tcp = 6;

    public static readonly byte[] SrcMac = [0x02, 0, 0, 0, 0, 0x01];
    public static readonly byte[] DstMac = [0x02, 0, 0, 0, 0, 0x02];

    /// <summary>Eth + IPv4 (198.18.0.1 → 198.18.0.2) + UDP/TCP with <paramref name="payloadLength"/> bytes of payload.</summary>
    public static byte[] Ipv4(byte protocol, ushort srcPort, ushort dstPort, int payloadLength = 32, byte ttl = 64)
    {
        var l4Length = (protocol == Tcp ? 20 : 8) + payloadLength;
        var packet = new byte[14 + 20 + l4Length];
        WriteEth(packet, 0x0800);
        var ip = packet.AsSpan(14, 20);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + l4Length));
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], 0x1234);
        ip[8] = ttl;
        ip[9] = protocol;
        byte[] src = [198, 18, 0, 1], dst = [198, 18, 0, 2];
        src.CopyTo(ip[12..]);
        dst.CopyTo(ip[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum(ip));
        WriteL4(packet.AsSpan(34), protocol, srcPort, dstPort, payloadLength);
        return packet;
    }

    /// <summary>Eth + IPv6 (fd00:198:18::1 → ::2) + UDP/TCP.</summary>
    public static byte[] Ipv6(byte protocol, ushort srcPort, ushort dstPort, int payloadLength = 32, byte hopLimit = 64)
    {
        var l4Length = (protocol == Tcp ? 20 : 8) + payloadLength;
        var packet = new byte[14 + 40 + l4Length];
        WriteEth(packet, 0x86DD);
        var ip = packet.AsSpan(14, 40);
        ip[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)l4Length);
        ip[6] = protocol;
        ip[7] = hopLimit;
        byte[] prefix = [0xfd, 0x00, 0x01, 0x98, 0x00, 0x18];
        prefix.CopyTo(ip[8..]);
        ip[23] = 1;
        prefix.CopyTo(ip[24..]);
        ip[39] = 2;
        WriteL4(packet.AsSpan(54), protocol, srcPort, dstPort, payloadLength);
        return packet;
    }

    private static void WriteEth(Span<byte> packet, ushort ethertype)
    {
        DstMac.CopyTo(packet);
        SrcMac.CopyTo(packet[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(packet[12..], ethertype);
    }

    private static void WriteL4(Span<byte> l4, byte protocol, ushort srcPort, ushort dstPort, int payloadLength)
    {
        BinaryPrimitives.WriteUInt16BigEndian(l4, srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(l4[2..], dstPort);
        if (protocol == Tcp)
        {
            l4[12] = 5 << 4;
            l4[13] = 0x02; // SYN
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(l4[4..], (ushort)(8 + payloadLength));
        }
        var payload = l4[(protocol == Tcp ? 20 : 8)..];
        for (var i = 0; i < payload.Length; i++)
        {
            payload[i] = (byte)i;
        }
        // The L4 checksum stays 0: no program under test reads it (UDP over IPv4 allows 0, RFC 768).
    }

    /// <summary>RFC 1071 Internet checksum of <paramref name="data"/> (a checksum field inside must be zero, or the result is 0 for valid data).</summary>
    public static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (var i = 0; i + 1 < data.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        }
        if ((data.Length & 1) != 0)
        {
            sum += (uint)data[^1] << 8;
        }
        while (sum >> 16 != 0)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        return (ushort)~sum;
    }
}
