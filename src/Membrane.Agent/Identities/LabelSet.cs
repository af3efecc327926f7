using System.Diagnostics.CodeAnalysis;
using Membrane.Api;
using LabelSource = Membrane.Policy.Labels.LabelSource;

namespace Membrane.Agent.Identities;

/// <summary>
/// An immutable set of labels, sorted by key: the input of identity allocation. Two sets with
/// the same labels in any order are equal and have the same canonical string
/// (<see cref="ToString"/>: <c>key=value;key=value</c>), which is what is stored and compared.
/// </summary>
/// <remarks>
/// Keys and values follow <see cref="LabelSyntax"/> (Kubernetes' label syntax with an optional
/// source prefix such as <c>k8s:</c>). That syntax keeps ';' and '=' out of keys and values,
/// so the canonical string parses back unambiguously.
/// </remarks>
public sealed class LabelSet : IEquatable<LabelSet>
{
    private readonly KeyValuePair<string, string>[] _labels;
    private readonly string _canonical;

    /// <summary>The set without labels.</summary>
    public static LabelSet Empty { get; } = new([]);

    private LabelSet(KeyValuePair<string, string>[] sorted)
    {
        _labels = sorted;
        _canonical = string.Join(';', sorted.Select(l => $"{l.Key}={l.Value}"));
    }

    /// <summary>The labels, sorted by key (ordinal).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Labels => _labels;

    /// <summary>How many labels there are.</summary>
    public int Count => _labels.Length;

    /// <summary>The labels as sorted <c>key=value</c> strings.</summary>
    public IReadOnlyList<string> ToStrings() => _labels.Select(l => $"{l.Key}={l.Value}").ToArray();

    /// <summary>
    /// Builds a set from key/value pairs. Fails (never throws) on an invalid key or value, a
    /// duplicate key, or a label of the <c>reserved</c> source (those name reserved identities
    /// and are the agent's alone to give).
    /// </summary>
    public static bool TryCreate(IEnumerable<KeyValuePair<string, string>> labels, [NotNullWhen(true)] out LabelSet? set,
        [NotNullWhen(false)] out string? error)
    {
        var list = labels.ToList();
        list.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
        for (var i = 0; i < list.Count; i++)
        {
            var (key, value) = (list[i].Key, list[i].Value);
            // One syntax for the plugin and the agent: Membrane.Api's LabelSyntax.
            if ((LabelSyntax.ValidateKey(key) ?? LabelSyntax.ValidateValue(value)) is { } why)
            {
                set = null;
                error = $"invalid label: {why}";
                return false;
            }
            if (key.StartsWith(LabelSource.Reserved + ":", StringComparison.Ordinal))
            {
                set = null;
                error = $"invalid label key '{key}': the source '{LabelSource.Reserved}' is kept for the agent's reserved identities";
                return false;
            }
            if (i > 0 && list[i - 1].Key == key)
            {
                set = null;
                error = $"label '{key}' is given twice";
                return false;
            }
        }
        set = list.Count == 0 ? Empty : new LabelSet([.. list]);
        error = null;
        return true;
    }

    /// <summary>Parses a canonical string written by <see cref="ToString"/>.</summary>
    public static bool TryParse(string canonical, [NotNullWhen(true)] out LabelSet? set, [NotNullWhen(false)] out string? error)
    {
        if (canonical.Length == 0)
        {
            set = Empty;
            error = null;
            return true;
        }
        var pairs = new List<KeyValuePair<string, string>>();
        foreach (var part in canonical.Split(';'))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                set = null;
                error = $"'{part}' is not key=value";
                return false;
            }
            pairs.Add(new(part[..eq], part[(eq + 1)..]));
        }
        return TryCreate(pairs, out set, out error);
    }

    /// <summary>The canonical form: sorted <c>key=value</c> joined by ';'.</summary>
    public override string ToString() => _canonical;

    public bool Equals(LabelSet? other) => other is not null && other._canonical == _canonical;

    public override bool Equals(object? obj) => Equals(obj as LabelSet);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(_canonical);
}
