using System.Collections.Immutable;
using Membrane.Policy.Labels;
using Membrane.Policy.Model;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace Membrane.Policy.Parsing;

/// <summary>
/// Reads policy YAML exactly as users keep it for Kubernetes: one or more files, each with one
/// or more documents of kind <c>CiliumNetworkPolicy</c> (<c>cilium.io/v2</c>),
/// <c>NetworkPolicy</c> (<c>networking.k8s.io/v1</c>) or a <c>List</c> of them (what
/// <c>kubectl get -o yaml</c> prints). Everything is parsed and validated before anything is
/// returned; any error rejects the whole import (<see cref="PolicyImport"/>).
/// </summary>
/// <remarks>
/// YamlDotNet's representation model keeps each node's start mark, so every error names the
/// file, document, line, column and field path. Unknown fields are errors (like
/// <c>kubectl apply --validate=strict</c>), and so are fields Membrane does not implement
/// (L7 rules, FQDNs, host policies …): a policy that would be enforced differently from what
/// it says is refused rather than half-applied.
/// </remarks>
public sealed partial class PolicyDocumentParser
{
    /// <summary>The default number of errors collected before the parser stops looking.</summary>
    public const int DefaultMaxErrors = 100;

    /// <summary>Parses with at most <paramref name="maxErrors"/> errors reported.</summary>
    public PolicyDocumentParser(int maxErrors = DefaultMaxErrors)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxErrors, 1);
        MaxErrors = maxErrors;
    }

    /// <summary>How many errors are reported at most.</summary>
    public int MaxErrors { get; }

    /// <summary>Reads and parses files from disk; a file that cannot be read is an error of the import.</summary>
    public PolicyImport ParseFiles(IEnumerable<string> paths)
    {
        var sources = new List<PolicySource>();
        var readErrors = new List<PolicyParseError>();
        foreach (var path in paths)
        {
            try
            {
                sources.Add(new PolicySource(path, File.ReadAllText(path)));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                readErrors.Add(new PolicyParseError(path, 0, 0, 0, "", $"failed to read policy file: {e.Message}"));
            }
        }
        return Parse(sources, readErrors);
    }

    /// <summary>Parses one text (tests, the API receiving a file's content).</summary>
    public PolicyImport Parse(string name, string text) => Parse([new PolicySource(name, text)]);

    /// <summary>Parses every source; policies come back in source and document order.</summary>
    public PolicyImport Parse(IEnumerable<PolicySource> sources) => Parse(sources, []);

    private PolicyImport Parse(IEnumerable<PolicySource> sources, List<PolicyParseError> errors)
    {
        var policies = new List<(PolicyResource Policy, Named Name, YamlFields Fields)>();
        foreach (var source in sources)
        {
            ParseSource(source, errors, policies);
            if (errors.Count >= MaxErrors)
            {
                break;
            }
        }
        CheckDuplicates(policies);
        // At the limit the parser stops looking, so there may be more than it reports.
        var truncated = errors.Count >= MaxErrors;
        return new PolicyImport([.. policies.Select(p => p.Policy)], [.. errors.Take(MaxErrors)], truncated);
    }

    private void ParseSource(PolicySource source, List<PolicyParseError> errors, List<(PolicyResource, Named, YamlFields)> policies)
    {
        var stream = new YamlStream();
        var parser = new AliasBudgetParser(new Parser(new StringReader(source.Text)), MaxExpandedNodes);
        try
        {
            stream.Load(parser);
        }
        catch (AliasBudgetParser.BudgetExceededException e)
        {
            errors.Add(new PolicyParseError(source.Name, parser.Document, (int)e.Start.Line, (int)e.Start.Column, "",
                $"the document's aliases expand to more than {MaxExpandedNodes} nodes"));
            return;
        }
        catch (YamlException e)
        {
            // The stream keeps the documents it completed, so the broken one is the next.
            // Documents before it are still checked: the user sees all their errors at once.
            errors.Add(new PolicyParseError(source.Name, stream.Documents.Count + 1, (int)e.Start.Line, (int)e.Start.Column, "",
                $"invalid YAML: {e.Message}"));
        }
        for (var i = 0; i < stream.Documents.Count && errors.Count < MaxErrors; i++)
        {
            var root = stream.Documents[i].RootNode;
            if (YamlFields.IsNull(root))
            {
                // An empty document (a leading or trailing '---', comments only): kubectl skips these too.
                continue;
            }
            var fields = new YamlFields(source.Name, i + 1, source.Text, parser.CollectionEnds, errors);
            foreach (var parsed in ParseObject(fields, root, ""))
            {
                policies.Add((parsed.Policy, parsed.Name, fields));
            }
        }
    }

    /// <summary>
    /// How many nodes the aliases of a document may add once expanded (<see cref="AliasBudgetParser"/>). The representation model
    /// shares an aliased node instead of copying it, but the parser walks every reference, so a
    /// few nested aliases ("billion laughs") would otherwise cost exponential time; go-yaml,
    /// which Kubernetes uses, refuses such documents for the same reason.
    /// </summary>
    internal const long MaxExpandedNodes = 100_000;

    private static readonly string[] s_topFields = ["apiVersion", "kind", "metadata", "spec", "specs", "items", "status"];

    private static IEnumerable<(PolicyResource Policy, Named Name)> ParseObject(YamlFields y, YamlNode node, string path)
    {
        var top = y.Object(node, path, s_topFields);
        if (top is null)
        {
            return [];
        }
        var kindPath = YamlFields.Join(path, "kind");
        if (!top.TryGetValue("kind", out var kindField))
        {
            y.Error(node, kindPath, "is required (CiliumNetworkPolicy, NetworkPolicy or List)");
            return [];
        }
        var kind = y.String(kindField.Value, kindPath);
        var apiVersionPath = YamlFields.Join(path, "apiVersion");
        string? apiVersion = null;
        if (top.TryGetValue("apiVersion", out var av))
        {
            apiVersion = y.String(av.Value, apiVersionPath);
        }
        else
        {
            y.Error(node, apiVersionPath, "is required");
        }
        switch (kind)
        {
            case null:
                return [];
            case "CiliumNetworkPolicy":
                ExpectApiVersion(y, top, apiVersion, "cilium.io/v2", apiVersionPath);
                Reject(y, top, path, "items", "a CiliumNetworkPolicy has no items");
                return Single(ParseCilium(y, node, top, path));
            case "NetworkPolicy":
                ExpectApiVersion(y, top, apiVersion, "networking.k8s.io/v1", apiVersionPath);
                Reject(y, top, path, "items", "a NetworkPolicy has no items");
                Reject(y, top, path, "specs", "a NetworkPolicy has one spec");
                return Single(ParseNetworkPolicy(y, node, top, path));
            case "List" or "CiliumNetworkPolicyList" or "NetworkPolicyList":
                return ParseList(y, node, top, path);
            case "CiliumClusterwideNetworkPolicy":
                y.Error(kindField.Value, kindPath, "CiliumClusterwideNetworkPolicy is not supported by Membrane: only namespaced policies are");
                return [];
            default:
                y.Error(kindField.Value, kindPath, $"unsupported kind \"{kind}\" (expected CiliumNetworkPolicy, NetworkPolicy or List)");
                return [];
        }
    }

    private static IEnumerable<(PolicyResource, Named)> Single((PolicyResource, Named)? parsed) => parsed is { } p ? [p] : [];

    private static void ExpectApiVersion(YamlFields y, Dictionary<string, (YamlNode Key, YamlNode Value)> top, string? apiVersion,
        string expected, string path)
    {
        if (apiVersion is not null && apiVersion != expected)
        {
            y.Error(top["apiVersion"].Value, path, $"unsupported apiVersion \"{apiVersion}\" (expected {expected})");
        }
    }

    private static void Reject(YamlFields y, Dictionary<string, (YamlNode Key, YamlNode Value)> top, string path, string field, string why)
    {
        if (top.TryGetValue(field, out var f))
        {
            y.Error(f.Key, YamlFields.Join(path, field), $"unknown field \"{field}\": {why}");
        }
    }

    private static IEnumerable<(PolicyResource, Named)> ParseList(YamlFields y, YamlNode node, Dictionary<string, (YamlNode Key, YamlNode Value)> top, string path)
    {
        foreach (var f in new[] { "spec", "specs" })
        {
            Reject(y, top, path, f, "a List has items");
        }
        var result = new List<(PolicyResource, Named)>();
        if (!top.TryGetValue("items", out var items))
        {
            y.Error(node, YamlFields.Join(path, "items"), "is required in a List");
            return result;
        }
        var list = y.List(items.Value, YamlFields.Join(path, "items"));
        for (var i = 0; list is not null && i < list.Count; i++)
        {
            var itemPath = $"{YamlFields.Join(path, "items")}[{i}]";
            if (list[i] is YamlMappingNode m && m.Children.TryGetValue(new YamlScalarNode("kind"), out var k)
                && k is YamlScalarNode { Value: "List" or "CiliumNetworkPolicyList" or "NetworkPolicyList" })
            {
                y.Error(k, YamlFields.Join(itemPath, "kind"), "a List cannot contain a List");
                continue;
            }
            result.AddRange(ParseObject(y, list[i], itemPath));
        }
        return result;
    }

    private static readonly string[] s_metadataFields = ["name", "namespace", "labels", "annotations"];

    /// <summary>Server-populated metadata that <c>kubectl get -o yaml</c> prints: accepted and ignored.</summary>
    private static readonly string[] s_metadataIgnored =
        ["uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink", "finalizers", "ownerReferences"];

    /// <summary>
    /// metadata.name (required, a DNS-1123 subdomain, as the API server requires of both kinds)
    /// and metadata.namespace (a DNS-1123 label; <c>default</c> when absent, as kubectl applies it).
    /// </summary>
    private static (string Namespace, string Name, Named Named)? ParseMetadata(YamlFields y, YamlNode node,
        Dictionary<string, (YamlNode Key, YamlNode Value)> top, string path)
    {
        var mdPath = YamlFields.Join(path, "metadata");
        if (!top.TryGetValue("metadata", out var md))
        {
            y.Error(node, mdPath, "is required (metadata.name names the policy)");
            return null;
        }
        var fields = y.Object(md.Value, mdPath, s_metadataFields, ignored: s_metadataIgnored);
        if (fields is null)
        {
            return null;
        }
        string? name = null;
        var namePath = YamlFields.Join(mdPath, "name");
        if (!fields.TryGetValue("name", out var nameField))
        {
            y.Error(md.Value, namePath, "is required");
        }
        else if (y.String(nameField.Value, namePath) is { } n)
        {
            if (IsDnsSubdomain(n))
            {
                name = n;
            }
            else
            {
                y.Error(nameField.Value, namePath, $"\"{n}\" must be a DNS-1123 subdomain: at most 253 lowercase alphanumerics, '-' and '.', starting and ending with an alphanumeric");
            }
        }
        var ns = WellKnownLabels.DefaultNamespace;
        if (fields.TryGetValue("namespace", out var nsField))
        {
            var nsPath = YamlFields.Join(mdPath, "namespace");
            if (y.String(nsField.Value, nsPath) is { } value)
            {
                if (IsDnsLabel(value))
                {
                    ns = value;
                }
                else
                {
                    y.Error(nsField.Value, nsPath, $"\"{value}\" must be a DNS-1123 label: at most 63 lowercase alphanumerics and '-', starting and ending with an alphanumeric");
                    return null;
                }
            }
        }
        foreach (var mapField in new[] { "labels", "annotations" })
        {
            if (fields.TryGetValue(mapField, out var f))
            {
                y.StringMap(f.Value, YamlFields.Join(mdPath, mapField));
            }
        }
        return name is null ? null : (ns, name, new Named(nameField.Value, namePath));
    }

    /// <summary>Where a policy's name was written (for duplicate-name errors).</summary>
    private readonly record struct Named(YamlNode Node, string Path);

    internal static bool IsDnsLabel(string s) =>
        s.Length is > 0 and <= 63 && (char.IsAsciiLetterLower(s[0]) || char.IsAsciiDigit(s[0]))
        && (char.IsAsciiLetterLower(s[^1]) || char.IsAsciiDigit(s[^1]))
        && s.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');

    internal static bool IsDnsSubdomain(string s) => s.Length <= 253 && s.Split('.').All(IsDnsLabel);

    /// <summary>
    /// Two policies with one namespace/name in an import: the second would silently replace the
    /// first. The repository keys policies by namespace and name, whatever their kind.
    /// </summary>
    private static void CheckDuplicates(List<(PolicyResource Policy, Named Name, YamlFields Fields)> policies)
    {
        var seen = new Dictionary<PolicyKey, SourceLocation>();
        foreach (var (policy, named, fields) in policies)
        {
            if (seen.TryGetValue(policy.Key, out var first))
            {
                fields.Error(named.Node, named.Path,
                    $"duplicate policy \"{policy.Key.Name}\" in namespace \"{policy.Key.Namespace}\" (first defined at {first})");
            }
            else
            {
                seen.Add(policy.Key, policy.Location);
            }
        }
    }
}
