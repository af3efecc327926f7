using System.Net;
using System.Net.Sockets;
using System.Text;
using Membrane.Api;
using Microsoft.Extensions.Logging;

namespace Membrane.Agent.Tests;

/// <summary>
/// The identity routes and the endpoint label change over the agent's real unix socket, spoken
/// to by Membrane.Api's client (and raw HTTP for bodies the client would never send).
/// </summary>
public sealed class IdentityApiTests : IAsyncLifetime
{
    private const string Ns = "k8s:io.kubernetes.pod.namespace";
    private readonly TempDir _dir = new();
    private readonly RecordingDatapath _datapath = new();
    private readonly ListLoggerProvider _log = new();
    private readonly ILoggerFactory _loggerFactory;
    private AgentHost _host = null!;
    private MembraneClient _client = null!;

    public IdentityApiTests() => _loggerFactory = LoggerFactory.Create(b => b.AddProvider(_log).SetMinimumLevel(LogLevel.Debug));

    private string Socket => _dir.File("agent.sock");

    public async Task InitializeAsync()
    {
        _host = new AgentHost(_dir.AgentOptions("node-id"), _datapath, _loggerFactory);
        await _host.StartAsync(default);
        _client = new MembraneClient(Socket, TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
        _loggerFactory.Dispose();
        _dir.Dispose();
    }

    private static CniAddRequest Add(string cid, string? podNamespace = null, string app = "web") => new()
    {
        ContainerId = cid,
        IfName = "eth0",
        NetNs = "/var/run/netns/" + cid,
        PodNamespace = podNamespace,
        PodName = cid,
        Labels = [new Label("app", app)],
    };

    private async Task<(HttpStatusCode Status, ApiError? Error)> RawAsync(HttpMethod method, string path, string? body = null)
    {
        var (status, error, _) = await UnixSocketHttp.SendAsync(Socket, method, path, body);
        return (status, error);
    }

    [Fact]
    public async Task IdentitiesAreListedAndShownReservedOnesByName()
    {
        await _client.CniAddAsync(Add("c1"));
        await _client.CniAddAsync(Add("c2", "shop"));
        await _client.CniAddAsync(Add("c3", "shop"));

        var list = await _client.IdentitiesAsync();
        Assert.Equal([0u, 1, 2, 3, 4, 5, 6, 256, 257], list.Select(i => i.Id));
        var host = list[1];
        Assert.Equal(("host", (int?)null, (DateTimeOffset?)null), (host.Reserved, host.Endpoints, host.UnusedSince));
        Assert.Equal(["reserved:host"], host.Labels);
        Assert.Equal(["reserved:remote-node"], list[6].Labels);
        Assert.Equal(["app=web", $"{Ns}=default"], list[7].Labels);
        Assert.Equal(["app=web", $"{Ns}=shop"], list[8].Labels);
        Assert.Equal((null, 1, null), (list[7].Reserved, list[7].Endpoints, list[7].UnusedSince));
        Assert.Equal(2, list[8].Endpoints);

        Assert.Equal("world", (await _client.IdentityAsync(2)).Reserved);
        Assert.Equal(["app=web", $"{Ns}=shop"], (await _client.IdentityAsync(257)).Labels);

        var unknown = await Assert.ThrowsAsync<MembraneApiException>(() => _client.IdentityAsync(7));
        Assert.Equal(HttpStatusCode.NotFound, unknown.Status);
        Assert.Equal(ErrorCodes.NotFound, unknown.Error.Code);
        Assert.Equal("failed to get identity 7: it is neither reserved nor allocated", unknown.Error.Message);
        var (status, error) = await RawAsync(HttpMethod.Get, "v1/identities/web");
        Assert.Equal((HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest), (status, error!.Code));
        Assert.Equal("failed to get identity 'web': an identity is a number", error.Message);
        (status, error) = await RawAsync(HttpMethod.Get, "v1/identities/4294967296");
        Assert.Equal((HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest), (status, error!.Code));
    }

    [Fact]
    public async Task ALabelChangeMovesTheEndpointAndTheOldIdentityShowsItsGracePeriod()
    {
        var c1 = await _client.CniAddAsync(Add("c1"));
        var before = DateTimeOffset.UtcNow;
        var changed = await _client.EndpointLabelsAsync(c1.EndpointId, [new Label("app", "db"), new Label("k8s:tier", "back")], ["app"]);
        Assert.Equal((c1.EndpointId, 257u, 256u, true), (changed.EndpointId, changed.Identity, changed.PreviousIdentity, changed.IdentityAllocated));
        Assert.Equal(["app=db", $"{Ns}=default", "k8s:tier=back"], changed.Labels);
        Assert.Equal(["app=web", $"{Ns}=default"], changed.PreviousLabels);

        var endpoint = await _client.EndpointAsync(c1.EndpointId);
        Assert.Equal(changed.Labels, endpoint.Labels);
        Assert.Equal(257u, endpoint.Identity);
        Assert.Equal(257u, Assert.Single(await _client.BpfEndpointsAsync()).Identity);

        var old = await _client.IdentityAsync(256);
        Assert.Equal(0, old.Endpoints);
        Assert.NotNull(old.UnusedSince);
        Assert.InRange(old.UnusedSince.Value, before.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Equal(old.UnusedSince + TimeSpan.FromMinutes(5), old.ExpiresAt); // the default grace period
        Assert.Equal(1, (await _client.IdentityAsync(257)).Endpoints);
        Assert.Contains(_log.Lines, l => l.StartsWith($"Membrane.Agent.Api: PATCH /v1/endpoints/{c1.EndpointId}/labels -> 200", StringComparison.Ordinal));
    }

    [Fact]
    public async Task LabelChangeErrorsCarryTheirCodeAndHttpStatus()
    {
        var c1 = await _client.CniAddAsync(Add("c1"));

        var unknown = await Assert.ThrowsAsync<MembraneApiException>(() => _client.EndpointLabelsAsync(99, [new Label("a", "b")], []));
        Assert.Equal((HttpStatusCode.NotFound, ErrorCodes.UnknownContainer), (unknown.Status, unknown.Error.Code));

        var invalid = await Assert.ThrowsAsync<MembraneApiException>(() => _client.EndpointLabelsAsync(c1.EndpointId, [], [Ns]));
        Assert.Equal((HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest), (invalid.Status, invalid.Error.Code));
        Assert.Equal($"failed to change the labels of endpoint {c1.EndpointId}: cannot remove '{Ns}': every endpoint keeps its namespace label", invalid.Error.Message);

        _datapath.FailSetIdentity = new IOException("BPF_MAP_UPDATE_ELEM: Bad file descriptor");
        var kernel = await Assert.ThrowsAsync<MembraneApiException>(() => _client.EndpointLabelsAsync(c1.EndpointId, [new Label("team", "a")], []));
        Assert.Equal((HttpStatusCode.InternalServerError, ErrorCodes.KernelFailure), (kernel.Status, kernel.Error.Code));
        Assert.Contains("Bad file descriptor; nothing was changed", kernel.Error.Message, StringComparison.Ordinal);
        Assert.Equal(["app=web", $"{Ns}=default"], (await _client.EndpointAsync(c1.EndpointId)).Labels);
        Assert.Equal(8, (await _client.IdentitiesAsync()).Count); // no identity was allocated

        var (status, error) = await RawAsync(HttpMethod.Patch, "v1/endpoints/x/labels", "{}");
        Assert.Equal((HttpStatusCode.BadRequest, ErrorCodes.InvalidRequest), (status, error!.Code));
        (status, error) = await RawAsync(HttpMethod.Post, $"v1/endpoints/{c1.EndpointId}/labels", "{}");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, status);
    }

    [Theory]
    [InlineData("""{"add":[{"key":"team","value":"a"}]}""", "app=web,k8s:io.kubernetes.pod.namespace=default,team=a")]
    [InlineData("""{"remove":["app"]}""", "k8s:io.kubernetes.pod.namespace=default")]
    public async Task AnAbsentAddOrRemoveIsEmpty(string body, string labels)
    {
        var c1 = await _client.CniAddAsync(Add("c1"));
        var (status, error) = await RawAsync(HttpMethod.Patch, $"v1/endpoints/{c1.EndpointId}/labels", body);
        Assert.True(status == HttpStatusCode.OK, error?.Message);
        Assert.Equal(labels, string.Join(",", (await _client.EndpointAsync(c1.EndpointId)).Labels));
    }

    [Fact]
    public async Task ACniAddWithoutLabelsOrNetworkHasNone()
    {
        var (status, error) = await RawAsync(HttpMethod.Post, "v1/cni/add", """{"containerId":"c9","ifName":"eth0","netns":"/var/run/netns/c9","mtu":1500}""");
        Assert.True(status == HttpStatusCode.OK, error?.Message);
        var endpoint = Assert.Single(await _client.EndpointsAsync());
        Assert.Equal(["k8s:io.kubernetes.pod.namespace=default"], endpoint.Labels);
    }

    [Theory]
    [InlineData("""{"add":null}""", "add")]
    [InlineData("""{"add":[{"key":"team"}]}""", "value")]
    [InlineData("""{"remove":"app"}""", "$.remove")]
    [InlineData("null", "the body is null")]
    public async Task AMalformedLabelsBodyIs400WithCode6(string body, string why)
    {
        var c1 = await _client.CniAddAsync(Add("c1"));
        var (status, error) = await RawAsync(HttpMethod.Patch, $"v1/endpoints/{c1.EndpointId}/labels", body);
        Assert.Equal((HttpStatusCode.BadRequest, ErrorCodes.DecodeFailure), (status, error!.Code));
        Assert.StartsWith("failed to decode the labels request: ", error.Message, StringComparison.Ordinal);
        Assert.Contains(why, $"{error.Message} {error.Details}", StringComparison.Ordinal);
        Assert.DoesNotContain(_datapath.Calls, c => c.StartsWith("set-identity", StringComparison.Ordinal));
    }
}
