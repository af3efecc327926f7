using Membrane.Linux.Namespaces;
using Membrane.Testing;

namespace Membrane.Linux.Tests.Namespaces;

[Collection("kernel")]
public sealed class NetNsTests
{
    [SkippableFact]
    public void CreateOpenDeleteLikeIpNetns()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        var name = RunPrefix.Next("ns");
        using (var ns = NetNs.Create(name))
        {
            try
            {
                Assert.True(NetNs.Exists(name));
                Assert.Contains(name, NetNs.List());
                Assert.Equal(name, ns.Name);
                Assert.NotEqual(NetNs.CurrentInode(), ns.Inode);
                // iproute2 sees it and can enter it: the oracle for "exactly like ip netns add".
                var ip = Requires.Tool("ip");
                var list = Tools.Run(ip, ["netns", "list"]);
                Assert.Contains(name, list.Stdout);
                var inside = Tools.Run(ip, ["netns", "exec", name, "readlink", "/proc/self/ns/net"]);
                Assert.Equal(0, inside.ExitCode);
                Assert.Equal($"net:[{ns.Inode}]", inside.Stdout.Trim());
                // Opening the same name again yields the same namespace.
                using var again = NetNs.Open(name);
                Assert.Equal(ns.Inode, again.Inode);
            }
            finally
            {
                NetNs.Delete(name);
            }
        }
        Assert.False(NetNs.Exists(name));
        Assert.False(File.Exists(Path.Combine(NetNs.RunDirectory, name)));
    }

    [SkippableFact]
    public void RunExecutesOnADedicatedThreadInsideTheNamespace()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var fx = new NetNsFixture();
        var callerInode = NetNs.CurrentInode();
        var callerThread = Environment.CurrentManagedThreadId;
        var (inode, thread, isPool) = fx.Run(() => (NetNs.CurrentInode(), Environment.CurrentManagedThreadId, Thread.CurrentThread.IsThreadPoolThread));
        Assert.Equal(fx.Namespace.Inode, inode);
        Assert.NotEqual(callerThread, thread);
        Assert.False(isPool);
        // The caller's thread never moved.
        Assert.Equal(callerInode, NetNs.CurrentInode());
    }

    [SkippableFact]
    public async Task RunAsyncReturnsTheResultAndDoesNotContinueInsideTheNamespace()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var fx = new NetNsFixture();
        var root = NetNs.CurrentInode();
        var inode = await fx.Namespace.RunAsync(NetNs.CurrentInode);
        Assert.Equal(fx.Namespace.Inode, inode);
        Assert.Equal(root, NetNs.CurrentInode());
    }

    [SkippableFact]
    public async Task ExceptionsPropagateWithTheirTypeAndStack()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var fx = new NetNsFixture();
        var e = Assert.Throws<InvalidOperationException>(() => fx.Run(() => ThrowInside("boom")));
        Assert.Equal("boom", e.Message);
        Assert.Contains(nameof(ThrowInside), e.StackTrace);
        var e2 = await Assert.ThrowsAsync<InvalidOperationException>(() => fx.Namespace.RunAsync(() => ThrowInside("async boom")));
        Assert.Equal("async boom", e2.Message);
        Assert.Throws<ArgumentException>(() => fx.Run(() => throw new ArgumentException("void")));
    }

    [SkippableFact]
    public void OpenByPidAndPathAgreeWithTheCurrentNamespace()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var self = NetNs.OpenPid(Environment.ProcessId);
        using var current = NetNs.OpenCurrent();
        using var byPath = NetNs.OpenPath("/proc/self/ns/net");
        Assert.Equal(current.Inode, self.Inode);
        Assert.Equal(current.Inode, byPath.Inode);
        Assert.Null(self.Name);
    }

    [SkippableFact]
    public void ErrorsNameTheOperationAndErrno()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        var missing = RunPrefix.Next("none");
        var open = Assert.Throws<NamespaceException>(() => NetNs.Open(missing));
        Assert.Equal(Errno.ENOENT, open.Errno);
        Assert.StartsWith($"failed to open network namespace {missing}: ", open.Message);
        var delete = Assert.Throws<NamespaceException>(() => NetNs.Delete(missing));
        Assert.Equal(Errno.ENOENT, delete.Errno);

        var notNetns = Assert.Throws<NamespaceException>(() => NetNs.OpenPath("/proc/self/ns/uts"));
        Assert.Contains("not a network namespace", notNetns.Message);
        Assert.Throws<NamespaceException>(() => NetNs.OpenPath("/etc/hostname"));

        using var fx = new NetNsFixture();
        var duplicate = Assert.Throws<NamespaceException>(() => NetNs.Create(fx.Name));
        Assert.Equal(Errno.EEXIST, duplicate.Errno);
        Assert.Throws<ArgumentException>(() => NetNs.Create("../etc"));
    }

    [SkippableFact]
    public void NamespaceSysctlsAreSeparateFromTheRootNamespace()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        var rootForwarding = Sysctl.Read("net.ipv4.ip_forward");
        var rootForwarding6 = Sysctl.Read("net.ipv6.conf.all.forwarding");
        using var fx = new NetNsFixture();
        // A new namespace starts with forwarding off whatever the root namespace says.
        Assert.Equal("0", fx.Namespace.ReadSysctl("net.ipv4.ip_forward"));
        fx.Namespace.SetIpv4Forwarding(true);
        fx.Namespace.SetIpv6Forwarding(true);
        fx.Namespace.SetRpFilter("all", RpFilterMode.Loose);
        fx.Namespace.SetRpFilter("lo", RpFilterMode.Strict);
        Assert.Equal("1", fx.Namespace.ReadSysctl("net.ipv4.ip_forward"));
        Assert.Equal("1", fx.Namespace.ReadSysctl("net.ipv6.conf.all.forwarding"));
        Assert.Equal("2", fx.Namespace.ReadSysctl("net.ipv4.conf.all.rp_filter"));
        Assert.Equal("1", fx.Namespace.ReadSysctl("net/ipv4/conf/lo/rp_filter"));
        fx.Namespace.SetIpv4Forwarding(false);
        Assert.Equal("0", fx.Namespace.ReadSysctl("net.ipv4.ip_forward"));
        // The root namespace is untouched.
        Assert.Equal(rootForwarding, Sysctl.Read("net.ipv4.ip_forward"));
        Assert.Equal(rootForwarding6, Sysctl.Read("net.ipv6.conf.all.forwarding"));
        Assert.Throws<ArgumentException>(() => Sysctl.Read("net/../../etc/passwd"));
    }

    [SkippableFact]
    public void FixtureDisposeLeavesNothing()
    {
        Requires.Root();
        var fx = new NetNsFixture();
        var name = fx.Name;
        Assert.Contains(name, NetNsFixture.Leftovers());
        fx.Dispose();
        fx.Dispose();
        Assert.DoesNotContain(name, NetNsFixture.Leftovers());
        Assert.False(NetNs.Exists(name));
    }

    private static int ThrowInside(string message) => throw new InvalidOperationException(message);
}
