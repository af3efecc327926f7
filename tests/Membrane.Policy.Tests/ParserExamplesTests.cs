using System.Net;
using Membrane.Policy.Model;
using Membrane.Policy.Parsing;

namespace Membrane.Policy.Tests;

/// <summary>Real-world policies, written as in the Cilium and Kubernetes documentation.</summary>
public class ParserExamplesTests
{
    internal static PolicyResource[] ParseOk(string yaml, string file = "policy.yaml")
    {
        var import = new PolicyDocumentParser().Parse(file, yaml);
        Assert.True(import.Succeeded, import.ErrorText);
        return [.. import.Policies];
    }

    private static string Peers(PolicyRule rule) => rule.Peers is null ? "ANY" : string.Join(" | ", rule.Peers);
    private static string Ports(PolicyRule rule) => rule.Ports is null ? "ANY" : string.Join(" ", rule.Ports);

    [Fact]
    public void Cilium_l3_fromEndpoints_is_scoped_to_the_policy_namespace()
    {
        var p = Assert.Single(ParseOk("""
            apiVersion: "cilium.io/v2"
            kind: CiliumNetworkPolicy
            metadata:
              name: "l3-rule"
            spec:
              endpointSelector:
                matchLabels:
                  role: backend
              ingress:
              - fromEndpoints:
                - matchLabels:
                    role: frontend
            """));
        Assert.Equal(new PolicyKey("default", "l3-rule"), p.Key);
        Assert.Equal(PolicyKind.CiliumNetworkPolicy, p.Kind);
        var spec = Assert.Single(p.Specs);
        Assert.Equal("any:role=backend,k8s:io.kubernetes.pod.namespace=default", spec.Subject.ToString());
        Assert.True(spec.IngressDefaultDeny);
        Assert.False(spec.EgressDefaultDeny);
        var rule = Assert.Single(spec.Rules);
        Assert.Equal((TrafficDirection.Ingress, RuleAction.Allow), (rule.Direction, rule.Action));
        Assert.Equal("any:role=frontend,k8s:io.kubernetes.pod.namespace=default", Peers(rule));
        Assert.Equal("ANY", Ports(rule));
        Assert.Equal("spec.ingress[0]", rule.Origin.Path);
        Assert.Equal((10, 5), (rule.Origin.Location.Line, rule.Origin.Location.Column));
    }

    [Fact]
    public void Cilium_peer_naming_a_namespace_or_reserved_label_is_not_rescoped()
    {
        var p = Assert.Single(ParseOk("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: cross, namespace: prod}
            spec:
              endpointSelector: {}
              ingress:
              - fromEndpoints:
                - matchLabels: {"k8s:io.kubernetes.pod.namespace": monitoring, app: prometheus}
                - matchExpressions: [{key: io.kubernetes.pod.namespace, operator: In, values: [a, b]}]
                - matchLabels: {"reserved:host": ""}
                - {}
            """));
        var rule = Assert.Single(p.Specs[0].Rules);
        Assert.Equal("any:app=prometheus,k8s:io.kubernetes.pod.namespace=monitoring | any:io.kubernetes.pod.namespace in (a,b) | reserved:host= | k8s:io.kubernetes.pod.namespace=prod",
            Peers(rule));
        Assert.Equal("k8s:io.kubernetes.pod.namespace=prod", p.Specs[0].Subject.ToString());
    }

    [Fact]
    public void Cilium_l4_only_rule_applies_to_every_peer_with_ranges_and_any_protocol()
    {
        var p = Assert.Single(ParseOk("""
            ---
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata:
              name: l4-rule
              namespace: prod
              labels: {team: net}
              uid: 0c2b9a3e-2b8e-4c1e-9a51-2b0e5f7c1d11
              resourceVersion: "12345"
            spec:
              description: "L4 policy"
              endpointSelector:
                matchLabels:
                  app: myService
              egress:
              - toPorts:
                - ports:
                  - port: "80"
                    protocol: TCP
                  - port: "8000"
                    endPort: 8080
                  - port: 53
                    protocol: udp
            ---
            """));
        var spec = Assert.Single(p.Specs);
        Assert.False(spec.IngressDefaultDeny);
        Assert.True(spec.EgressDefaultDeny);
        var rule = Assert.Single(spec.Rules);
        Assert.Equal("ANY", Peers(rule));
        Assert.Equal("80/TCP 8000-8080/TCP 8000-8080/UDP 53/UDP", Ports(rule));
        // A leading '---' starts the first document; the trailing one adds an empty document.
        Assert.Equal(1, p.Location.Document);
        Assert.StartsWith("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\n", p.SourceText);
        Assert.EndsWith("        protocol: udp\n", p.SourceText);
    }

    [Fact]
    public void Cilium_deny_and_entities()
    {
        var p = Assert.Single(ParseOk("""
            apiVersion: "cilium.io/v2"
            kind: CiliumNetworkPolicy
            metadata:
              name: "external-lockdown"
            spec:
              endpointSelector: {}
              ingressDeny:
              - fromEntities:
                - "world"
              ingress:
              - fromEntities:
                - "all"
              egress:
              - toEntities: [cluster]
              egressDeny:
              - toEntities: [host]
                toPorts:
                - ports:
                  - port: "22"
            """));
        var rules = p.Specs[0].Rules;
        Assert.Equal(["spec.ingress[0]", "spec.ingressDeny[0]", "spec.egress[0]", "spec.egressDeny[0]"], rules.Select(r => r.Origin.Path));
        Assert.Equal("reserved:world", Peers(rules[1]));
        Assert.Equal(RuleAction.Deny, rules[1].Action);
        Assert.Equal("{}", Peers(rules[0]));
        Assert.Equal("reserved:host | reserved:remote-node | reserved:init | reserved:health | reserved:unmanaged | k8s:io.kubernetes.pod.namespace", Peers(rules[2]));
        Assert.Equal("22/TCP 22/UDP", Ports(rules[3]));
    }

    [Fact]
    public void Cilium_cidr_cidrset_with_except_and_icmps()
    {
        var p = Assert.Single(ParseOk("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: cidr-rule}
            spec:
              endpointSelector: {matchLabels: {app: myService}}
              egress:
              - toCIDR:
                - 20.1.1.1/32
                - 192.0.2.7
                - 2001:db8::/32
              - toCIDRSet:
                - cidr: 10.0.0.0/8
                  except:
                  - 10.96.0.0/12
              - toEntities: [world]
                icmps:
                - fields:
                  - type: 8
                    family: IPv4
                  - type: EchoRequest
                    family: IPv6
                  - type: EchoReply
            """));
        var rules = p.Specs[0].Rules;
        Assert.Equal("cidr:20.1.1.1/32 | cidr:192.0.2.7/32 | cidr:2001:db8::/32", Peers(rules[0]));
        Assert.Equal("cidr:10.0.0.0/8 except 10.96.0.0/12", Peers(rules[1]));
        Assert.Equal("8/ICMP 128/ICMPv6 0/ICMP", Ports(rules[2]));
        var cidr = Assert.IsType<CidrPeer>(rules[1].Peers![0]);
        Assert.Equal(IPNetwork.Parse("10.96.0.0/12"), Assert.Single(cidr.Except));
    }

    [Fact]
    public void Cilium_empty_rule_selects_without_allowing_and_specs_list_and_enableDefaultDeny()
    {
        var p = Assert.Single(ParseOk("""
            apiVersion: cilium.io/v2
            kind: CiliumNetworkPolicy
            metadata: {name: multi}
            specs:
            - endpointSelector: {matchLabels: {role: restricted}}
              egress:
              - {}
            - endpointSelector: {matchLabels: {role: audit}}
              enableDefaultDeny: {ingress: false}
              ingressDeny:
              - fromEntities: [world]
            """));
        Assert.Equal(2, p.Specs.Count);
        Assert.Equal("specs[0]", p.Specs[0].Path);
        Assert.True(p.Specs[0].EgressDefaultDeny);
        var empty = Assert.Single(p.Specs[0].Rules);
        Assert.NotNull(empty.Peers);
        Assert.Empty(empty.Peers!);
        Assert.False(p.Specs[1].IngressDefaultDeny);
        Assert.Equal(RuleAction.Deny, Assert.Single(p.Specs[1].Rules).Action);
    }

    [Fact]
    public void NetworkPolicy_from_the_kubernetes_docs()
    {
        var p = Assert.Single(ParseOk("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata:
              name: test-network-policy
              namespace: default
            spec:
              podSelector:
                matchLabels:
                  role: db
              policyTypes:
              - Ingress
              - Egress
              ingress:
              - from:
                - ipBlock:
                    cidr: 172.17.0.0/16
                    except:
                    - 172.17.1.0/24
                - namespaceSelector:
                    matchLabels:
                      project: myproject
                - podSelector:
                    matchLabels:
                      role: frontend
                ports:
                - protocol: TCP
                  port: 6379
              egress:
              - to:
                - ipBlock:
                    cidr: 10.0.0.0/24
                ports:
                - protocol: TCP
                  port: 5978
            """));
        Assert.Equal(PolicyKind.NetworkPolicy, p.Kind);
        var spec = Assert.Single(p.Specs);
        Assert.Equal("k8s:io.kubernetes.pod.namespace=default,k8s:role=db", spec.Subject.ToString());
        Assert.True(spec.IngressDefaultDeny && spec.EgressDefaultDeny);
        Assert.Equal("cidr:172.17.0.0/16 except 172.17.1.0/24 | k8s:io.cilium.k8s.namespace.labels.project=myproject,k8s:io.kubernetes.pod.namespace | k8s:io.kubernetes.pod.namespace=default,k8s:role=frontend",
            Peers(spec.Rules[0]));
        Assert.Equal("6379/TCP", Ports(spec.Rules[0]));
        Assert.Equal("cidr:10.0.0.0/24", Peers(spec.Rules[1]));
        Assert.Equal("5978/TCP", Ports(spec.Rules[1]));
    }

    [Fact]
    public void NetworkPolicy_policyTypes_default_as_kubernetes_defines()
    {
        var policies = ParseOk("""
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: default-deny-ingress, namespace: team-a}
            spec:
              podSelector: {}
            ---
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: with-egress, namespace: team-a}
            spec:
              podSelector: {}
              egress:
              - to:
                - namespaceSelector:
                    matchLabels: {kubernetes.io/metadata.name: kube-system}
                  podSelector:
                    matchLabels: {k8s-app: kube-dns}
                ports:
                - {protocol: UDP, port: 53}
                - {port: 32000, endPort: 32768}
            ---
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: egress-only, namespace: team-a}
            spec:
              podSelector: {}
              policyTypes: [Egress]
              ingress:
              - {}
            ---
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            metadata: {name: allow-all-ingress, namespace: team-a}
            spec:
              podSelector: {}
              ingress:
              - {}
            """);
        Assert.Equal(4, policies.Length);
        var (denyIngress, withEgress, egressOnly, allowAll) = (policies[0].Specs[0], policies[1].Specs[0], policies[2].Specs[0], policies[3].Specs[0]);
        Assert.Equal((true, false, 0), (denyIngress.IngressDefaultDeny, denyIngress.EgressDefaultDeny, denyIngress.Rules.Count));
        Assert.Equal((true, true), (withEgress.IngressDefaultDeny, withEgress.EgressDefaultDeny));
        Assert.Equal("k8s:io.kubernetes.pod.namespace=kube-system,k8s:io.kubernetes.pod.namespace,k8s:k8s-app=kube-dns", Peers(withEgress.Rules[0]));
        Assert.Equal("53/UDP 32000-32768/TCP", Ports(withEgress.Rules[0]));
        // policyTypes [Egress]: the ingress rule is parsed but has no effect.
        Assert.Equal((false, true, 0), (egressOnly.IngressDefaultDeny, egressOnly.EgressDefaultDeny, egressOnly.Rules.Count));
        var all = Assert.Single(allowAll.Rules);
        Assert.Equal(("ANY", "ANY"), (Peers(all), Ports(all)));
        Assert.Equal(4, policies[3].Location.Document);
    }

    [Fact]
    public void Kubectl_list_output_is_accepted()
    {
        var policies = ParseOk("""
            apiVersion: v1
            kind: List
            items:
            - apiVersion: cilium.io/v2
              kind: CiliumNetworkPolicy
              metadata: {name: a, namespace: x, creationTimestamp: "2026-01-01T00:00:00Z", generation: 1}
              spec: {endpointSelector: {}, ingress: [{}]}
              status: {}
            - apiVersion: networking.k8s.io/v1
              kind: NetworkPolicy
              metadata: {name: b, namespace: x}
              spec: {podSelector: {}}
            metadata: {resourceVersion: ""}
            """);
        Assert.Equal(["x/a", "x/b"], policies.Select(p => p.Key.ToString()));
        // Each item's text stands on its own and parses back to the same policy.
        Assert.Equal("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: b, namespace: x}\nspec: {podSelector: {}}\n", policies[1].SourceText);
        var again = ParseOk(policies[0].SourceText);
        Assert.Equal(policies[0].Specs[0].Subject, Assert.Single(again).Specs[0].Subject);
    }

    [Fact]
    public void Several_files_parse_in_order_and_empty_documents_are_skipped()
    {
        var import = new PolicyDocumentParser().Parse([
            new PolicySource("one.yaml", "---\n# nothing\n---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p1}\nspec: {endpointSelector: {}}\n"),
            new PolicySource("two.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p2}\nspec: {podSelector: {}}\n"),
        ]);
        Assert.True(import.Succeeded, import.ErrorText);
        Assert.Equal(["p1", "p2"], import.Policies.Select(p => p.Key.Name));
        Assert.Equal(("one.yaml", 2, 4), (import.Policies[0].Location.File, import.Policies[0].Location.Document, import.Policies[0].Location.Line));
        Assert.Equal("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p1}\nspec: {endpointSelector: {}}\n", import.Policies[0].SourceText);
    }

    [Fact]
    public void Files_are_read_from_disk_and_an_unreadable_file_fails_the_import()
    {
        var dir = Directory.CreateTempSubdirectory("membrane-policy-");
        try
        {
            var good = Path.Combine(dir.FullName, "good.yaml");
            File.WriteAllText(good, "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {podSelector: {}}\n");
            var ok = new PolicyDocumentParser().ParseFiles([good]);
            Assert.True(ok.Succeeded, ok.ErrorText);
            var missing = Path.Combine(dir.FullName, "missing.yaml");
            var bad = new PolicyDocumentParser().ParseFiles([good, missing]);
            Assert.Empty(bad.Policies);
            var error = Assert.Single(bad.Errors);
            Assert.Equal((missing, 0), (error.File, error.Document));
            Assert.StartsWith("failed to read policy file", error.Reason);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
