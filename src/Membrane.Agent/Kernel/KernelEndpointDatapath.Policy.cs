using System.Net;
using Membrane.Agent.Policy;
using Membrane.Api;
using Membrane.Datapath;
using Membrane.Datapath.Policy;
using Membrane.Linux.Netlink;

namespace Membrane.Agent.Kernel;

public sealed partial class KernelEndpointDatapath : IPolicyDatapath
{
    /// <inheritdoc/>
    public PolicyUpdateResult ReplacePolicy(int ifindex, IReadOnlyList<PolicyMapEntry> entries) => _datapath.ReplacePolicy(ifindex, entries);

    /// <inheritdoc/>
    public void SetPolicyFlags(int ifindex, bool ingress, bool egress)
    {
        // The same read-modify-write lock as SetIdentity: each rewrites the whole entry, so
        // without it a label change and a policy change of one endpoint could undo each other.
        lock (_entryLock)
        {
            if (!_datapath.TryGetEndpoint(ifindex, out var entry))
            {
                throw new AgentException(ErrorCodes.KernelFailure,
                    $"failed to set the policy flags of endpoint ifindex {ifindex}: the endpoint map has no entry for it");
            }
            if (entry.IngressPolicy != ingress || entry.EgressPolicy != egress)
            {
                _datapath.UpsertEndpoint(entry with { IngressPolicy = ingress, EgressPolicy = egress });
            }
        }
    }

    /// <inheritdoc/>
    public (bool Ingress, bool Egress)? GetPolicyFlags(int ifindex) =>
        _datapath.TryGetEndpoint(ifindex, out var entry) ? (entry.IngressPolicy, entry.EgressPolicy) : null;

    /// <inheritdoc/>
    public IReadOnlyList<(PolicyKey Key, bool Deny, uint Rule)> ListPolicy(int? ifindex) => _datapath.ListPolicy(ifindex);

    /// <inheritdoc/>
    public void UpsertIpcache(IPNetwork prefix, uint identity) => _datapath.UpsertIpcache(prefix, identity);

    /// <inheritdoc/>
    public bool DeleteIpcache(IPNetwork prefix) => _datapath.DeleteIpcache(prefix);

    /// <inheritdoc/>
    public IReadOnlyList<(IPNetwork Prefix, uint Identity)> ListIpcache() => _datapath.ListIpcache();

    /// <inheritdoc/>
    public IReadOnlyList<IPAddress> ListNodeAddresses()
    {
        // The namespace the agent runs in: the node's (rtnetlink opened on the calling thread's).
        using var rtnl = Rtnetlink.Open();
        return [.. rtnl.GetAddresses().Select(a => a.Address).Distinct()];
    }
}
