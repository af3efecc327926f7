using System.Runtime.InteropServices;

namespace Membrane.Linux.Interop;

/// <summary>Namespace and mount calls (sched.h, sys/mount.h, fcntl.h) used by network namespaces.</summary>
internal static partial class Libc
{
    /// <summary>CLONE_NEWNET (linux/sched.h).</summary>
    internal const int CLONE_NEWNET = 0x40000000;

    internal const int O_RDONLY = 0;
    internal const int O_CREAT = 0x40;
    internal const int O_EXCL = 0x80;
    internal const int O_CLOEXEC = 0x80000;

    // linux/mount.h
    internal const ulong MS_BIND = 0x1000;
    internal const ulong MS_REC = 0x4000;
    internal const ulong MS_SHARED = 1 << 20;
    internal const int MNT_DETACH = 2;

    [LibraryImport(Libraries.Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags, int mode);

    [LibraryImport(Libraries.Libc, EntryPoint = "unshare", SetLastError = true)]
    internal static partial int Unshare(int flags);

    [LibraryImport(Libraries.Libc, EntryPoint = "setns", SetLastError = true)]
    internal static partial int SetNs(SafeFileDescriptor fd, int nstype);

    // mount(2) and umount2(2) are declared once, in Interop.Bpf.cs (bpffs needs them too).

    /// <summary>NS_GET_NSTYPE (linux/nsfs.h, _IO(0xb7, 0x3)): the CLONE_NEW* type of a namespace fd.</summary>
    internal const nuint NS_GET_NSTYPE = 0xb703;

    [LibraryImport(Libraries.Libc, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(SafeFileDescriptor fd, nuint request, nint arg);

    /// <summary>
    /// struct stat is 144 bytes on x86_64 and 128 on arm64; on both st_dev is a u64 at 0 and
    /// st_ino a u64 at 8 (asm/stat.h, asm-generic/stat.h), the only fields read here.
    /// </summary>
    internal const int StatBufferSize = 256;
    internal const int StatInoOffset = 8;

    [LibraryImport(Libraries.Libc, EntryPoint = "fstat", SetLastError = true)]
    internal static unsafe partial int FStat(SafeFileDescriptor fd, byte* statBuffer);

    [LibraryImport(Libraries.Libc, EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static unsafe partial int Stat(string path, byte* statBuffer);

    /// <summary>The errno of the last P/Invoke marked SetLastError, as a typed value.</summary>
    internal static Errno LastErrno => (Errno)Marshal.GetLastPInvokeError();
}
