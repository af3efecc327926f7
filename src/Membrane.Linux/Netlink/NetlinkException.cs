namespace Membrane.Linux.Netlink;

/// <summary>
/// A netlink request the kernel refused (or that could not be sent). Carries the operation,
/// the errno and, when the kernel supplied one, its extended-ack message
/// (NLMSGERR_ATTR_MSG, e.g. "MTU too large"), as in
/// "failed to create veth mb01a: File exists (kernel: ...)".
/// </summary>
public sealed class NetlinkException : Exception
{
    /// <summary>Creates the exception for <paramref name="operation"/> ("create veth mb01a").</summary>
    public NetlinkException(string operation, Errno errno, string? kernelMessage = null, int? errorOffset = null, Exception? inner = null)
        : base(Format(operation, errno, kernelMessage), inner)
    {
        Operation = operation;
        Errno = errno;
        KernelMessage = kernelMessage;
        ErrorOffset = errorOffset;
    }

    /// <summary>What was being done, as a verb phrase ("create veth mb01a").</summary>
    public string Operation { get; }

    /// <summary>The errno the kernel (or the socket call) returned.</summary>
    public Errno Errno { get; }

    /// <summary>The kernel's extended-ack message, when it gave one.</summary>
    public string? KernelMessage { get; }

    /// <summary>
    /// The byte offset, inside the request, of the attribute the kernel blamed
    /// (NLMSGERR_ATTR_OFFS), when it named one.
    /// </summary>
    public int? ErrorOffset { get; }

    private static string Format(string operation, Errno errno, string? kernelMessage) =>
        kernelMessage is { Length: > 0 }
            ? $"failed to {operation}: {errno.Describe()} (kernel: {kernelMessage})"
            : $"failed to {operation}: {errno.Describe()}";
}
