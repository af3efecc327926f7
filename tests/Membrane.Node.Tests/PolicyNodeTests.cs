using System.Globalization;
using System.Net;
using System.Text.Json;
using Membrane.Api;
using Membrane.Testing;

namespace Membrane.Node.Tests;

/// <summary>
/// Network policy on a whole node: the real agent and datapath, frontend/backend/db pods made
/// by the CNI plugin, policies imported with <c>membrane policy import</c> and enforced by the
/// kernel on new connections — allowed ones succeed, the others are dropped and counted as
/// policy drops; a deny rule beats an allow; a change takes effect on the next connection; a
/// NetworkPolicy with the same meaning gives the same matrix.
/// </summary>
[Collection("node")]
public sealed class PolicyNodeTests
{
    private const string ThreeTierCnp = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: three-tier
          namespace: default
        specs:
        - endpointSelector:
            matchLabels:
              app: backend
          ingress:
          - fromEndpoints:
            - matchLabels:
                app: frontend
            toPorts:
            - ports:
              - port: "8080"
                protocol: TCP
        - endpointSelector:
            matchLabels:
              app: db
          ingress:
          - fromEndpoints:
            - matchLabels:
                app: backend
            toPorts:
            - ports:
              - port: "5432"
                protocol: TCP
        """;

    private const string DenyFrontend = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: deny-frontend
          namespace: default
        spec:
          endpointSelector:
            matchLabels:
              app: backend
          ingressDeny:
          - fromEndpoints:
            - matchLabels:
                app: frontend
        """;

    private const string ThreeTierNetworkPolicy = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: backend
          namespace: default
        spec:
          podSelector:
            matchLabels:
              app: backend
          policyTypes: [Ingress]
          ingress:
          - from:
            - podSelector:
                matchLabels:
                  app: frontend
            ports:
            - port: 8080
              protocol: TCP
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: db
          namespace: default
        spec:
          podSelector:
            matchLabels:
              app: db
          policyTypes: [Ingress]
          ingress:
          - from:
            - podSelector:
                matchLabels:
                  app: backend
            ports:
            - port: 5432
              protocol: TCP
        """;

    /// <summary>A connection that must fail is given this long (the SYN and one retransmission).</summary>
    private static readonly TimeSpan Denied = TimeSpan.FromMilliseconds(1500);

    private static (int Code, string Stdout, string Stderr) Membrane(TestNode node, params string[] args) =>
        Tools.Run(TestNode.MembraneBinary, ["--socket", node.SocketPath, .. args]);

    private static void Import(TestNode node, string dir, string name, string yaml)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, yaml);
        var (code, stdout, stderr) = Membrane(node, "policy", "import", path);
        Assert.True(code == 0, $"{stdout}{stderr}\n{node.AgentLog}");
    }

    private static ulong PolicyDrops(TestNode node, string reason)
    {
        var (code, stdout, stderr) = Membrane(node, "bpf", "metrics", "-o", "json");
        Assert.True(code == 0, stderr);
        return NodeState.Packets(JsonSerializer.Deserialize(stdout, ApiJsonContext.Default.ListBpfMetricEntry)!, reason);
    }

    private static Task<bool> Connects(TestPod client, TestPod server, int port, TimeSpan timeout) =>
        NsTraffic.TcpConnects(client.Namespace, server.Namespace, IPAddress.Parse(server.Ipv4), port, timeout);

    /// <summary>The scenario's matrix: frontend→backend:8080 and backend→db:5432 work; frontend→db and db→backend are policy drops.</summary>
    private static async Task AssertMatrix(TestNode node, TestPod frontend, TestPod backend, TestPod db, string what)
    {
        Assert.True(await Connects(frontend, backend, 8080, TimeSpan.FromSeconds(5)), $"{what}: frontend -> backend:8080 must work");
        Assert.True(await Connects(backend, db, 5432, TimeSpan.FromSeconds(5)), $"{what}: backend -> db:5432 must work");
        var before = PolicyDrops(node, "policy-denied");
        Assert.False(await Connects(frontend, db, 5432, Denied), $"{what}: frontend -> db:5432 must be dropped");
        var afterFirst = PolicyDrops(node, "policy-denied");
        Assert.True(afterFirst > before, $"{what}: frontend -> db was not counted as policy-denied");
        Assert.False(await Connects(db, backend, 8080, Denied), $"{what}: db -> backend:8080 must be dropped");
        Assert.True(PolicyDrops(node, "policy-denied") > afterFirst, $"{what}: db -> backend was not counted as policy-denied");
        // Allowed, but not on another port.
        Assert.False(await Connects(frontend, backend, 8081, Denied), $"{what}: frontend -> backend:8081 must be dropped");
    }

    [SkippableFact]
    public async Task PolicyIsEnforcedOnNewConnectionsAndFollowsImportsAndDeletes()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var dir = Directory.CreateTempSubdirectory($"{RunPrefix.Value}-policy-").FullName;
        try
        {
            var frontend = node.AddPod("frontend", ("app", "frontend"));
            var backend = node.AddPod("backend", ("app", "backend"));
            var db = node.AddPod("db", ("app", "db"));

            // No policy: everything talks.
            Assert.True(await Connects(db, backend, 8080, TimeSpan.FromSeconds(5)), "without policy db -> backend must work");

            Import(node, dir, "three-tier.yaml", ThreeTierCnp);
            await AssertMatrix(node, frontend, backend, db, "CiliumNetworkPolicy");

            // The kernel holds what the agent says, and the endpoint entry enforces ingress.
            var backendId = (await node.Client.EndpointsAsync()).Single(e => e.ContainerId == backend.ContainerId).Id;
            var (code, stdout, stderr) = Membrane(node, "bpf", "policy", "get", backendId.ToString(CultureInfo.InvariantCulture), "-o", "json");
            Assert.True(code == 0, stderr);
            var kernel = JsonSerializer.Deserialize(stdout, ApiJsonContext.Default.BpfPolicyResponse)!;
            Assert.True(kernel.IngressEnforced);
            Assert.False(kernel.EgressEnforced);
            Assert.Contains(kernel.Entries, e => e is { Direction: "ingress", Protocol: "TCP", FromPort: 8080, ToPort: 8080, Action: "allow" }
                && e.PeerLabels.Contains("k8s:app=frontend") && e.RuleOrigin == "default/three-tier specs[0].ingress[0]");

            // A deny rule beats the allow, on the next connection.
            var denyBefore = PolicyDrops(node, "policy-deny");
            Import(node, dir, "deny.yaml", DenyFrontend);
            Assert.False(await Connects(frontend, backend, 8080, Denied), "the deny rule must beat the allow");
            Assert.True(PolicyDrops(node, "policy-deny") > denyBefore, "the deny was not counted as policy-deny");
            (code, _, stderr) = Membrane(node, "policy", "delete", "default/deny-frontend");
            Assert.True(code == 0, stderr);
            Assert.True(await Connects(frontend, backend, 8080, TimeSpan.FromSeconds(5)), "without the deny rule frontend -> backend works again");

            // A changed policy takes effect on new connections: backend now listens on 9090 for the frontend.
            Import(node, dir, "three-tier.yaml", ThreeTierCnp.Replace("\"8080\"", "\"9090\"", StringComparison.Ordinal));
            Assert.False(await Connects(frontend, backend, 8080, Denied), "8080 is no longer allowed");
            Assert.True(await Connects(frontend, backend, 9090, TimeSpan.FromSeconds(5)), "9090 is allowed now");

            // The same meaning as NetworkPolicy: the same matrix.
            (code, _, stderr) = Membrane(node, "policy", "delete", "--all");
            Assert.True(code == 0, stderr);
            Assert.True(await Connects(db, backend, 8080, TimeSpan.FromSeconds(5)), "with no policy db -> backend works again");
            Import(node, dir, "networkpolicy.yaml", ThreeTierNetworkPolicy);
            await AssertMatrix(node, frontend, backend, db, "NetworkPolicy");

            // The trace agrees with the kernel.
            (code, stdout, stderr) = Membrane(node, "policy", "trace", "--src-labels", "app=frontend", "--dst-labels", "app=db", "--dport", "5432/TCP");
            Assert.True(code == 0, stderr);
            Assert.StartsWith("DENIED", stdout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [SkippableFact]
    public async Task ARestartedAgentEnforcesThePoliciesItStored()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var dir = Directory.CreateTempSubdirectory($"{RunPrefix.Value}-policy-").FullName;
        try
        {
            var frontend = node.AddPod("frontend", ("app", "frontend"));
            var backend = node.AddPod("backend", ("app", "backend"));
            var db = node.AddPod("db", ("app", "db"));
            Import(node, dir, "three-tier.yaml", ThreeTierCnp);
            node.StopAgent();
            // The pinned datapath keeps enforcing while the agent is down.
            Assert.False(await Connects(db, backend, 8080, Denied), "db -> backend must stay dropped while the agent is down");
            node.StartAgent();
            var (code, stdout, stderr) = Membrane(node, "policy", "get", "-o", "yaml");
            Assert.True(code == 0, stderr);
            Assert.Equal(ThreeTierCnp.TrimEnd(), stdout.TrimEnd());
            await AssertMatrix(node, frontend, backend, db, "after restart");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
