using System.Globalization;
using Membrane.Policy.Model;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Membrane.Policy.Parsing;

/// <summary>
/// The typed reads of one YAML document with error collection: every read names the field
/// path and the node it looked at, so an error carries a line and column. Reads never throw;
/// a failed read records an error and returns null.
/// </summary>
internal sealed class YamlFields(string file, int document, string text, IReadOnlyDictionary<long, long> collectionEnds,
    List<PolicyParseError> errors)
{
    public string File { get; } = file;
    public int Document { get; } = document;
    public int ErrorCount => errors.Count;

    /// <summary>
    /// Null values have no text of their own (<c>ports:</c> at the end of a line): an error about
    /// one points at its key instead.
    /// </summary>
    private readonly Dictionary<YamlNode, YamlNode> _keyOfNullValue = new(ReferenceEqualityComparer.Instance);

    public void Error(YamlNode node, string path, string reason) =>
        Error(_keyOfNullValue.TryGetValue(node, out var key) ? key.Start : node.Start, path, reason);

    public void Error(Mark mark, string path, string reason) =>
        errors.Add(new PolicyParseError(File, Document, (int)mark.Line, (int)mark.Column, path, reason));

    /// <summary>
    /// The text a node was written as, re-indented so that it stands on its own (an item of a
    /// List starts at column 3, its following lines two spaces further in than it).
    /// </summary>
    public string SourceText(YamlNode node)
    {
        var start = (int)Math.Clamp(node.Start.Index, 0, text.Length);
        var end = (int)Math.Clamp(collectionEnds.GetValueOrDefault(node.Start.Index, node.End.Index), start, text.Length);
        var indent = (int)node.Start.Column - 1;
        var lines = text[start..end].TrimEnd().Split('\n');
        for (var i = 1; i < lines.Length; i++)
        {
            var strip = 0;
            while (strip < indent && strip < lines[i].Length && lines[i][strip] == ' ')
            {
                strip++;
            }
            lines[i] = lines[i][strip..];
        }
        return string.Join('\n', lines) + "\n";
    }

    public SourceLocation Location(YamlNode node) => new(File, Document, (int)node.Start.Line, (int)node.Start.Column);

    /// <summary>YAML's null: an empty or <c>~</c>/<c>null</c> plain scalar without a tag (YAML 1.2 core schema).</summary>
    public static bool IsNull(YamlNode? node) =>
        node is null
        || node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } s && s.Tag.IsEmpty
           && s.Value is null or "" or "~" or "null" or "Null" or "NULL";

    private static string KindName(YamlNode node) => node switch
    {
        YamlMappingNode => "an object",
        YamlSequenceNode => "a list",
        YamlScalarNode s when IsNull(s) => "null",
        YamlScalarNode => $"the scalar \"{((YamlScalarNode)node).Value}\"",
        _ => "an alias",
    };

    /// <summary>
    /// The fields of an object. Unknown fields are errors ("unknown field"); fields Cilium or
    /// Kubernetes define that Membrane does not implement are errors too, with their own
    /// message, so nothing a user wrote is silently ignored. <paramref name="ignored"/> fields
    /// (server-populated metadata) are accepted and dropped.
    /// </summary>
    public Dictionary<string, (YamlNode Key, YamlNode Value)>? Object(YamlNode node, string path,
        IReadOnlyCollection<string> allowed, IReadOnlyDictionary<string, string>? unsupported = null,
        IReadOnlyCollection<string>? ignored = null)
    {
        if (node is not YamlMappingNode map)
        {
            Error(node, path, $"must be an object, not {KindName(node)}");
            return null;
        }
        var fields = new Dictionary<string, (YamlNode, YamlNode)>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in map.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key })
            {
                Error(keyNode, path, "field names must be strings");
                continue;
            }
            var fieldPath = Join(path, key);
            if (allowed.Contains(key))
            {
                fields[key] = (keyNode, value);
                if (IsNull(value))
                {
                    _keyOfNullValue[value] = keyNode;
                }
            }
            else if (unsupported is not null && unsupported.TryGetValue(key, out var why))
            {
                Error(keyNode, fieldPath, $"is not supported by Membrane: {why}");
            }
            else if (ignored is null || !ignored.Contains(key))
            {
                Error(keyNode, fieldPath, $"unknown field \"{key}\" (expected one of: {string.Join(", ", allowed)})");
            }
        }
        return fields;
    }

    public static string Join(string path, string field) => path.Length == 0 ? field : $"{path}.{field}";

    /// <summary>A list; null (with an error) when the node is something else. YAML null is the empty list.</summary>
    public IReadOnlyList<YamlNode>? List(YamlNode node, string path)
    {
        if (IsNull(node))
        {
            return [];
        }
        if (node is YamlSequenceNode seq)
        {
            return seq.Children.ToList();
        }
        Error(node, path, $"must be a list, not {KindName(node)}");
        return null;
    }

    /// <summary>A string scalar (quoted or not); null with an error for a list, object or YAML null.</summary>
    public string? String(YamlNode node, string path)
    {
        if (node is YamlScalarNode s && !IsNull(s))
        {
            return s.Value ?? "";
        }
        Error(node, path, $"must be a string, not {KindName(node)}");
        return null;
    }

    /// <summary>
    /// An integer written as a plain scalar. A quoted number is a string in YAML and JSON, and
    /// the API server would refuse it for an integer field; so does this.
    /// </summary>
    public long? Integer(YamlNode node, string path)
    {
        if (node is YamlScalarNode { Style: ScalarStyle.Plain } s && !IsNull(s)
            && long.TryParse(s.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            return value;
        }
        Error(node, path, $"must be an integer, not {KindName(node)}");
        return null;
    }

    /// <summary>A boolean (<c>true</c>/<c>false</c>, plain).</summary>
    public bool? Boolean(YamlNode node, string path)
    {
        if (node is YamlScalarNode { Style: ScalarStyle.Plain, Value: "true" or "True" or "TRUE" or "false" or "False" or "FALSE" } s)
        {
            return s.Value!.StartsWith('t') || s.Value.StartsWith('T');
        }
        Error(node, path, $"must be true or false, not {KindName(node)}");
        return null;
    }

    /// <summary>A map of strings to strings (<c>matchLabels</c>, <c>metadata.labels</c>).</summary>
    public List<(YamlNode KeyNode, string Key, string Value)>? StringMap(YamlNode node, string path)
    {
        if (IsNull(node))
        {
            return [];
        }
        if (node is not YamlMappingNode map)
        {
            Error(node, path, $"must be an object of strings, not {KindName(node)}");
            return null;
        }
        var result = new List<(YamlNode, string, string)>();
        foreach (var (keyNode, valueNode) in map.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key })
            {
                Error(keyNode, path, "keys must be strings");
                continue;
            }
            // Label values may be empty (reserved:host: ""), and an empty plain value is YAML
            // null, which Kubernetes decodes as the empty string for a map[string]string.
            if (valueNode is not YamlScalarNode vs)
            {
                Error(valueNode, Join(path, key), $"must be a string, not {KindName(valueNode)}");
                continue;
            }
            result.Add((keyNode, key, IsNull(vs) ? "" : vs.Value ?? ""));
        }
        return result;
    }
}
