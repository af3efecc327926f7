using Membrane.Linux.Bpf;
using Membrane.Testing;

namespace Membrane.Linux.Tests.Bpf;

[Collection("kernel")]
public sealed class BpfObjectTests
{
    [SkippableFact]
    public void LoadsFromFileAndFindsMapsAndPrograms()
    {
        using var scope = new BpfTestScope();
        using var obj = BpfObject.Load(BpfObjects.PathOf(BpfObjects.TestFilter));
        Assert.Equal("test_filter", obj.Name);
        Assert.Contains("verdict", obj.MapNames);
        Assert.Contains("metrics", obj.MapNames);
        Assert.Contains("events", obj.MapNames);
        Assert.Equal(["test_filter_ingress", "test_filter_egress"], obj.ProgramNames.Order().Reverse().ToArray());

        using var prog = obj.FindProgram("test_filter_ingress");
        Assert.Equal(BpfProgramType.SchedCls, prog.Type);
        Assert.Equal("test_filter_ingress"[..15], prog.Name); // the kernel keeps 15 bytes
        Assert.NotEqual(0u, prog.Id);
        Assert.Equal(16, prog.Tag.Length);

        using var verdict = obj.FindMap("verdict");
        Assert.Equal(BpfMapType.Hash, verdict.Type);
        Assert.Equal(4, verdict.KeySize);
        Assert.Equal(8, verdict.ValueSize);

        var missing = Assert.Throws<BpfException>(() => obj.FindMap("nope"));
        Assert.Equal(Errno.ENOENT, missing.Errno);
        Assert.StartsWith("failed to find map nope", missing.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void MapsAndProgramsOutliveTheirObject()
    {
        using var scope = new BpfTestScope();
        BpfProgram prog;
        using (var obj = BpfObject.Load(BpfObjects.PathOf(BpfObjects.Noop)))
        {
            prog = obj.FindProgram("tc_noop");
        }
        using (prog)
        {
            var packet = TestPackets.Ipv4(TestPackets.Udp, 1, 2);
            Assert.Equal(BpfObjects.TcActOk, prog.TestRun(packet, new byte[packet.Length]).ReturnValue);
        }
    }

    [SkippableFact]
    public void LoadsFromBytes()
    {
        using var scope = new BpfTestScope();
        var bytes = File.ReadAllBytes(BpfObjects.PathOf(BpfObjects.ParseLookup));
        using var obj = BpfObject.OpenBytes(bytes, "from_bytes");
        Assert.False(obj.IsLoaded);
        obj.Load();
        Assert.True(obj.IsLoaded);
        using var prog = obj.FindProgram("tc_parse_lookup");
        Assert.Equal(BpfProgramType.SchedCls, prog.Type);
    }

    [SkippableFact]
    public void GarbageIsRejectedWhenOpened()
    {
        using var scope = new BpfTestScope();
        var e = Assert.ThrowsAny<BpfException>(() => BpfObject.OpenBytes("not an ELF object"u8, "garbage"));
        Assert.StartsWith("failed to open BPF object garbage", e.Message, StringComparison.Ordinal);
        Assert.NotEqual(Errno.None, e.Errno);
    }

    [SkippableFact]
    public void VerifierRejectionCarriesTheVerifierLog()
    {
        using var scope = new BpfTestScope();
        var clang = Requires.Tool("clang");
        var dir = Directory.CreateTempSubdirectory(RunPrefix.Value + "-bpfc");
        try
        {
            // Reads packet data without the bounds check the verifier insists on.
            var source = Path.Combine(dir.FullName, "unchecked.c");
            File.WriteAllText(source, """
                #include <linux/bpf.h>
                #include <bpf/bpf_helpers.h>
                SEC("tc")
                int unchecked_read(struct __sk_buff *skb)
                {
                	unsigned char *data = (void *)(long)skb->data;
                	return data[20];
                }
                char LICENSE[] SEC("license") = "GPL";
                """);
            var obj = Path.Combine(dir.FullName, "unchecked.o");
            var (code, _, err) = Tools.Run(clang, ["-O2", "-g", "-target", "bpf", "-mcpu=v3", "-I/usr/include/x86_64-linux-gnu", "-c", source, "-o", obj]);
            Assert.True(code == 0, err);

            var e = Assert.Throws<BpfVerifierException>(() => BpfObject.Load(obj));
            Assert.Equal(Errno.EACCES, e.Errno);
            Assert.StartsWith("failed to load BPF object unchecked: ", e.Message, StringComparison.Ordinal);
            // The verifier's own words about the out-of-bounds packet access.
            Assert.Contains("invalid access to packet", e.Log, StringComparison.Ordinal);
            Assert.Contains("invalid access to packet", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

/// <summary>libbpf's print callback: va_list formatting through vsnprintf and routing into ILogger.</summary>
[Collection("kernel")]
public sealed class LibbpfLogTests
{
    private sealed class ListLogger : Microsoft.Extensions.Logging.ILogger
    {
        public List<(Microsoft.Extensions.Logging.LogLevel Level, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Entries)
            {
                Entries.Add((logLevel, formatter(state, exception)));
            }
        }
    }

    [SkippableFact]
    public void LibbpfMessagesAreFormattedAndLogged()
    {
        using var scope = new BpfTestScope();
        var logger = new ListLogger();
        var previous = LibbpfLog.Logger;
        LibbpfLog.Logger = logger;
        try
        {
            // Opening test_filter.o makes libbpf say (libbpf.c bpf_object__elf_collect):
            //   "elf: skipping unrecognized data section(%d) %s" for the BTF anchors' section,
            // so both printf arguments must come through the va_list.
            using var obj = BpfObject.OpenFile(BpfObjects.PathOf(BpfObjects.TestFilter));
        }
        finally
        {
            LibbpfLog.Logger = previous;
        }
        lock (logger.Entries)
        {
            Assert.Contains(logger.Entries, e => System.Text.RegularExpressions.Regex.IsMatch(e.Message,
                @"^libbpf: elf: skipping unrecognized data section\(\d+\) \.btf_anchor$"));
        }
    }
}
