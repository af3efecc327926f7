using System.Diagnostics.CodeAnalysis;

using Membrane.Policy.Labels;

namespace Membrane.Policy.Selectors;

/// <summary>The operators of a Kubernetes <c>LabelSelectorRequirement</c> (apimachinery <c>metav1.LabelSelectorOperator</c>).</summary>
public enum SelectorOperator
{
    /// <summary>The label exists and its value is one of the values.</summary>
    In,
    /// <summary>The label is absent, or its value is none of the values.</summary>
    NotIn,
    /// <summary>The label exists (any value).</summary>
    Exists,
    /// <summary>The label is absent.</summary>
    DoesNotExist,
}

/// <summary>
/// One requirement of a selector: a source-qualified key, an operator and (for In/NotIn) a
/// sorted set of values. <c>matchLabels {k: v}</c> is the requirement <c>k In (v)</c>, exactly
/// as apimachinery's <c>LabelSelectorAsSelector</c> turns it.
/// </summary>
public sealed record SelectorRequirement : IComparable<SelectorRequirement>
{
    private SelectorRequirement(string source, string key, SelectorOperator op, string[] values)
    {
        Source = source;
        Key = key;
        Operator = op;
        Values = values;
    }

    /// <summary>The label source to match, or <see cref="LabelSource.Any"/>.</summary>
    public string Source { get; }

    /// <summary>The key without source.</summary>
    public string Key { get; }

    /// <summary>The operator.</summary>
    public SelectorOperator Operator { get; }

    /// <summary>The values (sorted, distinct); empty for Exists/DoesNotExist.</summary>
    public IReadOnlyList<string> Values { get; }

    /// <summary>
    /// Builds a requirement from a possibly source-qualified key. A key without a source gets
    /// <paramref name="defaultSource"/>: <see cref="LabelSource.Any"/> for CiliumNetworkPolicy
    /// selectors (Cilium's <c>labels.GetExtendedKeyFrom</c> makes <c>app</c> into <c>any.app</c>)
    /// and <see cref="LabelSource.K8s"/> for NetworkPolicy ones. Validation follows
    /// apimachinery's <c>ValidateLabelSelectorRequirement</c>: In/NotIn need at least one value,
    /// Exists/DoesNotExist take none.
    /// </summary>
    public static bool TryCreate(string sourcedKey, SelectorOperator op, IEnumerable<string> values, string defaultSource,
        [NotNullWhen(true)] out SelectorRequirement? requirement, [NotNullWhen(false)] out string? error)
    {
        requirement = null;
        if (sourcedKey.Length == 0)
        {
            error = "label key is empty";
            return false;
        }
        if (Membrane.Api.LabelSyntax.ValidateKey(sourcedKey) is { } why)
        {
            error = why;
            return false;
        }
        var list = values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
        foreach (var v in list)
        {
            if (Membrane.Api.LabelSyntax.ValidateValue(v) is { } bad)
            {
                error = bad;
                return false;
            }
        }
        if (op is SelectorOperator.In or SelectorOperator.NotIn && list.Length == 0)
        {
            error = $"operator {op} needs at least one value";
            return false;
        }
        if (op is SelectorOperator.Exists or SelectorOperator.DoesNotExist && list.Length != 0)
        {
            error = $"operator {op} takes no values";
            return false;
        }
        var (source, key) = Label.SplitSource(sourcedKey, defaultSource);
        requirement = new SelectorRequirement(source, key, op, list);
        error = null;
        return true;
    }

    /// <summary>Builds a requirement that is known to be valid (internal translations).</summary>
    internal static SelectorRequirement Create(string source, string key, SelectorOperator op, params string[] values) =>
        TryCreate($"{source}:{key}", op, values, source, out var r, out var error) ? r
            : throw new ArgumentException($"failed to build selector requirement: {error}");

    /// <summary>Parses an operator name exactly as Kubernetes spells it (<c>In</c>, <c>NotIn</c>, <c>Exists</c>, <c>DoesNotExist</c>).</summary>
    public static bool TryParseOperator(string text, out SelectorOperator op)
    {
        switch (text)
        {
            case "In": op = SelectorOperator.In; return true;
            case "NotIn": op = SelectorOperator.NotIn; return true;
            case "Exists": op = SelectorOperator.Exists; return true;
            case "DoesNotExist": op = SelectorOperator.DoesNotExist; return true;
            default: op = default; return false;
        }
    }

    /// <summary>Whether a label of the requirement's source (any source for <c>any</c>) has this key.</summary>
    public bool AppliesTo(Label label) => label.Key == Key && (Source == LabelSource.Any || label.Source == Source);

    /// <summary>Evaluates the requirement against a label set (apimachinery <c>Requirement.Matches</c>).</summary>
    public bool Matches(LabelSet labels)
    {
        var found = false;
        var valueMatched = false;
        foreach (var label in labels.Labels)
        {
            if (AppliesTo(label))
            {
                found = true;
                if (Operator is SelectorOperator.In or SelectorOperator.NotIn && ContainsValue(label.Value))
                {
                    valueMatched = true;
                }
            }
        }
        return Operator switch
        {
            SelectorOperator.In => valueMatched,
            // NotIn also selects sets without the key: "the label is absent, or its value is not in the set".
            SelectorOperator.NotIn => !valueMatched,
            SelectorOperator.Exists => found,
            _ => !found,
        };
    }

    private bool ContainsValue(string value)
    {
        foreach (var v in Values)
        {
            if (v == value)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Orders by source, key, operator, values: the canonical order in a selector.</summary>
    public int CompareTo(SelectorRequirement? other)
    {
        if (other is null)
        {
            return 1;
        }
        var c = string.CompareOrdinal(Source, other.Source);
        if (c == 0) { c = string.CompareOrdinal(Key, other.Key); }
        if (c == 0) { c = Operator.CompareTo(other.Operator); }
        return c != 0 ? c : string.CompareOrdinal(string.Join(',', Values), string.Join(',', other.Values));
    }

    public bool Equals(SelectorRequirement? other) => other is not null && CompareTo(other) == 0;

    public override int GetHashCode() => HashCode.Combine(Source, Key, Operator, string.Join(',', Values));

    /// <summary>kubectl's selector syntax: <c>k8s:app=web</c>, <c>any:tier in (a,b)</c>, <c>any:x notin (y)</c>, <c>any:x</c>, <c>!any:x</c>.</summary>
    public override string ToString() => Operator switch
    {
        SelectorOperator.In when Values.Count == 1 => $"{Source}:{Key}={Values[0]}",
        SelectorOperator.In => $"{Source}:{Key} in ({string.Join(',', Values)})",
        SelectorOperator.NotIn => $"{Source}:{Key} notin ({string.Join(',', Values)})",
        SelectorOperator.Exists => $"{Source}:{Key}",
        _ => $"!{Source}:{Key}",
    };
}

/// <summary>
/// A label selector with exactly Kubernetes <c>LabelSelector</c> semantics: the requirements
/// (matchLabels and matchExpressions together) are ANDed, and the empty selector selects
/// everything. It is immutable and canonical: requirements are sorted and deduplicated, so
/// two selectors written differently but meaning the same requirements are equal and share
/// one entry in the selector cache (Cilium's <c>SelectorCache</c> keys by the same idea).
/// </summary>
public sealed class EndpointSelector : IEquatable<EndpointSelector>
{
    private readonly SelectorRequirement[] _requirements;
    private readonly string _canonical;

    /// <summary>The selector that selects every label set.</summary>
    public static EndpointSelector All { get; } = new([]);

    /// <summary>Builds a selector from requirements (order and duplicates do not matter).</summary>
    public EndpointSelector(IEnumerable<SelectorRequirement> requirements)
    {
        _requirements = requirements.Distinct().Order().ToArray();
        _canonical = _requirements.Length == 0 ? "{}" : string.Join(',', _requirements.Select(r => r.ToString()));
    }

    /// <summary>The requirements in canonical order.</summary>
    public IReadOnlyList<SelectorRequirement> Requirements => _requirements;

    /// <summary>Whether this is the empty (select-all) selector.</summary>
    public bool IsAll => _requirements.Length == 0;

    /// <summary>Whether every requirement holds for <paramref name="labels"/> (true for the empty selector).</summary>
    public bool Matches(LabelSet labels)
    {
        foreach (var r in _requirements)
        {
            if (!r.Matches(labels))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Whether some requirement is about <paramref name="key"/> with source <paramref name="source"/> or <c>any</c>.</summary>
    public bool MentionsKey(string source, string key) =>
        _requirements.Any(r => r.Key == key && (r.Source == source || r.Source == LabelSource.Any));

    /// <summary>Whether some requirement is about a label of <paramref name="source"/>.</summary>
    public bool MentionsSource(string source) => _requirements.Any(r => r.Source == source);

    /// <summary>A selector with <paramref name="extra"/> ANDed in.</summary>
    public EndpointSelector And(params SelectorRequirement[] extra) => new(_requirements.Concat(extra));

    /// <summary>The canonical text, <c>{}</c> for the empty selector.</summary>
    public override string ToString() => _canonical;

    public bool Equals(EndpointSelector? other) => other is not null && other._canonical == _canonical;

    public override bool Equals(object? obj) => Equals(obj as EndpointSelector);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(_canonical);
}
