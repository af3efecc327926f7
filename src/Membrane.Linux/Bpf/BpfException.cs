namespace Membrane.Linux.Bpf;

/// <summary>
/// A BPF operation failed in the kernel or in libbpf. The message follows
/// "failed to &lt;operation&gt;: &lt;strerror&gt;" (cilium/ebpf's wrapped errors).
/// </summary>
public class BpfException : Exception
{
    /// <summary>Creates the exception for <paramref name="operation"/> failing with <paramref name="errno"/>.</summary>
    public BpfException(string operation, Errno errno, Exception? inner = null)
        : base($"failed to {operation}: {errno.Describe()}", inner)
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>For subclasses that phrase their own message.</summary>
    protected BpfException(string operation, Errno errno, string message, Exception? inner = null)
        : base(message, inner)
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>What was being done, e.g. "load BPF object test_filter.o".</summary>
    public string Operation { get; }

    /// <summary>Why the kernel or libbpf refused.</summary>
    public Errno Errno { get; }

    internal static void ThrowIfNegative(long ret, string operation)
    {
        if (ret < 0)
        {
            throw new BpfException(operation, ErrnoExtensions.FromNegative(ret));
        }
    }
}

/// <summary>The verifier (or libbpf while preparing programs) rejected an object; <see cref="Log"/> says why.</summary>
public sealed class BpfVerifierException : BpfException
{
    /// <summary>Creates the exception with the log libbpf printed during the load.</summary>
    public BpfVerifierException(string operation, Errno errno, string log)
        : base(operation, errno, $"failed to {operation}: {errno.Describe()}{(log.Length > 0 ? Environment.NewLine + TailOf(log) : "")}")
    {
        Log = log;
    }

    /// <summary>Everything libbpf printed while loading, verifier log included.</summary>
    public string Log { get; }

    // The verifier's conclusion is at the end of its log; keep messages readable.
    private static string TailOf(string log) => log.Length <= 4000 ? log : "…" + log[^4000..];
}

/// <summary>The running kernel lacks a feature Membrane needs.</summary>
public sealed class BpfNotSupportedException : BpfException
{
    /// <summary>Creates the exception for <paramref name="feature"/>, available since <paramref name="sinceKernel"/>.</summary>
    public BpfNotSupportedException(string feature, string sinceKernel, Errno errno = Errno.EOPNOTSUPP)
        : base($"use {feature}", errno, $"failed to use {feature}: not supported by this kernel ({Environment.OSVersion.Version}); Linux {sinceKernel} or later has it")
    {
        Feature = feature;
        SinceKernel = sinceKernel;
    }

    /// <summary>The missing feature, e.g. "tcx links".</summary>
    public string Feature { get; }

    /// <summary>The first kernel version that has it, e.g. "6.6".</summary>
    public string SinceKernel { get; }
}
