using Membrane.Policy.Labels;
using Membrane.Policy.Selectors;

namespace Membrane.Policy.Identities;

/// <summary>
/// Cilium's policy entities (<c>pkg/policy/api/entity.go</c>, <c>EntitySelectorMapping</c>):
/// names for groups of identities that <c>fromEntities</c>/<c>toEntities</c> select.
/// </summary>
public static class Entities
{
    private static SelectorRequirement Reserved(string name) =>
        SelectorRequirement.Create(LabelSource.Reserved, name, SelectorOperator.Exists);

    /// <summary>
    /// Every managed pod: an endpoint with a pod namespace label. Cilium's <c>cluster</c> entity
    /// matches <c>k8s:io.cilium.k8s.policy.cluster=&lt;cluster&gt;</c>; Membrane endpoints carry no
    /// cluster label, so the namespace label (which every pod has, and no reserved or CIDR
    /// identity has) marks them.
    /// </summary>
    private static readonly EndpointSelector s_pods = new([
        SelectorRequirement.Create(LabelSource.K8s, WellKnownLabels.PodNamespace, SelectorOperator.Exists)]);

    private static readonly Dictionary<string, EndpointSelector[]> s_map = new(StringComparer.Ordinal)
    {
        // EntityAll is Cilium's WildcardEndpointSelector: every identity, world included.
        ["all"] = [EndpointSelector.All],
        ["world"] = [new([Reserved("world")])],
        ["host"] = [new([Reserved("host")])],
        ["remote-node"] = [new([Reserved("remote-node")])],
        ["health"] = [new([Reserved("health")])],
        ["init"] = [new([Reserved("init")])],
        ["unmanaged"] = [new([Reserved("unmanaged")])],
        // EntityCluster: the host, the other nodes, init, health and unmanaged endpoints, and
        // every pod of the cluster — everything but world.
        ["cluster"] =
        [
            new([Reserved("host")]), new([Reserved("remote-node")]), new([Reserved("init")]),
            new([Reserved("health")]), new([Reserved("unmanaged")]), s_pods,
        ],
    };

    /// <summary>Entities Cilium has that Membrane does not model (no apiserver or ingress identity).</summary>
    private static readonly HashSet<string> s_unsupported = new(StringComparer.Ordinal) { "kube-apiserver", "ingress", "none" };

    /// <summary>The entity names Membrane supports.</summary>
    public static IReadOnlyCollection<string> Names => s_map.Keys;

    /// <summary>The selectors an entity stands for (their union).</summary>
    public static bool TryGetSelectors(string entity, out IReadOnlyList<EndpointSelector> selectors)
    {
        var found = s_map.TryGetValue(entity, out var list);
        selectors = list ?? [];
        return found;
    }

    /// <summary>Whether Cilium knows <paramref name="entity"/> but Membrane does not support it.</summary>
    public static bool IsKnownButUnsupported(string entity) => s_unsupported.Contains(entity);
}
