using System.Diagnostics.CodeAnalysis;
using Membrane.Api;

namespace Membrane.Policy.Labels;

/// <summary>
/// Label sources, the part before ':' in <c>k8s:app=web</c>. Cilium keeps a source on every
/// label (<c>pkg/labels/labels.go</c>: <c>LabelSourceK8s</c>, <c>LabelSourceReserved</c>,
/// <c>LabelSourceAny</c>, …) so that a pod label and, say, a container-runtime label with the
/// same key do not match each other's selectors by accident.
/// </summary>
public static class LabelSource
{
    /// <summary>Kubernetes pod labels, and the pod's namespace label.</summary>
    public const string K8s = "k8s";

    /// <summary>Labels of the reserved identities (<c>reserved:host</c>, <c>reserved:world</c>, …).</summary>
    public const string Reserved = "reserved";

    /// <summary>Container-runtime labels.</summary>
    public const string Container = "container";

    /// <summary>Only in selectors: matches a label of any source (Cilium's <c>any:</c>).</summary>
    public const string Any = "any";

    /// <summary>
    /// The source a label without one gets. Membrane's endpoints are Kubernetes pods whose
    /// labels arrive through the CNI call, the same labels Cilium files under <c>k8s:</c>, so
    /// <c>app=web</c> and <c>k8s:app=web</c> are one label (and one identity).
    /// </summary>
    public const string Default = K8s;
}

/// <summary>
/// Well-known label keys (without source) that policy semantics depend on.
/// </summary>
public static class WellKnownLabels
{
    /// <summary>
    /// The pod's namespace, <c>k8s:io.kubernetes.pod.namespace</c> (Cilium's
    /// <c>k8sConst.PodNamespaceLabel</c>); it scopes namespaced policies.
    /// </summary>
    public const string PodNamespace = "io.kubernetes.pod.namespace";

    /// <summary>
    /// Prefix under which an endpoint carries its namespace's labels
    /// (<c>k8s:io.cilium.k8s.namespace.labels.team=a</c>), as Cilium's
    /// <c>k8sConst.PodNamespaceMetaLabelsPrefix</c>; NetworkPolicy namespaceSelectors match them.
    /// </summary>
    public const string NamespaceLabelsPrefix = "io.cilium.k8s.namespace.labels.";

    /// <summary>
    /// The label Kubernetes (1.21+, NamespaceDefaultLabelName) puts on every namespace: its name.
    /// </summary>
    public const string NamespaceName = "kubernetes.io/metadata.name";

    /// <summary>The namespace a policy or pod without one lives in.</summary>
    public const string DefaultNamespace = "default";
}

/// <summary>One label: a source, a key and a value (<c>k8s:app=web</c>).</summary>
/// <param name="Source">The source (<see cref="LabelSource"/>); never empty.</param>
/// <param name="Key">The key without its source (<c>app</c>, <c>io.kubernetes.pod.namespace</c>).</param>
/// <param name="Value">The value; may be empty (<c>reserved:host</c> has an empty value).</param>
public readonly record struct Label(string Source, string Key, string Value) : IComparable<Label>
{
    /// <summary>The key with its source, <c>k8s:app</c>.</summary>
    public string ExtendedKey => $"{Source}:{Key}";

    /// <summary>
    /// Parses <c>[source:]key[=value]</c>; a missing source becomes
    /// <see cref="LabelSource.Default"/>. Keys and values follow <see cref="LabelSyntax"/>
    /// (Membrane.Api's one label grammar). The <c>any</c> source is refused: it exists only in
    /// selectors.
    /// </summary>
    public static bool TryParse(string text, out Label label, [NotNullWhen(false)] out string? error)
    {
        var eq = text.IndexOf('=', StringComparison.Ordinal);
        var key = eq < 0 ? text : text[..eq];
        var value = eq < 0 ? "" : text[(eq + 1)..];
        return TryCreate(key, value, out label, out error);
    }

    /// <summary>Builds a label from <c>[source:]key</c> and a value, validating both.</summary>
    public static bool TryCreate(string sourcedKey, string value, out Label label, [NotNullWhen(false)] out string? error)
    {
        label = default;
        if (sourcedKey.Length == 0)
        {
            error = "label key is empty";
            return false;
        }
        if ((LabelSyntax.ValidateKey(sourcedKey) ?? LabelSyntax.ValidateValue(value)) is { } why)
        {
            error = why;
            return false;
        }
        var (source, key) = SplitSource(sourcedKey, LabelSource.Default);
        if (source == LabelSource.Any)
        {
            error = $"label key \"{sourcedKey}\": the source \"any\" is only meaningful in selectors";
            return false;
        }
        label = new Label(source, key, value);
        error = null;
        return true;
    }

    /// <summary>Splits <c>source:key</c>; a key without a source gets <paramref name="defaultSource"/>.</summary>
    internal static (string Source, string Key) SplitSource(string sourcedKey, string defaultSource)
    {
        var colon = sourcedKey.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? (defaultSource, sourcedKey) : (sourcedKey[..colon], sourcedKey[(colon + 1)..]);
    }

    /// <summary>Orders by source, then key, then value (ordinal), the canonical order of a <see cref="LabelSet"/>.</summary>
    public int CompareTo(Label other)
    {
        var c = string.CompareOrdinal(Source, other.Source);
        if (c == 0)
        {
            c = string.CompareOrdinal(Key, other.Key);
        }
        return c != 0 ? c : string.CompareOrdinal(Value, other.Value);
    }

    /// <summary><c>source:key=value</c>.</summary>
    public override string ToString() => $"{Source}:{Key}={Value}";
}
