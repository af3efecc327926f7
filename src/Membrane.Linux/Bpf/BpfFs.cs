using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>The BPF filesystem (bpffs), where maps, programs and links are pinned to outlive their process.</summary>
public static unsafe class BpfFs
{
    /// <summary>Where distributions and Cilium mount it.</summary>
    public const string DefaultRoot = "/sys/fs/bpf";

    /// <summary>True when <paramref name="path"/> lies on a bpffs mount (statfs f_type == BPF_FS_MAGIC).</summary>
    public static bool IsBpfFs(string path)
    {
        StatFs st;
        return Libc.Statfs(path, &st) == 0 && st.Type == Libc.BPF_FS_MAGIC;
    }

    /// <summary>Mounts a bpffs instance at <paramref name="path"/> (creating the directory), as Cilium's agent does when none is mounted.</summary>
    public static void Mount(string path)
    {
        Directory.CreateDirectory(path);
        if (Libc.Mount("bpf", path, "bpf", 0, 0) != 0)
        {
            throw new BpfException($"mount bpffs at {path}", (Errno)System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>Unmounts a bpffs instance; every object pinned only there is released.</summary>
    public static void Unmount(string path)
    {
        if (Libc.Umount2(path, 0) != 0)
        {
            throw new BpfException($"unmount bpffs at {path}", (Errno)System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>Removes a pin. For a link this detaches it once no process holds an fd.</summary>
    public static void Unpin(string path) => File.Delete(path);

    internal static void Pin(SafeFileDescriptor fd, string path, string what)
    {
        var ret = Libbpf.ObjPin(fd.Fd, path);
        BpfException.ThrowIfNegative(ret, $"pin {what} at {path}");
    }

    internal static SafeFileDescriptor Open(string path, string what)
    {
        var fd = Libbpf.ObjGet(path);
        BpfException.ThrowIfNegative(fd, $"open pinned {what} {path}");
        return new SafeFileDescriptor(fd);
    }

    /// <summary>Duplicates an fd owned by libbpf so that the copy can be owned by a SafeHandle.</summary>
    internal static SafeFileDescriptor Dup(int fd, string what)
    {
        var copy = Libc.Fcntl(fd, Libc.F_DUPFD_CLOEXEC, 0);
        if (copy < 0)
        {
            throw new BpfException($"duplicate the fd of {what}", (Errno)System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }
        return new SafeFileDescriptor(copy);
    }
}
