using System.Runtime.InteropServices;

namespace Membrane.Linux.Interop;

/// <summary>
/// The raw bpf(2) syscall for the commands libbpf 1.1 predates: tcx links (BPF_LINK_CREATE
/// with BPF_TCX_INGRESS/EGRESS, Linux 6.6) and BPF_PROG_QUERY with the link fields. The
/// Debian 6.1 uapi headers lack these enums, so the values are spelled here
/// (include/uapi/linux/bpf.h in Linux 6.6+).
/// </summary>
internal static unsafe partial class Bpf
{
    internal const long SYS_bpf = 321; // arch/x86/entry/syscalls/syscall_64.tbl

    internal const int BPF_PROG_QUERY = 16;
    internal const int BPF_LINK_CREATE = 28;
    internal const int BPF_LINK_DETACH = 34;

    internal const uint BPF_XDP = 37;
    internal const uint BPF_TCX_INGRESS = 46;
    internal const uint BPF_TCX_EGRESS = 47;

    // tcx mprog flags (include/uapi/linux/bpf.h, BPF_F_BEFORE/AFTER...): none used yet.

    /// <summary>syscall(2). The variadic tail is passed in integer registers on x86-64 SysV.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long cmd, void* attr, long size);

    /// <summary>Calls bpf(cmd, attr, size); returns the result or −errno.</summary>
    internal static long Call(int cmd, void* attr, int size)
    {
        var ret = Syscall(SYS_bpf, cmd, attr, size);
        return ret < 0 ? -Marshal.GetLastPInvokeError() : ret;
    }
}

/// <summary>The link_create member of union bpf_attr (prog_fd@0, target_ifindex@4, attach_type@8, flags@12).</summary>
[StructLayout(LayoutKind.Sequential, Size = 64)]
internal struct BpfLinkCreateAttr
{
    public uint ProgFd;
    public uint TargetIfindex;
    public uint AttachType;
    public uint Flags;
}

/// <summary>The link_detach member of union bpf_attr (link_fd@0).</summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal struct BpfLinkDetachAttr
{
    public uint LinkFd;
}

/// <summary>The query member of union bpf_attr (Linux 6.6 layout, 64 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BpfProgQueryAttr
{
    public uint TargetIfindex;       // @0 (union with target_fd)
    public uint AttachType;          // @4
    public uint QueryFlags;          // @8
    public uint AttachFlags;         // @12
    public ulong ProgIds;            // @16 user pointer
    public uint Count;               // @24 in: capacity, out: how many
    public uint Pad;                 // @28
    public ulong ProgAttachFlags;    // @32
    public ulong LinkIds;            // @40
    public ulong LinkAttachFlags;    // @48
    public ulong Revision;           // @56
}

/// <summary>The head of struct bpf_prog_info (bpf.h) Membrane reads.</summary>
[StructLayout(LayoutKind.Sequential, Size = 256)]
internal unsafe struct BpfProgInfo
{
    public uint Type;                // @0
    public uint Id;                  // @4
    public fixed byte Tag[8];        // @8
    public uint JitedProgLen;        // @16
    public uint XlatedProgLen;       // @20
    public ulong JitedProgInsns;     // @24
    public ulong XlatedProgInsns;    // @32
    public ulong LoadTime;           // @40
    public uint CreatedByUid;        // @48
    public uint NrMapIds;            // @52
    public ulong MapIds;             // @56
    public fixed byte Name[16];      // @64
}

/// <summary>The head of struct bpf_map_info (bpf.h).</summary>
[StructLayout(LayoutKind.Sequential, Size = 128)]
internal unsafe struct BpfMapInfo
{
    public uint Type;                // @0
    public uint Id;                  // @4
    public uint KeySize;             // @8
    public uint ValueSize;           // @12
    public uint MaxEntries;          // @16
    public uint MapFlags;            // @20
    public fixed byte Name[16];      // @24
}

/// <summary>The head of struct bpf_link_info (bpf.h).</summary>
[StructLayout(LayoutKind.Sequential, Size = 64)]
internal struct BpfLinkInfo
{
    public uint Type;                // @0 enum bpf_link_type
    public uint Id;                  // @4
    public uint ProgId;              // @8
}

internal static unsafe partial class Libc
{
    [LibraryImport(Libraries.Libc, EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int Fcntl(int fd, int cmd, int arg);

    internal const int F_DUPFD_CLOEXEC = 1030;

    [LibraryImport(Libraries.Libc, EntryPoint = "statfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Statfs(string path, StatFs* buf);

    [LibraryImport(Libraries.Libc, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Mount(string source, string target, string fsType, ulong flags, nint data);

    [LibraryImport(Libraries.Libc, EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Umount2(string target, int flags);

    internal const long BPF_FS_MAGIC = 0xcafe4a11; // include/uapi/linux/magic.h
}

/// <summary>struct statfs (x86-64 glibc), 120 bytes: f_type is the first field.</summary>
[StructLayout(LayoutKind.Sequential, Size = 120)]
internal struct StatFs
{
    public long Type;
}
