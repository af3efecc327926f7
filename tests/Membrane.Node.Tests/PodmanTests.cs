using System.Text.Json;
using Membrane.Api;
using Membrane.Testing;

namespace Membrane.Node.Tests;

/// <summary>
/// A real container runtime on a Membrane network: podman 4.3 (Debian, runc, CNI backend)
/// started inside the node namespace runs busybox containers through bin/membrane-cni; they
/// reach each other over IPv4 and IPv6, the agent lists them, and removing them releases their
/// endpoints and addresses.
/// </summary>
[Collection("node")]
public sealed class PodmanTests
{
    [SkippableFact]
    public async Task PodmanContainersOnAMembraneNetworkTalkAndRemovalReleasesThem()
    {
        TestNode.RequirePrerequisites();
        Requires.Tool("podman");
        Requires.Tool("runc");
        Requires.Tool("conmon");
        Requires.That(File.Exists(PodmanHost.Busybox), $"needs {PodmanHost.Busybox} (apt busybox-static; make deps installs it)");

        // A /29 holds 5 pods (.1 is the gateway, .7 the broadcast): the third pair of
        // containers below only gets addresses if removing the earlier ones released theirs.
        using var node = new TestNode(podCidr4: "198.18.0.0/29");
        using var podman = new PodmanHost(node);
        var empty = await NodeState.ReadAsync(node);
        var before = NodeState.Packets(await node.Client.BpfMetricsAsync(), "forwarded");

        var c1Name = podman.NetworkName + "c1";
        var c2Name = podman.NetworkName + "c2";
        var c1 = podman.RunSleeper(c1Name);
        var c2 = podman.RunSleeper(c2Name);

        // `membrane endpoint list` (the CLI, as an operator runs it) shows both containers by
        // podman's container id and name (podman passes K8S_POD_NAME=<name> in CNI_ARGS).
        var endpoints = EndpointList(node);
        Assert.Equal(2, endpoints.Count);
        var e1 = Assert.Single(endpoints, e => e.ContainerId == c1);
        var e2 = Assert.Single(endpoints, e => e.ContainerId == c2);
        Assert.Equal(c1Name, e1.PodName);
        Assert.Equal(c2Name, e2.PodName);
        Assert.All(endpoints, e => Assert.Equal("ready", e.State));
        Assert.StartsWith("/run/netns/netns-", e1.NetNs, StringComparison.Ordinal); // podman's own namespace, not ours

        // podman saw the addresses the agent gave (the CNI result reached the runtime).
        var (inspectCode, inspected, inspectErr) = podman.Podman("inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{.GlobalIPv6Address}}{{end}}", c2Name);
        Assert.True(inspectCode == 0, inspectErr);
        Assert.Equal($"{e2.Ipv4} {e2.Ipv6}", inspected.Trim());

        foreach (var to in new[] { e2.Ipv4!, e2.Ipv6! })
        {
            var ping = podman.Podman("exec", c1Name, "/bin/busybox", "ping", "-c", "2", "-W", "2", to);
            Assert.True(ping.ExitCode == 0, $"c1 -> c2 {to}: {ping.Stdout}{ping.Stderr}");
        }
        var back = podman.Podman("exec", c2Name, "/bin/busybox", "ping", "-c", "2", "-W", "2", e1.Ipv4!);
        Assert.True(back.ExitCode == 0, $"c2 -> c1 {e1.Ipv4}: {back.Stdout}{back.Stderr}");
        // The pings went through our program, not around it.
        var after = NodeState.Packets(await node.Client.BpfMetricsAsync(), "forwarded");
        Assert.True(after - before >= 3 * 2 * 2, $"forwarded counter rose by {after - before}");

        var removed = podman.Remove(c1Name, c2Name);
        Assert.True(removed.ExitCode == 0, removed.Stderr);
        AssertReleased(node, podman, empty, [e1.NetNs!, e2.NetNs!]);

        // Two more pairs: 6 containers in all on a 5-address pool.
        for (var round = 2; round <= 3; round++)
        {
            var a = podman.NetworkName + "r" + round + "a";
            var b = podman.NetworkName + "r" + round + "b";
            podman.RunSleeper(a);
            podman.RunSleeper(b);
            var listed = EndpointList(node);
            Assert.Equal([a, b], listed.Select(e => e.PodName!).Order());
            Assert.True(podman.Remove(a, b).ExitCode == 0);
            AssertReleased(node, podman, empty, [.. listed.Select(e => e.NetNs!)]);
        }
    }

    private static void AssertReleased(TestNode node, PodmanHost podman, NodeState empty, IReadOnlyList<string> netns)
    {
        Assert.Empty(EndpointList(node));
        var state = NodeState.ReadAsync(node).GetAwaiter().GetResult();
        Assert.Equal(0, state.Endpoints);
        Assert.Equal(0, state.MapEntries);
        Assert.Equal(empty.Links, state.Links);
        Assert.Equal(empty.PodRoutes, state.PodRoutes);
        Assert.All(netns, ns => Assert.False(File.Exists(ns), $"{ns} outlived its container"));
        // conmon exits with its container; a leftover one would hold the container's files.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (podman.Processes().Count > 0 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(100);
        }
        Assert.Empty(podman.Processes());
    }

    /// <summary>`membrane --socket S endpoint list -o json`, parsed with the API's own contract.</summary>
    private static List<EndpointInfo> EndpointList(TestNode node)
    {
        var (code, stdout, stderr) = Tools.Run(TestNode.MembraneBinary, ["--socket", node.SocketPath, "endpoint", "list", "-o", "json"]);
        Assert.True(code == 0, $"membrane endpoint list failed ({code}): {stderr}");
        return JsonSerializer.Deserialize(stdout, ApiJsonContext.Default.ListEndpointInfo)
            ?? throw new InvalidOperationException("failed to parse membrane endpoint list: null");
    }
}
