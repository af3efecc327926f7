using Membrane.Policy.Identities;
using Membrane.Policy.Labels;
using Membrane.Policy.Model;
using Membrane.Policy.Selectors;
using YamlDotNet.RepresentationModel;

namespace Membrane.Policy.Parsing;

// CiliumNetworkPolicy (cilium.io/v2), field names and validation as in Cilium's pkg/policy/api
// (rule.go, ingress.go, egress.go, l4.go, cidr.go, icmp.go, entity.go).
public sealed partial class PolicyDocumentParser
{
    private static readonly string[] s_cnpRuleFields = ["endpointSelector", "ingress", "ingressDeny", "egress", "egressDeny", "description", "enableDefaultDeny"];

    private static readonly Dictionary<string, string> s_cnpRuleUnsupported = new()
    {
        ["nodeSelector"] = "host policies are not implemented",
        ["labels"] = "rule labels are not implemented; the policy is named by metadata",
    };

    private static readonly Dictionary<string, string> s_l3Unsupported = new()
    {
        ["fromRequires"] = "requirements are deprecated in Cilium and not implemented",
        ["toRequires"] = "requirements are deprecated in Cilium and not implemented",
        ["fromGroups"] = "cloud-provider groups are not implemented",
        ["toGroups"] = "cloud-provider groups are not implemented",
        ["fromNodes"] = "node selectors are not implemented",
        ["toNodes"] = "node selectors are not implemented",
        ["toServices"] = "service selectors are not implemented",
        ["toFQDNs"] = "DNS-based policy is not implemented",
        ["authentication"] = "mutual authentication is not implemented",
    };

    private static readonly Dictionary<string, string> s_portRuleUnsupported = new()
    {
        ["rules"] = "L7 (HTTP, Kafka, DNS) rules need a proxy, which Membrane does not have",
        ["originatingTLS"] = "TLS interception is not implemented",
        ["terminatingTLS"] = "TLS interception is not implemented",
        ["serverNames"] = "TLS SNI matching is not implemented",
        ["listener"] = "Envoy listeners are not implemented",
    };

    private static readonly Dictionary<string, string> s_cidrSetUnsupported = new()
    {
        ["cidrGroupRef"] = "CiliumCIDRGroup references are not implemented",
        ["cidrGroupSelector"] = "CiliumCIDRGroup selectors are not implemented",
    };

    private static readonly string[] s_cidrSetFields = ["cidr", "except"];
    private static readonly string[] s_portRuleFields = ["ports"];
    private static readonly string[] s_portFields = ["port", "endPort", "protocol"];
    private static readonly string[] s_icmpRuleFields = ["fields"];
    private static readonly string[] s_icmpFieldFields = ["family", "type"];
    private static readonly string[] s_defaultDenyFields = ["ingress", "egress"];

    private static (PolicyResource, Named)? ParseCilium(YamlFields y, YamlNode node, Dictionary<string, (YamlNode Key, YamlNode Value)> top, string path)
    {
        var before = y.ErrorCount;
        var md = ParseMetadata(y, node, top, path);
        var ns = md?.Namespace ?? WellKnownLabels.DefaultNamespace;
        var key = new PolicyKey(ns, md?.Name ?? "");
        var specs = new List<PolicySpec>();
        var hasSpec = top.TryGetValue("spec", out var spec);
        var hasSpecs = top.TryGetValue("specs", out var specsField);
        if (!hasSpec && !hasSpecs)
        {
            y.Error(node, YamlFields.Join(path, "spec"), "is required (spec or specs)");
        }
        // Cilium accepts both: the rules of spec and of every entry of specs apply.
        if (hasSpec && ParseCiliumRule(y, spec.Value, YamlFields.Join(path, "spec"), key) is { } s)
        {
            specs.Add(s);
        }
        if (hasSpecs)
        {
            var specsPath = YamlFields.Join(path, "specs");
            var list = y.List(specsField.Value, specsPath) ?? [];
            for (var i = 0; i < list.Count; i++)
            {
                if (ParseCiliumRule(y, list[i], $"{specsPath}[{i}]", key) is { } r)
                {
                    specs.Add(r);
                }
            }
        }
        if (md is not { } m || y.ErrorCount != before)
        {
            return null;
        }
        return (new PolicyResource(key, PolicyKind.CiliumNetworkPolicy, y.Location(node), y.SourceText(node), specs), m.Named);
    }

    private static PolicySpec? ParseCiliumRule(YamlFields y, YamlNode node, string path, PolicyKey key)
    {
        var before = y.ErrorCount;
        var fields = y.Object(node, path, s_cnpRuleFields, s_cnpRuleUnsupported);
        if (fields is null)
        {
            return null;
        }
        EndpointSelector? subject = null;
        var selPath = YamlFields.Join(path, "endpointSelector");
        if (!fields.TryGetValue("endpointSelector", out var sel))
        {
            // Cilium: "rule cannot have nil EndpointSelector" (a rule selects endpoints or nodes).
            y.Error(node, selPath, "is required");
        }
        else if (ParseSelector(y, sel.Value, selPath, LabelSource.Any, allowSource: true) is { } s)
        {
            // A namespaced CNP only ever applies to endpoints of its own namespace (Cilium's
            // ParseToCiliumRule adds the namespace to the endpoint selector). Written as an AND:
            // a selector that names another namespace selects nothing.
            subject = s.And(NamespaceRequirement(key.Namespace));
        }
        if (fields.TryGetValue("description", out var description))
        {
            y.String(description.Value, YamlFields.Join(path, "description"));
        }
        var rules = new List<PolicyRule>();
        var sections = new (string Field, TrafficDirection Direction, RuleAction Action)[]
        {
            ("ingress", TrafficDirection.Ingress, RuleAction.Allow), ("ingressDeny", TrafficDirection.Ingress, RuleAction.Deny),
            ("egress", TrafficDirection.Egress, RuleAction.Allow), ("egressDeny", TrafficDirection.Egress, RuleAction.Deny),
        };
        var counts = new Dictionary<TrafficDirection, int> { [TrafficDirection.Ingress] = 0, [TrafficDirection.Egress] = 0 };
        foreach (var (field, direction, action) in sections)
        {
            if (!fields.TryGetValue(field, out var section))
            {
                continue;
            }
            var sectionPath = YamlFields.Join(path, field);
            var list = y.List(section.Value, sectionPath) ?? [];
            counts[direction] += list.Count;
            for (var i = 0; i < list.Count; i++)
            {
                var origin = new RuleOrigin(key, PolicyKind.CiliumNetworkPolicy, $"{sectionPath}[{i}]", y.Location(list[i]));
                if (ParseCiliumPeerRule(y, list[i], origin, direction, action, key.Namespace) is { } rule)
                {
                    rules.Add(rule);
                }
            }
        }
        // Cilium: a rule with ingress (or ingressDeny) entries puts the endpoints it selects in
        // default-deny for ingress, likewise egress; `ingress: [{}]` is the idiom for "deny all
        // ingress". enableDefaultDeny (Cilium 1.15+) overrides that per direction, so a rule can
        // add allows or denies without making everything else denied.
        var ingressDefaultDeny = counts[TrafficDirection.Ingress] > 0;
        var egressDefaultDeny = counts[TrafficDirection.Egress] > 0;
        if (fields.TryGetValue("enableDefaultDeny", out var dd))
        {
            var ddPath = YamlFields.Join(path, "enableDefaultDeny");
            var ddFields = y.Object(dd.Value, ddPath, s_defaultDenyFields);
            if (ddFields is not null && ddFields.TryGetValue("ingress", out var ddi) && y.Boolean(ddi.Value, YamlFields.Join(ddPath, "ingress")) is { } bi)
            {
                ingressDefaultDeny = bi;
            }
            if (ddFields is not null && ddFields.TryGetValue("egress", out var dde) && y.Boolean(dde.Value, YamlFields.Join(ddPath, "egress")) is { } be)
            {
                egressDefaultDeny = be;
            }
        }
        return subject is null || y.ErrorCount != before ? null
            : new PolicySpec(key, path, subject, ingressDefaultDeny, egressDefaultDeny, rules);
    }

    /// <summary><c>k8s:io.kubernetes.pod.namespace=ns</c>.</summary>
    internal static SelectorRequirement NamespaceRequirement(string ns) =>
        SelectorRequirement.Create(LabelSource.K8s, WellKnownLabels.PodNamespace, SelectorOperator.In, ns);

    /// <summary>
    /// Scopes a peer selector to the policy's namespace unless it names the namespace label
    /// itself (<c>k8s:</c> or <c>any:</c> source) or a reserved label — Cilium's
    /// <c>getEndpointSelector</c> in <c>pkg/k8s/apis/cilium.io/utils</c>: "The user can
    /// explicitly specify the namespace in the FromEndpoints selector. If omitted, we limit the
    /// scope to the namespace the policy lives in."
    /// </summary>
    internal static EndpointSelector ScopeToNamespace(EndpointSelector selector, string ns) =>
        selector.MentionsKey(LabelSource.K8s, WellKnownLabels.PodNamespace) || selector.MentionsSource(LabelSource.Reserved)
            ? selector
            : selector.And(NamespaceRequirement(ns));

    private static PolicyRule? ParseCiliumPeerRule(YamlFields y, YamlNode node, RuleOrigin origin, TrafficDirection direction,
        RuleAction action, string ns)
    {
        var path = origin.Path;
        var before = y.ErrorCount;
        var p = direction == TrafficDirection.Ingress ? "from" : "to";
        string[] l3 = [$"{p}Endpoints", $"{p}Entities", $"{p}CIDR", $"{p}CIDRSet"];
        var unsupported = s_l3Unsupported.Where(kv => kv.Key.StartsWith(p, StringComparison.Ordinal) || kv.Key == "authentication")
            .ToDictionary(kv => kv.Key, kv => kv.Value);
        // Fields of the other direction (fromEndpoints in egress) are plain unknown fields.
        var fields = y.Object(node, path, [.. l3, "toPorts", "icmps"], unsupported);
        if (fields is null)
        {
            return null;
        }
        // Cilium's IngressCommonRule.Validate: "combining %s and %s is not supported yet".
        var present = l3.Where(f => fields.TryGetValue(f, out var v) && v.Value is YamlSequenceNode { Children.Count: > 0 }).ToList();
        if (present.Count > 1)
        {
            y.Error(fields[present[1]].Key, YamlFields.Join(path, present[1]),
                $"combining {present[0]} and {present[1]} in one rule is not supported (as in Cilium): write them as separate rules");
            return null;
        }
        List<PeerSelector>? peers = null;
        foreach (var field in l3)
        {
            if (!fields.TryGetValue(field, out var f))
            {
                continue;
            }
            var fieldPath = YamlFields.Join(path, field);
            var list = y.List(f.Value, fieldPath) ?? [];
            if (list.Count == 0)
            {
                continue;
            }
            peers ??= [];
            for (var i = 0; i < list.Count; i++)
            {
                var itemPath = $"{fieldPath}[{i}]";
                if (field.EndsWith("Endpoints", StringComparison.Ordinal))
                {
                    if (ParseSelector(y, list[i], itemPath, LabelSource.Any, allowSource: true) is { } sel)
                    {
                        peers.Add(new EndpointPeer(ScopeToNamespace(sel, ns)));
                    }
                }
                else if (field.EndsWith("Entities", StringComparison.Ordinal))
                {
                    if (y.String(list[i], itemPath) is not { } entity)
                    {
                        continue;
                    }
                    if (Entities.TryGetSelectors(entity, out var selectors))
                    {
                        peers.AddRange(selectors.Select(s => new EndpointPeer(s)));
                    }
                    else
                    {
                        y.Error(list[i], itemPath, Entities.IsKnownButUnsupported(entity)
                            ? $"entity \"{entity}\" is not supported by Membrane (supported: {string.Join(", ", Entities.Names)})"
                            : $"unknown entity \"{entity}\" (expected one of: {string.Join(", ", Entities.Names)})");
                    }
                }
                else if (field.EndsWith("CIDRSet", StringComparison.Ordinal))
                {
                    if (ParseCidrBlock(y, list[i], itemPath, s_cidrSetFields, s_cidrSetUnsupported) is { } block)
                    {
                        peers.Add(block);
                    }
                }
                else if (ParseCidr(y, list[i], itemPath) is { } cidr)
                {
                    peers.Add(new CidrPeer(cidr, []));
                }
            }
        }
        var hasToPorts = fields.TryGetValue("toPorts", out var toPorts) && toPorts.Value is YamlSequenceNode { Children.Count: > 0 };
        var hasIcmps = fields.TryGetValue("icmps", out var icmps) && icmps.Value is YamlSequenceNode { Children.Count: > 0 };
        if (hasToPorts && hasIcmps)
        {
            // Cilium's errUnsupportedICMPWithToPorts.
            y.Error(icmps.Key, YamlFields.Join(path, "icmps"),
                "icmps may only be present without toPorts (as in Cilium): write a separate rule for toPorts");
            return null;
        }
        // Either list may be present but empty (or null): that is no L4 restriction, as in Cilium.
        var toPortMatches = fields.ContainsKey("toPorts") ? ParseCiliumPortRules(y, toPorts.Value, YamlFields.Join(path, "toPorts")) : null;
        var icmpMatches = fields.ContainsKey("icmps") ? ParseIcmpRules(y, icmps.Value, YamlFields.Join(path, "icmps")) : null;
        List<L4Match>? ports = hasIcmps ? icmpMatches : hasToPorts ? toPortMatches : null;
        if (y.ErrorCount != before)
        {
            return null;
        }
        // No L3 peer at all: with toPorts/icmps the rule is L4-only and applies to every peer
        // (Cilium docs, "Layer 4 Examples": "to any layer 3 destination"); without them it is the
        // empty rule `{}`, which selects the endpoint (default deny) and allows nothing.
        if (peers is null)
        {
            peers = ports is null ? [] : null;
        }
        return new PolicyRule(origin, direction, action, peers, ports);
    }

    private static List<L4Match>? ParseCiliumPortRules(YamlFields y, YamlNode node, string path)
    {
        var list = y.List(node, path);
        if (list is null)
        {
            return null;
        }
        var result = new List<L4Match>();
        for (var i = 0; i < list.Count; i++)
        {
            var rulePath = $"{path}[{i}]";
            var fields = y.Object(list[i], rulePath, s_portRuleFields, s_portRuleUnsupported);
            if (fields is null)
            {
                continue;
            }
            var portsPath = YamlFields.Join(rulePath, "ports");
            if (!fields.TryGetValue("ports", out var portsField))
            {
                y.Error(list[i], portsPath, "is required (Membrane has no L7 rules, so a port rule needs ports)");
                continue;
            }
            var ports = y.List(portsField.Value, portsPath);
            if (ports is { Count: 0 })
            {
                y.Error(portsField.Value, portsPath, "must not be empty (Membrane has no L7 rules, so a port rule needs ports)");
            }
            ports ??= [];
            for (var j = 0; j < ports.Count; j++)
            {
                result.AddRange(ParseCiliumPort(y, ports[j], $"{portsPath}[{j}]"));
            }
        }
        return result;
    }

    /// <summary>
    /// One <c>PortProtocol</c>: port (a string in Cilium's API, written quoted or not; 0 or
    /// absent = every port), endPort (a range with port), protocol (TCP, UDP, ICMP, ICMPV6 or
    /// ANY; absent = ANY; Cilium upper-cases it in Sanitize). ANY means TCP and UDP here:
    /// Cilium expands it to TCP, UDP and SCTP, and Membrane has no SCTP. With ICMP the port is
    /// the ICMP type, as Cilium carries icmps rules.
    /// </summary>
    private static IEnumerable<L4Match> ParseCiliumPort(YamlFields y, YamlNode node, string path)
    {
        var fields = y.Object(node, path, s_portFields);
        if (fields is null)
        {
            return [];
        }
        var before = y.ErrorCount;
        var port = 0;
        if (fields.TryGetValue("port", out var portField))
        {
            port = ParsePortNumber(y, portField.Value, YamlFields.Join(path, "port"), 0, allowQuoted: true) ?? 0;
        }
        int? endPort = null;
        if (fields.TryGetValue("endPort", out var endField))
        {
            var endPath = YamlFields.Join(path, "endPort");
            if (y.Integer(endField.Value, endPath) is { } e)
            {
                if (e is < 0 or > ushort.MaxValue)
                {
                    y.Error(endField.Value, endPath, $"port {e} is out of range 0–65535");
                }
                else if (port == 0 && y.ErrorCount == before)
                {
                    y.Error(endField.Value, endPath, "endPort needs a non-zero port to start the range");
                }
                else if (e < port)
                {
                    y.Error(endField.Value, endPath, $"endPort {e} is lower than port {port}");
                }
                else
                {
                    endPort = (int)e;
                }
            }
        }
        var protocols = new List<byte> { IpProtocol.Tcp, IpProtocol.Udp };
        if (fields.TryGetValue("protocol", out var protoField))
        {
            var protoPath = YamlFields.Join(path, "protocol");
            if (y.String(protoField.Value, protoPath) is { } text)
            {
                switch (text.ToUpperInvariant())
                {
                    case "TCP": protocols = [IpProtocol.Tcp]; break;
                    case "UDP": protocols = [IpProtocol.Udp]; break;
                    case "ANY": break;
                    case "ICMP": protocols = [IpProtocol.Icmp]; break;
                    case "ICMPV6": protocols = [IpProtocol.IcmpV6]; break;
                    case "SCTP" or "VRRP" or "IGMP":
                        y.Error(protoField.Value, protoPath, $"protocol {text} is not supported by Membrane (TCP, UDP, ICMP, ICMPV6, ANY)");
                        break;
                    default:
                        y.Error(protoField.Value, protoPath, $"unknown protocol \"{text}\" (expected TCP, UDP, ICMP, ICMPV6 or ANY)");
                        break;
                }
            }
        }
        if (protocols is [IpProtocol.Icmp or IpProtocol.IcmpV6] && y.ErrorCount == before)
        {
            if (port > byte.MaxValue)
            {
                y.Error(portField.Value, YamlFields.Join(path, "port"), $"ICMP type {port} is out of range 0–255");
            }
            else if (endPort is not null)
            {
                y.Error(endField.Value, YamlFields.Join(path, "endPort"), "endPort does not apply to ICMP");
            }
        }
        if (y.ErrorCount != before)
        {
            return [];
        }
        var range = port == 0 ? PortRange.All : new PortRange((ushort)port, (ushort)(endPort ?? port));
        return protocols.Select(p => new L4Match(p, range)).ToList();
    }

    private static readonly Dictionary<string, byte> s_icmpV4Types = new(StringComparer.Ordinal)
    {
        // Cilium pkg/policy/api/icmp.go, icmpIpv4TypeNameToCode (IANA ICMP type numbers).
        ["EchoReply"] = 0, ["DestinationUnreachable"] = 3, ["Redirect"] = 5, ["Echo"] = 8, ["EchoRequest"] = 8,
        ["RouterAdvertisement"] = 9, ["RouterSelection"] = 10, ["TimeExceeded"] = 11, ["ParameterProblem"] = 12,
        ["Timestamp"] = 13, ["TimestampReply"] = 14, ["Photuris"] = 40, ["ExtendedEchoRequest"] = 42, ["ExtendedEchoReply"] = 43,
    };

    private static readonly Dictionary<string, byte> s_icmpV6Types = new(StringComparer.Ordinal)
    {
        // Cilium pkg/policy/api/icmp.go, icmpIpv6TypeNameToCode (IANA ICMPv6 type numbers).
        ["DestinationUnreachable"] = 1, ["PacketTooBig"] = 2, ["TimeExceeded"] = 3, ["ParameterProblem"] = 4,
        ["EchoRequest"] = 128, ["EchoReply"] = 129, ["MulticastListenerQuery"] = 130, ["MulticastListenerReport"] = 131,
        ["MulticastListenerDone"] = 132, ["RouterSolicitation"] = 133, ["RouterAdvertisement"] = 134,
        ["NeighborSolicitation"] = 135, ["NeighborAdvertisement"] = 136, ["RedirectMessage"] = 137,
        ["RouterRenumbering"] = 138, ["ICMPNodeInformationQuery"] = 139, ["ICMPNodeInformationResponse"] = 140,
        ["InverseNeighborDiscoverySolicitation"] = 141, ["InverseNeighborDiscoveryAdvertisement"] = 142,
        ["HomeAgentAddressDiscoveryRequest"] = 144, ["HomeAgentAddressDiscoveryReply"] = 145,
        ["MobilePrefixSolicitation"] = 146, ["MobilePrefixAdvertisement"] = 147,
        ["DuplicateAddressRequestCodeSuffix"] = 157, ["DuplicateAddressConfirmationCodeSuffix"] = 158,
        ["ExtendedEchoRequest"] = 160, ["ExtendedEchoReply"] = 161,
    };

    /// <summary>
    /// <c>icmps: [{fields: [{family: IPv4|IPv6, type: 8|EchoRequest}]}]</c>; family defaults to
    /// IPv4, type is 0–255 or a name of that family (Cilium's ICMPField.UnmarshalJSON).
    /// </summary>
    private static List<L4Match>? ParseIcmpRules(YamlFields y, YamlNode node, string path)
    {
        var list = y.List(node, path);
        if (list is null)
        {
            return null;
        }
        var result = new List<L4Match>();
        for (var i = 0; i < list.Count; i++)
        {
            var rulePath = $"{path}[{i}]";
            var fields = y.Object(list[i], rulePath, s_icmpRuleFields);
            if (fields is null || !fields.TryGetValue("fields", out var ff))
            {
                if (fields is not null)
                {
                    y.Error(list[i], YamlFields.Join(rulePath, "fields"), "is required");
                }
                continue;
            }
            var fieldsPath = YamlFields.Join(rulePath, "fields");
            var items = y.List(ff.Value, fieldsPath) ?? [];
            for (var j = 0; j < items.Count; j++)
            {
                var itemPath = $"{fieldsPath}[{j}]";
                var f = y.Object(items[j], itemPath, s_icmpFieldFields);
                if (f is null)
                {
                    continue;
                }
                var v6 = false;
                if (f.TryGetValue("family", out var fam) && y.String(fam.Value, YamlFields.Join(itemPath, "family")) is { } family)
                {
                    if (family is not ("IPv4" or "IPv6"))
                    {
                        y.Error(fam.Value, YamlFields.Join(itemPath, "family"), $"unknown family \"{family}\" (expected IPv4 or IPv6)");
                        continue;
                    }
                    v6 = family == "IPv6";
                }
                var typePath = YamlFields.Join(itemPath, "type");
                if (!f.TryGetValue("type", out var typeField))
                {
                    y.Error(items[j], typePath, "is required");
                    continue;
                }
                if (y.String(typeField.Value, typePath) is not { } typeText)
                {
                    continue;
                }
                var names = v6 ? s_icmpV6Types : s_icmpV4Types;
                byte type;
                if (typeText.All(char.IsAsciiDigit) && typeText.Length is > 0 and <= 3 && int.Parse(typeText, System.Globalization.CultureInfo.InvariantCulture) <= 255)
                {
                    type = byte.Parse(typeText, System.Globalization.CultureInfo.InvariantCulture);
                }
                else if (!names.TryGetValue(typeText, out type))
                {
                    y.Error(typeField.Value, typePath, typeText.All(char.IsAsciiDigit)
                        ? $"ICMP type {typeText} is out of range 0–255"
                        : $"unknown {(v6 ? "ICMPv6" : "ICMPv4")} type \"{typeText}\" (expected 0–255 or one of: {string.Join(", ", names.Keys)})");
                    continue;
                }
                result.Add(new L4Match(v6 ? IpProtocol.IcmpV6 : IpProtocol.Icmp, PortRange.Single(type)));
            }
        }
        return result;
    }
}
