using System.Net;
using Membrane.Datapath;
using Membrane.Datapath.Policy;

namespace Membrane.Agent.Policy;

/// <summary>
/// The datapath's policy state as the agent writes it (bpf/lib/policy.h): per-endpoint entries
/// in the allow and deny tries, the endpoint entry's enforcement flags, and the ipcache.
/// Implemented over the kernel maps by <c>Kernel/KernelEndpointDatapath</c>; agent tests use a
/// fake. Every call is a few map operations, so they are synchronous: the
/// <see cref="PolicyManager"/> makes them under its lock.
/// </summary>
public interface IPolicyDatapath
{
    /// <summary>Makes the tries hold exactly <paramref name="entries"/> for the endpoint with host ifindex <paramref name="ifindex"/>.</summary>
    PolicyUpdateResult ReplacePolicy(int ifindex, IReadOnlyList<PolicyMapEntry> entries);

    /// <summary>
    /// Sets the endpoint entry's ENDPOINT_F_INGRESS_POLICY / ENDPOINT_F_EGRESS_POLICY flags,
    /// leaving the rest of the entry as the kernel holds it.
    /// </summary>
    /// <exception cref="AgentException">The endpoint map has no entry for <paramref name="ifindex"/> (code 101).</exception>
    void SetPolicyFlags(int ifindex, bool ingress, bool egress);

    /// <summary>The enforcement flags the endpoint entry holds; null when there is no entry.</summary>
    (bool Ingress, bool Egress)? GetPolicyFlags(int ifindex);

    /// <summary>The policy keys of one endpoint (every endpoint when null), with deny flag and rule.</summary>
    IReadOnlyList<(PolicyKey Key, bool Deny, uint Rule)> ListPolicy(int? ifindex);

    /// <summary>Maps <paramref name="prefix"/> to <paramref name="identity"/> in the ipcache.</summary>
    void UpsertIpcache(IPNetwork prefix, uint identity);

    /// <summary>Removes exactly <paramref name="prefix"/> from the ipcache; false when it was not there.</summary>
    bool DeleteIpcache(IPNetwork prefix);

    /// <summary>The ipcache's entries.</summary>
    IReadOnlyList<(IPNetwork Prefix, uint Identity)> ListIpcache();

    /// <summary>
    /// The addresses of the agent's network namespace (every interface's), which the ipcache
    /// maps to the host identity once those inside the pod CIDRs are left out.
    /// </summary>
    IReadOnlyList<IPAddress> ListNodeAddresses();
}
