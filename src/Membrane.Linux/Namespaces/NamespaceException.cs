namespace Membrane.Linux.Namespaces;

/// <summary>A namespace operation (create, open, enter, delete) that the kernel refused.</summary>
public sealed class NamespaceException : Exception
{
    /// <summary>Creates the exception for <paramref name="operation"/> ("create network namespace mb01a").</summary>
    public NamespaceException(string operation, Errno errno, Exception? inner = null)
        : base($"failed to {operation}: {errno.Describe()}", inner)
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>What was being done, as a verb phrase.</summary>
    public string Operation { get; }

    /// <summary>The errno of the failed call.</summary>
    public Errno Errno { get; }
}
