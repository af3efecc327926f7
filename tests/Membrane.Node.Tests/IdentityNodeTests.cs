using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Text.Json;
using Membrane.Api;
using Membrane.Testing;

namespace Membrane.Node.Tests;

/// <summary>
/// Identities on a whole node: the real agent and datapath, pods made by the CNI plugin in two
/// Kubernetes namespaces, and a live pod's labels changed with <c>membrane endpoint labels</c>
/// while the kernel's endpoint map follows and the pod keeps talking.
/// </summary>
[Collection("node")]
public sealed class IdentityNodeTests
{
    private const string Ns = "k8s:io.kubernetes.pod.namespace";

    private static (int Code, string Stdout, string Stderr) Membrane(TestNode node, params string[] args) =>
        Tools.Run(TestNode.MembraneBinary, ["--socket", node.SocketPath, .. args]);

    /// <summary>The kernel's endpoint map as <c>membrane bpf endpoint list -o json</c> prints it.</summary>
    private static List<BpfEndpointEntry> BpfEndpoints(TestNode node)
    {
        var (code, stdout, stderr) = Membrane(node, "bpf", "endpoint", "list", "-o", "json");
        Assert.True(code == 0, stderr);
        return JsonSerializer.Deserialize(stdout, ApiJsonContext.Default.ListBpfEndpointEntry)!;
    }

    [SkippableFact]
    public async Task PodsGetIdentitiesPerNamespaceAndALabelChangeReachesTheKernelWhileThePodTalks()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        // TestNode.AddPod puts pods in K8S_POD_NAMESPACE=default; the second namespace is made
        // here with the plugin's own CNI call.
        using var shopNs = new NetNsFixture("pod");
        var shopContainer = "c" + shopNs.Name;
        var shopNetNs = $"/run/netns/{shopNs.Name}";
        var config = node.NetworkConfig()[..^1] + ""","args":{"cni":{"labels":[{"key":"app","value":"web"}]}}}""";
        try
        {
            var web = node.AddPod("web", ("app", "web"));
            var (code, stdout, stderr) = node.Cni("ADD", config, shopContainer, shopNetNs,
                args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web");
            Assert.True(code == 0, $"{stdout}{stderr}\n{node.AgentLog}");

            // Same pod labels, two namespaces: two identities, each with its namespace label.
            var endpoints = await node.Client.EndpointsAsync();
            var inDefault = endpoints.Single(e => e.ContainerId == web.ContainerId);
            var inShop = endpoints.Single(e => e.ContainerId == shopContainer);
            Assert.Equal(["app=web", $"{Ns}=default"], inDefault.Labels);
            Assert.Equal(["app=web", $"{Ns}=shop"], inShop.Labels);
            Assert.NotEqual(inDefault.Identity, inShop.Identity);
            Assert.All([inDefault.Identity, inShop.Identity], i => Assert.InRange(i, 256u, (1u << 24) - 1));
            var map = BpfEndpoints(node);
            Assert.Equal(inDefault.Identity, map.Single(e => e.IfIndex == inDefault.HostIfIndex).Identity);
            Assert.Equal(inShop.Identity, map.Single(e => e.IfIndex == inShop.HostIfIndex).Identity);
            (code, stdout, stderr) = Membrane(node, "identity", "get", inShop.Identity.ToString(CultureInfo.InvariantCulture), "-o", "json");
            Assert.True(code == 0, stderr);
            var shopIdentity = JsonSerializer.Deserialize(stdout, ApiJsonContext.Default.IdentityEntry)!;
            Assert.Equal(["app=web", $"{Ns}=shop"], shopIdentity.Labels);
            Assert.Equal(1, shopIdentity.Endpoints);

            var shopIp = IPAddress.Parse(inShop.Ipv4!);
            Assert.Equal(IPStatus.Success, NsTraffic.Ping(web.Namespace, shopIp));

            // The live pod in "default" becomes app=db: a new identity, in the store and in the kernel.
            (code, stdout, stderr) = Membrane(node, "endpoint", "labels", inDefault.Id.ToString(CultureInfo.InvariantCulture),
                "--remove", "app", "--add", "app=db", "-o", "json");
            Assert.True(code == 0, $"{stderr}\n{node.AgentLog}");
            var changed = JsonSerializer.Deserialize(stdout, ApiJsonContext.Default.EndpointLabelsResponse)!;
            Assert.Equal(["app=db", $"{Ns}=default"], changed.Labels);
            Assert.Equal((inDefault.Identity, true), (changed.PreviousIdentity, changed.IdentityAllocated));
            Assert.NotEqual(inDefault.Identity, changed.Identity);
            Assert.NotEqual(inShop.Identity, changed.Identity);

            map = BpfEndpoints(node);
            var entry = map.Single(e => e.IfIndex == inDefault.HostIfIndex);
            Assert.Equal(changed.Identity, entry.Identity);
            Assert.Equal((inDefault.Ipv4, inDefault.Mac), (entry.Ipv4, entry.Mac)); // only the identity changed
            Assert.Equal(inShop.Identity, map.Single(e => e.IfIndex == inShop.HostIfIndex).Identity);
            var old = await node.Client.IdentityAsync(inDefault.Identity);
            Assert.Equal(0, old.Endpoints);
            Assert.NotNull(old.UnusedSince);

            // CHECK compares the kernel's entry with the agent's record: they agree.
            var check = node.NetworkConfig()[..^1] + ",\"prevResult\":" + web.Result.GetRawText() + "}";
            (code, stdout, stderr) = node.Cni("CHECK", check, web.ContainerId, web.NetNsPath);
            Assert.True(code == 0, $"{stdout}{stderr}");

            // The pod still talks, both ways, over both families.
            Assert.Equal(IPStatus.Success, NsTraffic.Ping(web.Namespace, shopIp));
            Assert.Equal(IPStatus.Success, NsTraffic.Ping(shopNs, IPAddress.Parse(web.Ipv4)));
            Assert.Equal(IPStatus.Success, NsTraffic.Ping(shopNs, IPAddress.Parse(web.Ipv6)));
            Assert.Equal("after relabel", await NsTraffic.TcpExchange(shopNs, web.Namespace, IPAddress.Parse(web.Ipv4), "after relabel", 8080));

            // A refused change leaves the kernel as it was.
            (code, _, stderr) = Membrane(node, "endpoint", "labels", inDefault.Id.ToString(CultureInfo.InvariantCulture), "--remove", Ns);
            Assert.Equal(1, code);
            Assert.Contains("every endpoint keeps its namespace label (code 102)", stderr, StringComparison.Ordinal);
            Assert.Equal(changed.Identity, BpfEndpoints(node).Single(e => e.IfIndex == inDefault.HostIfIndex).Identity);
        }
        finally
        {
            if (node.AgentPid is not null)
            {
                node.Cni("DEL", node.NetworkConfig(), shopContainer, shopNetNs);
            }
        }
    }
}
