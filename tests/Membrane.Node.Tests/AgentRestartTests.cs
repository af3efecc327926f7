using System.Net;
using Membrane.Testing;

namespace Membrane.Node.Tests;

/// <summary>The datapath outlives the agent: maps and tcx links are pinned and a restarted agent adopts them.</summary>
[Collection("node")]
public sealed class AgentRestartTests
{
    [SkippableFact]
    public async Task KillNineDuringAContinuousPingLosesNoPacketAndTheRestartedAgentKnowsTheSameEndpoints()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var a = node.AddPod("a", ("app", "a"));
        var b = node.AddPod("b", ("app", "b"));
        var before = await node.Client.EndpointsAsync();

        // 60 pings 50 ms apart (3 s) while the agent is killed and started again.
        var ping = Task.Run(() => a.Exec("ping", "-c", "60", "-i", "0.05", "-W", "1", b.Ipv4));
        await Task.Delay(500);
        node.StopAgent(kill: true);
        await Task.Delay(500);
        node.StartAgent();
        var (code, output, _) = await ping;
        Assert.True(code == 0 && output.Contains(" 0% packet loss", StringComparison.Ordinal), output);

        var after = await node.Client.EndpointsAsync();
        Assert.Equal(before.Select(e => (e.Id, e.ContainerId, e.Ipv4, e.Ipv6, e.State)), after.Select(e => (e.Id, e.ContainerId, e.Ipv4, e.Ipv6, e.State)));
        var status = await node.Client.StatusAsync();
        Assert.Contains("adopted", status.Datapath, StringComparison.Ordinal);
        // And the adopted datapath still takes new pods.
        var c = node.AddPod("c", ("app", "c"));
        Assert.Equal(System.Net.NetworkInformation.IPStatus.Success, NsTraffic.Ping(c.Namespace, IPAddress.Parse(a.Ipv6)));
    }

    [SkippableFact]
    public async Task ARestartedAgentRebuildsAnEndpointWhoseVethVanishedWhileItWasDown()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var a = node.AddPod("a", ("app", "a"));
        var b = node.AddPod("b", ("app", "b"));
        var lost = (await node.Client.EndpointsAsync()).Single(e => e.ContainerId == a.ContainerId);

        node.StopAgent();
        // Someone deletes the host side of a's veth (its pod end goes with it): a's datapath is gone.
        Assert.Equal(0, Tools.Run("ip", ["-n", node.Name, "link", "del", lost.HostInterface!]).ExitCode);
        Assert.True(a.Namespace.Netlink.GetLinks().All(l => l.Name == "lo"), "the pod kept its interface");

        node.StartAgent();
        var rebuilt = (await node.Client.EndpointsAsync()).Single(e => e.ContainerId == a.ContainerId);
        Assert.Equal("ready", rebuilt.State);
        Assert.Equal((lost.Id, lost.Ipv4, lost.Ipv6), (rebuilt.Id, rebuilt.Ipv4, rebuilt.Ipv6));
        Assert.Equal(System.Net.NetworkInformation.IPStatus.Success, NsTraffic.Ping(a.Namespace, IPAddress.Parse(b.Ipv4)));
        Assert.Equal(System.Net.NetworkInformation.IPStatus.Success, NsTraffic.Ping(b.Namespace, IPAddress.Parse(a.Ipv6)));
    }
}
