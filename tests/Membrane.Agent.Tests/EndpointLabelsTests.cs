using Membrane.Agent.Endpoints;
using Membrane.Agent.Identities;
using Membrane.Agent.Ipam;
using Membrane.Agent.Store;
using Membrane.Api;
using Microsoft.Extensions.Time.Testing;
using Membrane.Policy.Identities;

namespace Membrane.Agent.Tests;

/// <summary>
/// An endpoint's labels and identity: the namespace label the agent adds at ADD, and label
/// changes at run time (one transaction with the datapath entry as its last step; validation
/// and kernel failures change nothing).
/// </summary>
public sealed class EndpointLabelsTests : IDisposable
{
    private const string Ns = "k8s:io.kubernetes.pod.namespace";
    private static readonly TimeSpan Grace = TimeSpan.FromMinutes(5);
    private readonly TempDir _dir = new();
    private readonly RecordingDatapath _datapath = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private AgentStore _store;
    private IdentityAllocator _identities = null!;
    private EndpointManager _manager = null!;

    public EndpointLabelsTests()
    {
        _store = AgentStore.Open(_dir.Path);
        Build();
    }

    private void Build()
    {
        var ipam = new IpamAllocator(_store, [IpamAllocator.ParseCidr("198.18.0.0/24")]);
        _identities = new IdentityAllocator(_store, Grace, _time);
        _manager = new EndpointManager(_store, ipam, _identities, _datapath, _time);
    }

    private void Reopen()
    {
        _store.Dispose();
        _store = AgentStore.Open(_dir.Path);
        Build();
    }

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }

    private static CniAddRequest Add(string cid, string? podNamespace, params Label[] labels) => new()
    {
        ContainerId = cid,
        IfName = "eth0",
        NetNs = $"/var/run/netns/{cid}",
        PodNamespace = podNamespace,
        PodName = "pod-" + cid,
        Labels = labels.Length > 0 ? labels : [new Label("app", "web")],
    };

    private static EndpointLabelsRequest Change(string[]? remove = null, params string[] add) => new()
    {
        Add = [.. add.Select(a => a.Split('=', 2)).Select(kv => new Label(kv[0], kv[1]))],
        Remove = remove ?? [],
    };

    private uint KernelIdentity(CniAddResponse added) => _datapath.Kernel[added.HostInterface].Identity;

    /// <summary>Everything a label change may touch, as text: rows, identities (with counts and timestamps), kernel entries.</summary>
    private string Snapshot() => string.Join("\n",
        _store.Read(tx => tx.ListEndpoints()).Select(e => $"{e.Id} {e.Labels} {e.Identity} {e.State}")
            .Concat(_store.Read(tx => tx.ListIdentities()).Select(i => $"row {i.Id} {i.Labels} {i.UnusedSince}"))
            .Concat(_identities.List().Select(i => $"mem {i.Id} {i.Labels} {i.References} {i.UnusedSince}"))
            .Concat(_datapath.Kernel.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"kernel {k.Key} {k.Value.Identity}")));

    [Fact]
    public async Task TheAgentAddsTheNamespaceLabelSoTheSamePodLabelsInTwoNamespacesAreTwoIdentities()
    {
        var a = await _manager.AddAsync(Add("c1", "shop"), default);
        var b = await _manager.AddAsync(Add("c2", "bank"), default);
        var c = await _manager.AddAsync(Add("c3", null), default);
        var d = await _manager.AddAsync(Add("c4", "default", new Label("app", "web"), new Label(Ns, "default")), default); // repeating it is fine

        Assert.Equal(["app=web", $"{Ns}=shop"], _manager.Get(a.EndpointId)!.Labels);
        Assert.Equal(["app=web", $"{Ns}=bank"], _manager.Get(b.EndpointId)!.Labels);
        Assert.Equal(["app=web", $"{Ns}=default"], _manager.Get(c.EndpointId)!.Labels); // no K8S_POD_NAMESPACE: "default"
        var identities = new[] { a, b, c, d }.Select(e => _manager.Get(e.EndpointId)!.Identity).ToList();
        Assert.Equal(3, identities.Distinct().Count());
        Assert.Equal(identities[2], identities[3]);
        Assert.Equal(identities[0], KernelIdentity(a));
        Assert.Equal("app=web;k8s:io.kubernetes.pod.namespace=bank", _identities.Lookup(identities[1])!.Labels.ToString());
    }

    [Theory]
    [InlineData("k8s:io.kubernetes.pod.namespace", "bank", "contradicts the pod's namespace 'shop'")]
    [InlineData("io.kubernetes.pod.namespace", "shop", "contradicts the pod's namespace 'shop'")]
    [InlineData("any:io.kubernetes.pod.namespace", "bank", "the agent sets k8s:io.kubernetes.pod.namespace itself")]
    public async Task APodCannotClaimAnotherNamespaceThroughItsLabels(string key, string value, string why)
    {
        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.AddAsync(Add("c1", "shop", new Label(key, value)), default));
        Assert.Equal(ErrorCodes.InvalidRequest, error.Code);
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
        Assert.Empty(_store.Read(tx => tx.ListEndpoints()));
        Assert.Empty(_store.Read(tx => tx.ListIdentities()));
        Assert.Empty(_datapath.Calls);
    }

    [Fact]
    public async Task AnInvalidPodNamespaceIsRefusedNamingIt()
    {
        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.AddAsync(Add("c1", "Not_A-namespace-"), default));
        Assert.Equal(ErrorCodes.InvalidRequest, error.Code);
        Assert.Contains("invalid pod namespace 'Not_A-namespace-'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EndpointsRestoredFromTheStoreKeepTheLabelsTheyHave()
    {
        // An endpoint an earlier agent stored without the namespace label.
        var added = await _manager.AddAsync(Add("c1", "shop"), default);
        var row = _store.Read(tx => tx.GetEndpoint(added.EndpointId))!;
        var old = _store.Write(tx => _identities.Acquire(tx, LabelSetOf("app=web")));
        _store.Write(tx =>
        {
            tx.UpdateEndpoint(row with { Labels = "app=web", Identity = old });
            _identities.Release(tx, row.Identity);
        });
        _datapath.Kernel[added.HostInterface] = _datapath.Kernel[added.HostInterface] with { Identity = old };

        Reopen();
        await _manager.RestoreAsync(default);
        var info = _manager.Get(added.EndpointId)!;
        Assert.Equal(["app=web"], info.Labels);
        Assert.Equal((old, EndpointStates.Ready), (info.Identity, info.State));
        Assert.Equal(1, _identities.Lookup(old)!.References);
    }

    [Fact]
    public async Task ChangingLabelsMovesTheEndpointToTheIdentityOfItsNewSetAndTheOldOneEntersItsGracePeriod()
    {
        var web1 = await _manager.AddAsync(Add("c1", "shop"), default);
        var web2 = await _manager.AddAsync(Add("c2", "shop"), default);
        var web = _manager.Get(web1.EndpointId)!.Identity;
        Assert.Equal(ReservedIdentities.FirstAllocated, web);

        var first = await _manager.ChangeLabelsAsync(web1.EndpointId, Change(["app"], "app=db", "tier=back"), default);
        var db = first.Identity;
        Assert.Equal(["app=db", $"{Ns}=shop", "tier=back"], first.Labels);
        Assert.Equal(["app=web", $"{Ns}=shop"], first.PreviousLabels);
        Assert.Equal((web, true), (first.PreviousIdentity, first.IdentityAllocated));
        Assert.NotEqual(web, db);
        Assert.Equal(db, KernelIdentity(web1));
        Assert.Equal(web, KernelIdentity(web2));
        Assert.Equal((1, (DateTimeOffset?)null), (_identities.Lookup(web)!.References, _identities.Lookup(web)!.UnusedSince));
        Assert.Equal(1, _identities.Lookup(db)!.References);

        // The second pod follows: the identity exists now, and the old one is unused from this moment.
        _time.Advance(TimeSpan.FromSeconds(30));
        var second = await _manager.ChangeLabelsAsync(web2.EndpointId, Change(["app"], "app=db", "tier=back"), default);
        Assert.Equal((db, false), (second.Identity, second.IdentityAllocated));
        Assert.Equal((0, _time.GetUtcNow()), (_identities.Lookup(web)!.References, _identities.Lookup(web)!.UnusedSince));
        Assert.Equal(2, _identities.Lookup(db)!.References);

        // Persisted: a restarted agent sees the new labels and identity and recounts the references.
        Reopen();
        var info = _manager.Get(web2.EndpointId)!;
        Assert.Equal(["app=db", $"{Ns}=shop", "tier=back"], info.Labels);
        Assert.Equal(db, info.Identity);
        Assert.Equal(2, _identities.Lookup(db)!.References);
        Assert.Equal(_time.GetUtcNow(), _identities.Lookup(web)!.UnusedSince);

        // Back within the grace period: the old number again; once it ran out unused, freed.
        var back = await _manager.ChangeLabelsAsync(web2.EndpointId, Change(["app", "tier"], "app=web"), default);
        Assert.Equal((web, false), (back.Identity, back.IdentityAllocated));
        Assert.Equal(web, KernelIdentity(web2));
        await _manager.ChangeLabelsAsync(web2.EndpointId, Change(["app"], "app=db", "tier=back"), default);
        _time.Advance(Grace);
        Assert.Equal([web], _identities.CollectUnused());
    }

    [Fact]
    public async Task AddingALabelTheEndpointHasWithTheSameValueChangesNothing()
    {
        var added = await _manager.AddAsync(Add("c1", "shop"), default);
        var before = Snapshot();
        var response = await _manager.ChangeLabelsAsync(added.EndpointId, Change(null, "app=web"), default);
        Assert.Equal((response.PreviousIdentity, false), (response.Identity, response.IdentityAllocated));
        Assert.Equal(before, Snapshot());
        Assert.DoesNotContain(_datapath.Calls, c => c.StartsWith("set-identity", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WhenTheKernelRefusesTheNewIdentityTheStoreChangeIsRolledBack()
    {
        var added = await _manager.AddAsync(Add("c1", "shop"), default);
        var before = Snapshot();
        _datapath.FailSetIdentity = new IOException("BPF_MAP_UPDATE_ELEM: Cannot allocate memory");

        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.ChangeLabelsAsync(added.EndpointId, Change(["app"], "app=db"), default));
        Assert.Equal(ErrorCodes.KernelFailure, error.Code);
        Assert.Equal($"failed to change the labels of endpoint {added.EndpointId}: the kernel refused to update the endpoint entry of {added.HostInterface}: " +
            "BPF_MAP_UPDATE_ELEM: Cannot allocate memory; nothing was changed", error.Message);
        Assert.Equal(before, Snapshot()); // no new identity row, the old one still referenced, the row as it was
        Assert.Null(_identities.Lookup(LabelSetOf("app=db", $"{Ns}=shop")));

        // The number the failed change had taken is handed out next: it was never consumed.
        _datapath.FailSetIdentity = null;
        var retry = await _manager.ChangeLabelsAsync(added.EndpointId, Change(["app"], "app=db"), default);
        Assert.Equal(ReservedIdentities.FirstAllocated + 1, retry.Identity);
        Assert.Equal(retry.Identity, KernelIdentity(added));
    }

    [Fact]
    public async Task ACommitThatFailsAfterTheKernelTookTheNewIdentityPutsTheOldOneBack()
    {
        var added = await _manager.AddAsync(Add("c1", "shop"), default);
        var before = Snapshot();
        // A deferred foreign key is checked at COMMIT: a trigger that breaks one on every label
        // change makes the commit itself fail, after every step of the transaction (the kernel
        // write last) has succeeded.
        using (var sql = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={_store.DatabasePath};Pooling=False"))
        {
            sql.Open();
            using var command = sql.CreateCommand();
            command.CommandText = """
                CREATE TABLE test_parent (id INTEGER PRIMARY KEY);
                CREATE TABLE test_child (parent INTEGER REFERENCES test_parent (id) DEFERRABLE INITIALLY DEFERRED);
                CREATE TRIGGER test_fail_commit AFTER UPDATE OF labels ON endpoints BEGIN INSERT INTO test_child VALUES (42); END;
                """;
            command.ExecuteNonQuery();
        }

        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.ChangeLabelsAsync(added.EndpointId, Change(["app"], "app=db"), default));
        Assert.Equal(ErrorCodes.IoFailure, error.Code);
        Assert.StartsWith($"failed to change the labels of endpoint {added.EndpointId}: the state database refused the change: ", error.Message, StringComparison.Ordinal);
        Assert.Contains("FOREIGN KEY constraint failed", error.Message, StringComparison.Ordinal);
        Assert.Equal(
            [$"set-identity {added.HostInterface} {ReservedIdentities.FirstAllocated + 1}", $"set-identity {added.HostInterface} {ReservedIdentities.FirstAllocated}"],
            _datapath.Calls.Where(c => c.StartsWith("set-identity", StringComparison.Ordinal)));
        Assert.Equal(before, Snapshot()); // the kernel has the old identity again
    }

    [Fact]
    public async Task ARestartAfterACrashBetweenTheKernelWriteAndTheCommitPutsTheStoredIdentityBack()
    {
        var added = await _manager.AddAsync(Add("c1", "shop"), default);
        var stored = _manager.Get(added.EndpointId)!.Identity;
        // What a SIGKILL between SetIdentity and COMMIT leaves: the kernel has a number the store never recorded.
        _datapath.Kernel[added.HostInterface] = _datapath.Kernel[added.HostInterface] with { Identity = stored + 1 };

        Reopen();
        await _manager.RestoreAsync(default);
        Assert.Equal(stored, KernelIdentity(added));
        Assert.Equal(EndpointStates.Ready, _manager.Get(added.EndpointId)!.State);
    }

    [Fact]
    public async Task AnEndpointWithoutADatapathEntryKeepsItsLabels()
    {
        var added = await _manager.AddAsync(Add("c1", "shop"), default);
        _datapath.Kernel.TryRemove(added.HostInterface, out _); // its entry is gone from the maps
        var before = Snapshot();
        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.ChangeLabelsAsync(added.EndpointId, Change(null, "team=a"), default));
        Assert.Equal(ErrorCodes.KernelFailure, error.Code);
        Assert.Contains("no endpoint entry for ifindex", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("nothing was changed", error.Message, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot());
    }

    public static TheoryData<string[]?, string[], string> InvalidChanges => new()
    {
        { null, [], "nothing to add or remove" },
        { null, ["-app=x"], "invalid label to add: label key \"-app\"" },
        { null, ["app=bad value"], "invalid label to add: label value \"bad value\"" },
        { null, ["reserved:host="], "cannot add 'reserved:host': the source 'reserved' is kept for the agent's reserved identities" },
        { null, [$"{Ns}=bank"], $"cannot add '{Ns}': the agent sets {Ns} from the pod's namespace" },
        { null, ["io.kubernetes.pod.namespace=bank"], "cannot add 'io.kubernetes.pod.namespace'" },
        { [Ns], [], $"cannot remove '{Ns}': every endpoint keeps its namespace label" },
        { ["tier"], [], $"cannot remove 'tier': the endpoint has no such label (it has app=web, {Ns}=shop)" },
        { ["k8s:app"], [], "cannot remove 'k8s:app': the endpoint has no such label" },
        { null, ["app=db"], "cannot add 'app=db': the endpoint has 'app=web'; remove 'app' in the same call to replace it" },
        { null, ["team=a", "team=b"], "label 'team' is added twice" },
        { ["app", "app"], [], "label 'app' is removed twice" },
        { ["bad key"], [], "invalid label key to remove" },
        { ["app"], ["team=a", "app=x=y"], "invalid label to add: label value \"x=y\"" },
    };

    [Theory]
    [MemberData(nameof(InvalidChanges))]
    public async Task AnInvalidChangeIsRefusedNamingWhatIsWrongAndChangesNothing(string[]? remove, string[] add, string why)
    {
        var added = await _manager.AddAsync(Add("c1", "shop"), default);
        var before = Snapshot();
        var calls = _datapath.Calls.Count;
        var error = await Assert.ThrowsAsync<AgentException>(() => _manager.ChangeLabelsAsync(added.EndpointId, Change(remove, add), default));
        Assert.Equal(ErrorCodes.InvalidRequest, error.Code);
        Assert.StartsWith($"failed to change the labels of endpoint {added.EndpointId}: ", error.Message, StringComparison.Ordinal);
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
        Assert.Equal(before, Snapshot());
        Assert.Equal(calls, _datapath.Calls.Count);
    }

    [Fact]
    public async Task AnUnknownOrDisconnectingEndpointIsReportedWithItsCode()
    {
        var unknown = await Assert.ThrowsAsync<AgentException>(() => _manager.ChangeLabelsAsync(42, Change(null, "team=a"), default));
        Assert.Equal(ErrorCodes.UnknownContainer, unknown.Code);
        Assert.Equal("failed to change the labels of endpoint 42: there is no such endpoint", unknown.Message);

        var added = await _manager.AddAsync(Add("c1", "shop"), default);
        _store.Write(tx => tx.UpdateEndpoint(tx.GetEndpoint(added.EndpointId)! with { State = EndpointStates.Disconnecting }));
        var busy = await Assert.ThrowsAsync<AgentException>(() => _manager.ChangeLabelsAsync(added.EndpointId, Change(null, "team=a"), default));
        Assert.Equal(ErrorCodes.TryAgainLater, busy.Code);
        Assert.Contains("it is disconnecting", busy.Message, StringComparison.Ordinal);
    }

    private static LabelSet LabelSetOf(params string[] pairs)
    {
        Assert.True(LabelSet.TryCreate(pairs.Select(p => p.Split('=', 2)).Select(kv => new KeyValuePair<string, string>(kv[0], kv[1])), out var set, out var error), error);
        return set;
    }
}
