namespace Membrane.Linux;

/// <summary>Linux errno values (asm-generic/errno-base.h, errno.h) that Membrane meets.</summary>
public enum Errno
{
    None = 0,
    EPERM = 1,
    ENOENT = 2,
    ESRCH = 3,
    EINTR = 4,
    EIO = 5,
    ENXIO = 6,
    E2BIG = 7,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    ENODEV = 19,
    ENOTDIR = 20,
    EINVAL = 22,
    ENFILE = 23,
    EMFILE = 24,
    ENOSPC = 28,
    ERANGE = 34,
    ENOSYS = 38,
    ENOTEMPTY = 39,
    ELOOP = 40,
    ENOMSG = 42,
    ENODATA = 61,
    EPROTO = 71,
    EBADMSG = 74,
    EOVERFLOW = 75,
    ENOTSUP = 95,
    EOPNOTSUPP = 95,
    EAFNOSUPPORT = 97,
    EADDRINUSE = 98,
    EADDRNOTAVAIL = 99,
    ENETDOWN = 100,
    ENETUNREACH = 101,
    ENOBUFS = 105,
    ETIMEDOUT = 110,
    ECONNREFUSED = 111,
    EHOSTUNREACH = 113,
    EALREADY = 114,
    /// <summary>Kernel-internal "operation not supported" (include/linux/errno.h), seen from BPF commands.</summary>
    ENOTSUPP = 524,
}

/// <summary>Helpers for errno values.</summary>
public static class ErrnoExtensions
{
    /// <summary>The C library's description of the errno ("Operation not permitted").</summary>
    public static string Describe(this Errno errno) => errno switch
    {
        Errno.ENOTSUPP => "Operation not supported (kernel ENOTSUPP)",
        _ => System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage((int)errno),
    };

    /// <summary>Turns a negative libbpf-style return value (−errno) into an <see cref="Errno"/>.</summary>
    public static Errno FromNegative(long ret) => ret < 0 ? (Errno)(int)(-ret) : Errno.None;
}
