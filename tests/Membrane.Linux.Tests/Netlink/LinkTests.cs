using System.Net.NetworkInformation;
using Membrane.Linux.Namespaces;
using Membrane.Linux.Netlink;
using Membrane.Linux.Tests.Namespaces;
using Membrane.Testing;

namespace Membrane.Linux.Tests.Netlink;

[Collection("kernel")]
public sealed class LinkTests
{
    [SkippableFact]
    public void VethPeerIsCreatedStraightInsideTheOtherNamespace()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture("a");
        using var b = new NetNsFixture("b");
        var name = RunPrefix.Next("v");
        var peerName = RunPrefix.Next("p");

        var local = a.Netlink.CreateVeth(name, peerName, b.Namespace);

        Assert.Equal(name, local.Name);
        Assert.Equal("veth", local.Kind);
        Assert.False(local.IsUp);
        Assert.Null(a.Netlink.FindLink(peerName));
        var peer = b.Netlink.GetLink(peerName);
        Assert.Equal("veth", peer.Kind);
        // Each end names the other's ifindex, valid in the other's namespace, plus a netns id.
        Assert.Equal(peer.Index, local.ParentIndex);
        Assert.Equal(local.Index, peer.ParentIndex);
        Assert.NotNull(local.PeerNamespaceId);
        // iproute2 agrees, seen from inside b.
        var shown = Tools.Run(Requires.Tool("ip"), ["-n", b.Name, "-o", "link", "show", peerName]);
        Assert.Equal(0, shown.ExitCode);
        Assert.Contains($"{peerName}@", shown.Stdout);

        // Deleting one end removes both.
        a.Netlink.DeleteLink(local.Index);
        Assert.Null(a.Netlink.FindLink(name));
        Assert.Null(b.Netlink.FindLink(peerName));
    }

    [SkippableFact]
    public void VethBornWithMtuAndGsoLimitsOnBothEnds()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture("a");
        using var b = new NetNsFixture("b");
        var peerName = RunPrefix.Next("p");
        var before = a.Netlink.CreateVeth(RunPrefix.Next("v"));
        Assert.Equal(65536, before.GsoMaxSize); // the kernel's own limit, for comparison

        var local = a.Netlink.CreateVeth(RunPrefix.Next("v"), peerName, b.Namespace, mtu: 1400, gsoMaxSize: 196608);

        foreach (var end in new[] { a.Netlink.GetLink(local.Index), b.Netlink.GetLink(peerName) })
        {
            Assert.Equal((1400, 196608, 196608), (end.Mtu, end.GsoMaxSize, end.GroMaxSize));
            // IFLA_GSO_IPV4_MAX_SIZE is Linux 6.3+; the lab kernel is newer.
            Assert.Equal((196608, 196608), (end.GsoIpv4MaxSize, end.GroIpv4MaxSize));
        }
        // iproute2 agrees, seen from inside b.
        var shown = Tools.Run(Requires.Tool("ip"), ["-n", b.Name, "-d", "link", "show", peerName]);
        Assert.Contains("gso_max_size 196608", shown.Stdout);
    }

    [SkippableFact]
    public void VethWithKernelNamedPeerInTheSameNamespace()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture();
        var local = a.Netlink.CreateVeth(RunPrefix.Next("v"));
        var peer = a.Netlink.GetLink(local.ParentIndex!.Value);
        Assert.StartsWith("veth", peer.Name);
        Assert.Equal(local.Index, peer.ParentIndex);
        Assert.Null(local.PeerNamespaceId);
    }

    [SkippableFact]
    public void UpDownMtuMacRename()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture();
        var link = a.Netlink.CreateVeth(RunPrefix.Next("v"));

        a.Netlink.SetUp(link.Index);
        Assert.True(a.Netlink.GetLink(link.Index).IsUp);
        a.Netlink.SetMtu(link.Index, 1400);
        Assert.Equal(1400, a.Netlink.GetLink(link.Index).Mtu);
        var mac = PhysicalAddress.Parse("02-00-c6-12-00-01");
        a.Netlink.SetMacAddress(link.Index, mac);
        Assert.Equal(mac, a.Netlink.GetLink(link.Index).MacAddress);

        a.Netlink.SetDown(link.Index);
        var down = a.Netlink.GetLink(link.Index);
        Assert.False(down.IsUp);
        var newName = RunPrefix.Next("r");
        a.Netlink.Rename(link.Index, newName);
        Assert.Equal(link.Index, a.Netlink.GetLink(newName).Index);
        Assert.Null(a.Netlink.FindLink(link.Name));

        a.Netlink.DeleteLink(newName);
        Assert.Null(a.Netlink.FindLink(newName));
    }

    [SkippableFact]
    public void MoveToAnotherNamespace()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture("a");
        using var b = new NetNsFixture("b");
        var link = a.Netlink.CreateVeth(RunPrefix.Next("v"), RunPrefix.Next("p"));
        var peer = a.Netlink.GetLink(link.ParentIndex!.Value);
        a.Netlink.MoveToNamespace(peer.Index, b.Namespace);
        Assert.Null(a.Netlink.FindLink(peer.Name));
        var moved = b.Netlink.GetLink(peer.Name);
        Assert.Equal("veth", moved.Kind);
        // The pair is intact across the move: each end points at the other's index.
        Assert.Equal(link.Index, moved.ParentIndex);
        Assert.Equal(moved.Index, a.Netlink.GetLink(link.Index).ParentIndex);
    }

    [SkippableFact]
    public void VxlanInExternalMode()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture();
        var name = RunPrefix.Next("x");
        var vxlan = a.Netlink.CreateVxlanExternal(name, 8472);
        Assert.Equal("vxlan", vxlan.Kind);
        // iproute2's detailed view is the oracle for the attributes we set.
        var details = Tools.Run(Requires.Tool("ip"), ["-n", a.Name, "-d", "link", "show", name]).Stdout;
        Assert.Contains("external", details);
        Assert.Contains("dstport 8472", details);
        Assert.Contains("nolearning", details);
        a.Netlink.SetUp(vxlan.Index);
        Assert.True(a.Netlink.GetLink(name).IsUp);
    }

    [SkippableFact]
    public void DumpListsEveryLink()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture();
        var names = Enumerable.Range(0, 40).Select(_ => RunPrefix.Next("v")).ToArray();
        for (var i = 0; i < names.Length; i += 2)
        {
            a.Netlink.CreateVeth(names[i], names[i + 1]);
        }
        var links = a.Netlink.GetLinks();
        Assert.Contains(links, l => l.Name == "lo" && (l.Flags & LinkFlags.Loopback) != 0);
        foreach (var n in names)
        {
            Assert.Single(links, l => l.Name == n);
        }
        // The dump spans several datagrams: 40 links do not fit in one skb.
        Assert.Equal(names.Length + 1, links.Count);
    }

    [SkippableFact]
    public void ErrorsCarryErrnoAndTheKernelMessage()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture();
        var name = RunPrefix.Next("v");
        var link = a.Netlink.CreateVeth(name);

        var duplicate = Assert.Throws<NetlinkException>(() => a.Netlink.CreateVeth(name, RunPrefix.Next("p")));
        Assert.Equal(Errno.EEXIST, duplicate.Errno);
        Assert.StartsWith($"failed to create veth {name}: File exists", duplicate.Message);

        var missing = Assert.Throws<NetlinkException>(() => a.Netlink.GetLink(RunPrefix.Next("none")));
        Assert.Equal(Errno.ENODEV, missing.Errno);

        // The kernel explains this one through the extended ack (net/core/dev.c dev_validate_mtu).
        var mtu = Assert.Throws<NetlinkException>(() => a.Netlink.SetMtu(link.Index, 1_000_000));
        Assert.Equal(Errno.EINVAL, mtu.Errno);
        Assert.False(string.IsNullOrEmpty(mtu.KernelMessage));
        Assert.Contains($"(kernel: {mtu.KernelMessage})", mtu.Message);
        Assert.StartsWith($"failed to set mtu 1000000 on link {link.Index}: Invalid argument", mtu.Message);

        var taken = Assert.Throws<NetlinkException>(() => a.Netlink.Rename(link.Index, "lo"));
        Assert.Equal(Errno.EEXIST, taken.Errno);
        Assert.StartsWith($"failed to rename link {link.Index} to lo: File exists", taken.Message);

        Assert.Throws<ArgumentException>(() => a.Netlink.CreateVeth("much-too-long-interface-name"));
    }

    [SkippableFact]
    public void DummyIsCreatedWhereTheKernelHasTheDriver()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture();
        var name = RunPrefix.Next("d");
        // iproute2 is the oracle for whether this kernel has CONFIG_DUMMY (this lab's does not).
        var ip = Tools.Run(Requires.Tool("ip"), ["-n", a.Name, "link", "add", name, "type", "dummy"]);
        if (ip.ExitCode == 0)
        {
            Tools.Run("ip", ["-n", a.Name, "link", "del", name]);
            var link = a.Netlink.CreateDummy(name);
            Assert.Equal("dummy", link.Kind);
            a.Netlink.DeleteLink(link.Index);
        }
        else
        {
            // Without the driver the refusal must arrive as EOPNOTSUPP with the kernel's reason.
            Assert.Contains("Unknown device type", ip.Stderr);
            var e = Assert.Throws<NetlinkException>(() => a.Netlink.CreateDummy(name));
            Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
            Assert.Equal("Unknown device type", e.KernelMessage);
            Assert.Equal($"failed to create dummy {name}: Operation not supported (kernel: Unknown device type)", e.Message);
        }
        Assert.Null(a.Netlink.FindLink(name));
    }

    [SkippableFact]
    public void DumpsInterruptedByConcurrentChangesAreRestarted()
    {
        Requires.Root();
        using var leaks = new LeakCheck();
        using var fx = new NetNsFixture();
        // Enough links that a dump spans many datagrams, so a change can land between two of them.
        var stable = Enumerable.Range(0, 150).Select(_ => RunPrefix.Next("s")).ToArray();
        for (var i = 0; i < stable.Length; i += 2)
        {
            fx.Netlink.CreateVeth(stable[i], stable[i + 1]);
        }
        using var churn = Rtnetlink.Open(fx.Namespace);
        using var stop = new CancellationTokenSource();
        var churner = Task.Run(() =>
        {
            // Another socket adds and removes a link as fast as it can: every change bumps the
            // namespace's dev_base_seq, which marks a dump in progress NLM_F_DUMP_INTR.
            var name = RunPrefix.Next("c");
            while (!stop.IsCancellationRequested)
            {
                var link = churn.CreateVeth(name);
                churn.DeleteLink(link.Index);
            }
        });
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (fx.Netlink.InterruptedDumps == 0 && DateTime.UtcNow < deadline)
            {
                var links = fx.Netlink.GetLinks();
                // Whatever happened meanwhile, a returned dump is complete and has no duplicates.
                Assert.All(stable, n => Assert.Single(links, l => l.Name == n));
            }
            Assert.True(fx.Netlink.InterruptedDumps > 0, "no dump was interrupted in 20 s of churn");
        }
        finally
        {
            stop.Cancel();
            churner.Wait();
        }
    }
}
