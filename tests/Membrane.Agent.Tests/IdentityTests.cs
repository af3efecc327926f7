using Membrane.Agent.Identities;
using Membrane.Agent.Store;
using Microsoft.Extensions.Time.Testing;
using Membrane.Policy.Identities;

namespace Membrane.Agent.Tests;

public sealed class IdentityTests : IDisposable
{
    private static readonly TimeSpan Grace = TimeSpan.FromMinutes(5);
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private AgentStore _store;

    public IdentityTests() => _store = AgentStore.Open(_dir.Path);

    public void Dispose()
    {
        _store.Dispose();
        _dir.Dispose();
    }

    private IdentityAllocator Allocator() => new(_store, Grace, _time);

    private static LabelSet Labels(params string[] pairs)
    {
        Assert.True(LabelSet.TryCreate(pairs.Select(p => p.Split('=')).Select(kv => new KeyValuePair<string, string>(kv[0], kv[1])), out var set, out var error), error);
        return set;
    }

    private uint Acquire(IdentityAllocator a, LabelSet labels) => _store.Write(tx => a.Acquire(tx, labels));

    private void Release(IdentityAllocator a, uint id) => _store.Write(tx => a.Release(tx, id));

    [Fact]
    public void TheSameSetGetsTheSameNumberInAnyOrderAndOthersGetTheirOwn()
    {
        var a = Allocator();
        var web = Acquire(a, Labels("app=web", "k8s:tier=front"));
        Assert.Equal(ReservedIdentities.FirstAllocated, web);
        Assert.Equal(web, Acquire(a, Labels("k8s:tier=front", "app=web")));
        var api = Acquire(a, Labels("app=api"));
        Assert.NotEqual(web, api);
        Assert.InRange(api, ReservedIdentities.FirstAllocated, ReservedIdentities.Max);
        Assert.Equal(2, a.Lookup(web)!.References);
        Assert.Equal("app=web;k8s:tier=front", a.Lookup(web)!.Labels.ToString());
        Assert.Equal(web, a.Lookup(Labels("app=web", "k8s:tier=front"))!.Id);
    }

    [Fact]
    public void NumbersPersistAcrossReopenWithReferencesRecountedFromEndpoints()
    {
        var a = Allocator();
        var web = Acquire(a, Labels("app=web"));
        var db = Acquire(a, Labels("app=db"));
        // One endpoint row holds "web"; "db" has no endpoint, so after a restart it is unused.
        _store.Write(tx => tx.InsertEndpoint(new EndpointRecord
        {
            ContainerId = "c1", IfName = "eth0", Labels = "app=web", Identity = web, HostInterface = "lxc1", State = EndpointStates.Ready, Mtu = 1500,
        }));
        _store.Dispose();
        _store = AgentStore.Open(_dir.Path);
        var b = Allocator();
        Assert.Equal(web, Acquire(b, Labels("app=web")));
        Assert.Equal(2, b.Lookup(web)!.References);
        Assert.Equal(0, b.Lookup(db)!.References);
        Assert.NotNull(b.Lookup(db)!.UnusedSince);
        var fresh = Acquire(b, Labels("app=new"));
        Assert.True(fresh > db, "new numbers continue after the highest stored one");
    }

    [Fact]
    public void ReservedIdentitiesHaveTheirFixedNumbers()
    {
        Assert.Equal(["unknown", "host", "world", "unmanaged", "health", "init", "remote-node"], Enumerable.Range(0, 7).Select(i => ReservedIdentities.NameOf((uint)i)));
        var a = Allocator();
        Assert.Equal("host", a.Lookup(ReservedIdentities.Host)!.ReservedName);
        Assert.Equal("remote-node", a.Lookup(6)!.ReservedName);
        Assert.Null(a.Lookup(7));
        Assert.True(ReservedIdentities.TryGet("world", out var world));
        Assert.Equal(2u, world);
        Assert.Equal(7, a.List().Count);
        Assert.Equal((1u << 24) - 1, ReservedIdentities.Max);
        // Releasing a reserved identity is a no-op, not an error.
        Release(a, ReservedIdentities.World);
    }

    [Fact]
    public void ReservedLabelsCannotBeAskedFor()
    {
        Assert.False(LabelSet.TryCreate([new("reserved:host", "")], out _, out var error));
        Assert.Contains("reserved", error, StringComparison.Ordinal);
    }

    [Fact]
    public void AnUnusedIdentityKeepsItsNumberForTheGracePeriodThenIsFreed()
    {
        var a = Allocator();
        var web = Acquire(a, Labels("app=web"));
        Release(a, web);
        Assert.Equal(_time.GetUtcNow(), a.Lookup(web)!.UnusedSince);

        _time.Advance(Grace - TimeSpan.FromSeconds(1));
        Assert.Empty(a.CollectUnused());
        // Coming back within the grace period: the same number, in use again.
        Assert.Equal(web, Acquire(a, Labels("app=web")));
        Assert.Null(a.Lookup(web)!.UnusedSince);
        _time.Advance(Grace * 2);
        Assert.Empty(a.CollectUnused()); // in use: never collected

        Release(a, web);
        _time.Advance(Grace);
        Assert.Equal([web], a.CollectUnused());
        Assert.Null(a.Lookup(web));
        Assert.Empty(_store.Read(tx => tx.ListIdentities()));
        // The set comes back later: it gets a new number (freed numbers are not reused at once).
        Assert.NotEqual(web, Acquire(a, Labels("app=web")));
    }

    [Fact]
    public void TheGracePeriodSurvivesARestart()
    {
        var a = Allocator();
        var web = Acquire(a, Labels("app=web"));
        Release(a, web);
        _time.Advance(TimeSpan.FromMinutes(3));
        _store.Dispose();
        _store = AgentStore.Open(_dir.Path);
        var b = Allocator();
        Assert.Empty(b.CollectUnused());
        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal([web], b.CollectUnused());
    }

    [Fact]
    public void ARolledBackAcquireOrReleaseChangesNothing()
    {
        var a = Allocator();
        Assert.Throws<InvalidOperationException>(() => _store.Write(tx =>
        {
            a.Acquire(tx, Labels("app=web"));
            throw new InvalidOperationException("boom");
        }));
        Assert.Null(a.Lookup(Labels("app=web")));
        Assert.Empty(_store.Read(tx => tx.ListIdentities()));
        Assert.Equal(ReservedIdentities.FirstAllocated, Acquire(a, Labels("app=web"))); // the number was not consumed

        var web = ReservedIdentities.FirstAllocated;
        Assert.Throws<InvalidOperationException>(() => _store.Write(tx =>
        {
            a.Release(tx, web);
            throw new InvalidOperationException("boom");
        }));
        Assert.Equal(1, a.Lookup(web)!.References);
        Assert.Null(a.Lookup(web)!.UnusedSince);
        Assert.Null(_store.Read(tx => tx.ListIdentities()).Single().UnusedSince);
    }

    [Fact]
    public void ReleasingMoreThanWasAcquiredIsABug()
    {
        var a = Allocator();
        var web = Acquire(a, Labels("app=web"));
        Release(a, web);
        Assert.Throws<InvalidOperationException>(() => Release(a, web));
    }

    [Theory]
    [InlineData("app", "web", true)]
    [InlineData("k8s:app", "web", true)]
    [InlineData("example.com/app", "", true)]
    [InlineData("k8s:io.kubernetes.pod.namespace", "default", true)]
    [InlineData("", "web", false)]
    [InlineData("app", "-web", false)]
    [InlineData("app", "a;b=c", false)]
    [InlineData("a=b", "web", false)]
    [InlineData("Example.com/app", "web", false)]
    public void LabelSyntaxIsChecked(string key, string value, bool valid)
    {
        Assert.Equal(valid, LabelSet.TryCreate([new(key, value)], out _, out var error));
        Assert.Equal(valid, error is null);
    }

    [Fact]
    public void LabelSetsRoundTripThroughTheirCanonicalForm()
    {
        var set = Labels("z=1", "app=web", "k8s:a=");
        Assert.Equal("app=web;k8s:a=;z=1", set.ToString());
        Assert.True(LabelSet.TryParse(set.ToString(), out var back, out _));
        Assert.Equal(set, back);
        Assert.Equal(["app=web", "k8s:a=", "z=1"], back.ToStrings());
        Assert.True(LabelSet.TryParse("", out var empty, out _));
        Assert.Same(LabelSet.Empty, empty);
        Assert.False(LabelSet.TryCreate([new("app", "a"), new("app", "b")], out _, out var duplicate));
        Assert.Contains("twice", duplicate, StringComparison.Ordinal);
    }
}
