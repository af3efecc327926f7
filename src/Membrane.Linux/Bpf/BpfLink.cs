using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>Which side of a device a tc program sees.</summary>
public enum TcDirection
{
    /// <summary>Packets the device receives.</summary>
    Ingress,
    /// <summary>Packets the device transmits.</summary>
    Egress,
}

/// <summary>Kinds of BPF link (enum bpf_link_type).</summary>
public enum BpfLinkType
{
    Unspecified = 0,
    Xdp = 6,
    /// <summary>tcx (Linux 6.6).</summary>
    Tcx = 11,
    Netkit = 13,
}

/// <summary>
/// A BPF link: a program attached to a hook, held by an fd. The attachment ends when the last
/// fd closes and no pin refers to it, so a datapath that must outlive its agent is pinned
/// (<see cref="Pin"/>) and detached by removing the pin (<see cref="BpfFs.Unpin"/>).
/// Attach calls resolve the ifindex in the calling thread's network namespace: call them on
/// the thread that entered the target namespace (KERNEL-NOTES: DANGER).
/// </summary>
public sealed unsafe class BpfLink : IDisposable
{
    private BpfLink(SafeFileDescriptor fd, in BpfLinkInfo info)
    {
        Handle = fd;
        Id = info.Id;
        ProgramId = info.ProgId;
        Type = (BpfLinkType)info.Type;
    }

    /// <summary>The link's fd.</summary>
    public SafeFileDescriptor Handle { get; }

    /// <summary>Kernel-wide link id.</summary>
    public uint Id { get; }

    /// <summary>Id of the attached program.</summary>
    public uint ProgramId { get; }

    /// <summary>The kind of link.</summary>
    public BpfLinkType Type { get; }

    /// <summary>
    /// Attaches a tc program to a device's tcx hook with a raw BPF_LINK_CREATE (libbpf 1.1
    /// has no tcx API). The program is appended after programs already there.
    /// </summary>
    public static BpfLink AttachTcx(BpfProgram program, int ifindex, TcDirection direction)
    {
        ArgumentNullException.ThrowIfNull(program);
        var attr = new BpfLinkCreateAttr
        {
            ProgFd = (uint)program.Handle.Fd,
            TargetIfindex = (uint)ifindex,
            AttachType = direction == TcDirection.Ingress ? Interop.Bpf.BPF_TCX_INGRESS : Interop.Bpf.BPF_TCX_EGRESS,
        };
        var ret = Interop.Bpf.Call(Interop.Bpf.BPF_LINK_CREATE, &attr, sizeof(BpfLinkCreateAttr));
        if (ret < 0)
        {
            var errno = ErrnoExtensions.FromNegative(ret);
            if (errno == Errno.EINVAL && !BpfFeatures.Tcx)
            {
                throw new BpfNotSupportedException("tcx links", "6.6", errno);
            }
            throw new BpfException($"attach program {program.Name} to tcx {direction.ToString().ToLowerInvariant()} of ifindex {ifindex}", errno);
        }
        return FromFd(new SafeFileDescriptor((int)ret));
    }

    /// <summary>Attaches an XDP program to a device through a BPF link (Linux 5.9), in the driver's native mode when it has one.</summary>
    public static BpfLink AttachXdp(BpfProgram program, int ifindex)
    {
        ArgumentNullException.ThrowIfNull(program);
        var attr = new BpfLinkCreateAttr
        {
            ProgFd = (uint)program.Handle.Fd,
            TargetIfindex = (uint)ifindex,
            AttachType = Interop.Bpf.BPF_XDP,
        };
        var ret = Interop.Bpf.Call(Interop.Bpf.BPF_LINK_CREATE, &attr, sizeof(BpfLinkCreateAttr));
        if (ret < 0)
        {
            throw new BpfException($"attach XDP program {program.Name} to ifindex {ifindex}", ErrnoExtensions.FromNegative(ret));
        }
        return FromFd(new SafeFileDescriptor((int)ret));
    }

    /// <summary>Opens a link pinned on bpffs (it stays attached while this fd or the pin exists).</summary>
    public static BpfLink OpenPinned(string path) => FromFd(BpfFs.Open(path, "link"));

    /// <summary>Pins the link so that it stays attached after this process exits.</summary>
    public void Pin(string path) => BpfFs.Pin(Handle, path, $"link {Id}");

    private static BpfLink FromFd(SafeFileDescriptor fd)
    {
        BpfLinkInfo info = default;
        var length = (uint)sizeof(BpfLinkInfo);
        var ret = Libbpf.ObjGetInfoByFd(fd.Fd, &info, &length);
        if (ret < 0)
        {
            fd.Dispose();
            throw new BpfException("read link info", ErrnoExtensions.FromNegative(ret));
        }
        return new BpfLink(fd, info);
    }

    /// <summary>
    /// Detaches the program now, even while pins or other fds still hold the link
    /// (BPF_LINK_DETACH, Linux 5.9); the link object stays, defunct, until its last reference goes.
    /// </summary>
    public void Detach()
    {
        var attr = new BpfLinkDetachAttr { LinkFd = (uint)Handle.Fd };
        var ret = Interop.Bpf.Call(Interop.Bpf.BPF_LINK_DETACH, &attr, sizeof(BpfLinkDetachAttr));
        BpfException.ThrowIfNegative(ret, $"detach link {Id}");
    }

    /// <summary>Closes the fd: detaches the program unless the link is pinned or held elsewhere.</summary>
    public void Dispose() => Handle.Dispose();
}
