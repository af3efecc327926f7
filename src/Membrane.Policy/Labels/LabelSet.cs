using System.Diagnostics.CodeAnalysis;

namespace Membrane.Policy.Labels;

/// <summary>
/// An immutable set of labels, sorted by source, key and value, with at most one label per
/// source-qualified key: what an identity stands for (DESIGN.md "Control plane": "labels
/// (sorted key=value set) → numeric identity"). Two sets with the same labels given in any
/// order, with or without the default <c>k8s:</c> source spelled out, are equal and print the
/// same canonical string (<c>k8s:app=web;k8s:io.kubernetes.pod.namespace=default</c>).
/// </summary>
public sealed class LabelSet : IEquatable<LabelSet>
{
    private readonly Label[] _labels;
    private readonly string _canonical;

    /// <summary>The set without labels.</summary>
    public static LabelSet Empty { get; } = new([]);

    private LabelSet(Label[] sorted)
    {
        _labels = sorted;
        _canonical = string.Join(';', sorted.Select(l => l.ToString()));
    }

    /// <summary>The labels in canonical order.</summary>
    public IReadOnlyList<Label> Labels => _labels;

    /// <summary>How many labels the set has.</summary>
    public int Count => _labels.Length;

    /// <summary>
    /// The pod namespace (<c>k8s:io.kubernetes.pod.namespace</c>), or null for a set without one
    /// (reserved identities, CIDR identities).
    /// </summary>
    public string? Namespace => TryGetValue(LabelSource.K8s, WellKnownLabels.PodNamespace, out var ns) ? ns : null;

    /// <summary>Builds a set; fails (never throws) on two labels with the same source and key.</summary>
    public static bool TryCreate(IEnumerable<Label> labels, [NotNullWhen(true)] out LabelSet? set, [NotNullWhen(false)] out string? error)
    {
        var sorted = labels.ToArray();
        Array.Sort(sorted);
        for (var i = 1; i < sorted.Length; i++)
        {
            if (sorted[i - 1].Source == sorted[i].Source && sorted[i - 1].Key == sorted[i].Key)
            {
                set = null;
                error = sorted[i - 1].Value == sorted[i].Value
                    ? $"label \"{sorted[i].ExtendedKey}\" is given twice"
                    : $"label \"{sorted[i].ExtendedKey}\" is given twice with different values (\"{sorted[i - 1].Value}\", \"{sorted[i].Value}\")";
                return false;
            }
        }
        set = sorted.Length == 0 ? Empty : new LabelSet(sorted);
        error = null;
        return true;
    }

    /// <summary>
    /// Parses <c>[source:]key=value</c> strings (<see cref="Label.TryParse"/>); a missing source
    /// is <c>k8s</c>. Fails with the first invalid label.
    /// </summary>
    public static bool TryParse(IEnumerable<string> labels, [NotNullWhen(true)] out LabelSet? set, [NotNullWhen(false)] out string? error)
    {
        var list = new List<Label>();
        foreach (var text in labels)
        {
            if (!Label.TryParse(text, out var label, out var why))
            {
                set = null;
                error = $"failed to parse label \"{text}\": {why}";
                return false;
            }
            list.Add(label);
        }
        return TryCreate(list, out set, out error);
    }

    /// <summary>Parses a canonical string (<see cref="ToString"/>) or any ';' or ',' separated <c>key=value</c> list.</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out LabelSet? set, [NotNullWhen(false)] out string? error) =>
        TryParse(text.Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), out set, out error);

    /// <summary>Like <see cref="TryParse(IEnumerable{string}, out LabelSet?, out string?)"/> but throws <see cref="FormatException"/>.</summary>
    public static LabelSet Parse(params string[] labels) =>
        TryParse(labels, out var set, out var error) ? set : throw new FormatException($"failed to parse label set: {error}");

    /// <summary>The set of one reserved identity: <c>reserved:&lt;name&gt;=</c> (Cilium's <c>reserved:host</c>).</summary>
    public static LabelSet ForReserved(string name) => new([new Label(LabelSource.Reserved, name, "")]);

    /// <summary>The value of the label with this source and key.</summary>
    public bool TryGetValue(string source, string key, [NotNullWhen(true)] out string? value)
    {
        foreach (var l in _labels)
        {
            if (l.Source == source && l.Key == key)
            {
                value = l.Value;
                return true;
            }
        }
        value = null;
        return false;
    }

    /// <summary>Whether a label with this source (or any source, for <see cref="LabelSource.Any"/>) and key exists.</summary>
    public bool HasKey(string source, string key)
    {
        foreach (var l in _labels)
        {
            if (l.Key == key && (source == LabelSource.Any || l.Source == source))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Whether the set has a label of the <c>reserved</c> source named <paramref name="name"/>.</summary>
    public bool IsReserved(string name) => HasKey(LabelSource.Reserved, name);

    /// <summary>A copy with <paramref name="label"/> added or its value replaced.</summary>
    public LabelSet With(Label label) =>
        new([.. _labels.Where(l => l.Source != label.Source || l.Key != label.Key).Append(label).Order()]);

    /// <summary>A copy without the label of this source and key.</summary>
    public LabelSet Without(string source, string key) =>
        new([.. _labels.Where(l => l.Source != source || l.Key != key)]);

    /// <summary>The canonical form: labels as <c>source:key=value</c> in order, joined by ';'.</summary>
    public override string ToString() => _canonical;

    public bool Equals(LabelSet? other) => other is not null && other._canonical == _canonical;

    public override bool Equals(object? obj) => Equals(obj as LabelSet);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(_canonical);
}
