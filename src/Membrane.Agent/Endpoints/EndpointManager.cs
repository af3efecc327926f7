using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Membrane.Agent.Identities;
using Membrane.Agent.Ipam;
using Membrane.Agent.Policy;
using Membrane.Agent.Store;
using Membrane.Api;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using LabelSource = Membrane.Policy.Labels.LabelSource;

namespace Membrane.Agent.Endpoints;

/// <summary>
/// Owns the endpoints of the node: their addresses (<see cref="IpamAllocator"/>), identities
/// (<see cref="IdentityAllocator"/>), rows (<see cref="AgentStore"/>) and the kernel half
/// (<see cref="IEndpointDatapath"/>), and the CNI rules that bind them:
/// <list type="bullet">
/// <item>ADD is idempotent per containerId + ifName: a second ADD returns the existing endpoint.</item>
/// <item>ADD that fails undoes everything it did: no address, identity reference or row remains.</item>
/// <item>DEL is idempotent and succeeds for an unknown container.</item>
/// <item>GC releases every endpoint and allocation not in the runtime's valid list.</item>
/// <item>CHECK reports a missing endpoint with the CNI code 3 (unknown container).</item>
/// </list>
/// </summary>
/// <remarks>
/// <para>An ADD is three transactions around the kernel work: (1) allocate addresses and
/// identity and write the row in state <c>creating</c>; (2) build the kernel half; (3) record
/// what the kernel made and mark the row <c>ready</c>. A DEL marks the row
/// <c>disconnecting</c>, removes the kernel half, then deletes row, addresses and identity
/// reference in one transaction. A crash between the steps leaves a row in a transient state
/// whose addresses are still owned by it; <see cref="RestoreAsync"/> finishes such rows on the
/// next start. The store is never locked while the kernel works, so ADDs of different pods
/// run in parallel; operations on the same containerId + ifName are serialised.</para>
/// </remarks>
public sealed class EndpointManager
{
    private readonly AgentStore _store;
    private readonly IpamAllocator _ipam;
    private readonly IdentityAllocator _identities;
    private readonly IEndpointDatapath _datapath;
    private readonly PolicyManager? _policy;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    // Striped locks: operations on one attachment are serialised without a lock per container
    // that would have to be removed again.
    private readonly SemaphoreSlim[] _stripes = Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(1, 1)).ToArray();

    /// <summary>
    /// Creates the manager over its parts; call <see cref="RestoreAsync"/> before serving.
    /// <paramref name="policy"/>, when given, is told of every endpoint created, relabelled and
    /// removed, and writes its policy to the kernel before the operation returns.
    /// </summary>
    public EndpointManager(AgentStore store, IpamAllocator ipam, IdentityAllocator identities, IEndpointDatapath datapath,
        TimeProvider? time = null, ILogger<EndpointManager>? logger = null, PolicyManager? policy = null)
    {
        _store = store;
        _policy = policy;
        _ipam = ipam;
        _identities = identities;
        _datapath = datapath;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger<EndpointManager>.Instance;
    }

    /// <summary>The kernel half's description (for status).</summary>
    public IEndpointDatapath Datapath => _datapath;

    /// <summary>
    /// The host-side interface name of an attachment: <c>lxc</c> + 11 hex digits of
    /// SHA-256(containerId/ifName) — 14 characters, within IFNAMSIZ, the same on every
    /// call so that leftovers of a crashed ADD can be found by name (Cilium names its
    /// veths the same way).
    /// </summary>
    public static string HostInterfaceName(string containerId, string ifName)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{containerId}/{ifName}"));
        return "lxc" + Convert.ToHexStringLower(hash)[..11];
    }

    /// <summary>CNI ADD: creates the endpoint, or returns the existing one for the same attachment.</summary>
    /// <exception cref="AgentException">Invalid request, exhausted addresses, or the kernel refused (everything undone).</exception>
    public async Task<CniAddResponse> AddAsync(CniAddRequest request, CancellationToken ct)
    {
        const string op = "add the endpoint";
        EndpointRequestRules.ValidateAttachment(op, request.ContainerId, request.IfName);
        EndpointRequestRules.ValidateNetNs(op, request.NetNs);
        EndpointRequestRules.ValidateMtu(op, request.Mtu, _ipam.HasIpv6);
        var labels = EndpointRequestRules.Labels(op, request.Labels, request.PodNamespace);
        var owner = new AllocationOwner(request.ContainerId, request.IfName);

        var stripe = Stripe(owner);
        await stripe.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var existing = _store.Read(tx => tx.FindEndpoint(owner.ContainerId, owner.IfName));
            if (existing is not null)
            {
                if (existing.State is EndpointStates.Ready or EndpointStates.NotReady)
                {
                    if (existing.NetNs != request.NetNs)
                    {
                        throw new AgentException(ErrorCodes.InvalidRequest,
                            $"failed to {op} {owner}: it is already attached in network namespace {existing.NetNs}, not {request.NetNs}");
                    }
                    _logger.LogInformation("ADD {Owner}: endpoint {Id} exists, returning it", owner, existing.Id);
                    return AddResponse(existing);
                }
                // A row left 'creating' or 'disconnecting' by a crash: finish it off, then start afresh.
                _logger.LogWarning("ADD {Owner}: removing the leftover endpoint {Id} in state {State}", owner, existing.Id, existing.State);
                try
                {
                    await TearDownAsync(existing, CancellationToken.None).ConfigureAwait(false);
                }
                catch (AgentException e)
                {
                    throw new AgentException(e.Code, $"failed to {op} {owner}: its leftover endpoint {existing.Id} cannot be removed: {e.Message}", e.Details, e);
                }
            }

            var row = _store.Write(tx =>
            {
                var identity = _identities.Acquire(tx, labels);
                var addresses = _ipam.Allocate(tx, owner);
                return tx.InsertEndpoint(new EndpointRecord
                {
                    ContainerId = owner.ContainerId,
                    IfName = owner.IfName,
                    NetNs = request.NetNs,
                    Network = request.Network,
                    PodNamespace = request.PodNamespace,
                    PodName = request.PodName,
                    Labels = labels.ToString(),
                    Identity = identity,
                    Mtu = request.Mtu,
                    Ipv4 = addresses.FirstOrDefault(a => a.Address.AddressFamily == AddressFamily.InterNetwork)?.AddressWithPrefix,
                    Ipv6 = addresses.FirstOrDefault(a => a.Address.AddressFamily == AddressFamily.InterNetworkV6)?.AddressWithPrefix,
                    HostInterface = HostInterfaceName(owner.ContainerId, owner.IfName),
                    State = EndpointStates.Creating,
                    CreatedAt = _time.GetUtcNow(),
                });
            });

            EndpointRecord ready;
            try
            {
                var made = await _datapath.CreateAsync(Spec(row), ct).ConfigureAwait(false);
                ready = row with
                {
                    HostInterface = made.HostInterface,
                    HostIfIndex = made.HostIfIndex,
                    HostMac = made.HostMac,
                    PodMac = made.PodMac,
                    State = EndpointStates.Ready,
                };
                _store.Write(tx => tx.UpdateEndpoint(ready));
            }
            catch (Exception e)
            {
                await UndoAddAsync(row, e).ConfigureAwait(false);
                if (e is OperationCanceledException)
                {
                    throw;
                }
                throw e is AgentException agent
                    ? new AgentException(agent.Code, $"failed to {op} {owner}: {agent.Message}", agent.Details, e)
                    : new AgentException(ErrorCodes.KernelFailure, $"failed to {op} {owner}: {e.Message}", e.GetType().Name, e);
            }
            // Before the runtime hears of success (and starts the pod): its policy is in place.
            TellPolicy(ready.Id, p => p.EndpointChanged(ready));
            _logger.LogInformation("ADD {Owner}: endpoint {Id} ready on {HostInterface} ({Ipv4} {Ipv6}, identity {Identity})",
                owner, ready.Id, ready.HostInterface, ready.Ipv4, ready.Ipv6, ready.Identity);
            return AddResponse(ready);
        }
        finally
        {
            stripe.Release();
        }
    }

    /// <summary>CNI DEL: removes the endpoint; succeeds when there is none.</summary>
    /// <exception cref="AgentException">The kernel refused to remove it (it stays, marked disconnecting, for a retry).</exception>
    public async Task DeleteAsync(CniDelRequest request, CancellationToken ct)
    {
        const string op = "delete the endpoint";
        EndpointRequestRules.ValidateAttachment(op, request.ContainerId, request.IfName);
        var owner = new AllocationOwner(request.ContainerId, request.IfName);
        var stripe = Stripe(owner);
        await stripe.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await DeleteLockedAsync(owner, op).ConfigureAwait(false);
        }
        finally
        {
            stripe.Release();
        }
    }

    /// <summary>CNI CHECK: the endpoint exists and its kernel half is as built.</summary>
    /// <exception cref="AgentException">Code 3 when there is no such endpoint; otherwise what is wrong.</exception>
    public async Task CheckAsync(CniCheckRequest request, CancellationToken ct)
    {
        const string op = "check the endpoint";
        EndpointRequestRules.ValidateAttachment(op, request.ContainerId, request.IfName);
        var owner = new AllocationOwner(request.ContainerId, request.IfName);
        var stripe = Stripe(owner);
        await stripe.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var row = _store.Read(tx => tx.FindEndpoint(owner.ContainerId, owner.IfName))
                ?? throw new AgentException(ErrorCodes.UnknownContainer, $"failed to {op} {owner}: the agent has no such endpoint");
            if (row.State is EndpointStates.Creating or EndpointStates.Disconnecting)
            {
                throw new AgentException(ErrorCodes.TryAgainLater, $"failed to {op} {owner}: it is {row.State}");
            }
            if (request.NetNs != row.NetNs)
            {
                throw new AgentException(ErrorCodes.InvalidEnvironment,
                    $"failed to {op} {owner}: it is attached in network namespace {row.NetNs}, not {request.NetNs}");
            }
            var problems = await CheckDatapathAsync(row, ct).ConfigureAwait(false);
            var state = problems.Count == 0 ? EndpointStates.Ready : EndpointStates.NotReady;
            if (state != row.State)
            {
                _store.Write(tx => tx.UpdateEndpoint(row with { State = state }));
            }
            if (problems.Count > 0)
            {
                throw new AgentException(ErrorCodes.KernelFailure, $"failed to {op} {owner}: {problems[0]}",
                    problems.Count > 1 ? string.Join("; ", problems) : null);
            }
        }
        finally
        {
            stripe.Release();
        }
    }

    /// <summary>
    /// CNI GC: removes every endpoint (of the request's network, when it names one), and
    /// releases every allocation without an endpoint, whose attachment is not in
    /// <paramref name="request"/>'s valid list. Endpoints whose ADD is still running when the GC
    /// starts are left alone (the runtime cannot have listed them yet). Collects as much as it
    /// can; if some endpoint could not be removed, reports that after trying the rest.
    /// </summary>
    public async Task<CniGcResponse> GarbageCollectAsync(CniGcRequest request, CancellationToken ct)
    {
        const string op = "collect garbage";
        var valid = request.ValidAttachments.Select(a => new AllocationOwner(a.ContainerId, a.IfName)).ToHashSet();
        var candidates = _store.Read(tx => tx.ListEndpoints())
            .Where(e => e.State != EndpointStates.Creating && (request.Network is null || e.Network == request.Network))
            .Select(e => new AllocationOwner(e.ContainerId, e.IfName))
            .Where(o => !valid.Contains(o))
            .ToList();
        var released = new List<Attachment>();
        var failures = new List<string>();
        foreach (var owner in candidates)
        {
            ct.ThrowIfCancellationRequested();
            var stripe = Stripe(owner);
            await stripe.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                if (await DeleteLockedAsync(owner, op).ConfigureAwait(false))
                {
                    released.Add(new Attachment(owner.ContainerId, owner.IfName));
                }
            }
            catch (AgentException e)
            {
                failures.Add(e.Message);
            }
            finally
            {
                stripe.Release();
            }
        }

        // Allocations without an endpoint row (none are made by this agent's own ADD path,
        // which writes both together, but a store edited or migrated by hand may have them).
        var orphans = _store.Write(tx =>
        {
            var keep = new HashSet<AllocationOwner>(valid);
            keep.UnionWith(tx.ListEndpoints().Select(e => new AllocationOwner(e.ContainerId, e.IfName)));
            return _ipam.GarbageCollect(tx, keep);
        });
        released.AddRange(orphans.Select(o => new Attachment(o.ContainerId, o.IfName)));
        _logger.LogInformation("GC: {Valid} valid attachments, released {Released}", valid.Count, released.Count);
        if (failures.Count > 0)
        {
            throw new AgentException(ErrorCodes.KernelFailure,
                $"failed to {op}: {failures.Count} endpoint(s) could not be removed (released {released.Count})", string.Join("; ", failures));
        }
        return new CniGcResponse(released);
    }

    /// <summary>
    /// Changes an endpoint's labels at run time (PATCH /v1/endpoints/{id}/labels): removes
    /// <see cref="EndpointLabelsRequest.Remove"/>, adds <see cref="EndpointLabelsRequest.Add"/>,
    /// and moves the endpoint to the identity of its new label set.
    /// </summary>
    /// <remarks>
    /// <para>One store transaction holds the whole change: the row's labels and identity, a
    /// reference on the new identity (allocated when the set has none), the release of the old
    /// one (which starts its grace period when it was the last), and, as the last step, the
    /// datapath's endpoint entry (<see cref="IEndpointDatapath.SetIdentity"/>). If the kernel
    /// refuses, the transaction rolls back and nothing has changed; if the commit fails after
    /// the kernel took the new identity, the rollback puts the old one back into the kernel.</para>
    /// <para>Why not commit first and retry or reconcile the kernel later: between the commit and
    /// a successful retry the store (and everything computed from it: policy, identity lists)
    /// would describe a pod whose packets still carry the old identity, and the operator would
    /// have been told "done". Rolling back keeps the store and the kernel in agreement at every
    /// moment and gives the operator an honest error to retry. The kernel work is a few map
    /// updates, so doing it under the store's lock costs microseconds.</para>
    /// </remarks>
    /// <exception cref="AgentException">
    /// Unknown endpoint (code 3), a bad request (code 102: label syntax, a <c>reserved:</c> label,
    /// the namespace label, removing a label that is not set, changing a value without removing
    /// it), an endpoint being created or deleted (code 11), the kernel refused (code 101), or the
    /// state database refused the commit (code 5).
    /// Nothing has changed in any of these cases.
    /// </exception>
    public async Task<EndpointLabelsResponse> ChangeLabelsAsync(long id, EndpointLabelsRequest request, CancellationToken ct)
    {
        var op = $"change the labels of endpoint {id}";
        ValidateLabelChange(op, request);
        var found = _store.Read(tx => tx.GetEndpoint(id))
            ?? throw new AgentException(ErrorCodes.UnknownContainer, $"failed to {op}: there is no such endpoint");
        var owner = new AllocationOwner(found.ContainerId, found.IfName);
        var stripe = Stripe(owner);
        await stripe.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // Read again under the attachment's lock: a DEL may have removed it meanwhile.
            var row = _store.Read(tx => tx.GetEndpoint(id))
                ?? throw new AgentException(ErrorCodes.UnknownContainer, $"failed to {op}: there is no such endpoint");
            if (row.State is EndpointStates.Creating or EndpointStates.Disconnecting)
            {
                throw new AgentException(ErrorCodes.TryAgainLater, $"failed to {op}: it is {row.State}");
            }
            var before = ParseLabels(row);
            var after = ApplyLabelChange(op, before, request);
            if (after.Equals(before))
            {
                return LabelsResponse(row, row, identityAllocated: false);
            }

            EndpointRecord updated;
            bool allocated;
            try
            {
                (updated, allocated) = _store.Write(tx =>
                {
                    var isNew = _identities.Lookup(after) is null;
                    var identity = _identities.Acquire(tx, after);
                    var moved = row with { Labels = after.ToString(), Identity = identity };
                    tx.UpdateEndpoint(moved);
                    _identities.Release(tx, row.Identity);
                    if (identity != row.Identity)
                    {
                        SetKernelIdentity(op, row, identity, tx);
                    }
                    return (moved, isNew);
                });
            }
            catch (Microsoft.Data.Sqlite.SqliteException e)
            {
                // Nothing of the transaction remains (AgentStore.Write rolled it back, and the undo
                // of the kernel write ran with it).
                throw new AgentException(ErrorCodes.IoFailure, $"failed to {op}: the state database refused the change: {e.Message}; nothing was changed",
                    e.GetType().Name, e);
            }
            // Policy follows the committed change: the new identity (when allocated) is matched
            // against every selector, and the entries of this endpoint (selected by other rule
            // sets now) and of its peers (whose rules select the new identity) are rewritten.
            TellPolicy(id, p => p.EndpointChanged(updated));
            _logger.LogInformation("endpoint {Id}: labels [{Before}] -> [{After}], identity {Old} -> {New}{Allocated}",
                id, before, after, row.Identity, updated.Identity, allocated ? " (allocated)" : "");
            return LabelsResponse(row, updated, allocated);
        }
        finally
        {
            stripe.Release();
        }
    }

    /// <summary>
    /// Writes <paramref name="identity"/> into the endpoint's datapath entry inside
    /// <paramref name="tx"/>: a refusal throws (and rolls the transaction back); a rollback after
    /// it succeeded (the commit failed) writes the old identity back.
    /// </summary>
    private void SetKernelIdentity(string op, EndpointRecord row, uint identity, StoreTransaction tx)
    {
        var made = Made(row);
        uint previous;
        try
        {
            previous = _datapath.SetIdentity(made, identity);
        }
        catch (Exception e)
        {
            var why = e is AgentException ? e.Message : $"the kernel refused to update the endpoint entry of {row.HostInterface}: {e.Message}";
            throw new AgentException(ErrorCodes.KernelFailure, $"failed to {op}: {why}; nothing was changed",
                (e as AgentException)?.Details ?? e.GetType().Name, e);
        }
        tx.OnRollback(() =>
        {
            try
            {
                _datapath.SetIdentity(made, previous);
            }
            catch (Exception e)
            {
                // The store keeps the old identity; CHECK reports the entry's mismatch, and a
                // further label change (or DEL and ADD) rewrites it.
                _logger.LogError(e, "endpoint {Id}: could not put identity {Identity} back into the datapath after a failed commit", row.Id, previous);
            }
        });
    }

    /// <summary>Checks what a label change asks for on its own, before any endpoint is looked at.</summary>
    private static void ValidateLabelChange(string op, EndpointLabelsRequest request)
    {
        if (request.Add.Count == 0 && request.Remove.Count == 0)
        {
            throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {op}: nothing to add or remove");
        }
        foreach (var label in request.Add)
        {
            var (key, value) = (label.Key ?? "", label.Value ?? "");
            if ((LabelSyntax.ValidateKey(key) ?? LabelSyntax.ValidateValue(value)) is { } why)
            {
                throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {op}: invalid label to add: {why}");
            }
            if (key.StartsWith(LabelSource.Reserved + ":", StringComparison.Ordinal))
            {
                throw new AgentException(ErrorCodes.InvalidRequest,
                    $"failed to {op}: cannot add '{key}': the source '{LabelSource.Reserved}' is kept for the agent's reserved identities");
            }
            if (EndpointRequestRules.IsNamespaceKey(key))
            {
                throw new AgentException(ErrorCodes.InvalidRequest,
                    $"failed to {op}: cannot add '{key}': the agent sets {EndpointRequestRules.NamespaceLabel} from the pod's namespace, and a pod cannot move to another namespace");
            }
        }
        if (request.Add.GroupBy(l => l.Key, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {op}: label '{twice.Key}' is added twice");
        }
        foreach (var key in request.Remove)
        {
            if (LabelSyntax.ValidateKey(key ?? "") is { } why)
            {
                throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {op}: invalid label key to remove: {why}");
            }
            if (EndpointRequestRules.IsNamespaceKey(key!))
            {
                throw new AgentException(ErrorCodes.InvalidRequest,
                    $"failed to {op}: cannot remove '{key}': every endpoint keeps its namespace label");
            }
        }
        if (request.Remove.GroupBy(k => k, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } removedTwice)
        {
            throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {op}: label '{removedTwice.Key}' is removed twice");
        }
    }

    /// <summary>The endpoint's labels after the change; refuses removing what is not there and silently changing a value.</summary>
    private static LabelSet ApplyLabelChange(string op, LabelSet before, EndpointLabelsRequest request)
    {
        var labels = before.Labels.ToDictionary(l => l.Key, l => l.Value, StringComparer.Ordinal);
        foreach (var key in request.Remove)
        {
            if (!labels.Remove(key))
            {
                throw new AgentException(ErrorCodes.InvalidRequest,
                    $"failed to {op}: cannot remove '{key}': the endpoint has no such label (it has {string.Join(", ", before.ToStrings())})");
            }
        }
        foreach (var label in request.Add)
        {
            if (labels.TryGetValue(label.Key, out var value) && value != label.Value)
            {
                throw new AgentException(ErrorCodes.InvalidRequest,
                    $"failed to {op}: cannot add '{label.Key}={label.Value}': the endpoint has '{label.Key}={value}'; remove '{label.Key}' in the same call to replace it");
            }
            labels[label.Key] = label.Value;
        }
        return LabelSet.TryCreate(labels, out var after, out var error)
            ? after
            : throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {op}: {error}");
    }

    private static EndpointLabelsResponse LabelsResponse(EndpointRecord before, EndpointRecord after, bool identityAllocated) => new()
    {
        EndpointId = after.Id,
        Labels = ParseLabels(after).ToStrings(),
        Identity = after.Identity,
        PreviousLabels = ParseLabels(before).ToStrings(),
        PreviousIdentity = before.Identity,
        IdentityAllocated = identityAllocated,
    };

    /// <summary>Every endpoint, by id.</summary>
    public IReadOnlyList<EndpointInfo> List() => _store.Read(tx => tx.ListEndpoints()).Select(Info).ToList();

    /// <summary>The endpoint with <paramref name="id"/>, or null.</summary>
    public EndpointInfo? Get(long id) => _store.Read(tx => tx.GetEndpoint(id)) is { } row ? Info(row) : null;

    /// <summary>
    /// The kernel's endpoint map (GET /v1/bpf/endpoints), each entry named by the agent's
    /// endpoint id where the datapath did not say (matched by host ifindex).
    /// </summary>
    public async Task<IReadOnlyList<BpfEndpointEntry>> ListMapEndpointsAsync(CancellationToken ct)
    {
        var entries = await _datapath.ListMapEndpointsAsync(ct).ConfigureAwait(false);
        var byIfIndex = _store.Read(tx => tx.ListEndpoints())
            .Where(e => e.HostIfIndex != 0)
            .GroupBy(e => e.HostIfIndex)
            .ToDictionary(g => g.Key, g => g.First().Id);
        return entries
            .Select(e => e.EndpointId is null && byIfIndex.TryGetValue(e.IfIndex, out var id) ? e with { EndpointId = id } : e)
            .OrderBy(e => e.IfIndex)
            .ToList();
    }

    /// <summary>How many endpoints there are.</summary>
    public int Count => _store.Read(tx => tx.CountEndpoints());

    /// <summary>
    /// On start: finishes the rows a crash left half-done (an ADD or DEL in flight is undone:
    /// the runtime saw no success for it), and checks the ready ones against the kernel,
    /// marking those whose kernel half is broken <c>not-ready</c>.
    /// </summary>
    public async Task RestoreAsync(CancellationToken ct)
    {
        var rows = _store.Read(tx => tx.ListEndpoints());
        var finished = 0;
        var rebuilt = 0;
        var broken = 0;
        foreach (var row in rows)
        {
            ct.ThrowIfCancellationRequested();
            if (row.State is EndpointStates.Creating or EndpointStates.Disconnecting)
            {
                try
                {
                    await TearDownAsync(row, ct).ConfigureAwait(false);
                    finished++;
                }
                catch (AgentException e)
                {
                    _logger.LogError(e, "restore: could not finish removing endpoint {Id} ({State})", row.Id, row.State);
                }
                continue;
            }
            var problems = await CheckDatapathAsync(row, ct).ConfigureAwait(false);
            if (problems.Count > 0 && RestoreIdentity(row))
            {
                problems = await CheckDatapathAsync(row, ct).ConfigureAwait(false);
            }
            var repaired = row with { State = EndpointStates.Ready };
            if (problems.Count > 0)
            {
                _logger.LogWarning("restore: endpoint {Id} ({ContainerId}/{IfName}) is broken: {Problems}",
                    row.Id, row.ContainerId, row.IfName, string.Join("; ", problems));
                var rebuiltRow = await RebuildAsync(row, ct).ConfigureAwait(false);
                if (rebuiltRow is null)
                {
                    broken++;
                    repaired = row with { State = EndpointStates.NotReady };
                }
                else
                {
                    rebuilt++;
                    repaired = rebuiltRow;
                }
            }
            if (repaired != row)
            {
                _store.Write(tx => tx.UpdateEndpoint(repaired));
            }
        }
        _logger.LogInformation("restored {Count} endpoints ({Finished} half-done ones removed, {Rebuilt} rebuilt, {Broken} not ready)",
            rows.Count - finished, finished, rebuilt, broken);
    }

    /// <summary>
    /// Puts the stored identity back into the endpoint's datapath entry when the kernel holds
    /// another one: an agent killed between the kernel write of a label change and its commit
    /// leaves the new identity in the kernel and the old one in the store, which is the truth
    /// (the change was never acknowledged). True when the entry had to be rewritten.
    /// </summary>
    private bool RestoreIdentity(EndpointRecord row)
    {
        if (row.HostIfIndex == 0)
        {
            return false;
        }
        try
        {
            var previous = _datapath.SetIdentity(Made(row), row.Identity);
            if (previous == row.Identity)
            {
                return false;
            }
            _logger.LogWarning("restore: endpoint {Id}'s datapath entry had identity {Kernel}; set back to {Identity} as stored", row.Id, previous, row.Identity);
            return true;
        }
        catch (Exception e)
        {
            // No entry at all, or the kernel refused: the check's problems stand, and the
            // rebuild below decides what to do with them.
            _logger.LogDebug(e, "restore: endpoint {Id}: its identity could not be rewritten", row.Id);
            return false;
        }
    }

    /// <summary>
    /// Reconciles a broken endpoint with the kernel when that cannot hurt a running pod: its
    /// pod's namespace still exists (the runtime has not called DEL) but its host-side veth is
    /// gone, so the pod has no network at all. Whatever is left of it is removed and the
    /// endpoint built again with the same addresses and identity. Null otherwise (the pod is
    /// gone, the veth exists and something else is wrong, or the rebuild failed): the endpoint
    /// stays not-ready until DEL or GC removes it.
    /// </summary>
    private async Task<EndpointRecord?> RebuildAsync(EndpointRecord row, CancellationToken ct)
    {
        if (row.NetNs is null || !File.Exists(row.NetNs))
        {
            _logger.LogWarning("restore: endpoint {Id}: its network namespace {NetNs} is gone; not rebuilt", row.Id, row.NetNs);
            return null;
        }
        try
        {
            var spec = Spec(row);
            if (await _datapath.HostInterfaceExistsAsync(spec, ct).ConfigureAwait(false))
            {
                return null;
            }
            await _datapath.DeleteAsync(spec, ct).ConfigureAwait(false);
            var made = await _datapath.CreateAsync(spec, ct).ConfigureAwait(false);
            _logger.LogInformation("restore: endpoint {Id} rebuilt on {HostInterface}", row.Id, made.HostInterface);
            return row with
            {
                HostIfIndex = made.HostIfIndex,
                HostMac = made.HostMac,
                PodMac = made.PodMac,
                State = EndpointStates.Ready,
            };
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _logger.LogError(e, "restore: rebuilding endpoint {Id} failed", row.Id);
            return null;
        }
    }

    /// <summary>Asks the datapath what is wrong with an endpoint; a check that throws is itself a problem.</summary>
    private async Task<IReadOnlyList<string>> CheckDatapathAsync(EndpointRecord row, CancellationToken ct)
    {
        try
        {
            return await _datapath.CheckAsync(Spec(row), Made(row), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _logger.LogWarning(e, "checking endpoint {Id} failed", row.Id);
            return [$"the check of {row.HostInterface} failed: {e.Message}"];
        }
    }

    private async Task<bool> DeleteLockedAsync(AllocationOwner owner, string op)
    {
        var row = _store.Read(tx => tx.FindEndpoint(owner.ContainerId, owner.IfName));
        if (row is null)
        {
            // Unknown: success (CNI: DEL is idempotent). Stray allocations of the owner go too.
            var stray = _store.Write(tx => _ipam.Release(tx, owner));
            _logger.LogInformation("DEL {Owner}: no such endpoint{Stray}", owner,
                stray.Count > 0 ? $"; released stray addresses {string.Join(", ", stray.Select(s => s.Address))}" : "");
            return stray.Count > 0;
        }
        try
        {
            await TearDownAsync(row, CancellationToken.None).ConfigureAwait(false);
        }
        catch (AgentException e)
        {
            throw new AgentException(e.Code, $"failed to {op} {owner}: {e.Message}", e.Details, e);
        }
        _logger.LogInformation("DEL {Owner}: endpoint {Id} removed", owner, row.Id);
        return true;
    }

    /// <summary>Marks the row disconnecting, removes the kernel half, then the row and what it holds.</summary>
    private async Task TearDownAsync(EndpointRecord row, CancellationToken ct)
    {
        if (row.State != EndpointStates.Disconnecting)
        {
            row = row with { State = EndpointStates.Disconnecting };
            _store.Write(tx => tx.UpdateEndpoint(row));
        }
        try
        {
            await _datapath.DeleteAsync(Spec(row), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not AgentException and not OperationCanceledException)
        {
            throw new AgentException(ErrorCodes.KernelFailure, $"the kernel refused to remove {row.HostInterface}: {e.Message}", e.GetType().Name, e);
        }
        Forget(row);
    }

    /// <summary>Deletes the row, its addresses and its identity reference in one transaction.</summary>
    private void Forget(EndpointRecord row)
    {
        _store.Write(tx =>
        {
            tx.DeleteEndpoint(row.Id);
            _ipam.Release(tx, new AllocationOwner(row.ContainerId, row.IfName));
            _identities.Release(tx, row.Identity);
        });
        TellPolicy(row.Id, p => p.EndpointRemoved(row.Id));
    }

    /// <summary>
    /// Tells the policy manager of a committed endpoint change. It retries its own kernel
    /// failures; anything else it throws is logged, not passed on: the endpoint change itself
    /// has been committed and must be reported as done.
    /// </summary>
    private void TellPolicy(long id, Action<PolicyManager> change)
    {
        if (_policy is null)
        {
            return;
        }
        try
        {
            change(_policy);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _logger.LogError(e, "endpoint {Id}: updating its policy failed", id);
        }
    }

    private async Task UndoAddAsync(EndpointRecord row, Exception cause)
    {
        _logger.LogWarning(cause, "ADD {ContainerId}/{IfName}: the datapath failed; undoing endpoint {Id}", row.ContainerId, row.IfName, row.Id);
        try
        {
            await _datapath.DeleteAsync(Spec(row), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The kernel may still hold part of the endpoint: keep the row (and its addresses,
            // so they are not handed to another pod) as 'disconnecting' for DEL, GC or the
            // next start to finish.
            _logger.LogError(e, "ADD {ContainerId}/{IfName}: could not remove the partial endpoint {Id}; it stays disconnecting",
                row.ContainerId, row.IfName, row.Id);
            try
            {
                _store.Write(tx => tx.UpdateEndpoint(row with { State = EndpointStates.Disconnecting }));
            }
            catch (Exception storeError)
            {
                _logger.LogError(storeError, "ADD {ContainerId}/{IfName}: could not mark endpoint {Id} disconnecting", row.ContainerId, row.IfName, row.Id);
            }
            return;
        }
        Forget(row);
    }

    private SemaphoreSlim Stripe(AllocationOwner owner) =>
        _stripes[(int)((uint)StringComparer.Ordinal.GetHashCode(owner.ToString()) % (uint)_stripes.Length)];

    private static EndpointSpec Spec(EndpointRecord row) => new()
    {
        EndpointId = row.Id,
        ContainerId = row.ContainerId,
        IfName = row.IfName,
        NetNs = row.NetNs,
        HostInterface = row.HostInterface,
        Mtu = row.Mtu,
        Identity = row.Identity,
        Labels = ParseLabels(row),
        Addresses = new[] { row.Ipv4, row.Ipv6 }.OfType<string>().Select(IpAssignment.Parse).ToList(),
    };

    private static DatapathEndpoint Made(EndpointRecord row) => new(row.HostInterface, row.HostIfIndex, row.HostMac ?? "", row.PodMac ?? "");

    private static LabelSet ParseLabels(EndpointRecord row) =>
        LabelSet.TryParse(row.Labels, out var labels, out var error)
            ? labels
            : throw new AgentException(ErrorCodes.IoFailure, $"failed to read endpoint {row.Id}: its stored labels are invalid: {error}");

    private static CniAddResponse AddResponse(EndpointRecord row)
    {
        var spec = Spec(row);
        return new CniAddResponse
        {
            EndpointId = row.Id,
            HostInterface = row.HostInterface,
            HostMac = row.HostMac ?? "",
            PodMac = row.PodMac ?? "",
            Mtu = row.Mtu,
            // The pod's interface holds a host address (/32, /128: every packet, also to pods in
            // the same CIDR, goes through the gateway and so through the datapath), and the
            // result says what the interface holds, as Cilium's does.
            Ips = spec.Addresses.Select(a => new IpConfig(
                $"{a.Address}/{(a.Address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128)}", a.Gateway.ToString())).ToList(),
            // The pod reaches everything through the gateway: a default route per family.
            Routes = spec.Addresses
                .Select(a => new RouteConfig(a.Address.AddressFamily == AddressFamily.InterNetwork ? "0.0.0.0/0" : "::/0", a.Gateway.ToString()))
                .ToList(),
        };
    }

    private static EndpointInfo Info(EndpointRecord row) => new()
    {
        Id = row.Id,
        ContainerId = row.ContainerId,
        IfName = row.IfName,
        NetNs = row.NetNs,
        PodNamespace = row.PodNamespace,
        PodName = row.PodName,
        Ipv4 = row.Ipv4 is null ? null : IpAssignment.Parse(row.Ipv4).Address.ToString(),
        Ipv6 = row.Ipv6 is null ? null : IpAssignment.Parse(row.Ipv6).Address.ToString(),
        Labels = ParseLabels(row).ToStrings(),
        Identity = row.Identity,
        HostInterface = row.HostInterface,
        HostIfIndex = row.HostIfIndex,
        Mac = row.PodMac,
        State = row.State,
    };
}
