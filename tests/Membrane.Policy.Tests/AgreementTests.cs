using System.Net;
using CsCheck;
using Membrane.Policy.Evaluation;
using Membrane.Policy.Identities;
using Membrane.Policy.Labels;
using Membrane.Policy.Model;
using Membrane.Policy.Parsing;
using Membrane.Policy.Repository;
using Membrane.Policy.Resolution;

namespace Membrane.Policy.Tests;

/// <summary>
/// Generated policy sets: the resolver's maps, looked up as the datapath will, agree with the
/// reference evaluator in every cell; incremental updates equal a resolution from scratch; and
/// the diffs, applied to the old maps, give the new ones.
/// </summary>
public class AgreementTests
{
    private static readonly string[] Apps = ["a", "b", "c"];
    private static readonly string[] Namespaces = ["default", "other"];

    private static Gen<string> GenPeers(string p) => Gen.OneOf(
        Gen.OneOfConst(Apps).Select(a => $"{p}Endpoints: [{{matchLabels: {{app: {a}}}}}]"),
        Gen.Const($"{p}Endpoints: [{{}}]"),
        Gen.Const($"{p}Endpoints: [{{matchLabels: {{\"k8s:io.kubernetes.pod.namespace\": other}}}}]"),
        Gen.Const($"{p}Endpoints: [{{matchExpressions: [{{key: app, operator: NotIn, values: [a]}}]}}]"),
        Gen.OneOfConst("world", "cluster", "host", "all", "remote-node").Select(e => $"{p}Entities: [{e}]"),
        Gen.Const($"{p}CIDRSet: [{{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]"),
        Gen.Const($"{p}CIDR: [10.1.0.0/16]"),
        Gen.Const($"{p}CIDR: [0.0.0.0/0]"),
        Gen.Const($"{p}CIDRSet: [{{cidr: \"fd00::/8\", except: [\"fd00:1::/32\"]}}]"),
        Gen.Const(""));

    private static readonly Gen<string> GenPorts = Gen.OneOfConst(
        "",
        "toPorts: [{ports: [{port: \"80\", protocol: TCP}]}]",
        "toPorts: [{ports: [{port: \"1000\", endPort: 1010}]}]",
        "toPorts: [{ports: [{port: \"0\", protocol: UDP}, {port: \"22\", protocol: TCP}]}]",
        "icmps: [{fields: [{type: 8}]}]",
        "icmps: [{fields: [{type: EchoRequest, family: IPv6}, {type: 0}]}]");

    private static Gen<string> GenCiliumRule(string section) =>
        Gen.Select(GenPeers(section.StartsWith("ingress", StringComparison.Ordinal) ? "from" : "to"), GenPorts)
            .Select((peers, ports) => "{" + string.Join(", ", new[] { peers, ports }.Where(s => s.Length > 0)) + "}");

    private static readonly Gen<string> GenSubject = Gen.OneOf(
        Gen.OneOfConst(Apps).Select(a => $"{{matchLabels: {{app: {a}}}}}"), Gen.Const("{}"));

    private static readonly Gen<string> GenCilium =
        from ns in Gen.OneOfConst(Namespaces)
        from subject in GenSubject
        from sections in Gen.OneOfConst("ingress", "ingressDeny", "egress", "egressDeny").Array[1, 3]
        from rules in Gen.Select(GenCiliumRule("ingress").Array[1, 2], GenCiliumRule("egress").Array[1, 2])
        from defaultDeny in Gen.OneOfConst("", ", enableDefaultDeny: {ingress: false}", ", enableDefaultDeny: {egress: true}")
        select $"apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: NAME, namespace: {ns}}}\nspec: {{endpointSelector: {subject}{defaultDeny}, "
            + string.Join(", ", sections.Distinct().Select(s => $"{s}: [{string.Join(", ", s.StartsWith("ingress", StringComparison.Ordinal) ? rules.Item1 : rules.Item2)}]"))
            + "}\n";

    private static readonly Gen<string> GenNpPeer = Gen.OneOf(
        Gen.OneOfConst(Apps).Select(a => $"{{podSelector: {{matchLabels: {{app: {a}}}}}}}"),
        Gen.OneOfConst(Namespaces).Select(n => $"{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: {n}}}}}}}"),
        Gen.Const("{namespaceSelector: {}, podSelector: {matchLabels: {app: b}}}"),
        Gen.Const("{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}"));

    private static readonly Gen<string> GenNpRule =
        from peers in GenNpPeer.Array[0, 2]
        from ports in Gen.OneOfConst("", "ports: [{port: 80}]", "ports: [{protocol: UDP}]", "ports: [{port: 1000, endPort: 1010, protocol: UDP}]")
        select "{" + string.Join(", ", new[] { peers.Length == 0 ? "" : $"FROM: [{string.Join(", ", peers)}]", ports }.Where(s => s.Length > 0)) + "}";

    private static readonly Gen<string> GenNetworkPolicy =
        from ns in Gen.OneOfConst(Namespaces)
        from app in Gen.OneOfConst(Apps)
        from types in Gen.OneOfConst("", "policyTypes: [Ingress], ", "policyTypes: [Egress], ", "policyTypes: [Ingress, Egress], ")
        from ingress in GenNpRule.Array[0, 2]
        from egress in GenNpRule.Array[0, 2]
        select $"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: NAME, namespace: {ns}}}\nspec: {{podSelector: {{matchLabels: {{app: {app}}}}}, {types}"
            + $"ingress: [{string.Join(", ", ingress).Replace("FROM", "from")}], egress: [{string.Join(", ", egress).Replace("FROM", "to")}]}}\n";

    private static readonly Gen<string> GenPolicySet =
        Gen.OneOf(GenCilium, GenNetworkPolicy).Array[0, 4]
            .Select(docs => string.Join("---\n", docs.Select((d, i) => d.Replace("NAME", $"p{i}"))));

    private static PolicySnapshot Snapshot(string yaml)
    {
        var import = new PolicyDocumentParser().Parse("generated.yaml", yaml);
        if (!import.Succeeded)
        {
            throw new InvalidOperationException($"generated policy did not parse: {import.ErrorText}\n{yaml}");
        }
        return PolicySnapshot.Empty.With(import.Policies);
    }

    private static LabelSet Pod(string ns, string app) => LabelSet.Parse($"app={app}", $"k8s:io.kubernetes.pod.namespace={ns}");

    private static readonly PolicyIdentity[] PodIdentities =
        [.. Namespaces.SelectMany(ns => Apps.Select(a => Pod(ns, a))).Select((labels, i) => new PolicyIdentity(256 + (uint)i, labels))];

    // Every prefix the generated rules name has an identity; the evaluator gets an address
    // whose longest match is that prefix.
    private static readonly (PolicyIdentity Identity, IPAddress Address)[] CidrIdentities =
    [
        (PolicyIdentity.ForCidr(0x1000001, IPNetwork.Parse("10.0.0.0/8")), IPAddress.Parse("10.200.0.1")),
        (PolicyIdentity.ForCidr(0x1000002, IPNetwork.Parse("10.1.0.0/16")), IPAddress.Parse("10.1.2.3")),
        (PolicyIdentity.ForCidr(0x1000003, IPNetwork.Parse("0.0.0.0/0")), IPAddress.Parse("203.0.113.9")),
        (PolicyIdentity.ForCidr(0x1000004, IPNetwork.Parse("fd00::/8")), IPAddress.Parse("fd12::1")),
        (PolicyIdentity.ForCidr(0x1000005, IPNetwork.Parse("fd00:1::/32")), IPAddress.Parse("fd00:1::7")),
    ];

    private static readonly (byte Protocol, int Port)[] Packets =
        [(IpProtocol.Tcp, 80), (IpProtocol.Tcp, 1005), (IpProtocol.Udp, 1005), (IpProtocol.Udp, 53), (IpProtocol.Tcp, 22), (IpProtocol.Icmp, 8), (IpProtocol.Icmp, 0),
         (IpProtocol.IcmpV6, 128), (47, 0)];

    [Fact]
    public void Resolved_maps_agree_with_the_evaluator_in_every_cell()
    {
        var peers = ReservedIdentities.All
            // The world identity itself is what an address in no identity's prefix gets: with
            // 0.0.0.0/0 among the CIDR identities, only an IPv6 address outside fd00::/8.
            .Select(i => (i.Id, Peer: new PolicyPeer(i.Labels, i.Id == ReservedIdentities.World ? IPAddress.Parse("2001:db8::7") : null)))
            .Concat(PodIdentities.Select(i => (i.Id, Peer: new PolicyPeer(i.Labels))))
            .Concat(CidrIdentities.Select(c => (c.Identity.Id, Peer: new PolicyPeer(c.Identity.Labels, c.Address))))
            .ToArray();
        var endpoints = PodIdentities.Select(i => new PolicyEndpoint(i.Id - 255, i.Labels)).ToArray();
        Gen.Select(GenPolicySet, Gen.Bool).Sample((yaml, allowLocalhost) =>
        {
            var policies = Snapshot(yaml);
            var options = new PolicyOptions(allowLocalhost);
            var resolver = new PolicyResolver(policies, [.. PodIdentities, .. CidrIdentities.Select(c => c.Identity)], endpoints, options);
            foreach (var endpoint in endpoints)
            {
                var map = resolver.Maps[endpoint.Id];
                foreach (var direction in new[] { TrafficDirection.Ingress, TrafficDirection.Egress })
                {
                    foreach (var (id, peer) in peers)
                    {
                        foreach (var (protocol, port) in Packets)
                        {
                            var expected = PolicyEvaluator.EvaluateDirection(policies, new PolicyPeer(endpoint.Labels), peer, direction, protocol, port, options);
                            var actual = map.Lookup(id, protocol, port, direction, out _);
                            if ((actual == PolicyMapAction.Allow) != expected.Allowed)
                            {
                                throw new InvalidOperationException(
                                    $"endpoint {endpoint.Labels} {direction} peer {id} {IpProtocol.Name(protocol)}/{port}: map {actual}, evaluator {expected}\n{yaml}");
                            }
                        }
                    }
                }
            }
        }, iter: 300);
    }

    private abstract record Op;
    private sealed record SetPolicies(string Yaml) : Op;
    private sealed record UpsertIdentity(uint Id, string Ns, string App) : Op;
    private sealed record RemoveIdentity(uint Id) : Op;
    private sealed record UpsertEndpoint(ulong Id, string Ns, string App) : Op;
    private sealed record RemoveEndpoint(ulong Id) : Op;

    private static readonly Gen<Op> GenOp = Gen.OneOf<Op>(
        GenPolicySet.Select(y => (Op)new SetPolicies(y)),
        Gen.Select(Gen.UInt[256, 263], Gen.OneOfConst(Namespaces), Gen.OneOfConst([.. Apps, "d"])).Select((i, n, a) => (Op)new UpsertIdentity(i, n, a)),
        Gen.UInt[256, 263].Select(i => (Op)new RemoveIdentity(i)),
        Gen.Select(Gen.ULong[1, 5], Gen.OneOfConst(Namespaces), Gen.OneOfConst([.. Apps, "d"])).Select((i, n, a) => (Op)new UpsertEndpoint(i, n, a)),
        Gen.ULong[1, 5].Select(i => (Op)new RemoveEndpoint(i)));

    [Fact]
    public void Incremental_updates_equal_a_full_resolution_and_diffs_apply()
    {
        GenOp.Array[1, 12].Sample(ops =>
        {
            var resolver = new PolicyResolver();
            var policies = PolicySnapshot.Empty;
            var identities = new Dictionary<uint, PolicyIdentity>();
            var endpoints = new Dictionary<ulong, LabelSet>();
            var applied = new Dictionary<ulong, EndpointPolicyMap>();
            foreach (var op in ops)
            {
                var diff = op switch
                {
                    SetPolicies s => resolver.SetPolicies(policies = Snapshot(s.Yaml)),
                    UpsertIdentity u => resolver.UpsertIdentity(identities[u.Id] = new PolicyIdentity(u.Id, Pod(u.Ns, u.App))),
                    RemoveIdentity r => identities.Remove(r.Id) | true ? resolver.RemoveIdentity(r.Id) : null!,
                    UpsertEndpoint e => resolver.UpsertEndpoint(new PolicyEndpoint(e.Id, endpoints[e.Id] = Pod(e.Ns, e.App))),
                    RemoveEndpoint e => endpoints.Remove(e.Id) | true ? resolver.RemoveEndpoint(e.Id) : null!,
                    _ => throw new InvalidOperationException(),
                };
                foreach (var d in diff.Endpoints)
                {
                    if (d.ApplyTo(applied.GetValueOrDefault(d.EndpointId)) is { } m)
                    {
                        applied[d.EndpointId] = m;
                    }
                    else
                    {
                        applied.Remove(d.EndpointId);
                    }
                }
                var full = PolicyResolver.ResolveAll(policies, identities.Values, endpoints.Select(e => new PolicyEndpoint(e.Key, e.Value)));
                if (!SameMaps(full, resolver.Maps) || !SameMaps(full, applied))
                {
                    string Show(IReadOnlyDictionary<ulong, EndpointPolicyMap> maps) => string.Join("\n", maps.OrderBy(m => m.Key)
                        .Select(m => $"  {m.Key}: {string.Join("; ", m.Value.Entries.Select(e => $"{e.Key} {e.Value}"))}"));
                    throw new InvalidOperationException(
                        $"after {op} (ops: {string.Join(", ", ops.Select(o => o.ToString()))}): incremental maps differ from a full resolution\nfull:\n{Show(full)}\nincremental:\n{Show(resolver.Maps)}\napplied diffs:\n{Show(applied)}");
                }
            }
        }, iter: 150);
    }

    private static bool SameMaps(IReadOnlyDictionary<ulong, EndpointPolicyMap> a, IReadOnlyDictionary<ulong, EndpointPolicyMap> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var other) && other.Equals(kv.Value));
}
