using Membrane.Linux;
using Membrane.Linux.Netlink;
using Membrane.Testing;

namespace Membrane.Linux.Tests.Namespaces;

/// <summary>
/// Snapshot at the start of a privileged test; Dispose asserts that the test closed every
/// descriptor it opened (SafeFileDescriptor.OpenCount), left no namespace of this run
/// under /run/netns and no link of this run in the root namespace (where tests never create
/// any: a veth peer escaping there would be a bug). Kernel tests run serially in the
/// "kernel" collection, so the global count is the test's own.
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
        // The test thread is in the root namespace; so is a socket opened on it.
        using var root = Rtnetlink.Open();
        Assert.DoesNotContain(root.GetLinks(), l => l.Name.StartsWith(RunPrefix.Value, StringComparison.Ordinal));
    }
}
