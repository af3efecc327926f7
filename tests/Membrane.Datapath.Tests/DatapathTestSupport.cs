using Membrane.Linux;
using Membrane.Linux.Bpf;
using Membrane.Testing;

namespace Membrane.Datapath.Tests;

/// <summary>Privileged datapath tests run one at a time (they share bpffs, netns and the global fd count).</summary>
[CollectionDefinition("kernel", DisableParallelization = true)]
public sealed class KernelCollection;

/// <summary>Where the build put the objects (bpf/Membrane.Bpf.targets copies them beside the tests).</summary>
internal static class DatapathObjects
{
    public static string FromPod => Path.Combine(AppContext.BaseDirectory, "bpf", "from_pod.o");

    /// <summary>tc return codes (include/uapi/linux/pkt_cls.h).</summary>
    public const uint TcActOk = 0;
    public const uint TcActShot = 2;
    public const uint TcActRedirect = 7;
}

/// <summary>
/// Per-test guard: root, tcx and the ring buffer present (skip outside CI, fail under
/// CI=true), a private pin root on bpffs named with the run prefix, and on Dispose the
/// node's pins removed and the fd count back where it started.
/// </summary>
internal sealed class DatapathTestScope : IDisposable
{
    private readonly long _openBefore;

    public DatapathTestScope()
    {
        Requires.Root();
        Requires.That(File.Exists(DatapathObjects.FromPod), "needs bin/bpf/from_pod.o (the build runs clang)");
        Requires.That(BpfFeatures.Has(BpfFeature.Syscall) && BpfFeatures.Tcx, "needs the bpf syscall and tcx links (Linux 6.6)");
        Requires.That(BpfFeatures.Has(BpfFeature.RingBuffer), "needs BPF ring buffers (Linux 5.8)");
        Requires.That(BpfFs.IsBpfFs(BpfFs.DefaultRoot), $"needs bpffs at {BpfFs.DefaultRoot}");
        _openBefore = SafeFileDescriptor.OpenCount;
        PinRoot = Path.Combine(BpfFs.DefaultRoot, RunPrefix.Next("dp"));
        Directory.CreateDirectory(PinRoot);
        Options = new DatapathOptions { NodeName = RunPrefix.Next("node"), PinRoot = PinRoot, ObjectPath = DatapathObjects.FromPod };
    }

    public string PinRoot { get; }

    public DatapathOptions Options { get; }

    public void Dispose()
    {
        Datapath.RemovePins(Options);
        var left = Directory.GetFileSystemEntries(PinRoot, "*", SearchOption.AllDirectories);
        Directory.Delete(PinRoot, recursive: true);
        Assert.True(left.Length == 0, "pins left behind: " + string.Join(", ", left));
        Assert.Equal(_openBefore, SafeFileDescriptor.OpenCount);
    }
}
