using System.Net;
using System.Net.NetworkInformation;
using Membrane.Testing;

namespace Membrane.Node.Tests;

/// <summary>
/// Pods made by the real CNI plugin and agent talk over IPv4 and IPv6 through the eBPF
/// datapath; spoofed traffic is dropped with its reason; DEL leaves nothing behind.
/// </summary>
[Collection("node")]
public sealed class PodNetworkTests
{
    [SkippableFact]
    public async Task TwoPodsTalkIcmpTcpUdpOverBothFamiliesThroughTheProgram()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var web = node.AddPod("web", ("app", "web"));
        var db = node.AddPod("db", ("app", "db"));
        var before = NodeState.Packets(await node.Client.BpfMetricsAsync(), "forwarded");

        Assert.Equal(IPStatus.Success, NsTraffic.Ping(web.Namespace, IPAddress.Parse(db.Ipv4)));
        Assert.Equal(IPStatus.Success, NsTraffic.Ping(web.Namespace, IPAddress.Parse(db.Ipv6)));
        Assert.Equal("hello v4", await NsTraffic.TcpExchange(web.Namespace, db.Namespace, IPAddress.Parse(db.Ipv4), "hello v4", 5432));
        Assert.Equal("hello v6", await NsTraffic.TcpExchange(db.Namespace, web.Namespace, IPAddress.Parse(web.Ipv6), "hello v6", 8080));
        Assert.Equal("dns v4", await NsTraffic.UdpEcho(web.Namespace, db.Namespace, IPAddress.Parse(db.Ipv4), "dns v4"));
        Assert.Equal("dns v6", await NsTraffic.UdpEcho(db.Namespace, web.Namespace, IPAddress.Parse(web.Ipv6), "dns v6"));

        // Each exchange above crossed a host veth's ingress in both directions: the program
        // counted them. (At least 2 per ping, 6+ per TCP echo, 2 per UDP echo.)
        var after = NodeState.Packets(await node.Client.BpfMetricsAsync(), "forwarded");
        Assert.True(after - before >= 2 * 2 + 2 * 6 + 2 * 2, $"forwarded counter rose by {after - before}");
    }

    [SkippableFact]
    public async Task SpoofedSourceAddressAndMacAreDroppedWithTheirReason()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var a = node.AddPod("a", ("app", "a"));
        var b = node.AddPod("b", ("app", "b"));

        // A second address in the pod that the agent never gave it.
        Assert.Equal(0, a.Exec("ip", "addr", "add", "198.18.0.250/32", "dev", "eth0").ExitCode);
        var spoofed = a.Exec("ping", "-c", "3", "-i", "0.2", "-W", "1", "-I", "198.18.0.250", b.Ipv4);
        Assert.NotEqual(0, spoofed.ExitCode);
        var metrics = await node.Client.BpfMetricsAsync();
        Assert.True(NodeState.Packets(metrics, "spoofed-source-ip") >= 3, string.Join("; ", metrics));
        Assert.Equal(0, a.Exec("ip", "addr", "del", "198.18.0.250/32", "dev", "eth0").ExitCode);
        Assert.Equal(IPStatus.Success, NsTraffic.Ping(a.Namespace, IPAddress.Parse(b.Ipv4))); // its own address still works

        // A changed MAC: every frame now carries a source MAC the endpoint map does not know.
        Assert.Equal(0, a.Exec("ip", "link", "set", "eth0", "address", "02:00:00:00:be:ef").ExitCode);
        Assert.NotEqual(IPStatus.Success, NsTraffic.Ping(a.Namespace, IPAddress.Parse(b.Ipv4), 1000));
        metrics = await node.Client.BpfMetricsAsync();
        Assert.True(NodeState.Packets(metrics, "spoofed-source-mac") >= 1, string.Join("; ", metrics));
    }

    [SkippableFact]
    public async Task DelTwiceSucceedsAndLeavesNothing()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var empty = await NodeState.ReadAsync(node);
        var pod = node.AddPod("web", ("app", "web"));
        var full = await NodeState.ReadAsync(node);
        Assert.Equal(1, full.Endpoints);
        Assert.Equal(1, full.MapEntries);
        Assert.Single(full.Links);
        Assert.Equal(2, full.PodRoutes.Count - empty.PodRoutes.Count); // a host route per address

        Assert.Equal(0, node.DeletePod(pod).ExitCode);
        Assert.Equal(0, node.DeletePod(pod).ExitCode);
        // DEL without a netns (the runtime lost it) and for a container never seen also succeed.
        Assert.Equal(0, node.Cni("DEL", node.NetworkConfig(), pod.ContainerId).ExitCode);
        Assert.Equal(0, node.Cni("DEL", node.NetworkConfig(), "never-seen", "/run/netns/none").ExitCode);
        Assert.Equal(empty, await NodeState.ReadAsync(node) with { Links = empty.Links, PodRoutes = empty.PodRoutes });
        var after = await NodeState.ReadAsync(node);
        Assert.Equal(empty.Links, after.Links);
        Assert.Equal(empty.PodRoutes, after.PodRoutes);
        Assert.True(pod.Namespace.Netlink.GetLinks().All(l => l.Name == "lo"), "the pod still has an interface");
    }

    [SkippableFact]
    public async Task FiftyConcurrentAddsGetDistinctAddressesAndFiftyDelsLeaveNothing()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var empty = await NodeState.ReadAsync(node);
        var pods = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => Task.Run(() => node.AddPod($"p{i}", ("app", "load")))));
        Assert.Equal(50, pods.Select(p => p.Ipv4).Distinct().Count());
        Assert.Equal(50, pods.Select(p => p.Ipv6).Distinct().Count());
        var full = await NodeState.ReadAsync(node);
        Assert.Equal((50, 50, 50), (full.Endpoints, full.MapEntries, full.Links.Count));
        Assert.Equal(IPStatus.Success, NsTraffic.Ping(pods[0].Namespace, IPAddress.Parse(pods[49].Ipv4)));

        var codes = await Task.WhenAll(pods.Select(p => Task.Run(() => node.DeletePod(p).ExitCode)));
        Assert.All(codes, c => Assert.Equal(0, c));
        var after = await NodeState.ReadAsync(node);
        Assert.Equal(empty, after with { Links = empty.Links, PodRoutes = empty.PodRoutes });
        Assert.Equal(empty.Links, after.Links);
        Assert.Equal(empty.PodRoutes, after.PodRoutes);
    }
}
