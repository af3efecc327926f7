using Microsoft.Win32.SafeHandles;

namespace Membrane.Linux;

/// <summary>
/// A kernel file descriptor owned by Membrane (a BPF map, program or link, a netlink socket,
/// a namespace). Every fd Membrane opens lives in one of these, never in a bare int, so that
/// it is closed exactly once; <see cref="OpenCount"/> lets tests prove nothing leaked.
/// </summary>
public class SafeFileDescriptor : SafeHandleZeroOrMinusOneIsInvalid
{
    private static long s_open;

    /// <summary>How many descriptors of this kind are open in this process right now.</summary>
    public static long OpenCount => Interlocked.Read(ref s_open);

    /// <summary>Takes ownership of <paramref name="fd"/> (which may be 0: a valid fd).</summary>
    public SafeFileDescriptor(int fd) : base(ownsHandle: true)
    {
        // fd 0 is a valid descriptor; SafeHandleZeroOrMinusOneIsInvalid would call it invalid,
        // so IsInvalid is overridden below.
        SetHandle(fd);
        if (fd >= 0)
        {
            Interlocked.Increment(ref s_open);
        }
    }

    /// <summary>The descriptor number.</summary>
    public int Fd => (int)handle;

    /// <inheritdoc/>
    public override bool IsInvalid => (int)handle < 0;

    /// <inheritdoc/>
    protected override bool ReleaseHandle()
    {
        Interlocked.Decrement(ref s_open);
        return Interop.Libc.Close((int)handle) == 0;
    }
}
