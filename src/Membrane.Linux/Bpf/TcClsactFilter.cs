using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>
/// A program attached the legacy way, as a direct-action filter on a clsact qdisc
/// (bpf_tc_hook_create / bpf_tc_attach): the fallback for kernels without tcx (before 6.6).
/// Unlike a link it is not tied to an fd and stays until detached. Disposing detaches only
/// this filter; the clsact qdisc is left in place because destroying it
/// (bpf_tc_hook_destroy) would delete every other user's filters too.
/// Like all attach calls, run it on a thread inside the device's network namespace.
/// </summary>
public sealed unsafe class TcClsactFilter : IDisposable
{
    private bool _detached;

    private TcClsactFilter(int ifindex, TcDirection direction, uint handle, uint priority, uint programId)
    {
        Ifindex = ifindex;
        Direction = direction;
        FilterHandle = handle;
        Priority = priority;
        ProgramId = programId;
    }

    /// <summary>The device.</summary>
    public int Ifindex { get; }

    /// <summary>Ingress or egress.</summary>
    public TcDirection Direction { get; }

    /// <summary>The filter's handle.</summary>
    public uint FilterHandle { get; }

    /// <summary>The filter's priority (lower runs first).</summary>
    public uint Priority { get; }

    /// <summary>Id of the attached program.</summary>
    public uint ProgramId { get; }

    /// <summary>Adds a clsact qdisc if the device has none and attaches the program as a direct-action filter, replacing one at the same handle/priority.</summary>
    public static TcClsactFilter Attach(BpfProgram program, int ifindex, TcDirection direction, uint handle = 1, uint priority = 1)
    {
        ArgumentNullException.ThrowIfNull(program);
        LibbpfLog.EnsureInstalled();
        var hook = Hook(ifindex, direction);
        var ret = Libbpf.TcHookCreate(&hook);
        if (ret < 0 && ret != -(int)Errno.EEXIST)
        {
            throw new BpfException($"create clsact qdisc on ifindex {ifindex}", ErrnoExtensions.FromNegative(ret));
        }
        var opts = new BpfTcOpts
        {
            Size = (nuint)sizeof(BpfTcOpts),
            ProgFd = program.Handle.Fd,
            Handle = handle,
            Priority = priority,
            Flags = 1, // BPF_TC_F_REPLACE
        };
        ret = Libbpf.TcAttach(&hook, &opts);
        BpfException.ThrowIfNegative(ret, $"attach program {program.Name} as clsact {direction.ToString().ToLowerInvariant()} filter on ifindex {ifindex}");
        return new TcClsactFilter(ifindex, direction, opts.Handle, opts.Priority, opts.ProgId);
    }

    /// <summary>The id of the program at this handle/priority, or null when none is attached there.</summary>
    public static uint? Query(int ifindex, TcDirection direction, uint handle = 1, uint priority = 1)
    {
        var hook = Hook(ifindex, direction);
        var opts = new BpfTcOpts { Size = (nuint)sizeof(BpfTcOpts), Handle = handle, Priority = priority };
        var ret = Libbpf.TcQuery(&hook, &opts);
        if (ret == -(int)Errno.ENOENT || ret == -(int)Errno.EINVAL)
        {
            return null; // no qdisc (EINVAL) or no such filter
        }
        BpfException.ThrowIfNegative(ret, $"query clsact filters on ifindex {ifindex}");
        return opts.ProgId;
    }

    /// <summary>Removes this filter (and nothing else).</summary>
    public void Detach()
    {
        if (_detached)
        {
            return;
        }
        var hook = Hook(Ifindex, Direction);
        var opts = new BpfTcOpts { Size = (nuint)sizeof(BpfTcOpts), Handle = FilterHandle, Priority = Priority };
        var ret = Libbpf.TcDetach(&hook, &opts);
        if (ret < 0 && ret != -(int)Errno.ENOENT)
        {
            throw new BpfException($"detach clsact filter {FilterHandle}:{Priority} from ifindex {Ifindex}", ErrnoExtensions.FromNegative(ret));
        }
        _detached = true;
    }

    /// <summary>Detaches the filter.</summary>
    public void Dispose() => Detach();

    private static BpfTcHook Hook(int ifindex, TcDirection direction) => new()
    {
        Size = (nuint)sizeof(BpfTcHook),
        Ifindex = ifindex,
        AttachPoint = direction == TcDirection.Ingress ? Libbpf.BPF_TC_INGRESS : Libbpf.BPF_TC_EGRESS,
    };
}
