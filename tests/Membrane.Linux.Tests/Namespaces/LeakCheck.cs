using Membrane.Linux;
using Membrane.Testing;

namespace Membrane.Linux.Tests.Namespaces;

/// <summary>
/// Snapshot at the start of a privileged test; Dispose asserts that the test closed every
/// descriptor it opened (SafeFileDescriptor.OpenCount) and left no namespace of this run
/// under /run/netns. Kernel tests run serially in the "kernel" collection, so the global
/// count is the test's own.
/// </summary>
internal sealed class LeakCheck : IDisposable
{
    private readonly long _openBefore = SafeFileDescriptor.OpenCount;
    private readonly string[] _namespacesBefore = NetNsFixture.Leftovers().ToArray();

    public void Dispose()
    {
        // SafeHandles abandoned without Dispose would only close on finalisation; a leak shows here.
        Assert.Equal(_openBefore, SafeFileDescriptor.OpenCount);
        Assert.Equal(_namespacesBefore, NetNsFixture.Leftovers());
    }
}
