using System.Net;
using Membrane.Agent.Identities;
using Membrane.Agent.Store;
using Membrane.Api;
using Membrane.Datapath;
using Membrane.Policy.Evaluation;
using Membrane.Policy.Identities;
using Membrane.Policy.Model;
using Membrane.Policy.Parsing;
using Membrane.Policy.Repository;
using Membrane.Policy.Resolution;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using AgentLabels = Membrane.Agent.Identities.LabelSet;
using PolicyLabels = Membrane.Policy.Labels.LabelSet;

namespace Membrane.Agent.Policy;

/// <summary>
/// The agent's network policy: the imported policies (<see cref="PolicyRepository"/>, persisted
/// in the store with their YAML), their resolution against the node's identities and endpoints
/// (<see cref="PolicyResolver"/>), and the kernel state that enforces them
/// (<see cref="IPolicyDatapath"/>: per-endpoint entries, enforcement flags, the ipcache).
/// </summary>
/// <remarks>
/// <para>Every change — a policy import or delete, an endpoint created, relabelled or removed,
/// an identity allocated or freed — goes to the resolver, whose diff names the endpoints whose
/// entries changed; each of those gets its whole resolved map written with
/// <see cref="IPolicyDatapath.ReplacePolicy"/> (which itself writes only what differs, adding
/// before removing) and then its enforcement flags. A direction is enforced unless its entries
/// are exactly the resolver's wildcard allow for unenforced directions: a deny entry in an
/// otherwise unenforced direction needs the flag too, and keeps the wildcard allow beside it.</para>
/// <para>Imports and deletes commit to the store first and then reach the kernel. When the
/// kernel refuses a write the change stays committed (the operator is told <c>applied:
/// false</c>), the endpoint is remembered, and every later change and the agent's periodic
/// reconcile retry it until it succeeds: the store is the truth the kernel converges to.</para>
/// <para>CIDR rules: every prefix a rule names gets a node-local identity from 2^24 upward
/// (Cilium's local scope; never carried between nodes) and an ipcache entry. The node's own
/// addresses outside the pod CIDRs are the host identity in the ipcache. One lock serialises
/// everything: the resolver is single-owner and the kernel writes are microseconds.</para>
/// </remarks>
public sealed class PolicyManager
{
    /// <summary>The first node-local (CIDR) identity: Cilium's <c>IdentityScopeLocal</c>.</summary>
    public const uint FirstLocalIdentity = 1u << 24;

    private sealed record TrackedEndpoint(long Id, PolicyLabels Labels, uint Identity, int IfIndex, IReadOnlyList<IPAddress> Addresses);

    private readonly Lock _lock = new();
    private readonly AgentStore _store;
    private readonly IdentityAllocator _identities;
    private readonly IPolicyDatapath? _datapath;
    private readonly IReadOnlyList<IPNetwork> _podCidrs;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly PolicyRepository _repository = new();
    private readonly PolicyResolver _resolver;
    private readonly Dictionary<uint, PolicyIdentity> _identityById = ReservedIdentities.All.ToDictionary(i => i.Id);
    private readonly Dictionary<uint, string> _allocated = [];
    private readonly Dictionary<long, TrackedEndpoint> _endpoints = [];
    private readonly Dictionary<IPNetwork, uint> _cidrIdentities = [];
    private readonly Dictionary<IPNetwork, uint> _ipcache = [];
    private readonly HashSet<long> _pending = [];
    private readonly Dictionary<long, int> _written = [];
    private bool _ipcachePending;
    private uint _nextLocal = FirstLocalIdentity;

    /// <summary>Creates the manager; call <see cref="Restore"/> once the endpoints are restored.</summary>
    /// <param name="store">The agent's state (the policies table).</param>
    /// <param name="identities">The allocated identities the resolver matches selectors against.</param>
    /// <param name="datapath">The kernel's policy maps; null when the datapath has none (policies are kept and resolved, nothing is enforced).</param>
    /// <param name="podCidrs">The node's pod CIDRs (their addresses are endpoints', never the host's).</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">The log.</param>
    /// <param name="options">Semantics options: AllowLocalhost (--allow-localhost). Default: off, as PolicyOptions.Default.</param>
    public PolicyManager(AgentStore store, IdentityAllocator identities, IPolicyDatapath? datapath, IReadOnlyList<IPNetwork> podCidrs,
        TimeProvider? time = null, ILogger<PolicyManager>? logger = null, PolicyOptions? options = null)
    {
        Options = options ?? PolicyOptions.Default;
        _resolver = new PolicyResolver(options: Options);
        _store = store;
        _identities = identities;
        _datapath = datapath;
        _podCidrs = podCidrs;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger<PolicyManager>.Instance;
    }

    /// <summary>The semantics options (--allow-localhost) the resolver and <c>policy trace</c> use.</summary>
    public PolicyOptions Options { get; }

    /// <summary>Whether the kernel enforces what is resolved (false without policy maps).</summary>
    public bool Enforcing => _datapath is not null;

    /// <summary>The current policies.</summary>
    public PolicySnapshot Policies => _repository.Current;

    /// <summary>The endpoints whose kernel state is still to be written (a write failed).</summary>
    public IReadOnlyCollection<long> Pending
    {
        get
        {
            lock (_lock)
            {
                return [.. _pending];
            }
        }
    }

    /// <summary>
    /// On start, after the endpoints are restored: loads the stored policies, the identities and
    /// the endpoints, writes the node's addresses and the CIDR identities to the ipcache and
    /// every endpoint's policy to the kernel, and removes what an earlier agent left that is no
    /// longer wanted (entries of endpoints that are gone, stale ipcache entries).
    /// </summary>
    public void Restore(IEnumerable<EndpointRecord> endpoints)
    {
        lock (_lock)
        {
            var parser = new PolicyDocumentParser();
            var policies = new List<PolicyResource>();
            foreach (var row in _store.Read(tx => tx.ListPolicies()))
            {
                var import = parser.Parse(row.SourceName, row.SourceText);
                if (!import.Succeeded)
                {
                    // Stored text was accepted once; a newer parser refusing it must not take the agent down.
                    _logger.LogError("restore: stored policy {Namespace}/{Name} no longer parses; it is not enforced: {Errors}",
                        row.Namespace, row.Name, import.ErrorText);
                    continue;
                }
                policies.AddRange(import.Policies);
            }
            // Nothing stored: the repository stays at revision 0.
            var snapshot = policies.Count > 0 ? _repository.Apply(policies).Current : _repository.Current;
            _resolver.Batch(r =>
            {
                SyncIdentities(r);
                SyncCidrIdentities(r, snapshot);
                foreach (var row in endpoints)
                {
                    if (Track(row) is { } tracked)
                    {
                        r.UpsertEndpoint(new PolicyEndpoint((ulong)tracked.Id, tracked.Labels));
                    }
                }
                r.SetPolicies(snapshot);
            });
            foreach (var id in _endpoints.Keys)
            {
                _pending.Add(id);
            }
            _ipcachePending = true;
            ComputeIpcache();
            Flush(cleanKernel: true);
            _logger.LogInformation("restored {Policies} policies for {Endpoints} endpoints ({Cidrs} CIDR identities)",
                snapshot.Policies.Count, _endpoints.Count, _cidrIdentities.Count);
        }
    }

    /// <summary>An endpoint was created, rebuilt or relabelled: resolve its policy (and its peers', when its identity is new) and write it.</summary>
    public void EndpointChanged(EndpointRecord row)
    {
        lock (_lock)
        {
            var diff = _resolver.Batch(r =>
            {
                SyncIdentities(r);
                if (Track(row) is { } tracked)
                {
                    r.UpsertEndpoint(new PolicyEndpoint((ulong)tracked.Id, tracked.Labels));
                }
            });
            MarkChanged(diff);
            _pending.Add(row.Id);
            ComputeIpcache();
            Flush(cleanKernel: false);
        }
    }

    /// <summary>An endpoint is gone: its entries are removed from the kernel.</summary>
    public void EndpointRemoved(long id)
    {
        lock (_lock)
        {
            var diff = _resolver.Batch(r => r.RemoveEndpoint((ulong)id));
            _endpoints.Remove(id);
            MarkChanged(diff);
            _pending.Add(id);
            ComputeIpcache();
            Flush(cleanKernel: false);
        }
    }

    /// <summary>Identities were allocated or freed outside an endpoint change (the collector): selectors follow.</summary>
    public void IdentitiesChanged()
    {
        lock (_lock)
        {
            MarkChanged(_resolver.Batch(SyncIdentities));
            Flush(cleanKernel: false);
        }
    }

    /// <summary>Retries whatever did not reach the kernel and follows the node's addresses into the ipcache (the agent calls this periodically).</summary>
    public void Reconcile()
    {
        lock (_lock)
        {
            NodeAddresses(refresh: true);
            ComputeIpcache();
            if (_pending.Count > 0 || _ipcachePending)
            {
                Flush(cleanKernel: false);
            }
        }
    }

    /// <summary>
    /// Imports parsed policies: stored (with their YAML) in one transaction, then resolved and
    /// written to the kernel. A failed parse is refused whole with every error (code 102).
    /// </summary>
    /// <exception cref="PolicyImportException">The import has errors; nothing changed.</exception>
    public PolicyChangeResponse Import(PolicyImport import)
    {
        if (!import.Succeeded)
        {
            throw new PolicyImportException(import);
        }
        lock (_lock)
        {
            import = _repository.RefuseKindChanges(import);
            if (!import.Succeeded)
            {
                throw new PolicyImportException(import);
            }
            var now = _time.GetUtcNow();
            _store.Write(tx =>
            {
                foreach (var p in import.Policies)
                {
                    tx.UpsertPolicy(new PolicyRecord(p.Key.Namespace, p.Key.Name, p.Kind.ToString(), p.Location.File, p.SourceText, now));
                }
            });
            var change = _repository.Apply(import);
            return ApplyChange(change, "import");
        }
    }

    /// <summary>Deletes one policy; false when there is none by that namespace/name.</summary>
    public bool Delete(string @namespace, string name, out PolicyChangeResponse? response)
    {
        lock (_lock)
        {
            var key = new Membrane.Policy.Model.PolicyKey(@namespace, name);
            if (!_repository.Current.Policies.ContainsKey(key))
            {
                response = null;
                return false;
            }
            _store.Write(tx => tx.DeletePolicy(@namespace, name));
            _repository.Delete(key, out var change);
            response = ApplyChange(change!, "delete");
            return true;
        }
    }

    /// <summary>Deletes every policy.</summary>
    public PolicyChangeResponse DeleteAll()
    {
        lock (_lock)
        {
            _store.Write(tx => tx.DeleteAllPolicies());
            return ApplyChange(_repository.DeleteAll(), "delete all");
        }
    }

    /// <summary>The selector cache (<c>policy selectors</c>).</summary>
    public IReadOnlyList<SelectorInfo> Selectors()
    {
        lock (_lock)
        {
            return _resolver.Selectors();
        }
    }

    /// <summary>The local endpoints a policy's rule sets select now.</summary>
    public IReadOnlyList<long> SelectedEndpoints(PolicyResource policy)
    {
        lock (_lock)
        {
            return [.. _endpoints.Values.Where(e => policy.Specs.Any(s => s.Subject.Matches(e.Labels))).Select(e => e.Id).Order()];
        }
    }

    /// <summary>The number the datapath's entries carry for a rule: FNV-1a of <c>namespace/name path</c>, stable across restarts; never 0 (the agent's own entries).</summary>
    public static uint RuleNumber(RuleOrigin origin)
    {
        var hash = 2166136261u;
        foreach (var c in $"{origin.Policy} {origin.Path}")
        {
            hash = (hash ^ c) * 16777619u;
        }
        return hash == 0 ? 1 : hash;
    }

    /// <summary>Policy entries the resolver holds for every endpoint (what the kernel's policy maps hold once written).</summary>
    public int EntryCount
    {
        get
        {
            lock (_lock)
            {
                return _resolver.Maps.Values.Sum(m => m.Entries.Count);
            }
        }
    }

    /// <summary>The labels of an identity the resolver knows (allocated, reserved or CIDR), or null.</summary>
    public PolicyIdentity? Identity(uint id)
    {
        lock (_lock)
        {
            return _identityById.GetValueOrDefault(id);
        }
    }

    /// <summary>The peer a trace names by address: a local endpoint, the node, or world.</summary>
    public PolicyPeer PeerOf(IPAddress address)
    {
        lock (_lock)
        {
            if (_endpoints.Values.FirstOrDefault(e => e.Addresses.Contains(address)) is { } endpoint)
            {
                return new PolicyPeer(endpoint.Labels, address);
            }
            if (_ipcache.TryGetValue(new IPNetwork(address, address.GetAddressBytes().Length * 8), out var id) && id == ReservedIdentities.Host)
            {
                return new PolicyPeer(ReservedIdentities.LabelsOf(ReservedIdentities.Host), address);
            }
            return PolicyPeer.World(address);
        }
    }

    /// <summary>The peer a trace names by endpoint id, or null when there is no such endpoint.</summary>
    public PolicyPeer? PeerOf(long endpointId)
    {
        lock (_lock)
        {
            return _endpoints.TryGetValue(endpointId, out var e) ? new PolicyPeer(e.Labels, e.Addresses.FirstOrDefault()) : null;
        }
    }

    /// <summary>Converts the agent's label set to policy labels (a key without source is <c>k8s:</c>).</summary>
    public static bool TryConvert(AgentLabels labels, out PolicyLabels converted, out string? error)
    {
        if (PolicyLabels.TryParse(labels.ToStrings(), out var set, out error))
        {
            converted = set;
            return true;
        }
        converted = PolicyLabels.Empty;
        return false;
    }

    private PolicyChangeResponse ApplyChange(PolicyChange change, string what)
    {
        var diff = _resolver.Batch(r =>
        {
            SyncCidrIdentities(r, change.Current);
            r.SetPolicies(change.Current);
        });
        MarkChanged(diff);
        ComputeIpcache();
        var applied = Flush(cleanKernel: false);
        _logger.LogInformation("policy {What}: {Policies} (revision {Revision}): {Endpoints} endpoint(s), {Entries} entry change(s){Failed}",
            what, string.Join(", ", change.Keys), change.Current.Revision, diff.Endpoints.Count, diff.EntryChanges,
            applied ? "" : "; some kernel writes failed and are retried");
        return new PolicyChangeResponse
        {
            Revision = change.Current.Revision,
            Policies = [.. change.Keys.Select(k => k.ToString())],
            EndpointsChanged = diff.Endpoints.Count,
            Applied = applied,
        };
    }

    private void MarkChanged(PolicyMapDiff diff)
    {
        foreach (var e in diff.Endpoints)
        {
            _pending.Add((long)e.EndpointId);
        }
    }

    private TrackedEndpoint? Track(EndpointRecord row)
    {
        if (row.State is not (EndpointStates.Ready or EndpointStates.NotReady))
        {
            return null;
        }
        if (!AgentLabels.TryParse(row.Labels, out var agentLabels, out var parseError) || !TryConvert(agentLabels, out var labels, out parseError))
        {
            _logger.LogError("endpoint {Id}: its labels [{Labels}] cannot be used for policy: {Error}; it is treated as having none", row.Id, row.Labels, parseError);
            labels = PolicyLabels.Empty;
        }
        IPAddress[] addresses = [.. new[] { row.Ipv4, row.Ipv6 }.OfType<string>().Select(a => IPAddress.Parse(a.Split('/')[0]))];
        var tracked = new TrackedEndpoint(row.Id, labels, row.Identity, row.HostIfIndex, addresses);
        _endpoints[row.Id] = tracked;
        return tracked;
    }

    /// <summary>Makes the resolver's allocated identities the allocator's.</summary>
    private void SyncIdentities(PolicyResolver r)
    {
        var now = _identities.List().Where(i => i.ReservedName is null).ToDictionary(i => i.Id);
        foreach (var id in _allocated.Keys.Where(id => !now.ContainsKey(id)).ToList())
        {
            _allocated.Remove(id);
            _identityById.Remove(id);
            r.RemoveIdentity(id);
        }
        foreach (var (id, info) in now)
        {
            var canonical = info.Labels.ToString();
            if (_allocated.TryGetValue(id, out var known) && known == canonical)
            {
                continue;
            }
            if (!TryConvert(info.Labels, out var labels, out var error))
            {
                _logger.LogError("identity {Id}: its labels [{Labels}] cannot be used for policy: {Error}", id, canonical, error);
                continue;
            }
            var identity = new PolicyIdentity(id, labels);
            _allocated[id] = canonical;
            _identityById[id] = identity;
            r.UpsertIdentity(identity);
        }
    }

    /// <summary>Gives every prefix the policies name a local identity and drops those no longer named.</summary>
    private void SyncCidrIdentities(PolicyResolver r, PolicySnapshot snapshot)
    {
        var wanted = snapshot.CidrPrefixes.ToHashSet();
        foreach (var (prefix, id) in _cidrIdentities.Where(kv => !wanted.Contains(kv.Key)).ToList())
        {
            _cidrIdentities.Remove(prefix);
            _identityById.Remove(id);
            r.RemoveIdentity(id);
        }
        foreach (var prefix in snapshot.CidrPrefixes)
        {
            if (_cidrIdentities.ContainsKey(prefix))
            {
                continue;
            }
            var id = NextLocalIdentity();
            var identity = PolicyIdentity.ForCidr(id, prefix);
            _cidrIdentities[prefix] = id;
            _identityById[id] = identity;
            r.UpsertIdentity(identity);
        }
    }

    private uint NextLocalIdentity()
    {
        var used = _cidrIdentities.Values.ToHashSet();
        while (used.Contains(_nextLocal))
        {
            _nextLocal = _nextLocal == uint.MaxValue ? FirstLocalIdentity : _nextLocal + 1;
        }
        var id = _nextLocal;
        _nextLocal = _nextLocal == uint.MaxValue ? FirstLocalIdentity : _nextLocal + 1;
        return id;
    }

    /// <summary>What the ipcache should hold: the node's addresses as host, every CIDR prefix as its identity.</summary>
    private void ComputeIpcache()
    {
        if (_datapath is null)
        {
            return;
        }
        var wanted = new Dictionary<IPNetwork, uint>();
        foreach (var (prefix, id) in _cidrIdentities)
        {
            wanted[prefix] = id;
        }
        foreach (var address in NodeAddresses())
        {
            // A host address that a CIDR rule also names exactly is the host: CIDR rules apply to world only.
            wanted[new IPNetwork(address, address.GetAddressBytes().Length * 8)] = ReservedIdentities.Host;
        }
        if (wanted.Count != _ipcache.Count || wanted.Any(kv => !_ipcache.TryGetValue(kv.Key, out var v) || v != kv.Value))
        {
            _ipcache.Clear();
            foreach (var (k, v) in wanted)
            {
                _ipcache[k] = v;
            }
            _ipcachePending = true;
        }
    }

    private IReadOnlyList<IPAddress>? _nodeAddresses;

    // The node's addresses as the host identity knows them: read once, then again at every
    // Reconcile (an address added or moved later). A read that fails keeps what was known.
    private IReadOnlyList<IPAddress> NodeAddresses(bool refresh = false)
    {
        if ((_nodeAddresses is null || refresh) && _datapath is not null)
        {
            try
            {
                _nodeAddresses = [.. _datapath.ListNodeAddresses()
                    .Where(a => !a.IsIPv6LinkLocal && !_podCidrs.Any(c => c.Contains(a)))
                    .Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)];
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _logger.LogError(e, "failed to read the node's addresses: the host identity keeps the ones known before");
            }
        }
        return _nodeAddresses ?? [];
    }

    /// <summary>Writes the ipcache and every pending endpoint; true when everything reached the kernel.</summary>
    private bool Flush(bool cleanKernel)
    {
        if (_datapath is null)
        {
            _pending.Clear();
            return true;
        }
        var ok = true;
        if (_ipcachePending)
        {
            ok &= WriteIpcache();
        }
        foreach (var id in _pending.Order().ToList())
        {
            if (WriteEndpoint(id))
            {
                _pending.Remove(id);
            }
            else
            {
                ok = false;
            }
        }
        if (cleanKernel)
        {
            ok &= RemoveStrayEntries();
        }
        return ok;
    }

    private bool WriteIpcache()
    {
        try
        {
            var current = _datapath!.ListIpcache().ToDictionary(e => e.Prefix, e => e.Identity);
            foreach (var (prefix, id) in _ipcache)
            {
                if (!current.TryGetValue(prefix, out var now) || now != id)
                {
                    _datapath.UpsertIpcache(prefix, id);
                }
            }
            foreach (var (prefix, id) in current)
            {
                // Only the kinds of entry the agent writes (host addresses, local CIDR identities):
                // at start these include an earlier agent's leftovers.
                if (!_ipcache.ContainsKey(prefix) && (id == ReservedIdentities.Host || id >= FirstLocalIdentity))
                {
                    _datapath.DeleteIpcache(prefix);
                }
            }
            _ipcachePending = false;
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _logger.LogError(e, "failed to write the ipcache; retried on the next change");
            return false;
        }
    }

    private bool WriteEndpoint(long id)
    {
        try
        {
            if (!_endpoints.TryGetValue(id, out var endpoint) || !_resolver.Maps.TryGetValue((ulong)id, out var map))
            {
                // Removed: clear what was written for it (its veth, and so its ifindex, is gone).
                if (_written.Remove(id, out var oldIfIndex))
                {
                    _datapath!.ReplacePolicy(oldIfIndex, []);
                }
                return true;
            }
            if (endpoint.IfIndex == 0)
            {
                return true;
            }
            if (_written.TryGetValue(id, out var previous) && previous != endpoint.IfIndex)
            {
                // Rebuilt on a new veth: the old ifindex's entries go.
                _datapath!.ReplacePolicy(previous, []);
            }
            var entries = Entries(endpoint, map, out var ingress, out var egress);
            // Entries first, then the flags: turning enforcement on finds the entries in place,
            // turning it off finds the wildcard allow in place.
            _datapath!.ReplacePolicy(endpoint.IfIndex, entries);
            _datapath.SetPolicyFlags(endpoint.IfIndex, ingress, egress);
            _written[id] = endpoint.IfIndex;
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _logger.LogError(e, "failed to write the policy of endpoint {Id}; retried on the next change", id);
            return false;
        }
    }

    /// <summary>At start: policy entries of ifindexes no endpoint has (an earlier agent's endpoints that are gone).</summary>
    private bool RemoveStrayEntries()
    {
        try
        {
            var known = _endpoints.Values.Select(e => (uint)e.IfIndex).ToHashSet();
            foreach (var ifindex in _datapath!.ListPolicy(null).Select(e => e.Key.Endpoint).Distinct().Where(i => !known.Contains(i)).ToList())
            {
                _datapath.ReplacePolicy((int)ifindex, []);
            }
            return true;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _logger.LogError(e, "failed to remove stray policy entries");
            return false;
        }
    }

    /// <summary>The resolved map as datapath entries, and which directions need enforcing.</summary>
    private List<PolicyMapEntry> Entries(TrackedEndpoint endpoint, EndpointPolicyMap map, out bool ingress, out bool egress)
    {
        var specs = _repository.Current.Specs.Where(s => s.Subject.Matches(endpoint.Labels)).ToList();
        var entries = new List<PolicyMapEntry>(map.Entries.Count);
        foreach (var (key, action) in map.Entries)
        {
            entries.Add(new PolicyMapEntry(endpoint.IfIndex,
                key.Direction == TrafficDirection.Ingress ? Datapath.Policy.PolicyDirection.Ingress : Datapath.Policy.PolicyDirection.Egress,
                key.Identity, key.Protocol, key.Ports.First, key.Ports.Last, action == PolicyMapAction.Deny, RuleOf(specs, key, action)));
        }
        ingress = map.IsEnforced(TrafficDirection.Ingress);
        egress = map.IsEnforced(TrafficDirection.Egress);
        return entries;
    }

    /// <summary>The rule that made an entry (the first in policy order); 0 for the agent's own (the wildcard of an unenforced direction).</summary>
    private uint RuleOf(List<PolicySpec> specs, PolicyMapKey key, PolicyMapAction action)
    {
        var want = action == PolicyMapAction.Deny ? RuleAction.Deny : RuleAction.Allow;
        foreach (var rule in specs.SelectMany(s => s.Rules))
        {
            if (rule.Direction != key.Direction || rule.Action != want)
            {
                continue;
            }
            var peerMatches = rule.Peers is null
                ? key.Identity == 0
                : key.Identity != 0 && _identityById.TryGetValue(key.Identity, out var identity) && rule.Peers.Any(p => p.Selects(identity));
            var portMatches = rule.Ports is null
                ? key.Protocol == IpProtocol.Any && key.Ports.IsAll
                : rule.Ports.Any(p => p.Protocol == key.Protocol && p.Ports == key.Ports);
            if (peerMatches && portMatches)
            {
                return RuleNumber(rule.Origin);
            }
        }
        return 0;
    }

    /// <summary>
    /// The endpoint's policy as the kernel holds it: its enforcement flags (null without an
    /// endpoint entry) and its keys.
    /// </summary>
    /// <exception cref="AgentException">The datapath has no policy maps (code 101).</exception>
    public ((bool Ingress, bool Egress)? Flags, IReadOnlyList<(Datapath.Policy.PolicyKey Key, bool Deny, uint Rule)> Keys) ReadKernel(int ifindex)
    {
        if (_datapath is null)
        {
            throw new AgentException(ErrorCodes.KernelFailure, "failed to read the kernel's policy: the datapath has no policy maps");
        }
        return (_datapath.GetPolicyFlags(ifindex), _datapath.ListPolicy(ifindex));
    }

    /// <summary>The rule origin of a rule number in the current policies, or null.</summary>
    public RuleOrigin? RuleOriginOf(uint number) =>
        number == 0 ? null : _repository.Current.Specs.SelectMany(s => s.Rules).Select(r => r.Origin).FirstOrDefault(o => RuleNumber(o) == number);
}
