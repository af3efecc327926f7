using System.Collections.Concurrent;
using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>A kernel capability the datapath relies on.</summary>
public enum BpfFeature
{
    /// <summary>The bpf(2) syscall works for this process (CONFIG_BPF_SYSCALL, CAP_BPF).</summary>
    Syscall,
    /// <summary>Kernel BTF at /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF).</summary>
    KernelBtf,
    /// <summary>bpffs mounted at /sys/fs/bpf.</summary>
    BpfFsMounted,
    /// <summary>tcx links (BPF_TCX_INGRESS/EGRESS).</summary>
    Tcx,
    /// <summary>BPF_MAP_TYPE_RINGBUF.</summary>
    RingBuffer,
    /// <summary>BPF_MAP_TYPE_LPM_TRIE.</summary>
    LpmTrie,
    /// <summary>The bpf_redirect_peer helper for tc programs.</summary>
    RedirectPeer,
}

/// <summary>
/// Probes of what the running kernel offers, each run once and cached (cilium/ebpf's
/// features package). A probe tries the real thing where that is harmless and falls back
/// to libbpf's probes (libbpf_probe_bpf_map_type / _helper, which load tiny programs).
/// </summary>
public static unsafe class BpfFeatures
{
    private static readonly ConcurrentDictionary<BpfFeature, bool> s_features = new();
    private static readonly ConcurrentDictionary<BpfMapType, bool> s_mapTypes = new();

    /// <summary>Where the kernel's BTF is exported.</summary>
    public const string KernelBtfPath = "/sys/kernel/btf/vmlinux";

    /// <summary>True when tcx links are available.</summary>
    public static bool Tcx => Has(BpfFeature.Tcx);

    /// <summary>The running kernel's release, e.g. 6.18.44 (from uname).</summary>
    public static Version KernelVersion { get; } = ParseKernelRelease(ReadRelease());

    /// <summary>The kernel's release string (/proc/sys/kernel/osrelease).</summary>
    public static string KernelRelease { get; } = ReadRelease();

    /// <summary>True when the kernel offers <paramref name="feature"/> (probed once per process).</summary>
    public static bool Has(BpfFeature feature) => s_features.GetOrAdd(feature, Probe);

    /// <summary>Throws <see cref="BpfNotSupportedException"/> unless the kernel offers <paramref name="feature"/>.</summary>
    public static void Require(BpfFeature feature)
    {
        if (!Has(feature))
        {
            throw new BpfNotSupportedException(Describe(feature), SinceKernel(feature));
        }
    }

    /// <summary>True when maps of <paramref name="type"/> can be created.</summary>
    public static bool HasMapType(BpfMapType type) => s_mapTypes.GetOrAdd(type, t =>
    {
        LibbpfLog.EnsureInstalled();
        return Libbpf.ProbeMapType((int)t, 0) == 1;
    });

    /// <summary>A human name for the feature ("tcx links").</summary>
    public static string Describe(BpfFeature feature) => feature switch
    {
        BpfFeature.Syscall => "the bpf() syscall",
        BpfFeature.KernelBtf => "kernel BTF (" + KernelBtfPath + ")",
        BpfFeature.BpfFsMounted => "bpffs at " + BpfFs.DefaultRoot,
        BpfFeature.Tcx => "tcx links",
        BpfFeature.RingBuffer => "BPF ring buffers",
        BpfFeature.LpmTrie => "LPM trie maps",
        BpfFeature.RedirectPeer => "the bpf_redirect_peer helper",
        _ => feature.ToString(),
    };

    /// <summary>The first mainline kernel that has <paramref name="feature"/>.</summary>
    public static string SinceKernel(BpfFeature feature) => feature switch
    {
        BpfFeature.Syscall => "3.18",
        BpfFeature.KernelBtf => "5.4",
        BpfFeature.BpfFsMounted => "4.4",
        BpfFeature.Tcx => "6.6",
        BpfFeature.RingBuffer => "5.8",
        BpfFeature.LpmTrie => "4.11",
        BpfFeature.RedirectPeer => "5.10",
        _ => "?",
    };

    /// <summary>The first mainline kernel that has maps of <paramref name="type"/>.</summary>
    public static string SinceKernel(BpfMapType type) => type switch
    {
        BpfMapType.Hash or BpfMapType.Array => "3.19",
        BpfMapType.ProgramArray => "4.2",
        BpfMapType.PerCpuHash or BpfMapType.PerCpuArray => "4.6",
        BpfMapType.LruHash or BpfMapType.LruPerCpuHash => "4.10",
        BpfMapType.LpmTrie => "4.11",
        BpfMapType.ArrayOfMaps or BpfMapType.HashOfMaps => "4.12",
        BpfMapType.RingBuffer => "5.8",
        _ => "?",
    };

    private static bool Probe(BpfFeature feature)
    {
        LibbpfLog.EnsureInstalled();
        switch (feature)
        {
            case BpfFeature.Syscall:
            {
                var fd = Libbpf.MapCreate((int)BpfMapType.Array, "mb_probe", 4, 4, 1, null);
                if (fd < 0)
                {
                    return false;
                }
                new SafeFileDescriptor(fd).Dispose();
                return true;
            }
            case BpfFeature.KernelBtf:
                return File.Exists(KernelBtfPath);
            case BpfFeature.BpfFsMounted:
                return BpfFs.IsBpfFs(BpfFs.DefaultRoot);
            case BpfFeature.Tcx:
            {
                // A read-only query of the loopback device (ifindex 1 in every namespace):
                // kernels without tcx reject the attach type with EINVAL.
                var attr = new BpfProgQueryAttr { TargetIfindex = 1, AttachType = Interop.Bpf.BPF_TCX_INGRESS };
                return Interop.Bpf.Call(Interop.Bpf.BPF_PROG_QUERY, &attr, sizeof(BpfProgQueryAttr)) >= 0;
            }
            case BpfFeature.RingBuffer:
                return HasMapType(BpfMapType.RingBuffer);
            case BpfFeature.LpmTrie:
                return HasMapType(BpfMapType.LpmTrie);
            case BpfFeature.RedirectPeer:
                return Libbpf.ProbeHelper(Libbpf.BPF_PROG_TYPE_SCHED_CLS, Libbpf.BPF_FUNC_redirect_peer, 0) == 1;
            default:
                return false;
        }
    }

    private static string ReadRelease()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (IOException)
        {
            return Environment.OSVersion.VersionString;
        }
    }

    /// <summary>The numeric part of a kernel release ("6.18.44-fc-v669" → 6.18.44); 0.0 when there is none.</summary>
    public static Version ParseKernelRelease(string release)
    {
        ArgumentNullException.ThrowIfNull(release);
        var numeric = new string(release.TakeWhile(c => char.IsDigit(c) || c == '.').ToArray()).TrimEnd('.');
        return Version.TryParse(numeric.Contains('.') ? numeric : numeric + ".0", out var v) ? v : new Version(0, 0);
    }
}
