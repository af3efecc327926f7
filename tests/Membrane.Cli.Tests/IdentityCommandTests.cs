using System.Collections.Concurrent;
using System.Text.Json;
using Membrane.Agent;
using Membrane.Agent.Endpoints;
using Membrane.Api;
using Membrane.Testing;

namespace Membrane.Cli.Tests;

/// <summary>
/// <c>membrane identity list|get</c> and <c>membrane endpoint labels</c> run as a user runs
/// them (the real CLI process) against an in-process agent whose datapath is a test double.
/// </summary>
public sealed class IdentityCommandTests : IAsyncLifetime
{
    private const string Ns = "k8s:io.kubernetes.pod.namespace";
    private readonly string _dir = Directory.CreateTempSubdirectory($"{RunPrefix.Value}-id-").FullName;
    private readonly MapDatapath _datapath = new();
    private AgentHost _host = null!;
    private MembraneClient _client = null!;
    private long _web;

    private string Socket => Path.Combine(_dir, "agent.sock");

    public async Task InitializeAsync()
    {
        _host = new AgentHost(new AgentOptions
        {
            StateDir = Path.Combine(_dir, "state"),
            SocketPath = Socket,
            PodCidrs = AgentOptions.ParsePodCidrs("198.18.0.0/29"),
            NodeName = "node-id",
            HandleSignals = false,
        }, _datapath);
        await _host.StartAsync(default);
        _client = new MembraneClient(Socket);
        _web = (await _client.CniAddAsync(Pod("c1", "shop", "web"))).EndpointId;
        await _client.CniAddAsync(Pod("c2", "shop", "web"));
        await _client.CniAddAsync(Pod("c3", null, "web"));
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private static CniAddRequest Pod(string cid, string? ns, string app) => new()
    {
        ContainerId = cid,
        IfName = "eth0",
        NetNs = "/var/run/netns/" + cid,
        PodNamespace = ns,
        PodName = cid,
        Labels = [new Label("app", app)],
    };

    private (int Code, string Stdout, string Stderr) Membrane(params string[] args) =>
        Tools.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "membrane.dll"), "--socket", Socket, .. args]);

    [Fact]
    public void IdentityListShowsReservedAndAllocatedIdentitiesWithTheirEndpoints()
    {
        var (code, stdout, stderr) = Membrane("identity", "list");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(1 + 7 + 2, lines.Length);
        Assert.Matches(@"^ID\s+ENDPOINTS\s+UNUSED SINCE\s+LABELS$", lines[0]);
        Assert.Matches(@"^0\s+-\s+reserved:unknown$", lines[1]);
        Assert.Matches(@"^1\s+-\s+reserved:host$", lines[2]);
        Assert.Matches(@"^6\s+-\s+reserved:remote-node$", lines[7]);
        Assert.Matches($@"^256\s+2\s+app=web,{Ns}=shop$", lines[8]);
        Assert.Matches($@"^257\s+1\s+app=web,{Ns}=default$", lines[9]);
    }

    [Fact]
    public void IdentityListJsonIsTheApisArray()
    {
        var (code, stdout, stderr) = Membrane("identity", "list", "-o", "json");
        Assert.True(code == 0, stderr);
        var list = JsonSerializer.Deserialize(stdout, ApiJsonContext.Default.ListIdentityEntry)!;
        Assert.Equal([0u, 1, 2, 3, 4, 5, 6, 256, 257], list.Select(i => i.Id));
        using var doc = JsonDocument.Parse(stdout);
        var host = doc.RootElement[1];
        Assert.Equal("host", host.GetProperty("reserved").GetString());
        Assert.False(host.TryGetProperty("endpoints", out _));
        var web = doc.RootElement[7];
        Assert.Equal(2, web.GetProperty("endpoints").GetInt32());
        Assert.False(web.TryGetProperty("reserved", out _));
        Assert.False(web.TryGetProperty("unusedSince", out _));
    }

    [Fact]
    public void IdentityGetShowsOneAndAnUnknownNumberIsCode103()
    {
        var (code, stdout, stderr) = Membrane("identity", "get", "256");
        Assert.True(code == 0, stderr);
        Assert.Contains("ID:            256", stdout, StringComparison.Ordinal);
        Assert.Contains($"Labels:        app=web, {Ns}=shop", stdout, StringComparison.Ordinal);
        Assert.Contains("Endpoints:     2", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("Unused since", stdout, StringComparison.Ordinal);

        (code, stdout, stderr) = Membrane("identity", "get", "2");
        Assert.True(code == 0, stderr);
        Assert.Contains("Reserved:      world", stdout, StringComparison.Ordinal);
        Assert.Contains("Labels:        reserved:world", stdout, StringComparison.Ordinal);

        (code, stdout, stderr) = Membrane("identity", "get", "256", "-o", "json");
        Assert.True(code == 0, stderr);
        Assert.Equal(["app=web", $"{Ns}=shop"], JsonSerializer.Deserialize(stdout, ApiJsonContext.Default.IdentityEntry)!.Labels);

        (code, _, stderr) = Membrane("identity", "get", "300");
        Assert.Equal(1, code);
        Assert.Equal("error: failed to get identity 300: it is neither reserved nor allocated (code 103)", stderr.Trim());
    }

    [Fact]
    public void EndpointLabelsChangesTheIdentityAndTheOldOneShowsItsGracePeriod()
    {
        var id = _web.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var (code, stdout, stderr) = Membrane("endpoint", "labels", id, "--remove", "app", "--add", "app=db", "--add", "tier=back");
        Assert.True(code == 0, stderr);
        Assert.Equal(
            $"Endpoint:      {id}\nLabels:        app=db, {Ns}=shop, tier=back\nIdentity:      258 (was 256; newly allocated)",
            stdout.Trim().ReplaceLineEndings("\n"));
        Assert.Equal(258u, _datapath.Identities[_web]);

        // The second pod with the same labels joins 258; 256 is unused now and shows since when.
        (code, stdout, stderr) = Membrane("endpoint", "labels", "2", "--remove", "app", "--add", "app=db", "--add", "tier=back", "-o", "json");
        Assert.True(code == 0, stderr);
        var json = JsonSerializer.Deserialize(stdout, ApiJsonContext.Default.EndpointLabelsResponse)!;
        Assert.Equal((2L, 258u, 256u, false), (json.EndpointId, json.Identity, json.PreviousIdentity, json.IdentityAllocated));
        (code, stdout, stderr) = Membrane("identity", "list");
        Assert.True(code == 0, stderr);
        Assert.Matches($@"(?m)^256\s+0\s+\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+app=web,{Ns}=shop$", stdout);
        (code, stdout, _) = Membrane("identity", "get", "256");
        Assert.Matches(@"Unused since:  \S+ \S+Z \(the number may be freed after \S+ \S+Z\)", stdout);

        // Without --add or --remove it shows the labels.
        (code, stdout, stderr) = Membrane("endpoint", "labels", id);
        Assert.True(code == 0, stderr);
        Assert.Contains($"Labels:        app=db, {Ns}=shop, tier=back", stdout, StringComparison.Ordinal);
        Assert.Contains("Identity:      258\n", stdout.ReplaceLineEndings("\n"), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "--remove", Ns }, $"cannot remove '{Ns}': every endpoint keeps its namespace label (code 102)")]
    [InlineData(new[] { "--remove", "tier" }, "cannot remove 'tier': the endpoint has no such label")]
    [InlineData(new[] { "--add", "reserved:world=" }, "the source 'reserved' is kept for the agent's reserved identities (code 102)")]
    [InlineData(new[] { "--add", "app=db" }, "the endpoint has 'app=web'; remove 'app' in the same call to replace it (code 102)")]
    [InlineData(new[] { "--add", "Bad Key=x" }, "invalid label to add: label key \"Bad Key\"")]
    public void AnInvalidLabelChangeIsTheAgentsErrorAndChangesNothing(string[] args, string why)
    {
        var (code, _, stderr) = Membrane(["endpoint", "labels", _web.ToString(System.Globalization.CultureInfo.InvariantCulture), .. args]);
        Assert.Equal(1, code);
        Assert.StartsWith($"error: failed to change the labels of endpoint {_web}: ", stderr, StringComparison.Ordinal);
        Assert.Contains(why, stderr, StringComparison.Ordinal);
        Assert.Equal(256u, _datapath.Identities[_web]);
    }

    [Fact]
    public void ALabelWithoutAValueIsRefusedBeforeTheAgentIsAsked()
    {
        var (code, _, stderr) = Membrane("endpoint", "labels", "1", "--add", "app");
        Assert.NotEqual(0, code);
        Assert.Contains("--add 'app': expected key=value", stderr, StringComparison.Ordinal);
        (code, _, stderr) = Membrane("endpoint", "labels", "99", "--add", "app=x");
        Assert.Equal(1, code);
        Assert.Contains("there is no such endpoint (code 3)", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("identity list")]
    [InlineData("identity get 256")]
    [InlineData("identity get 1")]
    [InlineData("endpoint labels 1 --add team=a")]
    public async Task TheHelpDocumentsEveryJsonMemberTheCommandPrints(string command)
    {
        var args = command.Split(' ');
        if (args[0] == "identity")
        {
            // An unused identity, so that unusedSince and expiresAt appear too.
            await _client.EndpointLabelsAsync(3, [new Label("app", "db")], ["app"]);
        }
        var (code, stdout, stderr) = Membrane([.. args, "-o", "json"]);
        Assert.True(code == 0, stderr);
        var names = JsonMembers.Names(stdout);
        Assert.NotEmpty(names);
        var help = Membrane([.. args.Take(2), "--help"]).Stdout;
        Assert.All(names, n => Assert.Contains(n, help, StringComparison.Ordinal));
    }

    /// <summary>A datapath that makes endpoints instantly and keeps each one's identity as its "map entry".</summary>
    private sealed class MapDatapath : IEndpointDatapath
    {
        private int _ifindex = 10;

        public ConcurrentDictionary<long, uint> Identities { get; } = new();

        private ConcurrentDictionary<int, long> Endpoints { get; } = new();

        public string Description => "identity test double";

        public string PinPath => "";

        public Task<DatapathEndpoint> CreateAsync(EndpointSpec spec, CancellationToken ct)
        {
            var ifindex = Interlocked.Increment(ref _ifindex);
            Endpoints[ifindex] = spec.EndpointId;
            Identities[spec.EndpointId] = spec.Identity;
            return Task.FromResult(new DatapathEndpoint(spec.HostInterface, ifindex, "02:00:00:00:00:01", "02:00:00:00:00:02"));
        }

        public Task DeleteAsync(EndpointSpec spec, CancellationToken ct)
        {
            Identities.TryRemove(spec.EndpointId, out _);
            return Task.CompletedTask;
        }

        public uint SetIdentity(DatapathEndpoint current, uint identity)
        {
            var id = Endpoints[current.HostIfIndex];
            var previous = Identities[id];
            Identities[id] = identity;
            return previous;
        }

        public Task<bool> HostInterfaceExistsAsync(EndpointSpec spec, CancellationToken ct) => Task.FromResult(true);

        public Task<IReadOnlyList<string>> CheckAsync(EndpointSpec spec, DatapathEndpoint current, CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<string>>([]);

        public Task<IReadOnlyList<BpfEndpointEntry>> ListMapEndpointsAsync(CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<BpfEndpointEntry>>([.. Endpoints.Select(e => new BpfEndpointEntry { IfIndex = e.Key, Identity = Identities[e.Value] })]);

        public Task<IReadOnlyList<BpfMetricEntry>> ReadMetricsAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<BpfMetricEntry>>([]);
    }
}
