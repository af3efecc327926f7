using Membrane.Testing;
using System.Net;
using Membrane.Agent.Endpoints;
using Membrane.Agent.Identities;
using Membrane.Agent.Ipam;
using Membrane.Agent.Policy;
using Membrane.Agent.Store;
using Membrane.Api;
using Membrane.Policy.Parsing;
using Microsoft.Extensions.Time.Testing;

namespace Membrane.Agent.Tests;

/// <summary>
/// The agent's policy manager with a fake kernel: imports become per-endpoint entries and
/// enforcement flags, endpoints created or relabelled later follow, deletes clear, a refused
/// import changes nothing, kernel failures are retried, and a restarted agent restores it all.
/// </summary>
public sealed class PolicyManagerTests : IDisposable
{
    private const string Ns = "k8s:io.kubernetes.pod.namespace";

    public const string BackendPolicy = PolicyFixtures.Backend;

    private const string DenyEgressPolicy = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata:
          name: no-dns
          namespace: default
        spec:
          endpointSelector:
            matchLabels:
              app: frontend
          enableDefaultDeny:
            egress: false
          egressDeny:
          - toPorts:
            - ports:
              - port: "53"
                protocol: UDP
        """;

    private const string CidrPolicy = """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: egress-cidr
          namespace: default
        spec:
          podSelector:
            matchLabels:
              app: frontend
          policyTypes: [Egress]
          egress:
          - to:
            - ipBlock:
                cidr: 198.19.0.0/16
                except: [198.19.1.0/24]
        """;

    private static readonly TimeSpan Grace = TimeSpan.FromMinutes(5);
    private readonly TempDir _dir = new();
    private readonly RecordingDatapath _datapath = new();
    private FakePolicyDatapath _kernel = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private AgentStore _store;
    private IdentityAllocator _identities = null!;
    private EndpointManager _endpoints = null!;
    private PolicyManager _policy = null!;

    public PolicyManagerTests()
    {
        _store = AgentStore.Open(_dir.Path);
        Build();
        _policy.Restore([]);
    }

    private void Build()
    {
        var cidrs = new[] { IpamAllocator.ParseCidr("198.18.0.0/24") };
        var ipam = new IpamAllocator(_store, cidrs);
        _identities = new IdentityAllocator(_store, Grace, _time);
        _policy = new PolicyManager(_store, _identities, _kernel, cidrs, _time);
        _endpoints = new EndpointManager(_store, ipam, _identities, _datapath, _time, policy: _policy);
    }

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }

    private async Task<CniAddResponse> Pod(string cid, string app, string? ns = null) => await _endpoints.AddAsync(new CniAddRequest
    {
        ContainerId = cid,
        IfName = "eth0",
        NetNs = "/var/run/netns/" + cid,
        PodNamespace = ns,
        PodName = cid,
        Labels = [new Label("app", app)],
    }, default);

    private int IfIndex(CniAddResponse pod) => _endpoints.Get(pod.EndpointId)!.HostIfIndex;

    private uint Identity(CniAddResponse pod) => _endpoints.Get(pod.EndpointId)!.Identity;

    private PolicyChangeResponse Import(params string[] yaml) =>
        _policy.Import(new PolicyDocumentParser().Parse(yaml.Select((y, i) => new PolicySource($"policy{i}.yaml", y))));

    private static string[] Unrestricted => ["egress 0 0 0-65535 allow", "ingress 0 0 0-65535 allow"];

    [Fact]
    public void TheNodesAddressesAreFollowedIntoTheIpcacheAndAFailedReadKeepsThem()
    {
        var host = Membrane.Policy.Identities.ReservedIdentities.Host;
        Assert.Equal(host, _kernel.Ipcache[IPNetwork.Parse("198.19.255.1/32")]);
        // An address added to the node later is the host too after the next reconcile; one
        // that went is no longer.
        _kernel.NodeAddresses.Add(IPAddress.Parse("198.19.255.2"));
        _kernel.NodeAddresses.Remove(IPAddress.Parse("198.19.255.1"));
        _policy.Reconcile();
        Assert.Equal(host, _kernel.Ipcache[IPNetwork.Parse("198.19.255.2/32")]);
        Assert.False(_kernel.Ipcache.ContainsKey(IPNetwork.Parse("198.19.255.1/32")));
        // A read that fails changes nothing.
        _kernel.FailNodeAddresses = true;
        _policy.Reconcile();
        Assert.Equal(host, _kernel.Ipcache[IPNetwork.Parse("198.19.255.2/32")]);
    }

    [Fact]
    public async Task AnImportWritesEachSelectedEndpointsEntriesAndFlags()
    {
        var frontend = await Pod("c1", "frontend");
        var backend = await Pod("c2", "backend");
        var db = await Pod("c3", "db");
        Assert.Equal(Unrestricted, _kernel.Describe(IfIndex(backend)));
        Assert.Equal((false, false), _kernel.Flags[IfIndex(backend)]);

        var response = Import(BackendPolicy);

        Assert.True(response.Applied);
        Assert.Equal(["default/backend"], response.Policies);
        Assert.Equal(1, response.EndpointsChanged);
        Assert.Equal(["egress 0 0 0-65535 allow", $"ingress {Identity(frontend)} 6 8080-8080 allow"], _kernel.Describe(IfIndex(backend)));
        Assert.Equal((true, false), _kernel.Flags[IfIndex(backend)]);
        var entry = _kernel.Entries[IfIndex(backend)].Single(e => e.Direction == Datapath.Policy.PolicyDirection.Ingress);
        Assert.Equal(PolicyManager.RuleNumber(_policy.Policies.Specs.Single().Rules.Single().Origin), entry.Rule);
        Assert.Equal(0u, _kernel.Entries[IfIndex(backend)].Single(e => e.Direction == Datapath.Policy.PolicyDirection.Egress).Rule);
        // The others are untouched and unenforced.
        Assert.Equal(Unrestricted, _kernel.Describe(IfIndex(frontend)));
        Assert.Equal(Unrestricted, _kernel.Describe(IfIndex(db)));
        Assert.Equal((false, false), _kernel.Flags[IfIndex(db)]);
    }

    [Fact]
    public async Task WithAllowLocalhostTheNodeReachesADefaultDenyPod()
    {
        _policy = new PolicyManager(_store, _identities, _kernel, [IpamAllocator.ParseCidr("198.18.0.0/24")], _time,
            options: new Membrane.Policy.Evaluation.PolicyOptions(AllowLocalhost: true));
        _endpoints = new EndpointManager(_store, new IpamAllocator(_store, [IpamAllocator.ParseCidr("198.18.0.0/24")]), _identities, _datapath, _time, policy: _policy);
        _policy.Restore([]);
        var frontend = await Pod("c1", "frontend");
        var backend = await Pod("c2", "backend");

        Import(BackendPolicy);

        // The host (identity 1) may reach the backend on every port, as Kubernetes documents.
        Assert.Equal(["egress 0 0 0-65535 allow", "ingress 1 0 0-65535 allow", $"ingress {Identity(frontend)} 6 8080-8080 allow"],
            _kernel.Describe(IfIndex(backend)).Order(StringComparer.Ordinal));
        Assert.True(_policy.Options.AllowLocalhost);
    }

    [Fact]
    public async Task PodsCreatedAfterTheImportGetTheirEntriesAndNewPeersAreAllowed()
    {
        Import(BackendPolicy);
        var backend = await Pod("c2", "backend");
        // No frontend yet: ingress is enforced and allows nothing.
        Assert.Equal(["egress 0 0 0-65535 allow"], _kernel.Describe(IfIndex(backend)));
        Assert.Equal((true, false), _kernel.Flags[IfIndex(backend)]);

        var frontend = await Pod("c1", "frontend");
        Assert.Equal(["egress 0 0 0-65535 allow", $"ingress {Identity(frontend)} 6 8080-8080 allow"], _kernel.Describe(IfIndex(backend)));

        // A frontend in another namespace is not a peer of a policy in default.
        var other = await Pod("c4", "frontend", "shop");
        Assert.DoesNotContain(_kernel.Describe(IfIndex(backend)), e => e.Contains($" {Identity(other)} ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ALabelChangeMovesAnEndpointBetweenPolicies()
    {
        var frontend = await Pod("c1", "frontend");
        var backend = await Pod("c2", "backend");
        Import(BackendPolicy);

        // backend stops being a backend: unrestricted again.
        await _endpoints.ChangeLabelsAsync(backend.EndpointId, new EndpointLabelsRequest { Remove = ["app"], Add = [new Label("app", "cache")] }, default);
        Assert.Equal(Unrestricted, _kernel.Describe(IfIndex(backend)));
        Assert.Equal((false, false), _kernel.Flags[IfIndex(backend)]);

        // And back; then the frontend stops being one: the backend's entry for it goes.
        await _endpoints.ChangeLabelsAsync(backend.EndpointId, new EndpointLabelsRequest { Remove = ["app"], Add = [new Label("app", "backend")] }, default);
        Assert.Equal(["egress 0 0 0-65535 allow", $"ingress {Identity(frontend)} 6 8080-8080 allow"], _kernel.Describe(IfIndex(backend)));
        var wasFrontend = Identity(frontend);
        await _endpoints.ChangeLabelsAsync(frontend.EndpointId, new EndpointLabelsRequest { Remove = ["app"], Add = [new Label("app", "web")] }, default);
        // The pod's packets carry its new identity, which no rule names; the old identity keeps
        // its labels (and so its entry) through its grace period, then it goes.
        Assert.NotEqual(wasFrontend, Identity(frontend));
        Assert.Equal(["egress 0 0 0-65535 allow", $"ingress {wasFrontend} 6 8080-8080 allow"], _kernel.Describe(IfIndex(backend)));
        _time.Advance(Grace);
        Assert.Contains(wasFrontend, _identities.CollectUnused());
        _policy.IdentitiesChanged();
        Assert.Equal(["egress 0 0 0-65535 allow"], _kernel.Describe(IfIndex(backend)));
        Assert.Equal((true, false), _kernel.Flags[IfIndex(backend)]);
    }

    [Fact]
    public async Task DeleteAndDeleteAllClearTheKernelAndTheStore()
    {
        var frontend = await Pod("c1", "frontend");
        var backend = await Pod("c2", "backend");
        Import(BackendPolicy, DenyEgressPolicy);
        Assert.Equal((true, true), (_kernel.Flags[IfIndex(backend)].Ingress, _kernel.Flags[IfIndex(frontend)].Egress));

        Assert.True(_policy.Delete("default", "backend", out var deleted));
        Assert.Equal(["default/backend"], deleted!.Policies);
        Assert.Equal(Unrestricted, _kernel.Describe(IfIndex(backend)));
        Assert.Equal((false, false), _kernel.Flags[IfIndex(backend)]);
        Assert.False(_policy.Delete("default", "backend", out _));
        Assert.Equal(["default/no-dns"], _store.Read(tx => tx.ListPolicies()).Select(p => $"{p.Namespace}/{p.Name}"));

        var all = _policy.DeleteAll();
        Assert.Equal(["default/no-dns"], all.Policies);
        Assert.Equal(Unrestricted, _kernel.Describe(IfIndex(frontend)));
        Assert.Equal((false, false), _kernel.Flags[IfIndex(frontend)]);
        Assert.Empty(_store.Read(tx => tx.ListPolicies()));
        Assert.Empty(_policy.Policies.Policies);
    }

    [Fact]
    public async Task ADenyInAnUnenforcedDirectionSetsTheFlagAndKeepsTheWildcardAllow()
    {
        var frontend = await Pod("c1", "frontend");
        Import(DenyEgressPolicy);
        Assert.Equal(["egress 0 0 0-65535 allow", "egress 0 17 53-53 deny", "ingress 0 0 0-65535 allow"], _kernel.Describe(IfIndex(frontend)));
        Assert.Equal((false, true), _kernel.Flags[IfIndex(frontend)]);
    }

    [Fact]
    public async Task ARefusedImportChangesNothing()
    {
        var backend = await Pod("c2", "backend");
        Import(BackendPolicy);
        var before = _kernel.Describe(IfIndex(backend));
        var replacements = _kernel.Replacements;
        var broken = BackendPolicy.Replace("name: backend", "name: other", StringComparison.Ordinal).Replace("port: \"8080\"", "port: \"80800\"", StringComparison.Ordinal);

        var e = Assert.Throws<PolicyImportException>(() => Import(DenyEgressPolicy, broken));

        Assert.Equal(ErrorCodes.InvalidRequest, e.Code);
        var error = Assert.Single(e.ToApiError().PolicyErrors!);
        Assert.Equal("policy1.yaml", error.File);
        Assert.Equal(1, error.Document);
        Assert.Equal(16, error.Line);
        Assert.EndsWith(".port", error.Field, StringComparison.Ordinal);
        Assert.Equal(["default/backend"], _policy.Policies.Policies.Keys.Select(k => k.ToString()));
        Assert.Equal(["default/backend"], _store.Read(tx => tx.ListPolicies()).Select(p => $"{p.Namespace}/{p.Name}"));
        Assert.Equal(before, _kernel.Describe(IfIndex(backend)));
        Assert.Equal(replacements, _kernel.Replacements);
    }

    [Fact]
    public async Task CidrRulesGetLocalIdentitiesInTheIpcacheAndTheNodesAddressesAreTheHost()
    {
        var frontend = await Pod("c1", "frontend");
        // The node's addresses outside the pod CIDR (198.18.0.1 is inside; link-local is not an address peers use).
        Assert.Equal(new Dictionary<IPNetwork, uint> { [IPNetwork.Parse("198.19.255.1/32")] = 1 }, _kernel.Ipcache);

        Import(CidrPolicy);

        var block = _kernel.Ipcache[IPNetwork.Parse("198.19.0.0/16")];
        var except = _kernel.Ipcache[IPNetwork.Parse("198.19.1.0/24")];
        Assert.True(block >= PolicyManager.FirstLocalIdentity && except >= PolicyManager.FirstLocalIdentity && block != except);
        Assert.Equal(["egress " + block + " 0 0-65535 allow", "ingress 0 0 0-65535 allow"], _kernel.Describe(IfIndex(frontend)));
        Assert.Equal((false, true), _kernel.Flags[IfIndex(frontend)]);

        _policy.DeleteAll();
        Assert.Equal(new Dictionary<IPNetwork, uint> { [IPNetwork.Parse("198.19.255.1/32")] = 1 }, _kernel.Ipcache);
    }

    [Fact]
    public async Task KernelFailuresAreReportedAndRetriedByTheNextReconcile()
    {
        var frontend = await Pod("c1", "frontend");
        var backend = await Pod("c2", "backend");
        _kernel.FailWrites = new InvalidOperationException("map full");

        var response = Import(BackendPolicy);

        Assert.False(response.Applied);
        Assert.Equal(["default/backend"], _store.Read(tx => tx.ListPolicies()).Select(p => $"{p.Namespace}/{p.Name}"));
        Assert.Contains(backend.EndpointId, _policy.Pending);
        Assert.Equal(Unrestricted, _kernel.Describe(IfIndex(backend)));

        _kernel.FailWrites = null;
        _policy.Reconcile();
        Assert.Empty(_policy.Pending);
        Assert.Equal(["egress 0 0 0-65535 allow", $"ingress {Identity(frontend)} 6 8080-8080 allow"], _kernel.Describe(IfIndex(backend)));
        Assert.Equal((true, false), _kernel.Flags[IfIndex(backend)]);
    }

    [Fact]
    public async Task ADeletedEndpointsEntriesLeaveTheKernel()
    {
        var backend = await Pod("c2", "backend");
        Import(BackendPolicy);
        var ifindex = IfIndex(backend);
        Assert.NotEmpty(_kernel.Describe(ifindex));

        await _endpoints.DeleteAsync(new CniDelRequest { ContainerId = "c2", IfName = "eth0" }, default);

        Assert.Empty(_kernel.Describe(ifindex));
    }

    [Fact]
    public async Task ARestartedAgentRestoresAndRewritesThePolicies()
    {
        var frontend = await Pod("c1", "frontend");
        var backend = await Pod("c2", "backend");
        Import(BackendPolicy);
        var expected = _kernel.Describe(IfIndex(backend));
        // A stray entry of an endpoint an earlier agent had: cleaned at restore.
        _kernel.Entries[999] = [new Datapath.PolicyMapEntry(999, Datapath.Policy.PolicyDirection.Ingress, 0, 0, 0, ushort.MaxValue, false, 0)];

        // A new agent over the same state and an empty "kernel".
        var old = _kernel;
        _kernel = new FakePolicyDatapath();
        _kernel.Entries[999] = old.Entries[999];
        // An earlier agent's CIDR identity that no policy names now goes; an entry of a kind the agent never writes stays.
        _kernel.Ipcache[IPNetwork.Parse("198.19.7.0/24")] = PolicyManager.FirstLocalIdentity + 7;
        _kernel.Ipcache[IPNetwork.Parse("198.19.8.0/24")] = 2;
        _store.Dispose();
        _store = AgentStore.Open(_dir.Path);
        Build();
        await _endpoints.RestoreAsync(default);
        _policy.Restore(_store.Read(tx => tx.ListEndpoints()));

        Assert.Equal(["default/backend"], _policy.Policies.Policies.Keys.Select(k => k.ToString()));
        Assert.Equal(expected, _kernel.Describe(IfIndex(backend)));
        Assert.Equal((true, false), _kernel.Flags[IfIndex(backend)]);
        Assert.Equal(Unrestricted, _kernel.Describe(IfIndex(frontend)));
        Assert.False(_kernel.Entries.ContainsKey(999));
        Assert.Equal(new Dictionary<IPNetwork, uint> { [IPNetwork.Parse("198.19.255.1/32")] = 1, [IPNetwork.Parse("198.19.8.0/24")] = 2 }, _kernel.Ipcache);
        Assert.Equal(BackendPolicy, _policy.Policies.Policies.Values.Single().SourceText.TrimEnd());
    }
}
