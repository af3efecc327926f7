using System.Globalization;
using System.Net;
using Membrane.Policy.Labels;
using Membrane.Policy.Model;
using Membrane.Policy.Selectors;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Membrane.Policy.Parsing;

// Parts both kinds share: label selectors, CIDRs.
public sealed partial class PolicyDocumentParser
{
    private static readonly string[] s_selectorFields = ["matchLabels", "matchExpressions"];
    private static readonly string[] s_requirementFields = ["key", "operator", "values"];

    /// <summary>
    /// A <c>metav1.LabelSelector</c>: matchLabels and matchExpressions, ANDed. Keys without a
    /// source get <paramref name="defaultSource"/>; when <paramref name="allowSource"/> is false
    /// (NetworkPolicy: Kubernetes label keys cannot contain ':') a source prefix is an error.
    /// Returns null when anything in it was rejected.
    /// </summary>
    private static EndpointSelector? ParseSelector(YamlFields y, YamlNode node, string path, string defaultSource, bool allowSource)
    {
        if (YamlFields.IsNull(node))
        {
            // `podSelector:` with nothing after it is null, which Kubernetes decodes as the
            // empty selector: every pod.
            return EndpointSelector.All;
        }
        var before = y.ErrorCount;
        var fields = y.Object(node, path, s_selectorFields);
        if (fields is null)
        {
            return null;
        }
        var requirements = new List<SelectorRequirement>();
        if (fields.TryGetValue("matchLabels", out var ml))
        {
            var mlPath = YamlFields.Join(path, "matchLabels");
            foreach (var (keyNode, key, value) in y.StringMap(ml.Value, mlPath) ?? [])
            {
                var keyPath = YamlFields.Join(mlPath, key);
                if (!allowSource && key.Contains(':', StringComparison.Ordinal))
                {
                    y.Error(keyNode, keyPath, $"label key \"{key}\" must not carry a source prefix in a NetworkPolicy");
                    continue;
                }
                if (SelectorRequirement.TryCreate(key, SelectorOperator.In, [value], defaultSource, out var r, out var why))
                {
                    requirements.Add(r);
                }
                else
                {
                    y.Error(keyNode, keyPath, why);
                }
            }
        }
        if (fields.TryGetValue("matchExpressions", out var me))
        {
            var mePath = YamlFields.Join(path, "matchExpressions");
            var list = y.List(me.Value, mePath) ?? [];
            for (var i = 0; i < list.Count; i++)
            {
                if (ParseRequirement(y, list[i], $"{mePath}[{i}]", defaultSource, allowSource) is { } r)
                {
                    requirements.Add(r);
                }
            }
        }
        return y.ErrorCount == before ? new EndpointSelector(requirements) : null;
    }

    private static SelectorRequirement? ParseRequirement(YamlFields y, YamlNode node, string path, string defaultSource, bool allowSource)
    {
        var fields = y.Object(node, path, s_requirementFields);
        if (fields is null)
        {
            return null;
        }
        string? key = null;
        if (!fields.TryGetValue("key", out var keyField))
        {
            y.Error(node, YamlFields.Join(path, "key"), "is required");
        }
        else
        {
            key = y.String(keyField.Value, YamlFields.Join(path, "key"));
        }
        SelectorOperator? op = null;
        var opPath = YamlFields.Join(path, "operator");
        if (!fields.TryGetValue("operator", out var opField))
        {
            y.Error(node, opPath, "is required (In, NotIn, Exists or DoesNotExist)");
        }
        else if (y.String(opField.Value, opPath) is { } opText)
        {
            if (SelectorRequirement.TryParseOperator(opText, out var parsed))
            {
                op = parsed;
            }
            else
            {
                y.Error(opField.Value, opPath, $"unknown operator \"{opText}\" (expected In, NotIn, Exists or DoesNotExist)");
            }
        }
        var values = new List<string>();
        var valuesPath = YamlFields.Join(path, "values");
        var valuesOk = true;
        if (fields.TryGetValue("values", out var valuesField))
        {
            var list = y.List(valuesField.Value, valuesPath);
            valuesOk = list is not null;
            for (var i = 0; list is not null && i < list.Count; i++)
            {
                if (y.String(list[i], $"{valuesPath}[{i}]") is { } v)
                {
                    values.Add(v);
                }
                else
                {
                    valuesOk = false;
                }
            }
        }
        if (key is null || op is null || !valuesOk)
        {
            return null;
        }
        if (!allowSource && key.Contains(':', StringComparison.Ordinal))
        {
            y.Error(keyField.Value, YamlFields.Join(path, "key"), $"label key \"{key}\" must not carry a source prefix in a NetworkPolicy");
            return null;
        }
        if (!SelectorRequirement.TryCreate(key, op.Value, values, defaultSource, out var requirement, out var why))
        {
            // Key errors point at the key; arity and value errors at the values (or the
            // requirement, when values are missing).
            if (why.StartsWith("label key", StringComparison.Ordinal))
            {
                y.Error(keyField.Value, YamlFields.Join(path, "key"), why);
            }
            else
            {
                y.Error(fields.TryGetValue("values", out var vf) ? vf.Value : node, valuesPath, why);
            }
            return null;
        }
        return requirement;
    }

    /// <summary>A CIDR (or a bare address as a host prefix).</summary>
    private static IPNetwork? ParseCidr(YamlFields y, YamlNode node, string path)
    {
        if (y.String(node, path) is not { } text)
        {
            return null;
        }
        if (Cidrs.TryParse(text, out var network, out var why))
        {
            return network;
        }
        y.Error(node, path, why);
        return null;
    }

    /// <summary>
    /// A block with exceptions (Cilium <c>CIDRRule</c>, Kubernetes <c>IPBlock</c>). Each except
    /// must lie strictly inside the block, as Kubernetes validates ipBlock ("except ... must be
    /// a strict subset of cidr") and Cilium documents for CIDRSet.
    /// </summary>
    private static CidrPeer? ParseCidrBlock(YamlFields y, YamlNode node, string path, IReadOnlyCollection<string> allowed,
        IReadOnlyDictionary<string, string>? unsupported)
    {
        var fields = y.Object(node, path, allowed, unsupported);
        if (fields is null)
        {
            return null;
        }
        var before = y.ErrorCount;
        var cidrPath = YamlFields.Join(path, "cidr");
        if (!fields.TryGetValue("cidr", out var cidrField))
        {
            y.Error(node, cidrPath, "is required");
            return null;
        }
        var cidr = ParseCidr(y, cidrField.Value, cidrPath);
        var excepts = new List<IPNetwork>();
        if (fields.TryGetValue("except", out var exceptField))
        {
            var exceptPath = YamlFields.Join(path, "except");
            var list = y.List(exceptField.Value, exceptPath) ?? [];
            for (var i = 0; i < list.Count; i++)
            {
                var itemPath = $"{exceptPath}[{i}]";
                if (ParseCidr(y, list[i], itemPath) is not { } e)
                {
                    continue;
                }
                if (cidr is { } c && (!Cidrs.IsWithin(e, c) || e.PrefixLength == c.PrefixLength))
                {
                    y.Error(list[i], itemPath, $"except {e} must be a strict subset of cidr {c}");
                    continue;
                }
                excepts.Add(e);
            }
        }
        return cidr is { } block && y.ErrorCount == before ? new CidrPeer(block, excepts) : null;
    }

    /// <summary>A port number 0–65535 written as a plain integer or a string of digits.</summary>
    private static int? ParsePortNumber(YamlFields y, YamlNode node, string path, int min, bool allowQuoted)
    {
        if (node is YamlScalarNode s && !YamlFields.IsNull(s) && (allowQuoted || s.Style == ScalarStyle.Plain))
        {
            var text = s.Value ?? "";
            if (text.Length > 0 && text.All(char.IsAsciiDigit))
            {
                if (text.Length <= 6 && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port)
                    && port >= min && port <= ushort.MaxValue)
                {
                    return port;
                }
                y.Error(node, path, $"port {text} is out of range {min}–65535");
                return null;
            }
            if (text.Length > 0 && text.Any(char.IsAsciiLetter) && text.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            {
                y.Error(node, path, $"named port \"{text}\" is not supported by Membrane: write the port number");
                return null;
            }
        }
        y.Error(node, path, node is YamlScalarNode sc && !YamlFields.IsNull(sc)
            ? $"\"{sc.Value}\" is not a port: expected an integer {min}–65535"
            : "must be a port number");
        return null;
    }
}
