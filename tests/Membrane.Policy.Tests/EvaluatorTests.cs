using System.Net;
using Membrane.Policy.Evaluation;
using Membrane.Policy.Labels;
using Membrane.Policy.Model;
using Membrane.Policy.Repository;

namespace Membrane.Policy.Tests;

public class EvaluatorTests
{
    internal static PolicyPeer Pod(string ns, string app, params string[] extra) =>
        new(LabelSet.Parse([$"app={app}", $"k8s:io.kubernetes.pod.namespace={ns}", .. extra]));

    internal static PolicySnapshot Policies(string yaml) => PolicySnapshot.Empty.With(ParserExamplesTests.ParseOk(yaml));

    private static readonly PolicyPeer Frontend = Pod("default", "frontend");
    private static readonly PolicyPeer Backend = Pod("default", "backend");
    private static readonly PolicyPeer Db = Pod("default", "db");
    private static readonly PolicyPeer OtherFrontend = Pod("other", "frontend");

    private const string BackendFromFrontend = """
        apiVersion: cilium.io/v2
        kind: CiliumNetworkPolicy
        metadata: {name: backend-ingress}
        spec:
          endpointSelector: {matchLabels: {app: backend}}
          ingress:
          - fromEndpoints: [{matchLabels: {app: frontend}}]
            toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
        """;

    [Fact]
    public void Without_policy_everything_is_allowed_and_unrestricted()
    {
        var v = PolicyEvaluator.Evaluate(PolicySnapshot.Empty, Frontend, Backend, IpProtocol.Tcp, 80);
        Assert.True(v.Allowed);
        Assert.Equal((DirectionOutcome.Unrestricted, DirectionOutcome.Unrestricted), (v.Egress.Outcome, v.Ingress.Outcome));
    }

    [Theory]
    // source, destination, protocol, port → allowed: once selected for ingress, backend is default-deny.
    [InlineData("frontend", "backend", IpProtocol.Tcp, 8080, true)]
    [InlineData("frontend", "backend", IpProtocol.Udp, 8080, false)]
    [InlineData("frontend", "backend", IpProtocol.Tcp, 80, false)]
    [InlineData("db", "backend", IpProtocol.Tcp, 8080, false)]
    [InlineData("other-frontend", "backend", IpProtocol.Tcp, 8080, false)] // peers are scoped to the policy's namespace
    [InlineData("backend", "db", IpProtocol.Tcp, 5432, true)]              // backend's egress and db's ingress: not selected
    [InlineData("backend", "frontend", IpProtocol.Icmp, 8, true)]
    public void Default_deny_once_selected(string src, string dst, byte protocol, int port, bool allowed)
    {
        var policies = Policies(BackendFromFrontend);
        var verdict = PolicyEvaluator.Evaluate(policies, Peer(src), Peer(dst), protocol, port);
        Assert.Equal(allowed, verdict.Allowed);
        if (dst == "backend")
        {
            Assert.Equal(allowed ? DirectionOutcome.Allowed : DirectionOutcome.DeniedByDefault, verdict.Ingress.Outcome);
            Assert.Equal(["default/backend-ingress spec"], verdict.Ingress.SelectedBy);
            Assert.Equal(allowed ? ["default/backend-ingress spec.ingress[0]"] : [], verdict.Ingress.Rules.Select(r => r.ToString()));
        }
        else
        {
            Assert.Equal(DirectionOutcome.Unrestricted, verdict.Ingress.Outcome);
        }
    }

    private static PolicyPeer Peer(string name) => name switch
    {
        "frontend" => Frontend,
        "backend" => Backend,
        "db" => Db,
        "other-frontend" => OtherFrontend,
        _ => throw new ArgumentException(name),
    };

    [Fact]
    public void Allowed_is_the_union_of_every_matching_allow_rule()
    {
        var policies = Policies(BackendFromFrontend + "\n---\n" + """
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: backend-from-db}
            spec:
              podSelector: {matchLabels: {app: backend}}
              ingress:
              - from: [{podSelector: {matchLabels: {app: db}}}]
                ports: [{port: 9000, endPort: 9010}]
            """);
        Assert.True(PolicyEvaluator.Evaluate(policies, Frontend, Backend, IpProtocol.Tcp, 8080).Allowed);
        Assert.True(PolicyEvaluator.Evaluate(policies, Db, Backend, IpProtocol.Tcp, 9005).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Db, Backend, IpProtocol.Tcp, 8080).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Frontend, Backend, IpProtocol.Tcp, 9005).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Db, Backend, IpProtocol.Udp, 9005).Allowed); // NetworkPolicy default protocol TCP
        var both = PolicyEvaluator.Evaluate(policies, Db, Backend, IpProtocol.Tcp, 9010).Ingress;
        Assert.Equal(["default/backend-from-db spec.ingress[0]"], both.Rules.Select(r => r.ToString()));
        Assert.Equal(["default/backend-ingress spec", "default/backend-from-db spec"], both.SelectedBy.Order().Reverse());
    }

    [Fact]
    public void Deny_beats_allow_even_in_a_direction_nothing_enforces()
    {
        var policies = Policies("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: mixed}
            spec:
              endpointSelector: {matchLabels: {app: backend}}
              ingress:
              - fromEntities: [cluster]
              ingressDeny:
              - fromEndpoints: [{matchLabels: {app: frontend}}]
                toPorts: [{ports: [{port: "22", protocol: TCP}]}]
            ---
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: audit-only}
            spec:
              endpointSelector: {matchLabels: {app: db}}
              enableDefaultDeny: {egress: false}
              egressDeny:
              - toEntities: [world]
            """);
        var ssh = PolicyEvaluator.Evaluate(policies, Frontend, Backend, IpProtocol.Tcp, 22);
        Assert.False(ssh.Allowed);
        Assert.Equal(DirectionOutcome.DeniedByRule, ssh.Ingress.Outcome);
        Assert.Equal(["default/mixed spec.ingressDeny[0]"], ssh.Ingress.Rules.Select(r => r.ToString()));
        Assert.True(PolicyEvaluator.Evaluate(policies, Frontend, Backend, IpProtocol.Tcp, 80).Allowed);
        Assert.True(PolicyEvaluator.Evaluate(policies, Db, Backend, IpProtocol.Tcp, 22).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, PolicyPeer.World(IPAddress.Parse("198.51.100.1")), Backend, IpProtocol.Tcp, 80).Allowed);
        // db's egress is not default-deny, but the deny rule still applies.
        var toWorld = PolicyEvaluator.Evaluate(policies, Db, PolicyPeer.World(IPAddress.Parse("198.51.100.1")), IpProtocol.Tcp, 443);
        Assert.Equal(DirectionOutcome.DeniedByRule, toWorld.Egress.Outcome);
        Assert.Equal(DirectionOutcome.Unrestricted, PolicyEvaluator.Evaluate(policies, Db, Frontend, IpProtocol.Tcp, 443).Egress.Outcome);
    }

    [Fact]
    public void Both_the_senders_egress_and_the_receivers_ingress_must_allow()
    {
        var policies = Policies(BackendFromFrontend + "\n---\n" + """
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: frontend-egress}
            spec:
              endpointSelector: {matchLabels: {app: frontend}}
              egress:
              - toEndpoints: [{matchLabels: {app: db}}]
                toPorts: [{ports: [{port: "5432"}]}]
            """);
        var v = PolicyEvaluator.Evaluate(policies, Frontend, Backend, IpProtocol.Tcp, 8080);
        Assert.False(v.Allowed);
        Assert.Equal((DirectionOutcome.DeniedByDefault, DirectionOutcome.Allowed), (v.Egress.Outcome, v.Ingress.Outcome));
        Assert.True(PolicyEvaluator.Evaluate(policies, Frontend, Db, IpProtocol.Tcp, 5432).Allowed);
        Assert.True(PolicyEvaluator.Evaluate(policies, Frontend, Db, IpProtocol.Udp, 5432).Allowed);
        Assert.StartsWith("DENIED\n  Egress: DENIED, no allow rule matched (selected by default/frontend-egress spec)", v.ToString());
    }

    [Theory]
    // CIDR rules match world peers by address: inside the block, outside the except.
    [InlineData("10.2.3.4", true, true)]
    [InlineData("10.1.2.3", true, false)]
    [InlineData("8.8.8.8", true, false)]
    [InlineData("10.2.3.4", false, false)] // a pod with that address is matched by its identity, not by CIDR
    public void Cidr_with_except_matches_world_by_address(string address, bool world, bool allowed)
    {
        var policies = Policies("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: cidr}
            spec:
              endpointSelector: {matchLabels: {app: backend}}
              egress:
              - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
            """);
        var ip = IPAddress.Parse(address);
        var peer = world ? PolicyPeer.World(ip) : Pod("default", "db") with { Address = ip };
        Assert.Equal(allowed, PolicyEvaluator.Evaluate(policies, Backend, peer, IpProtocol.Tcp, 443).Allowed);
        // A world peer has no policy of its own: its egress is never restricted.
        Assert.Equal(DirectionOutcome.Unrestricted, PolicyEvaluator.Evaluate(policies, peer, Backend, IpProtocol.Tcp, 443).Egress.Outcome);
    }

    [Fact]
    public void Entities_and_zero_length_cidr_match_world_without_address()
    {
        var policies = Policies("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: entities}
            spec:
              endpointSelector: {matchLabels: {app: backend}}
              ingress:
              - fromEntities: [host]
              egress:
              - toCIDR: [0.0.0.0/0]
            """);
        var host = new PolicyPeer(LabelSet.ForReserved("host"));
        Assert.True(PolicyEvaluator.Evaluate(policies, host, Backend, IpProtocol.Tcp, 10250).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Frontend, Backend, IpProtocol.Tcp, 10250).Allowed);
        Assert.True(PolicyEvaluator.Evaluate(policies, Backend, PolicyPeer.World(), IpProtocol.Udp, 53).Allowed);
        Assert.True(PolicyEvaluator.Evaluate(policies, Backend, PolicyPeer.World(IPAddress.Parse("1.1.1.1")), IpProtocol.Udp, 53).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Backend, PolicyPeer.World(IPAddress.Parse("2001:db8::1")), IpProtocol.Udp, 53).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Backend, Db, IpProtocol.Udp, 53).Allowed);
    }

    [Fact]
    public void NetworkPolicy_namespaceSelector_matches_namespace_name_and_labels()
    {
        var policies = Policies("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: from-monitoring, namespace: default}
            spec:
              podSelector: {matchLabels: {app: backend}}
              ingress:
              - from:
                - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
                  podSelector: {matchLabels: {app: prometheus}}
                - namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [ops]}]}
              - from:
                - namespaceSelector: {}
                ports: [{port: 8443}]
            """);
        Assert.True(PolicyEvaluator.Evaluate(policies, Pod("monitoring", "prometheus"), Backend, IpProtocol.Tcp, 9090).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Pod("monitoring", "grafana"), Backend, IpProtocol.Tcp, 9090).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Pod("default", "prometheus"), Backend, IpProtocol.Tcp, 9090).Allowed);
        Assert.True(PolicyEvaluator.Evaluate(policies, Pod("tools", "x", "k8s:io.cilium.k8s.namespace.labels.team=ops"), Backend, IpProtocol.Tcp, 1).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Pod("tools", "x", "k8s:io.cilium.k8s.namespace.labels.team=dev"), Backend, IpProtocol.Tcp, 1).Allowed);
        // An empty namespaceSelector is every pod of every namespace — but not world or host.
        Assert.True(PolicyEvaluator.Evaluate(policies, Pod("anywhere", "x"), Backend, IpProtocol.Tcp, 8443).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, PolicyPeer.World(), Backend, IpProtocol.Tcp, 8443).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, new PolicyPeer(LabelSet.ForReserved("host")), Backend, IpProtocol.Tcp, 8443).Allowed);
    }

    [Fact]
    public void Allow_localhost_lets_the_host_in_unless_a_deny_names_it()
    {
        var host = new PolicyPeer(LabelSet.ForReserved("host"));
        var policies = Policies(BackendFromFrontend);
        var on = new PolicyOptions(AllowLocalhost: true);
        Assert.False(PolicyEvaluator.Evaluate(policies, host, Backend, IpProtocol.Tcp, 10250).Allowed);
        var probe = PolicyEvaluator.Evaluate(policies, host, Backend, IpProtocol.Tcp, 10250, on);
        Assert.Equal(DirectionOutcome.AllowedFromHost, probe.Ingress.Outcome);
        Assert.True(probe.Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Db, Backend, IpProtocol.Tcp, 10250, on).Allowed);
        // Egress towards the host is not covered.
        var egress = Policies(BackendFromFrontend.Replace("ingress:", "egress:").Replace("fromEndpoints", "toEndpoints"));
        Assert.False(PolicyEvaluator.Evaluate(egress, Backend, host, IpProtocol.Tcp, 10250, on).Allowed);
        var denied = Policies(BackendFromFrontend + "\n  ingressDeny:\n  - fromEntities: [host]\n");
        Assert.Equal(DirectionOutcome.DeniedByRule, PolicyEvaluator.Evaluate(denied, host, Backend, IpProtocol.Tcp, 10250, on).Ingress.Outcome);
    }

    [Fact]
    public void Policies_select_endpoints_of_their_own_namespace_only()
    {
        var policies = Policies(BackendFromFrontend.Replace("{name: backend-ingress}", "{name: backend-ingress, namespace: prod}"));
        Assert.True(PolicyEvaluator.Evaluate(policies, Frontend, Backend, IpProtocol.Tcp, 22).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Frontend, Pod("prod", "backend"), IpProtocol.Tcp, 8080).Allowed);
        Assert.True(PolicyEvaluator.Evaluate(policies, Pod("prod", "frontend"), Pod("prod", "backend"), IpProtocol.Tcp, 8080).Allowed);
    }

    [Fact]
    public void Icmp_types_are_matched_by_icmps_and_empty_rule_denies_all()
    {
        var policies = Policies("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: ping}
            spec:
              endpointSelector: {matchLabels: {app: backend}}
              ingress:
              - icmps: [{fields: [{type: EchoRequest}, {type: EchoRequest, family: IPv6}]}]
              egress:
              - {}
            """);
        Assert.True(PolicyEvaluator.Evaluate(policies, Frontend, Backend, IpProtocol.Icmp, 8).Allowed);
        Assert.True(PolicyEvaluator.Evaluate(policies, Frontend, Backend, IpProtocol.IcmpV6, 128).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Frontend, Backend, IpProtocol.Icmp, 0).Allowed);
        Assert.False(PolicyEvaluator.Evaluate(policies, Frontend, Backend, IpProtocol.Tcp, 8).Allowed);
        var egress = PolicyEvaluator.Evaluate(policies, Backend, Frontend, IpProtocol.Icmp, 8).Egress;
        Assert.Equal(DirectionOutcome.DeniedByDefault, egress.Outcome);
    }
}
