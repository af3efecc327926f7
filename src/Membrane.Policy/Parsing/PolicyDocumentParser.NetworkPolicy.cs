using Membrane.Policy.Labels;
using Membrane.Policy.Model;
using Membrane.Policy.Selectors;
using YamlDotNet.RepresentationModel;

namespace Membrane.Policy.Parsing;

// Kubernetes NetworkPolicy (networking.k8s.io/v1), field names and validation as in
// k8s.io/api/networking/v1 types.go and pkg/apis/networking/validation.
public sealed partial class PolicyDocumentParser
{
    private static readonly string[] s_npSpecFields = ["podSelector", "policyTypes", "ingress", "egress"];
    private static readonly string[] s_npIngressFields = ["from", "ports"];
    private static readonly string[] s_npEgressFields = ["to", "ports"];
    private static readonly string[] s_npPeerFields = ["podSelector", "namespaceSelector", "ipBlock"];
    private static readonly string[] s_ipBlockFields = ["cidr", "except"];

    private static (PolicyResource, Named)? ParseNetworkPolicy(YamlFields y, YamlNode node, Dictionary<string, (YamlNode Key, YamlNode Value)> top, string path)
    {
        var before = y.ErrorCount;
        var md = ParseMetadata(y, node, top, path);
        var ns = md?.Namespace ?? WellKnownLabels.DefaultNamespace;
        var key = new PolicyKey(ns, md?.Name ?? "");
        var specPath = YamlFields.Join(path, "spec");
        PolicySpec? spec = null;
        if (!top.TryGetValue("spec", out var specField))
        {
            y.Error(node, specPath, "is required");
        }
        else
        {
            spec = ParseNetworkPolicySpec(y, specField.Value, specPath, key);
        }
        if (md is not { } m || spec is null || y.ErrorCount != before)
        {
            return null;
        }
        return (new PolicyResource(key, PolicyKind.NetworkPolicy, y.Location(node), y.SourceText(node), [spec]), m.Named);
    }

    private static PolicySpec? ParseNetworkPolicySpec(YamlFields y, YamlNode node, string path, PolicyKey key)
    {
        var before = y.ErrorCount;
        var fields = y.Object(node, path, s_npSpecFields);
        if (fields is null)
        {
            return null;
        }
        EndpointSelector? subject = null;
        var selPath = YamlFields.Join(path, "podSelector");
        if (!fields.TryGetValue("podSelector", out var sel))
        {
            // A required field of NetworkPolicySpec; `podSelector: {}` selects every pod.
            y.Error(node, selPath, "is required (write podSelector: {} to select every pod in the namespace)");
        }
        else if (ParseSelector(y, sel.Value, selPath, LabelSource.K8s, allowSource: false) is { } s)
        {
            // "Selects the pods to which this NetworkPolicy object applies ... in the policy's namespace."
            subject = s.And(NamespaceRequirement(key.Namespace));
        }
        var ingressRules = new List<YamlNode>();
        var egressRules = new List<YamlNode>();
        if (fields.TryGetValue("ingress", out var ing))
        {
            ingressRules.AddRange(y.List(ing.Value, YamlFields.Join(path, "ingress")) ?? []);
        }
        if (fields.TryGetValue("egress", out var eg))
        {
            egressRules.AddRange(y.List(eg.Value, YamlFields.Join(path, "egress")) ?? []);
        }
        // policyTypes default (k8s SetDefaults_NetworkPolicySpec): Ingress always, Egress when
        // the policy has egress rules.
        var ingress = true;
        var egress = egressRules.Count > 0;
        if (fields.TryGetValue("policyTypes", out var pt))
        {
            var ptPath = YamlFields.Join(path, "policyTypes");
            var types = y.List(pt.Value, ptPath) ?? [];
            if (types.Count > 0)
            {
                ingress = egress = false;
                for (var i = 0; i < types.Count; i++)
                {
                    switch (y.String(types[i], $"{ptPath}[{i}]"))
                    {
                        case null: break;
                        case "Ingress": ingress = true; break;
                        case "Egress": egress = true; break;
                        case var other:
                            y.Error(types[i], $"{ptPath}[{i}]", $"unknown policy type \"{other}\" (expected Ingress or Egress)");
                            break;
                    }
                }
            }
        }
        var rules = new List<PolicyRule>();
        // Rules of a direction the policy does not list in policyTypes have no effect in
        // Kubernetes; they are parsed (so mistakes are reported) but not kept.
        for (var i = 0; i < ingressRules.Count; i++)
        {
            var origin = new RuleOrigin(key, PolicyKind.NetworkPolicy, $"{YamlFields.Join(path, "ingress")}[{i}]", y.Location(ingressRules[i]));
            if (ParseNetworkPolicyRule(y, ingressRules[i], origin, TrafficDirection.Ingress, key.Namespace) is { } r && ingress)
            {
                rules.Add(r);
            }
        }
        for (var i = 0; i < egressRules.Count; i++)
        {
            var origin = new RuleOrigin(key, PolicyKind.NetworkPolicy, $"{YamlFields.Join(path, "egress")}[{i}]", y.Location(egressRules[i]));
            if (ParseNetworkPolicyRule(y, egressRules[i], origin, TrafficDirection.Egress, key.Namespace) is { } r && egress)
            {
                rules.Add(r);
            }
        }
        return subject is null || y.ErrorCount != before ? null : new PolicySpec(key, path, subject, ingress, egress, rules);
    }

    private static PolicyRule? ParseNetworkPolicyRule(YamlFields y, YamlNode node, RuleOrigin origin, TrafficDirection direction, string ns)
    {
        var path = origin.Path;
        var before = y.ErrorCount;
        var peersField = direction == TrafficDirection.Ingress ? "from" : "to";
        var fields = y.Object(node, path, direction == TrafficDirection.Ingress ? s_npIngressFields : s_npEgressFields);
        if (fields is null)
        {
            return null;
        }
        // "If this field is empty or missing, this rule matches all sources (traffic not
        // restricted by source)"; the same for `to` and for `ports`.
        List<PeerSelector>? peers = null;
        if (fields.TryGetValue(peersField, out var pf))
        {
            var listPath = YamlFields.Join(path, peersField);
            var list = y.List(pf.Value, listPath) ?? [];
            if (list.Count > 0)
            {
                peers = [];
            }
            for (var i = 0; i < list.Count; i++)
            {
                if (ParseNetworkPolicyPeer(y, list[i], $"{listPath}[{i}]", ns) is { } peer)
                {
                    peers!.Add(peer);
                }
            }
        }
        List<L4Match>? ports = null;
        if (fields.TryGetValue("ports", out var portsField))
        {
            var portsPath = YamlFields.Join(path, "ports");
            var list = y.List(portsField.Value, portsPath) ?? [];
            if (list.Count > 0)
            {
                ports = [];
            }
            for (var i = 0; i < list.Count; i++)
            {
                if (ParseNetworkPolicyPort(y, list[i], $"{portsPath}[{i}]") is { } match)
                {
                    ports!.Add(match);
                }
            }
        }
        return y.ErrorCount != before ? null : new PolicyRule(origin, direction, RuleAction.Allow, peers, ports);
    }

    /// <summary>
    /// A NetworkPolicyPeer. podSelector alone: pods of the policy's namespace; namespaceSelector
    /// alone: every pod of the selected namespaces; both: pods matching podSelector in the
    /// selected namespaces; ipBlock: addresses, and it "cannot be set" together with the others
    /// (k8s validation: "may not specify both ipBlock and another peer").
    /// </summary>
    private static PeerSelector? ParseNetworkPolicyPeer(YamlFields y, YamlNode node, string path, string ns)
    {
        var fields = y.Object(node, path, s_npPeerFields);
        if (fields is null)
        {
            return null;
        }
        var hasPod = fields.TryGetValue("podSelector", out var pod);
        var hasNs = fields.TryGetValue("namespaceSelector", out var nsSel);
        var hasBlock = fields.TryGetValue("ipBlock", out var block);
        if (hasBlock)
        {
            if (hasPod || hasNs)
            {
                y.Error(block.Key, YamlFields.Join(path, "ipBlock"), "ipBlock cannot be combined with podSelector or namespaceSelector in one peer");
                return null;
            }
            return ParseCidrBlock(y, block.Value, YamlFields.Join(path, "ipBlock"), s_ipBlockFields, null);
        }
        if (!hasPod && !hasNs)
        {
            y.Error(node, path, "a peer needs podSelector, namespaceSelector or ipBlock");
            return null;
        }
        EndpointSelector? podSelector = EndpointSelector.All;
        if (hasPod)
        {
            podSelector = ParseSelector(y, pod.Value, YamlFields.Join(path, "podSelector"), LabelSource.K8s, allowSource: false);
        }
        if (!hasNs)
        {
            return podSelector is null ? null : new EndpointPeer(ScopeToNamespace(podSelector, ns));
        }
        var namespaceSelector = ParseSelector(y, nsSel.Value, YamlFields.Join(path, "namespaceSelector"), LabelSource.K8s, allowSource: false);
        if (podSelector is null || namespaceSelector is null)
        {
            return null;
        }
        return new EndpointPeer(new EndpointSelector(podSelector.Requirements.Concat(NamespaceSelectorToPodRequirements(namespaceSelector))));
    }

    /// <summary>
    /// A namespace selector as requirements on a pod's labels. A namespace's labels are
    /// <c>kubernetes.io/metadata.name=&lt;name&gt;</c> (set by Kubernetes on every namespace) plus
    /// whatever the endpoint carries as <c>k8s:io.cilium.k8s.namespace.labels.&lt;key&gt;</c>
    /// (Cilium's PodNamespaceMetaLabelsPrefix). So the name key becomes the pod's namespace
    /// label and other keys the prefixed ones; and, as Cilium does for an empty
    /// namespaceSelector, the peer must have a namespace at all — it is a pod, not world or host.
    /// </summary>
    internal static IEnumerable<SelectorRequirement> NamespaceSelectorToPodRequirements(EndpointSelector namespaceSelector)
    {
        yield return SelectorRequirement.Create(LabelSource.K8s, WellKnownLabels.PodNamespace, SelectorOperator.Exists);
        foreach (var r in namespaceSelector.Requirements)
        {
            var key = r.Key == WellKnownLabels.NamespaceName ? WellKnownLabels.PodNamespace : WellKnownLabels.NamespaceLabelsPrefix + r.Key;
            yield return SelectorRequirement.Create(LabelSource.K8s, key, r.Operator, [.. r.Values]);
        }
    }

    /// <summary>
    /// A NetworkPolicyPort: protocol TCP (default) or UDP (SCTP is valid Kubernetes but not
    /// implemented); port 1–65535 or absent (every port); endPort needs a numeric port and is
    /// at least port.
    /// </summary>
    private static L4Match? ParseNetworkPolicyPort(YamlFields y, YamlNode node, string path)
    {
        var fields = y.Object(node, path, s_portFields);
        if (fields is null)
        {
            return null;
        }
        var before = y.ErrorCount;
        var protocol = IpProtocol.Tcp;
        if (fields.TryGetValue("protocol", out var pf) && y.String(pf.Value, YamlFields.Join(path, "protocol")) is { } text)
        {
            switch (text)
            {
                case "TCP": protocol = IpProtocol.Tcp; break;
                case "UDP": protocol = IpProtocol.Udp; break;
                case "SCTP":
                    y.Error(pf.Value, YamlFields.Join(path, "protocol"), "protocol SCTP is not supported by Membrane (TCP or UDP)");
                    break;
                default:
                    y.Error(pf.Value, YamlFields.Join(path, "protocol"), $"unknown protocol \"{text}\" (expected TCP, UDP or SCTP)");
                    break;
            }
        }
        int? port = null;
        if (fields.TryGetValue("port", out var portField))
        {
            port = ParsePortNumber(y, portField.Value, YamlFields.Join(path, "port"), 1, allowQuoted: false);
        }
        int? endPort = null;
        if (fields.TryGetValue("endPort", out var endField))
        {
            var endPath = YamlFields.Join(path, "endPort");
            if (y.Integer(endField.Value, endPath) is { } e)
            {
                if (e is < 1 or > ushort.MaxValue)
                {
                    y.Error(endField.Value, endPath, $"port {e} is out of range 1–65535");
                }
                else if (!fields.ContainsKey("port"))
                {
                    y.Error(endField.Value, endPath, "endPort needs port to start the range");
                }
                else if (port is { } p && e < p)
                {
                    y.Error(endField.Value, endPath, $"endPort {e} is lower than port {p}");
                }
                else
                {
                    endPort = (int)e;
                }
            }
        }
        if (y.ErrorCount != before)
        {
            return null;
        }
        var range = port is { } first ? new PortRange((ushort)first, (ushort)(endPort ?? first)) : PortRange.All;
        return new L4Match(protocol, range);
    }
}
