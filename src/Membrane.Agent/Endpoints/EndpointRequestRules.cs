using Membrane.Agent.Identities;
using Membrane.Api;

namespace Membrane.Agent.Endpoints;

/// <summary>
/// The rules for the CNI facts a request carries, from the CNI spec 1.1.0 ("Parameters"):
/// CNI_CONTAINERID is non-empty and only alphanumerics, '-', '_' and '.'; CNI_IFNAME is at
/// most 15 characters (IFNAMSIZ - 1) and not empty, ".", "..", nor containing '/', ':' or
/// whitespace. The agent checks them again although the plugin does: the socket is an API.
/// </summary>
internal static class EndpointRequestRules
{
    public static void ValidateAttachment(string operation, string containerId, string ifName)
    {
        if (containerId.Length == 0 || !containerId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new AgentException(ErrorCodes.InvalidEnvironment,
                $"failed to {operation}: invalid container id '{containerId}': it must be non-empty and only letters, digits, '-', '_' or '.'");
        }
        if (ifName.Length is 0 or > 15 || ifName is "." or ".." || ifName.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            throw new AgentException(ErrorCodes.InvalidEnvironment,
                $"failed to {operation}: invalid interface name '{ifName}': it must be 1-15 characters, not '.' or '..', without '/', ':' or whitespace");
        }
    }

    public static void ValidateNetNs(string operation, string netns)
    {
        if (netns.Length == 0 || netns[0] != '/')
        {
            throw new AgentException(ErrorCodes.InvalidEnvironment,
                $"failed to {operation}: invalid network namespace '{netns}': an absolute path is required");
        }
    }

    public static void ValidateMtu(string operation, int mtu, bool ipv6)
    {
        // 68: the IPv4 minimum (RFC 791); 1280 when the pod gets IPv6 (RFC 8200 §5).
        var min = ipv6 ? 1280 : 68;
        if (mtu < min || mtu > 65535)
        {
            throw new AgentException(ErrorCodes.InvalidNetworkConfig,
                $"failed to {operation}: invalid MTU {mtu}: it must be between {min} and 65535{(ipv6 ? " (the pod gets IPv6)" : "")}");
        }
    }

    /// <summary>
    /// The label that puts an endpoint in its pod's namespace, as Cilium's
    /// <c>k8s:io.kubernetes.pod.namespace</c> (pkg/k8s/apis/cilium.io/const.go
    /// <c>PodNamespaceLabel</c>): the same pod labels in two namespaces are two identities, and
    /// policies select peers in their own namespace through it.
    /// </summary>
    public const string NamespaceLabel = "k8s:" + NamespaceLabelName;

    /// <summary>The namespace label's key without its source.</summary>
    public const string NamespaceLabelName = "io.kubernetes.pod.namespace";

    /// <summary>The namespace of a pod whose runtime gave no K8S_POD_NAMESPACE (Kubernetes' own default).</summary>
    public const string DefaultNamespace = "default";

    /// <summary>
    /// The endpoint's label set: the CNI call's labels plus <see cref="NamespaceLabel"/> =
    /// <paramref name="podNamespace"/> (or <see cref="DefaultNamespace"/>). The call may repeat
    /// the namespace label with the same value; any other label naming the namespace (another
    /// value, another source) is refused: it would let a pod claim a namespace it is not in
    /// (a selector on <c>io.kubernetes.pod.namespace</c> matches any source).
    /// </summary>
    public static LabelSet Labels(string operation, IReadOnlyList<Label> labels, string? podNamespace)
    {
        var ns = string.IsNullOrEmpty(podNamespace) ? DefaultNamespace : podNamespace;
        var pairs = new List<KeyValuePair<string, string>>(labels.Count + 1);
        foreach (var label in labels)
        {
            var (key, value) = (label.Key ?? "", label.Value ?? "");
            if (IsNamespaceKey(key))
            {
                if (key == NamespaceLabel && value == ns)
                {
                    continue;
                }
                throw new AgentException(ErrorCodes.InvalidRequest,
                    $"failed to {operation}: label '{key}={value}' contradicts the pod's namespace '{ns}' (K8S_POD_NAMESPACE): the agent sets {NamespaceLabel} itself");
            }
            pairs.Add(new(key, value));
        }
        if (LabelSyntax.ValidateValue(ns) is { } why)
        {
            throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {operation}: invalid pod namespace '{ns}': {why}");
        }
        pairs.Add(new(NamespaceLabel, ns));
        if (!LabelSet.TryCreate(pairs, out var set, out var error))
        {
            throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {operation}: {error}");
        }
        return set;
    }

    /// <summary>True when <paramref name="key"/> names the pod namespace, with any source or none.</summary>
    public static bool IsNamespaceKey(string key)
    {
        var colon = key.IndexOf(':', StringComparison.Ordinal);
        return (colon < 0 ? key : key[(colon + 1)..]) == NamespaceLabelName;
    }
}
