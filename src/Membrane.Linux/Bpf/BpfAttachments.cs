using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>Where a program is attached on a device.</summary>
public enum BpfHook
{
    TcxIngress,
    TcxEgress,
    Xdp,
}

/// <summary>One program attached to a device.</summary>
/// <param name="Hook">The hook.</param>
/// <param name="ProgramId">The program's kernel id.</param>
/// <param name="LinkId">The link holding it (0 when attached without a link).</param>
public readonly record struct BpfAttachment(BpfHook Hook, uint ProgramId, uint LinkId);

/// <summary>
/// Lists what is attached to a device (BPF_PROG_QUERY for tcx, Linux 6.6 — bpftool 7.1 and
/// iproute2 6.1 cannot show tcx; the XDP query through libbpf's netlink call). The ifindex is
/// resolved in the calling thread's network namespace.
/// </summary>
public static unsafe class BpfAttachments
{
    private const int MaxPrograms = 64; // tcx allows at most 64 programs per hook (BPF_MPROG_MAX)

    /// <summary>The programs on one tcx hook in run order, and the hook's revision (bumped on each change).</summary>
    public static (IReadOnlyList<BpfAttachment> Programs, ulong Revision) QueryTcx(int ifindex, TcDirection direction)
    {
        var progIds = stackalloc uint[MaxPrograms];
        var linkIds = stackalloc uint[MaxPrograms];
        var attr = new BpfProgQueryAttr
        {
            TargetIfindex = (uint)ifindex,
            AttachType = direction == TcDirection.Ingress ? Interop.Bpf.BPF_TCX_INGRESS : Interop.Bpf.BPF_TCX_EGRESS,
            ProgIds = (ulong)progIds,
            LinkIds = (ulong)linkIds,
            Count = MaxPrograms,
        };
        var ret = Interop.Bpf.Call(Interop.Bpf.BPF_PROG_QUERY, &attr, sizeof(BpfProgQueryAttr));
        if (ret < 0)
        {
            var errno = ErrnoExtensions.FromNegative(ret);
            if (errno == Errno.EINVAL && !BpfFeatures.Tcx)
            {
                throw new BpfNotSupportedException("tcx links", "6.6", errno);
            }
            throw new BpfException($"query tcx {direction.ToString().ToLowerInvariant()} programs of ifindex {ifindex}", errno);
        }
        var hook = direction == TcDirection.Ingress ? BpfHook.TcxIngress : BpfHook.TcxEgress;
        var list = new BpfAttachment[Math.Min(attr.Count, MaxPrograms)];
        for (var i = 0; i < list.Length; i++)
        {
            list[i] = new BpfAttachment(hook, progIds[i], linkIds[i]);
        }
        return (list, attr.Revision);
    }

    /// <summary>The XDP program on the device, or null.</summary>
    public static uint? QueryXdp(int ifindex)
    {
        uint id = 0;
        var ret = Libbpf.XdpQueryId(ifindex, 0, &id);
        BpfException.ThrowIfNegative(ret, $"query the XDP program of ifindex {ifindex}");
        return id == 0 ? null : id;
    }

    /// <summary>Everything attached to the device through tcx (both directions) and XDP.</summary>
    public static IReadOnlyList<BpfAttachment> List(int ifindex)
    {
        var all = new List<BpfAttachment>();
        if (BpfFeatures.Tcx)
        {
            all.AddRange(QueryTcx(ifindex, TcDirection.Ingress).Programs);
            all.AddRange(QueryTcx(ifindex, TcDirection.Egress).Programs);
        }
        if (QueryXdp(ifindex) is { } xdp)
        {
            all.Add(new BpfAttachment(BpfHook.Xdp, xdp, 0));
        }
        return all;
    }
}
