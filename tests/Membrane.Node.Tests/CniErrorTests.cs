using System.Text.Json;
using Membrane.Testing;

namespace Membrane.Node.Tests;

/// <summary>Every CNI error path, through the real plugin and agent: the spec's code, and nothing changed.</summary>
[Collection("node")]
public sealed class CniErrorTests
{
    private static int Code(string stdout) => JsonDocument.Parse(stdout).RootElement.GetProperty("code").GetInt32();

    [SkippableFact]
    public async Task FailedAddsReturnTheirCodeAndLeaveNothing()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var empty = await NodeState.ReadAsync(node);
        var config = node.NetworkConfig();

        // The pod's namespace does not exist: the agent fails in the kernel half and undoes it.
        var (code, stdout, _) = node.Cni("ADD", config, "ctr-missing-ns", "/run/netns/does-not-exist");
        Assert.Equal(1, code);
        Assert.True(Code(stdout) is 3 or 101, stdout);

        // The node's own namespace given as the pod's: refused before anything is made there.
        (code, stdout, _) = node.Cni("ADD", config, "ctr-node-ns", $"/run/netns/{node.Name}");
        Assert.Equal(1, code);
        Assert.Contains("own network namespace, not a pod", stdout, StringComparison.Ordinal);

        // Bad input never reaches the agent: missing ifname (4), bad config (7), bad version (1), bad JSON (6).
        Assert.Equal(4, Code(node.Cni("ADD", config, "ctr1", "/run/netns/x", ifName: "").Stdout));
        Assert.Equal(7, Code(node.Cni("ADD", config.Replace("\"mtu\":1500", "\"mtu\":5", StringComparison.Ordinal), "ctr1", "/run/netns/x").Stdout));
        Assert.Equal(1, Code(node.Cni("ADD", node.NetworkConfig("9.9.9"), "ctr1", "/run/netns/x").Stdout));
        Assert.Equal(6, Code(node.Cni("ADD", "{oops", "ctr1", "/run/netns/x").Stdout));
        // CHECK of an unknown container is code 3.
        using var pod = new NetNsFixture("pod");
        var prev = ",\"prevResult\":{\"interfaces\":[{\"name\":\"eth0\",\"sandbox\":\"/run/netns/" + pod.Name + "\"}],\"ips\":[]}}";
        Assert.Equal(3, Code(node.Cni("CHECK", config[..^1] + prev, "ctr-unknown", $"/run/netns/{pod.Name}").Stdout));

        var after = await NodeState.ReadAsync(node);
        Assert.Equal(empty.Endpoints, after.Endpoints);
        Assert.Equal(empty.MapEntries, after.MapEntries);
        Assert.Equal(empty.Links, after.Links);
        Assert.Equal(empty.PodRoutes, after.PodRoutes);
    }

    [SkippableFact]
    public async Task AnExhaustedRangeIsCode100AndLeaksNoAddress()
    {
        TestNode.RequirePrerequisites();
        // A /29 holds 8 addresses: network, broadcast and gateway leave 5 for pods.
        using var node = new TestNode("198.18.0.0/29", podCidr6: null);
        var pods = Enumerable.Range(0, 5).Select(i => node.AddPod($"p{i}")).ToList();
        using var extra = new NetNsFixture("pod");
        var (code, stdout, _) = node.Cni("ADD", node.NetworkConfig(), "ctr-extra", $"/run/netns/{extra.Name}");
        Assert.Equal(1, code);
        Assert.Equal(100, Code(stdout));
        Assert.Contains("exhausted", stdout, StringComparison.Ordinal);
        Assert.True(extra.Netlink.GetLinks().All(l => l.Name == "lo"), "the failed ADD left an interface in the pod");

        // Releasing one makes exactly one address available again.
        Assert.Equal(0, node.DeletePod(pods[2]).ExitCode);
        var (again, result, _) = node.Cni("ADD", node.NetworkConfig(), "ctr-extra", $"/run/netns/{extra.Name}");
        Assert.True(again == 0, result);
        Assert.Contains(pods[2].Ipv4 + "/", result, StringComparison.Ordinal);
        Assert.Equal(0, node.Cni("DEL", node.NetworkConfig(), "ctr-extra", $"/run/netns/{extra.Name}").ExitCode);
        Assert.Equal(4, (await node.Client.EndpointsAsync()).Count);
    }
}
