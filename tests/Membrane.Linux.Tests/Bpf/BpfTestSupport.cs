using Membrane.Linux.Bpf;
using Membrane.Packets;
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

/// <summary>
/// Test packets built with Membrane.Packets' <see cref="PacketBuilder"/> (which fills lengths,
/// next-protocol fields and every checksum), so the programs see what a real stack would send.
/// </summary>
public static class TestPackets
{
    public const byte Udp = 17;
    public const byte Tcp = 6;

    public static readonly MacAddress SrcMac = MacAddress.Parse("02:00:00:00:00:01");
    public static readonly MacAddress DstMac = MacAddress.Parse("02:00:00:00:00:02");

    /// <summary>IPv6 extension headers to put between the IPv6 header and L4.</summary>
    public enum Ext
    {
        HopByHop,
        Routing,
        DestinationOptions,
        FirstFragment,
        LaterFragment,
    }

    /// <summary>Eth + IPv4 (198.18.0.1 → 198.18.0.2) + UDP/TCP with <paramref name="payloadLength"/> bytes of payload.</summary>
    public static byte[] Ipv4(byte protocol, ushort srcPort, ushort dstPort, int payloadLength = 32, byte ttl = 64)
    {
        Span<byte> buffer = stackalloc byte[2048];
        var b = new PacketBuilder(buffer);
        b.Ethernet(DstMac, SrcMac);
        b.Ipv4(Ipv4Address.Parse("198.18.0.1"), Ipv4Address.Parse("198.18.0.2"), ttl: ttl, identification: 0x1234);
        L4(ref b, protocol, srcPort, dstPort, payloadLength);
        return buffer[..b.Finish()].ToArray();
    }

    /// <summary>Eth + IPv6 (fd00:198:18::1 → ::2) [+ extension headers] + UDP/TCP.</summary>
    public static byte[] Ipv6(byte protocol, ushort srcPort, ushort dstPort, int payloadLength = 32, byte hopLimit = 64, params Ext[] extensions)
    {
        Span<byte> buffer = stackalloc byte[2048];
        var b = new PacketBuilder(buffer);
        b.Ethernet(DstMac, SrcMac);
        b.Ipv6(Ipv6Address.Parse("fd00:198:18::1"), Ipv6Address.Parse("fd00:198:18::2"), hopLimit: hopLimit);
        foreach (var ext in extensions)
        {
            switch (ext)
            {
                case Ext.HopByHop: b.Ipv6HopByHop(); break;
                case Ext.Routing: b.Ipv6Routing(routingType: 0, segmentsLeft: 0, data: new byte[20]); break;
                case Ext.DestinationOptions: b.Ipv6DestinationOptions(); break;
                case Ext.FirstFragment: b.Ipv6Fragment(0, moreFragments: true, identification: 7); break;
                case Ext.LaterFragment: b.Ipv6Fragment(8, moreFragments: false, identification: 7); break;
            }
        }
        L4(ref b, protocol, srcPort, dstPort, payloadLength);
        return buffer[..b.Finish()].ToArray();
    }

    private static void L4(ref PacketBuilder b, byte protocol, ushort srcPort, ushort dstPort, int payloadLength)
    {
        if (protocol == Tcp)
        {
            b.Tcp(srcPort, dstPort, flags: TcpFlags.Syn);
        }
        else
        {
            b.Udp(srcPort, dstPort);
        }
        var payload = new byte[payloadLength];
        for (var i = 0; i < payload.Length; i++)
        {
            payload[i] = (byte)i;
        }
        b.Payload(payload);
    }
}
