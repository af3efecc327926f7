using Membrane.Policy.Parsing;

namespace Membrane.Policy.Tests;

/// <summary>
/// Every class of rejected input, with the file, document, line, column and field asserted.
/// The expected line and column are where <c>at</c> occurs in the YAML (the first occurrence
/// after the optional <c>⟨</c> marker), so the cases stay readable.
/// </summary>
public class ParserErrorTests
{
    private const string Cnp = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: p\nspec:\n  endpointSelector: {}\n";
    private const string Np = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n  podSelector: {}\n";

    public static TheoryData<string, string, string, string, string> Cases => new()
    {
        // name, yaml, token the error points at, field path, reason fragment
        { "unknown field", Cnp + "  ingress:\n  - fromEndpointz:\n    - {}\n", "fromEndpointz", "spec.ingress[0].fromEndpointz", "unknown field \"fromEndpointz\"" },
        { "unknown top-level field", Cnp + "extra: 1\n", "extra", "extra", "unknown field" },
        { "unsupported L7", Cnp + "  ingress:\n  - toPorts:\n    - ports: [{port: \"80\"}]\n      rules: {http: [{method: GET}]}\n", "rules", "spec.ingress[0].toPorts[0].rules", "not supported by Membrane" },
        { "unsupported fqdn", Cnp + "  egress:\n  - toFQDNs: [{matchName: example.com}]\n", "toFQDNs", "spec.egress[0].toFQDNs", "DNS-based policy" },
        { "other direction's field", Cnp + "  egress:\n  - fromEndpoints: [{}]\n", "fromEndpoints", "spec.egress[0].fromEndpoints", "unknown field" },
        { "wrong type: scalar for object", Cnp.Replace("endpointSelector: {}", "endpointSelector: app") + "", "app", "spec.endpointSelector", "must be an object, not the scalar \"app\"" },
        { "wrong type: object for list", Cnp + "  ingress: {fromEntities: [world]}\n", "{fromEntities", "spec.ingress", "must be a list, not an object" },
        { "wrong type: string for integer", Cnp + "  ingress:\n  - toPorts:\n    - ports:\n      - {port: \"80\", endPort: \"90\"}\n", "\"90\"", "spec.ingress[0].toPorts[0].ports[0].endPort", "must be an integer" },
        { "bad CIDR", Cnp + "  egress:\n  - toCIDR:\n    - 10.0.0.0/8\n    - 10.0.0.300/8\n", "10.0.0.300/8", "spec.egress[0].toCIDR[1]", "not a CIDR" },
        { "bad prefix length", Cnp + "  egress:\n  - toCIDR: [10.0.0.0/33]\n", "10.0.0.0/33", "spec.egress[0].toCIDR[0]", "prefix length \"33\"" },
        { "except outside cidr", Cnp + "  egress:\n  - toCIDRSet:\n    - cidr: 10.0.0.0/8\n      except: [11.0.0.0/16]\n", "11.0.0.0/16", "spec.egress[0].toCIDRSet[0].except[0]", "strict subset" },
        { "port out of range", Cnp + "  ingress:\n  - toPorts:\n    - ports:\n      - port: \"80\"\n      - port: \"70000\"\n", "\"70000\"", "spec.ingress[0].toPorts[0].ports[1].port", "port 70000 is out of range 0–65535" },
        { "port rule without ports", Cnp + "  ingress:\n  - toPorts:\n    - ports:\n", "ports:\n", "spec.ingress[0].toPorts[0].ports", "must not be empty" },
        { "named port", Cnp + "  ingress:\n  - toPorts:\n    - ports: [{port: http}]\n", "http", "spec.ingress[0].toPorts[0].ports[0].port", "named port \"http\" is not supported" },
        { "endPort < port", Cnp + "  ingress:\n  - toPorts:\n    - ports:\n      - port: \"8080\"\n        endPort: 8000\n", "8000", "spec.ingress[0].toPorts[0].ports[0].endPort", "endPort 8000 is lower than port 8080" },
        { "endPort without port", Cnp + "  ingress:\n  - toPorts:\n    - ports:\n      - endPort: 8000\n", "8000", "spec.ingress[0].toPorts[0].ports[0].endPort", "needs a non-zero port" },
        { "unknown protocol", Cnp + "  ingress:\n  - toPorts:\n    - ports:\n      - {port: \"80\", protocol: XTP}\n", "XTP", "spec.ingress[0].toPorts[0].ports[0].protocol", "unknown protocol \"XTP\"" },
        { "unsupported protocol", Cnp + "  ingress:\n  - toPorts:\n    - ports:\n      - {port: \"80\", protocol: SCTP}\n", "SCTP", "spec.ingress[0].toPorts[0].ports[0].protocol", "SCTP is not supported" },
        { "unknown entity", Cnp + "  ingress:\n  - fromEntities: [world, galaxy]\n", "galaxy", "spec.ingress[0].fromEntities[1]", "unknown entity \"galaxy\"" },
        { "unsupported entity", Cnp + "  ingress:\n  - fromEntities: [kube-apiserver]\n", "kube-apiserver", "spec.ingress[0].fromEntities[0]", "not supported by Membrane" },
        { "combined L3 members", Cnp + "  ingress:\n  - fromEntities: [world]\n    fromCIDR: [10.0.0.0/8]\n", "fromCIDR", "spec.ingress[0].fromCIDR", "combining fromEntities and fromCIDR" },
        { "icmps with toPorts", Cnp + "  ingress:\n  - toPorts: [{ports: [{port: \"80\"}]}]\n    icmps: [{fields: [{type: 8}]}]\n", "icmps", "spec.ingress[0].icmps", "icmps may only be present without toPorts" },
        { "unknown ICMP type", Cnp + "  ingress:\n  - icmps:\n    - fields:\n      - {family: IPv6, type: Echo}\n", "Echo}", "spec.ingress[0].icmps[0].fields[0].type", "unknown ICMPv6 type \"Echo\"" },
        { "ICMP type out of range", Cnp + "  ingress:\n  - icmps: [{fields: [{type: 256}]}]\n", "256", "spec.ingress[0].icmps[0].fields[0].type", "out of range 0–255" },
        { "unknown operator", Cnp.Replace("endpointSelector: {}", "endpointSelector:\n    matchExpressions:\n    - {key: app, operator: Contains, values: [a]}"), "Contains", "spec.endpointSelector.matchExpressions[0].operator", "unknown operator \"Contains\"" },
        { "In without values", Cnp.Replace("endpointSelector: {}", "endpointSelector:\n    matchExpressions:\n    - {key: app, operator: In}"), "{key", "spec.endpointSelector.matchExpressions[0].values", "needs at least one value" },
        { "invalid label key", Cnp.Replace("endpointSelector: {}", "endpointSelector:\n    matchLabels: {\"-app\": x}"), "\"-app\"", "spec.endpointSelector.matchLabels.-app", "must be 1–63 characters" },
        { "invalid label value", Cnp.Replace("endpointSelector: {}", "endpointSelector:\n    matchLabels: {app: \"a b\"}"), "app", "spec.endpointSelector.matchLabels.app", "label value \"a b\"" },
        { "missing endpointSelector", Cnp.Replace("  endpointSelector: {}\n", "  ingress: [{}]\n"), "ingress", "spec.endpointSelector", "is required" },
        { "missing name", Cnp.Replace("  name: p\n", "  namespace: x\n"), "namespace", "metadata.name", "is required" },
        { "invalid name", Cnp.Replace("name: p", "name: Bad_Name"), "Bad_Name", "metadata.name", "DNS-1123 subdomain" },
        { "invalid namespace", Cnp.Replace("name: p", "name: p\n  namespace: -x"), "-x", "metadata.namespace", "DNS-1123 label" },
        { "wrong apiVersion", Cnp.Replace("cilium.io/v2", "cilium.io/v1"), "cilium.io/v1", "apiVersion", "unsupported apiVersion \"cilium.io/v1\"" },
        { "unknown kind", Cnp.Replace("CiliumNetworkPolicy", "Pod"), "Pod", "kind", "unsupported kind \"Pod\"" },
        { "clusterwide kind", Cnp.Replace("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy"), "CiliumClusterwideNetworkPolicy", "kind", "only namespaced policies" },
        { "missing spec", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: p}\n", "apiVersion", "spec", "spec or specs" },
        { "YAML syntax", Cnp + "  ingress: [\n", "", "", "invalid YAML" },
        { "duplicate YAML key", Cnp + "  ingress: []\n  ingress: []\n", "ingress: []\n  ⟨ingress", "", "Duplicate key" },
        { "np ipBlock with podSelector", Np + "  ingress:\n  - from:\n    - podSelector: {}\n      ipBlock: {cidr: 10.0.0.0/8}\n", "ipBlock", "spec.ingress[0].from[0].ipBlock", "cannot be combined" },
        { "np empty peer", Np + "  ingress:\n  - from:\n    - {}\n", "- ⟨{}", "spec.ingress[0].from[0]", "needs podSelector, namespaceSelector or ipBlock" },
        { "np port 0", Np + "  ingress:\n  - ports:\n    - port: 0\n", "0", "spec.ingress[0].ports[0].port", "out of range 1–65535" },
        { "np named port", Np + "  ingress:\n  - ports:\n    - port: http\n", "http", "spec.ingress[0].ports[0].port", "named port \"http\"" },
        { "np endPort without port", Np + "  egress:\n  - ports:\n    - endPort: 90\n", "90", "spec.egress[0].ports[0].endPort", "needs port" },
        { "np endPort < port", Np + "  egress:\n  - ports:\n    - {port: 90, endPort: 80}\n", "80}", "spec.egress[0].ports[0].endPort", "endPort 80 is lower than port 90" },
        { "np unknown protocol", Np + "  egress:\n  - ports:\n    - {protocol: ICMP}\n", "ICMP", "spec.egress[0].ports[0].protocol", "unknown protocol \"ICMP\"" },
        { "np policy type", Np + "  policyTypes: [Ingress, Both]\n", "Both", "spec.policyTypes[1]", "unknown policy type \"Both\"" },
        { "np source prefix", Np.Replace("podSelector: {}", "podSelector: {matchLabels: {\"k8s:app\": x}}"), "\"k8s:app\"", "spec.podSelector.matchLabels.k8s:app", "must not carry a source prefix" },
        { "np missing podSelector", Np.Replace("  podSelector: {}\n", "  policyTypes: [Ingress]\n"), "policyTypes", "spec.podSelector", "is required" },
        { "null where a string is needed", Np.Replace("name: p", "name:"), "name:", "metadata.name", "must be a string, not null" },
        { "null kind", Np.Replace("kind: NetworkPolicy", "kind:"), "kind:", "kind", "must be a string, not null" },
        { "np specs", Np + "specs: []\n", "specs", "specs", "a NetworkPolicy has one spec" },
        { "np ipBlock except equal", Np + "  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}\n", "10.0.0.0/8]", "spec.egress[0].to[0].ipBlock.except[0]", "strict subset" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rejected_with_file_document_line_column_and_field(string name, string yaml, string at, string field, string reason)
    {
        var import = new PolicyDocumentParser().Parse("bad.yaml", yaml);
        Assert.False(import.Succeeded, name);
        Assert.Empty(import.Policies);
        var error = Assert.Single(import.Errors);
        Assert.Equal("bad.yaml", error.File);
        Assert.Equal(1, error.Document);
        Assert.Equal(field, error.Field);
        Assert.Contains(reason, error.Reason);
        if (at.Length > 0)
        {
            var marker = at.IndexOf('⟨');
            var search = at.Replace("⟨", "");
            var offset = yaml.IndexOf(search, StringComparison.Ordinal) + (marker < 0 ? 0 : marker);
            var line = yaml[..offset].Count(c => c == '\n') + 1;
            var lineStart = offset == 0 ? 0 : yaml.LastIndexOf('\n', offset - 1) + 1;
            var column = offset - lineStart + 1;
            Assert.Equal((line, column), (error.Line, error.Column));
        }
        else
        {
            Assert.True(error.Line > 0);
        }
        Assert.StartsWith($"failed to parse policy: bad.yaml:{error.Line}:{error.Column} (document 1)", error.ToString());
    }

    [Fact]
    public void Errors_in_later_documents_and_files_name_them_and_nothing_is_imported()
    {
        var good = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: ok}\nspec: {endpointSelector: {}}\n";
        var import = new PolicyDocumentParser().Parse([
            new PolicySource("a.yaml", good),
            new PolicySource("b.yaml", good.Replace("name: ok", "name: ok2") + "---\n" + good.Replace("name: ok", "name: bad").Replace("{}}", "{}, egress: [{toEntities: [moon]}]}")),
        ]);
        Assert.Empty(import.Policies);
        var error = Assert.Single(import.Errors);
        Assert.Equal(("b.yaml", 2, 9), (error.File, error.Document, error.Line));
        Assert.Equal("spec.egress[0].toEntities[0]", error.Field);
    }

    [Fact]
    public void All_errors_are_reported_up_to_the_limit()
    {
        var yaml = Cnp + "  ingress:\n  - fromEntities: [moon, sun]\n  - toPorts: [{ports: [{port: \"99999\"}]}]\n" +
            "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: q}\nspec: {endpointSelector: {}, egress: [{toCIDR: [x]}]}\n";
        var all = new PolicyDocumentParser().Parse("f.yaml", yaml);
        Assert.Equal(["spec.ingress[0].fromEntities[0]", "spec.ingress[0].fromEntities[1]", "spec.ingress[1].toPorts[0].ports[0].port", "spec.egress[0].toCIDR[0]"],
            all.Errors.Select(e => e.Field));
        Assert.Equal([1, 1, 1, 2], all.Errors.Select(e => e.Document));
        Assert.False(all.ErrorsTruncated);
        var few = new PolicyDocumentParser(maxErrors: 2).Parse("f.yaml", yaml);
        Assert.Equal(2, few.Errors.Length);
        Assert.True(few.ErrorsTruncated);
        Assert.EndsWith("(stopped after 2 errors; there may be more)", few.ErrorText);
    }

    [Fact]
    public void Duplicate_names_in_one_namespace_are_rejected_across_files_and_kinds()
    {
        var cnp = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: web, namespace: prod}\nspec: {endpointSelector: {}}\n";
        var np = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  namespace: prod\n  name: web\nspec: {podSelector: {}}\n";
        var otherNs = np.Replace("prod", "dev");
        var import = new PolicyDocumentParser().Parse([new PolicySource("a.yaml", cnp), new PolicySource("b.yaml", otherNs + "---\n" + np)]);
        Assert.Empty(import.Policies);
        var error = Assert.Single(import.Errors);
        Assert.Equal(("b.yaml", 2, 12, 9, "metadata.name"), (error.File, error.Document, error.Line, error.Column, error.Field));
        Assert.Contains("duplicate policy \"web\" in namespace \"prod\" (first defined at a.yaml:1:1 (document 1))", error.Reason);
    }
}
