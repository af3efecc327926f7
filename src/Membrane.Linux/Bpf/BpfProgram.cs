using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>BPF program types Membrane uses (enum bpf_prog_type).</summary>
public enum BpfProgramType
{
    Unspecified = 0,
    SocketFilter = 1,
    /// <summary>tc classifier: runs at tcx or clsact hooks on a __sk_buff.</summary>
    SchedCls = 3,
    SchedAct = 4,
    /// <summary>eXpress Data Path: runs in the driver on an xdp_md.</summary>
    Xdp = 6,
}

/// <summary>A loaded BPF program. Owns its fd; attach it, test-run it, or put it into a program array.</summary>
public sealed unsafe partial class BpfProgram : IDisposable
{
    private BpfProgram(SafeFileDescriptor fd, in BpfProgInfo info)
    {
        Handle = fd;
        Type = (BpfProgramType)info.Type;
        Id = info.Id;
        fixed (byte* name = info.Name)
        {
            Name = new string((sbyte*)name);
        }
        fixed (byte* tag = info.Tag)
        {
            Tag = Convert.ToHexStringLower(new ReadOnlySpan<byte>(tag, 8));
        }
    }

    /// <summary>The program's fd.</summary>
    public SafeFileDescriptor Handle { get; }

    /// <summary>The program name as the kernel knows it (its C function name, cut to 15 bytes).</summary>
    public string Name { get; }

    /// <summary>The program type.</summary>
    public BpfProgramType Type { get; }

    /// <summary>The kernel-wide id.</summary>
    public uint Id { get; }

    /// <summary>The kernel's hash of the program's instructions (what bpftool shows as "tag").</summary>
    public string Tag { get; }

    /// <summary>Opens a program pinned on bpffs.</summary>
    public static BpfProgram OpenPinned(string path) => FromFd(BpfFs.Open(path, "program"));

    /// <summary>Opens a loaded program by its kernel id (for example one found attached to a device).</summary>
    public static BpfProgram OpenById(uint id)
    {
        var fd = Libbpf.ProgGetFdById(id);
        BpfException.ThrowIfNegative(fd, $"open BPF program id {id}");
        return FromFd(new SafeFileDescriptor(fd));
    }

    /// <summary>Pins the program on bpffs.</summary>
    public void Pin(string path) => BpfFs.Pin(Handle, path, $"program {Name}");

    internal static BpfProgram FromFd(SafeFileDescriptor fd)
    {
        BpfProgInfo info = default;
        var length = (uint)sizeof(BpfProgInfo);
        var ret = Libbpf.ObjGetInfoByFd(fd.Fd, &info, &length);
        if (ret < 0)
        {
            fd.Dispose();
            throw new BpfException("read program info", ErrnoExtensions.FromNegative(ret));
        }
        return new BpfProgram(fd, info);
    }

    /// <summary>Closes this fd (the program lives on while attached, linked or pinned).</summary>
    public void Dispose() => Handle.Dispose();
}
