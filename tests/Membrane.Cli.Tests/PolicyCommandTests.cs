using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Membrane.Agent;
using Membrane.Agent.Endpoints;
using Membrane.Agent.Policy;
using Membrane.Api;
using Membrane.Datapath;
using Membrane.Datapath.Policy;
using Membrane.Testing;

namespace Membrane.Cli.Tests;

/// <summary>
/// <c>membrane policy import|get|delete|selectors|trace</c> and <c>membrane bpf policy get</c>
/// run as a user runs them (the real CLI process) against an in-process agent whose kernel is
/// a test double that keeps what the agent writes.
/// </summary>
public sealed class PolicyCommandTests : IAsyncLifetime
{
    private const string Backend = PolicyFixtures.Backend;

    private const string Db = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: db
        spec:
          podSelector:
            matchLabels:
              app: db
          ingress:
          - from:
            - podSelector:
                matchLabels:
                  app: backend
            ports:
            - port: 5432
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory($"{RunPrefix.Value}-pol-").FullName;
    private readonly KernelDouble _kernel = new();
    private AgentHost _host = null!;
    private MembraneClient _client = null!;
    private long _frontend, _backend, _db;

    private string Socket => Path.Combine(_dir, "agent.sock");

    public async Task InitializeAsync()
    {
        _host = new AgentHost(new AgentOptions
        {
            StateDir = Path.Combine(_dir, "state"),
            SocketPath = Socket,
            PodCidrs = AgentOptions.ParsePodCidrs("198.18.0.0/28"),
            NodeName = "node-pol",
            HandleSignals = false,
        }, _kernel, policy: _kernel);
        await _host.StartAsync(default);
        _client = new MembraneClient(Socket);
        _frontend = (await _client.CniAddAsync(Pod("c1", "frontend"))).EndpointId;
        _backend = (await _client.CniAddAsync(Pod("c2", "backend"))).EndpointId;
        _db = (await _client.CniAddAsync(Pod("c3", "db"))).EndpointId;
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private static CniAddRequest Pod(string cid, string app) => new()
    {
        ContainerId = cid,
        IfName = "eth0",
        NetNs = "/var/run/netns/" + cid,
        PodName = cid,
        Labels = [new Label("app", app)],
    };

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private (int Code, string Stdout, string Stderr) Membrane(params string[] args) =>
        Tools.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "membrane.dll"), "--socket", Socket, .. args]);

    private (int Code, string Stdout, string Stderr) ImportBoth() =>
        Membrane("policy", "import", Write("backend.yaml", Backend), Write("db.yaml", Db));

    [Fact]
    public void ImportThenGetShowsThePoliciesAndTheKernelEnforcesThem()
    {
        var (code, stdout, stderr) = ImportBoth();
        Assert.True(code == 0, stderr);
        Assert.Equal("imported default/backend, default/db (revision 1, 2 endpoint(s) changed)", stdout.Trim());
        Assert.Equal((true, false), _kernel.Flags[_kernel.IfIndexOf(_backend)]);

        (code, stdout, stderr) = Membrane("policy", "get");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^NAMESPACE\s+NAME\s+KIND\s+RULES\s+ENDPOINTS\s+SOURCE$", lines[0]);
        Assert.Matches($@"^default\s+backend\s+CiliumNetworkPolicy\s+1\s+{_backend}\s+.*backend\.yaml$", lines[1]);
        Assert.Matches($@"^default\s+db\s+NetworkPolicy\s+1\s+{_db}\s+.*db\.yaml$", lines[2]);

        (code, stdout, stderr) = Membrane("policy", "get", "default/backend", "-o", "yaml");
        Assert.True(code == 0, stderr);
        Assert.Equal(Backend.TrimEnd(), stdout.TrimEnd());

        (code, stdout, _) = Membrane("policy", "get", "db", "-o", "json");
        using var doc = JsonDocument.Parse(stdout);
        var db = doc.RootElement.EnumerateArray().Single();
        Assert.Equal("NetworkPolicy", db.GetProperty("kind").GetString());
        Assert.Equal("ingress", db.GetProperty("rules")[0].GetProperty("direction").GetString());
    }

    [Fact]
    public void ARefusedImportPrintsEveryErrorWithItsPlaceAndAppliesNothing()
    {
        var bad = Write("bad.yaml", Backend.Replace("\"8080\"", "\"80800\"", StringComparison.Ordinal).Replace("app: frontend", "app: [x]", StringComparison.Ordinal));
        var (code, stdout, stderr) = Membrane("policy", "import", Write("db.yaml", Db), bad);

        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var errors = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(errors, e => e.StartsWith($"{bad}:13:", StringComparison.Ordinal) && e.Contains("document 1 spec.ingress[0].fromEndpoints[0].matchLabels.app:", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith($"{bad}:16:", StringComparison.Ordinal) && e.Contains("document 1 spec.ingress[0].toPorts[0].ports[0].port:", StringComparison.Ordinal));
        Assert.Contains("nothing was applied (code 102)", errors[^1], StringComparison.Ordinal);
        Assert.Empty(_host.Policy!.Policies.Policies);
        Assert.Equal((false, false), _kernel.Flags[_kernel.IfIndexOf(_db)]);

        (code, _, stderr) = Membrane("policy", "import", Path.Combine(_dir, "missing.yaml"));
        Assert.Equal(1, code);
        Assert.Contains("failed to read policy file", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void DeleteOneOrAll()
    {
        ImportBoth();
        var (code, stdout, stderr) = Membrane("policy", "delete", "default/backend");
        Assert.True(code == 0, stderr);
        Assert.Equal("deleted default/backend (revision 2, 1 endpoint(s) changed)", stdout.Trim());
        Assert.Equal((false, false), _kernel.Flags[_kernel.IfIndexOf(_backend)]);

        (code, _, stderr) = Membrane("policy", "delete", "default/backend");
        Assert.Equal(1, code);
        Assert.Contains("there is no such policy (code 103)", stderr, StringComparison.Ordinal);

        (code, _, stderr) = Membrane("policy", "delete");
        Assert.NotEqual(0, code);
        Assert.Contains("give either NAMESPACE/NAME or --all", stderr, StringComparison.Ordinal);

        (code, stdout, stderr) = Membrane("policy", "delete", "--all", "-o", "json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(["default/db"], doc.RootElement.GetProperty("policies").EnumerateArray().Select(p => p.GetString()));
        Assert.Empty(_host.Policy!.Policies.Policies);
        Assert.Equal((false, false), _kernel.Flags[_kernel.IfIndexOf(_db)]);
    }

    [Fact]
    public async Task SelectorsShowTheIdentitiesEachSelectorSelects()
    {
        ImportBoth();
        var frontendIdentity = (await _client.EndpointAsync(_frontend)).Identity;
        var (code, stdout, stderr) = Membrane("policy", "selectors");
        Assert.True(code == 0, stderr);
        Assert.Matches(@"^SELECTOR\s+IDENTITIES\s+USERS", stdout);
        Assert.Contains(stdout.Split('\n'), l => l.Contains("app=frontend", StringComparison.Ordinal)
            && l.Contains($" {frontendIdentity} ", StringComparison.Ordinal) && l.EndsWith("default/backend spec.ingress[0]", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BpfPolicyGetDecodesTheKernelsEntries()
    {
        ImportBoth();
        var frontendIdentity = (await _client.EndpointAsync(_frontend)).Identity;
        var (code, stdout, stderr) = Membrane("bpf", "policy", "get", _backend.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal($"Endpoint {_backend} (ifindex {_kernel.IfIndexOf(_backend)}): ingress enforced, egress unrestricted", lines[0]);
        Assert.Matches(@"^DIRECTION\s+IDENTITY\s+LABELS\s+PROTOCOL\s+PORT\s+ACTION\s+RULE$", lines[1]);
        Assert.Matches(@"^egress\s+\*\s+\(any\)\s+ANY\s+\*\s+allow\s+-$", lines[2]);
        // The node itself may reach the pod (--allow-localhost, on by default).
        Assert.Matches(@"^ingress\s+1\s+reserved:host\s+ANY\s+\*\s+allow\s+-$", lines[3]);
        Assert.Matches($@"^ingress\s+{frontendIdentity}\s+k8s:app=frontend,k8s:io.kubernetes.pod.namespace=default\s+TCP\s+8080\s+allow\s+default/backend spec.ingress\[0\]$", lines[4]);

        (code, _, stderr) = Membrane("bpf", "policy", "get", "99");
        Assert.Equal(1, code);
        Assert.Contains("there is no such endpoint (code 3)", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void TraceAnswersAllowedOrDeniedWithTheDecidingRules()
    {
        ImportBoth();
        var (code, stdout, stderr) = Membrane("policy", "trace", "--src-labels", "app=frontend", "--dst-labels", "app=backend", "--dport", "8080/TCP");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("ALLOWED: [k8s:app=frontend,k8s:io.kubernetes.pod.namespace=default] -> [k8s:app=backend,", lines[0], StringComparison.Ordinal);
        Assert.Equal("  egress: unrestricted", lines[1]);
        Assert.Equal("  ingress: allowed by default/backend spec.ingress[0] (selected by default/backend spec)", lines[2]);

        (code, stdout, stderr) = Membrane("policy", "trace", "--src-endpoint", _frontend.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--dst-endpoint", _db.ToString(System.Globalization.CultureInfo.InvariantCulture), "--dport", "5432", "-o", "json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal("DENIED", doc.RootElement.GetProperty("verdict").GetString());
        Assert.Equal("denied-by-default", doc.RootElement.GetProperty("ingress").GetProperty("outcome").GetString());

        (code, _, stderr) = Membrane("policy", "trace", "--src-labels", "app=a", "--src-endpoint", "1", "--dst-labels", "app=b", "--dport", "80/TCP");
        Assert.NotEqual(0, code);
        Assert.Contains("give the source by exactly one of --src-labels, --src-endpoint, --src-ip", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("policy get")]
    [InlineData("policy import")]
    [InlineData("policy delete")]
    [InlineData("policy selectors")]
    [InlineData("policy trace")]
    [InlineData("bpf policy get")]
    public void TheHelpDocumentsEveryJsonMemberTheCommandPrints(string command)
    {
        string[] args = command switch
        {
            "policy import" => ["policy", "import", Write("backend.yaml", Backend), Write("db.yaml", Db)],
            "policy delete" => ["policy", "delete", "--all"],
            "policy trace" => ["policy", "trace", "--src-labels", "app=frontend", "--dst-labels", "app=backend", "--dport", "8080/TCP"],
            "bpf policy get" => ["bpf", "policy", "get", _backend.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            _ => command.Split(' '),
        };
        if (command != "policy import")
        {
            ImportBoth();
        }
        var (code, stdout, stderr) = Membrane([.. args, "-o", "json"]);
        Assert.True(code == 0, stderr);
        var names = JsonMembers.Names(stdout);
        Assert.NotEmpty(names);
        var help = Membrane([.. command.Split(' '), "--help"]).Stdout;
        Assert.All(names, n => Assert.Contains(n, help, StringComparison.Ordinal));
    }

    /// <summary>Endpoints made instantly, and a "kernel" that keeps the policy entries, flags and ipcache the agent writes.</summary>
    private sealed class KernelDouble : IEndpointDatapath, IPolicyDatapath
    {
        private int _ifindex = 10;
        private readonly ConcurrentDictionary<long, int> _ifindexes = new();
        private readonly ConcurrentDictionary<int, List<PolicyMapEntry>> _entries = new();

        public ConcurrentDictionary<int, (bool Ingress, bool Egress)> Flags { get; } = new();

        public ConcurrentDictionary<IPNetwork, uint> Ipcache { get; } = new();

        public int IfIndexOf(long endpoint) => _ifindexes[endpoint];

        public string Description => "policy test double";

        public string PinPath => "";

        public Task<DatapathEndpoint> CreateAsync(EndpointSpec spec, CancellationToken ct)
        {
            var ifindex = Interlocked.Increment(ref _ifindex);
            _ifindexes[spec.EndpointId] = ifindex;
            return Task.FromResult(new DatapathEndpoint(spec.HostInterface, ifindex, "02:00:00:00:00:01", "02:00:00:00:00:02"));
        }

        public Task DeleteAsync(EndpointSpec spec, CancellationToken ct) => Task.CompletedTask;

        public uint SetIdentity(DatapathEndpoint current, uint identity) => identity;

        public Task<bool> HostInterfaceExistsAsync(EndpointSpec spec, CancellationToken ct) => Task.FromResult(true);

        public Task<IReadOnlyList<string>> CheckAsync(EndpointSpec spec, DatapathEndpoint current, CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<string>>([]);

        public Task<IReadOnlyList<BpfEndpointEntry>> ListMapEndpointsAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<BpfEndpointEntry>>([]);

        public Task<IReadOnlyList<BpfMetricEntry>> ReadMetricsAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<BpfMetricEntry>>([]);

        public PolicyUpdateResult ReplacePolicy(int ifindex, IReadOnlyList<PolicyMapEntry> entries)
        {
            _entries[ifindex] = [.. entries];
            return new PolicyUpdateResult(entries.Count, 0, 0);
        }

        public void SetPolicyFlags(int ifindex, bool ingress, bool egress) => Flags[ifindex] = (ingress, egress);

        public (bool Ingress, bool Egress)? GetPolicyFlags(int ifindex) => Flags.TryGetValue(ifindex, out var f) ? f : null;

        public IReadOnlyList<(PolicyKey Key, bool Deny, uint Rule)> ListPolicy(int? ifindex) =>
            [.. _entries.Where(kv => ifindex is null || kv.Key == ifindex).SelectMany(kv => kv.Value).SelectMany(e => e.Keys().Select(k => (k, e.Deny, e.Rule)))];

        public void UpsertIpcache(IPNetwork prefix, uint identity) => Ipcache[prefix] = identity;

        public bool DeleteIpcache(IPNetwork prefix) => Ipcache.TryRemove(prefix, out _);

        public IReadOnlyList<(IPNetwork Prefix, uint Identity)> ListIpcache() => [.. Ipcache.Select(kv => (kv.Key, kv.Value))];

        public IReadOnlyList<IPAddress> ListNodeAddresses() => [IPAddress.Parse("198.19.0.1")];
    }
}
