using System.Net;
using Membrane.Policy.Evaluation;
using Membrane.Policy.Identities;
using Membrane.Policy.Labels;
using Membrane.Policy.Model;
using Membrane.Policy.Repository;
using Membrane.Policy.Resolution;

namespace Membrane.Policy.Tests;

public class ResolverTests
{
    private static LabelSet PodLabels(string ns, string app, params string[] extra) =>
        LabelSet.Parse([$"app={app}", $"k8s:io.kubernetes.pod.namespace={ns}", .. extra]);

    private static readonly PolicyIdentity Frontend = new(256, PodLabels("default", "frontend"));
    private static readonly PolicyIdentity Backend = new(257, PodLabels("default", "backend"));
    private static readonly PolicyIdentity Db = new(258, PodLabels("default", "db"));
    private static readonly PolicyIdentity OtherFrontend = new(259, PodLabels("other", "frontend"));
    private static readonly PolicyIdentity[] Pods = [Frontend, Backend, Db, OtherFrontend];

    private const string BackendFromFrontend = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {name: backend-ingress}
        spec:
          endpointSelector: {matchLabels: {app: backend}}
          ingress:
          - fromEndpoints: [{matchLabels: {app: frontend}}]
            toPorts: [{ports: [{port: "8080", protocol: TCP}, {port: "9000", endPort: 9003, protocol: UDP}]}]
        """;

    private static string Dump(EndpointPolicyMap map) => string.Join("; ", map.Entries.Select(e => $"{e.Key} {e.Value}"));

    [Fact]
    public void Entries_for_selected_and_unselected_endpoints()
    {
        var resolver = new PolicyResolver(EvaluatorTests.Policies(BackendFromFrontend), Pods,
            [new PolicyEndpoint(1, Frontend.Labels), new PolicyEndpoint(2, Backend.Labels)]);
        Assert.Equal("Ingress * ANY * Allow; Egress * ANY * Allow", Dump(resolver.Maps[1]));
        Assert.Equal("Ingress 256 TCP 8080 Allow; Ingress 256 UDP 9000-9003 Allow; Egress * ANY * Allow", Dump(resolver.Maps[2]));

        var withHost = new PolicyResolver(resolver.Policies, Pods, [new PolicyEndpoint(2, Backend.Labels)], new PolicyOptions(AllowLocalhost: true));
        Assert.Equal("Ingress 1 ANY * Allow; Ingress 256 TCP 8080 Allow; Ingress 256 UDP 9000-9003 Allow; Egress * ANY * Allow", Dump(withHost.Maps[2]));
    }

    [Fact]
    public void Selectors_view_lists_identities_and_users()
    {
        var resolver = new PolicyResolver(EvaluatorTests.Policies(BackendFromFrontend + "\n---\n" + """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: db}
            spec:
              endpointSelector: {matchLabels: {app: db}}
              ingress:
              - fromEndpoints: [{matchLabels: {app: frontend}}]
              - fromEntities: [cluster]
            """), Pods);
        var view = resolver.Selectors().ToDictionary(s => s.Selector);
        var frontend = view["any:app=frontend,k8s:io.kubernetes.pod.namespace=default"];
        Assert.Equal([256u], frontend.Identities);
        Assert.Equal(["default/backend-ingress spec.ingress[0]", "default/db spec.ingress[0]"], frontend.Users.Select(u => u.ToString()));
        Assert.Equal([256u, 257u, 258u, 259u], view["k8s:io.kubernetes.pod.namespace"].Identities);
        Assert.Equal([ReservedIdentities.Host], view["reserved:host"].Identities);
        Assert.Equal(7, view.Count); // frontend + the six selectors of the cluster entity
    }

    [Fact]
    public void A_new_identity_touches_only_endpoints_whose_rules_select_it()
    {
        var resolver = new PolicyResolver(EvaluatorTests.Policies(BackendFromFrontend), Pods,
            [new PolicyEndpoint(1, Frontend.Labels), new PolicyEndpoint(2, Backend.Labels), new PolicyEndpoint(3, Db.Labels)]);
        var frontendV2 = new PolicyIdentity(300, PodLabels("default", "frontend", "version=2"));
        var diff = resolver.UpsertIdentity(frontendV2);
        Assert.Equal(1, resolver.LastRecomputed);
        var ep = Assert.Single(diff.Endpoints);
        Assert.Equal(2ul, ep.EndpointId);
        Assert.Equal(["Ingress 300 TCP 8080", "Ingress 300 UDP 9000-9003"], ep.Upserts.Keys.Select(k => k.ToString()));
        Assert.Empty(ep.Deletes);

        // Not selected by any selector: nothing is recomputed.
        Assert.True(resolver.UpsertIdentity(new PolicyIdentity(301, PodLabels("default", "batch"))).IsEmpty);
        Assert.Equal(0, resolver.LastRecomputed);

        // Its labels change so the selector no longer selects it: its entries go.
        var relabelled = resolver.UpsertIdentity(frontendV2 with { Labels = PodLabels("default", "batch") });
        Assert.Equal(["Ingress 300 TCP 8080", "Ingress 300 UDP 9000-9003"], Assert.Single(relabelled.Endpoints).Deletes.Select(k => k.ToString()));

        var removed = resolver.RemoveIdentity(256);
        Assert.Equal(2, Assert.Single(removed.Endpoints).Deletes.Count);
        Assert.True(resolver.RemoveIdentity(999).IsEmpty);
    }

    [Fact]
    public void A_policy_change_touches_only_endpoints_its_rule_sets_select()
    {
        var resolver = new PolicyResolver(EvaluatorTests.Policies(BackendFromFrontend), Pods,
            [new PolicyEndpoint(1, Frontend.Labels), new PolicyEndpoint(2, Backend.Labels), new PolicyEndpoint(3, Db.Labels)]);
        var withDb = resolver.Policies.With(ParserExamplesTests.ParseOk("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: db}
            spec:
              podSelector: {matchLabels: {app: db}}
              ingress:
              - from: [{podSelector: {matchLabels: {app: backend}}}]
                ports: [{port: 5432}]
            """));
        var diff = resolver.SetPolicies(withDb);
        Assert.Equal(1, resolver.LastRecomputed);
        var db = Assert.Single(diff.Endpoints);
        Assert.Equal(3ul, db.EndpointId);
        Assert.Equal(["Ingress 257 TCP 5432"], db.Upserts.Keys.Select(k => k.ToString()));
        Assert.Equal(["Ingress * ANY *"], db.Deletes.Select(k => k.ToString()));

        var cleared = resolver.SetPolicies(withDb.Cleared());
        Assert.Equal(2, resolver.LastRecomputed);
        Assert.Equal([2ul, 3ul], cleared.Endpoints.Select(e => e.EndpointId));
        Assert.All(resolver.Maps.Values, m => Assert.Equal("Ingress * ANY * Allow; Egress * ANY * Allow", Dump(m)));
    }

    [Fact]
    public void Endpoint_changes_and_removal()
    {
        var resolver = new PolicyResolver(EvaluatorTests.Policies(BackendFromFrontend), Pods);
        Assert.Empty(resolver.Maps);
        var added = Assert.Single(resolver.UpsertEndpoint(new PolicyEndpoint(7, Frontend.Labels)).Endpoints);
        Assert.Equal(2, added.Upserts.Count);
        // Relabelled to backend: it becomes selected.
        var relabelled = Assert.Single(resolver.UpsertEndpoint(new PolicyEndpoint(7, Backend.Labels)).Endpoints);
        Assert.Equal(["Ingress * ANY *"], relabelled.Deletes.Select(k => k.ToString()));
        var removed = Assert.Single(resolver.RemoveEndpoint(7).Endpoints);
        Assert.True(removed.Removed);
        Assert.Null(removed.ApplyTo(resolver.Maps.GetValueOrDefault(7ul)));
        Assert.Empty(resolver.Maps);
        Assert.True(resolver.RemoveEndpoint(7).IsEmpty);
    }

    [Fact]
    public void Deny_overrides_an_allow_on_the_same_key_and_cidr_identities_resolve_by_prefix()
    {
        var policies = EvaluatorTests.Policies("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: egress}
            spec:
              endpointSelector: {matchLabels: {app: backend}}
              egress:
              - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
                toPorts: [{ports: [{port: "443", protocol: TCP}]}]
              egressDeny:
              - toCIDR: [10.2.0.0/16]
                toPorts: [{ports: [{port: "443", protocol: TCP}]}]
            """);
        Assert.Equal(["10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16"], policies.CidrPrefixes.Select(p => p.ToString()));
        PolicyIdentity[] cidrs =
        [
            PolicyIdentity.ForCidr(0x1000001, IPNetwork.Parse("10.0.0.0/8")),
            PolicyIdentity.ForCidr(0x1000002, IPNetwork.Parse("10.1.0.0/16")),
            PolicyIdentity.ForCidr(0x1000003, IPNetwork.Parse("10.2.0.0/16")),
        ];
        var resolver = new PolicyResolver(policies, [.. Pods, .. cidrs], [new PolicyEndpoint(2, Backend.Labels)]);
        Assert.Equal("Ingress * ANY * Allow; Egress 16777217 TCP 443 Allow; Egress 16777219 TCP 443 Deny", Dump(resolver.Maps[2]));
        Assert.Equal(PolicyMapAction.Deny, resolver.Maps[2].Lookup(0x1000003, IpProtocol.Tcp, 443, TrafficDirection.Egress, out var by));
        Assert.Equal("Egress 16777219 TCP 443", by.ToString());
        Assert.Equal(PolicyMapAction.Deny, resolver.Maps[2].Lookup(0x1000002, IpProtocol.Tcp, 443, TrafficDirection.Egress, out by));
        Assert.Null(by);
    }

    [Fact]
    public void A_batch_returns_one_diff_for_several_changes()
    {
        var resolver = new PolicyResolver(EvaluatorTests.Policies(BackendFromFrontend), Pods,
            [new PolicyEndpoint(1, Frontend.Labels), new PolicyEndpoint(2, Backend.Labels)]);
        var cidr = PolicyIdentity.ForCidr(0x1000001, IPNetwork.Parse("192.0.2.0/24"));
        var withCidr = resolver.Policies.With(ParserExamplesTests.ParseOk("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: to-cidr}
            spec:
              endpointSelector: {matchLabels: {app: frontend}}
              egress:
              - toCIDR: [192.0.2.0/24]
            """));
        var diff = resolver.Batch(r =>
        {
            r.UpsertIdentity(cidr);
            r.SetPolicies(withCidr);
            r.UpsertEndpoint(new PolicyEndpoint(3, Db.Labels));
            r.RemoveEndpoint(3); // created and removed within the batch: no change at all
        });
        var frontend = Assert.Single(diff.Endpoints);
        Assert.Equal(1ul, frontend.EndpointId);
        Assert.Equal(["Egress 16777217 ANY *"], frontend.Upserts.Keys.Select(k => k.ToString()));
        Assert.Equal(["Egress * ANY *"], frontend.Deletes.Select(k => k.ToString()));
        Assert.Equal(2, diff.EntryChanges);
    }

    [Theory]
    [InlineData("tcp", IpProtocol.Tcp)]
    [InlineData("UDP", IpProtocol.Udp)]
    [InlineData("ICMPv6", IpProtocol.IcmpV6)]
    [InlineData("any", IpProtocol.Any)]
    [InlineData("132", 132)]
    public void Protocols_parse_by_name_or_number(string text, byte expected)
    {
        Assert.True(IpProtocol.TryParse(text, out var protocol));
        Assert.Equal(expected, protocol);
        Assert.False(IpProtocol.TryParse("256", out _));
        Assert.False(IpProtocol.TryParse("GRE", out _));
    }

    [Theory]
    [InlineData(0, 65535, "0/0")]
    [InlineData(80, 80, "80/16")]
    [InlineData(8000, 8080, "8000/10 8064/12 8080/16")]
    [InlineData(1, 7, "1/16 2/15 4/14")]
    [InlineData(65534, 65535, "65534/15")]
    public void Port_ranges_split_into_masked_ports(int first, int last, string expected)
    {
        var masked = new PortRange((ushort)first, (ushort)last).ToMaskedPorts();
        Assert.Equal(expected, string.Join(' ', masked.Select(m => $"{m.Port}/{m.PrefixLength}")));
        // The blocks cover exactly the range.
        var covered = masked.SelectMany(m => Enumerable.Range(m.Port, 1 << (16 - m.PrefixLength))).ToList();
        Assert.Equal(Enumerable.Range(first, last - first + 1), covered);
    }
}
