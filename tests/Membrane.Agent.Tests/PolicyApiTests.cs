using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Membrane.Api;

namespace Membrane.Agent.Tests;

/// <summary>The policy routes over the agent's real unix socket: Membrane.Api's client and raw HTTP for bodies the client never sends.</summary>
public sealed class PolicyApiTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly RecordingDatapath _datapath = new();
    private readonly FakePolicyDatapath _kernel = new();
    private AgentHost _host = null!;
    private MembraneClient _client = null!;

    private string Socket => _dir.File("agent.sock");

    public async Task InitializeAsync()
    {
        _host = new AgentHost(_dir.AgentOptions("node-pol", "198.18.0.0/28"), _datapath, policy: _kernel);
        await _host.StartAsync(default);
        _client = new MembraneClient(Socket, TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
        _dir.Dispose();
    }

    private static CniAddRequest Pod(string cid, string app) => new()
    {
        ContainerId = cid,
        IfName = "eth0",
        NetNs = "/var/run/netns/" + cid,
        PodName = cid,
        Labels = [new Label("app", app)],
    };

    private async Task<(HttpStatusCode Status, string Body)> RawAsync(HttpMethod method, string path, string? body = null)
    {
        var (status, _, text) = await UnixSocketHttp.SendAsync(Socket, method, path, body);
        return (status, text);
    }

    [Fact]
    public async Task ImportGetDeleteAndTheKernelsEntries()
    {
        var frontend = await _client.CniAddAsync(Pod("c1", "frontend"));
        var backend = await _client.CniAddAsync(Pod("c2", "backend"));

        var imported = await _client.PolicyImportAsync([new PolicyFile { Name = "p.yaml", Text = PolicyManagerTests.BackendPolicy }]);
        Assert.Equal(new PolicyChangeResponse { Revision = 1, Policies = ["default/backend"], EndpointsChanged = 1, Applied = true } with { Policies = imported.Policies }, imported);

        var policy = Assert.Single(await _client.PolicyAsync("default", "backend"));
        Assert.Equal([backend.EndpointId], policy.Endpoints);
        Assert.Equal(PolicyManagerTests.BackendPolicy, policy.Yaml.TrimEnd());

        var kernel = await _client.BpfPolicyAsync(backend.EndpointId);
        Assert.True(kernel.IngressEnforced);
        Assert.False(kernel.EgressEnforced);
        // The node itself (identity 1) may reach every pod: --allow-localhost is on by default.
        var host = Assert.Single(kernel.Entries, e => e.Direction == "ingress" && e.PeerIdentity == 1);
        Assert.Equal(("ANY", "allow"), (host.Protocol, host.Action));
        var entry = Assert.Single(kernel.Entries, e => e.Direction == "ingress" && e.PeerIdentity != 1);
        Assert.Equal((await _client.EndpointAsync(frontend.EndpointId)).Identity, entry.PeerIdentity);
        Assert.Equal(("TCP", 8080, 8080, "allow", "default/backend spec.ingress[0]"), (entry.Protocol, entry.FromPort, entry.ToPort, entry.Action, entry.RuleOrigin));
        Assert.Equal(policy.Rules.Single().RuleNumber, entry.Rule);

        var trace = await _client.PolicyTraceAsync(new PolicyTraceRequest { SrcEndpoint = frontend.EndpointId, DstLabels = ["app=backend"], Port = 8080 });
        Assert.Equal("ALLOWED", trace.Verdict);

        var deleted = await _client.PolicyDeleteAsync("default", "backend");
        Assert.Equal(["default/backend"], deleted.Policies);
        var missing = await Assert.ThrowsAsync<MembraneApiException>(() => _client.PolicyDeleteAsync("default", "backend"));
        Assert.Equal((HttpStatusCode.NotFound, ErrorCodes.NotFound), (missing.Status, missing.Error.Code));
        Assert.False((await _client.BpfPolicyAsync(backend.EndpointId)).IngressEnforced);
    }

    [Fact]
    public async Task ARefusedImportIs400WithEveryErrorAndChangesNothing()
    {
        var e = await Assert.ThrowsAsync<MembraneApiException>(() => _client.PolicyImportAsync(
        [
            new PolicyFile { Name = "ok.yaml", Text = PolicyManagerTests.BackendPolicy },
            new PolicyFile { Name = "bad.yaml", Text = "kind: CiliumNetworkPolicy\napiVersion: cilium.io/v2\nmetadata: {name: x}\nspec: {endpointSelector: {}, ingres: []}\n---\n: [\n" },
        ]));
        Assert.Equal((HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest), (e.Status, e.Error.Code));
        Assert.Contains("nothing was applied", e.Error.Message, StringComparison.Ordinal);
        var errors = e.Error.PolicyErrors!;
        Assert.Equal(2, errors.Count);
        Assert.All(errors, x => Assert.Equal("bad.yaml", x.File));
        // The YAML syntax error of document 2 and the unknown field of document 1.
        var unknown = Assert.Single(errors, x => x.Document == 1);
        Assert.Equal(4, unknown.Line);
        Assert.Contains("ingres", unknown.Field + unknown.Reason, StringComparison.Ordinal);
        Assert.Single(errors, x => x.Document == 2 && x.Field == "");
        Assert.Empty(await _client.PoliciesAsync());
        Assert.Empty(_kernel.Entries);

        // The raw body carries the same list.
        var (status, body) = await RawAsync(HttpMethod.Post, "v1/policies", """{"files":[{"name":"b.yaml","text":"kind: Nope"}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        using var doc = JsonDocument.Parse(body);
        Assert.Equal("b.yaml", doc.RootElement.GetProperty("policyErrors")[0].GetProperty("file").GetString());
    }

    [Fact]
    public async Task ANetworkPolicyDoesNotSilentlyReplaceACiliumNetworkPolicyOfTheSameName()
    {
        await _client.PolicyImportAsync([new PolicyFile { Name = "cnp.yaml", Text = PolicyManagerTests.BackendPolicy }]);
        const string sameName = """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: backend
              namespace: default
            spec:
              podSelector: {}
              policyTypes: [Ingress]
            """;
        var e = await Assert.ThrowsAsync<MembraneApiException>(() => _client.PolicyImportAsync([new PolicyFile { Name = "np.yaml", Text = sameName }]));
        Assert.Equal((HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest), (e.Status, e.Error.Code));
        var error = Assert.Single(e.Error.PolicyErrors!);
        Assert.Equal(("np.yaml", 1, "metadata.name"), (error.File, error.Document, error.Field));
        Assert.Contains("a CiliumNetworkPolicy named default/backend is imported already", error.Reason, StringComparison.Ordinal);
        Assert.Equal("CiliumNetworkPolicy", Assert.Single(await _client.PoliciesAsync()).Kind);
        // Once the first is deleted the other kind may take the name.
        await _client.PolicyDeleteAsync("default", "backend");
        await _client.PolicyImportAsync([new PolicyFile { Name = "np.yaml", Text = sameName }]);
        Assert.Equal("NetworkPolicy", Assert.Single(await _client.PoliciesAsync()).Kind);
    }

    [Theory]
    [InlineData("POST", "v1/policies", """{"files":[{"name":"a.yaml"}]}""", 400, ErrorCodes.DecodeFailure)]
    [InlineData("POST", "v1/policies", """{"files":[]}""", 400, ErrorCodes.InvalidRequest)]
    [InlineData("POST", "v1/policies", """{}""", 400, ErrorCodes.InvalidRequest)]
    [InlineData("GET", "v1/policies/default/nope", null, 404, ErrorCodes.NotFound)]
    [InlineData("DELETE", "v1/policies/default/nope", null, 404, ErrorCodes.NotFound)]
    [InlineData("GET", "v1/bpf/policy/x", null, 400, ErrorCodes.InvalidRequest)]
    [InlineData("GET", "v1/bpf/policy/42", null, 404, ErrorCodes.UnknownContainer)]
    [InlineData("POST", "v1/policy/trace", """{"srcLabels":["app=a"],"dstLabels":["app=b"],"port":80,"protocol":"QUIC"}""", 400, ErrorCodes.InvalidRequest)]
    [InlineData("POST", "v1/policy/trace", """{"srcLabels":["app=a"],"srcEndpoint":1,"dstLabels":["app=b"],"port":80}""", 400, ErrorCodes.InvalidRequest)]
    [InlineData("POST", "v1/policy/trace", """{"srcLabels":["app=a"],"dstEndpoint":9,"port":80}""", 404, ErrorCodes.UnknownContainer)]
    [InlineData("POST", "v1/policy/trace", """{"srcLabels":["=a"],"dstLabels":["app=b"],"port":80}""", 400, ErrorCodes.InvalidRequest)]
    public async Task BadRequestsAreErrorsWithTheirCodes(string method, string path, string? body, int status, int code)
    {
        var (actual, text) = await RawAsync(new HttpMethod(method), path, body);
        Assert.True(status == (int)actual, text);
        Assert.Equal(code, JsonSerializer.Deserialize(text, ApiJsonContext.Default.ApiError)!.Code);
    }

    [Fact]
    public async Task SelectorsListTheCache()
    {
        var frontend = await _client.CniAddAsync(Pod("c1", "frontend"));
        await _client.PolicyImportAsync([new PolicyFile { Name = "p.yaml", Text = PolicyManagerTests.BackendPolicy }]);
        var selector = Assert.Single(await _client.PolicySelectorsAsync());
        Assert.Equal([(await _client.EndpointAsync(frontend.EndpointId)).Identity], selector.Identities);
        Assert.Equal(["default/backend spec.ingress[0]"], selector.Users);
    }
}
