using Membrane.Agent.Store;
using Microsoft.Data.Sqlite;

namespace Membrane.Agent.Tests;

public sealed class StoreTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static EndpointRecord Endpoint(string cid) => new()
    {
        ContainerId = cid,
        IfName = "eth0",
        NetNs = "/var/run/netns/" + cid,
        Labels = "app=web",
        Identity = 256,
        Mtu = 1500,
        Ipv4 = "198.18.0.2/24",
        HostInterface = "lxc" + cid,
        State = EndpointStates.Ready,
        CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_000),
    };

    [Fact]
    public void OpensInWalModeWithFullSyncAndTheCurrentSchema()
    {
        using var store = AgentStore.Open(_dir.Path);
        Assert.Equal("wal", store.Pragma("journal_mode"));
        Assert.Equal("2", store.Pragma("synchronous")); // 2 = FULL
        Assert.Equal(AgentStore.SchemaVersion.ToString(System.Globalization.CultureInfo.InvariantCulture), store.Pragma("user_version"));
        Assert.True(AgentStore.SchemaVersion >= 1);
    }

    [Fact]
    public void WritesSurviveReopening()
    {
        EndpointRecord written;
        using (var store = AgentStore.Open(_dir.Path))
        {
            written = store.Write(tx =>
            {
                tx.InsertAllocation(new IpAllocationRecord("198.18.0.2", "198.18.0.0/24", "c1", "eth0", DateTimeOffset.FromUnixTimeMilliseconds(5)));
                tx.InsertIdentity(new IdentityRecord(256, "app=web", DateTimeOffset.FromUnixTimeMilliseconds(6), null));
                return tx.InsertEndpoint(Endpoint("c1"));
            });
        }
        using (var store = AgentStore.Open(_dir.Path))
        {
            var endpoints = store.Read(tx => tx.ListEndpoints());
            Assert.Equal([written], endpoints);
            Assert.Equal([new IpAllocationRecord("198.18.0.2", "198.18.0.0/24", "c1", "eth0", DateTimeOffset.FromUnixTimeMilliseconds(5))],
                store.Read(tx => tx.ListAllocations()));
            Assert.Equal([new IdentityRecord(256, "app=web", DateTimeOffset.FromUnixTimeMilliseconds(6), null)], store.Read(tx => tx.ListIdentities()));
        }
    }

    [Fact]
    public void ACommittedWriteIsVisibleToAnotherConnectionBeforeTheStoreCloses()
    {
        // Acknowledged means committed to the database file (WAL), not buffered in our process:
        // a second, independent connection sees it while the first store is still open.
        using var store = AgentStore.Open(_dir.Path);
        store.Write(tx => tx.InsertEndpoint(Endpoint("c1")));
        using var other = new SqliteConnection($"Data Source={store.DatabasePath};Pooling=False;Mode=ReadOnly");
        other.Open();
        using var command = other.CreateCommand();
        command.CommandText = "SELECT container_id FROM endpoints;";
        Assert.Equal("c1", command.ExecuteScalar());
    }

    [Fact]
    public void TheFilesOfARunningAgentHoldEveryAcknowledgedWrite()
    {
        // What kill -9 leaves behind: the database and its WAL as they are on disk while the
        // store is open (no checkpoint, no close). A copy of them must hold every committed write.
        using var store = AgentStore.Open(_dir.Path);
        for (var i = 0; i < 20; i++)
        {
            store.Write(tx => tx.InsertEndpoint(Endpoint($"c{i}")));
        }
        var crashed = System.IO.Path.Combine(_dir.Path, "crashed");
        Directory.CreateDirectory(crashed);
        foreach (var file in Directory.GetFiles(_dir.Path, AgentStore.FileName + "*"))
        {
            File.Copy(file, System.IO.Path.Combine(crashed, System.IO.Path.GetFileName(file)));
        }
        Assert.True(File.Exists(System.IO.Path.Combine(crashed, AgentStore.FileName + "-wal")), "the writes are in the WAL, not checkpointed");
        using var recovered = AgentStore.Open(crashed);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"c{i}"), recovered.Read(tx => tx.ListEndpoints()).Select(e => e.ContainerId));
    }

    [Fact]
    public void ATransactionThatThrowsHalfWayLeavesNothing()
    {
        using var store = AgentStore.Open(_dir.Path);
        var undone = new List<string>();
        var error = Assert.Throws<InvalidOperationException>(() => store.Write(tx =>
        {
            tx.InsertEndpoint(Endpoint("c1"));
            tx.OnRollback(() => undone.Add("first"));
            tx.InsertAllocation(new IpAllocationRecord("198.18.0.2", "198.18.0.0/24", "c1", "eth0", DateTimeOffset.UnixEpoch));
            tx.OnRollback(() => undone.Add("second"));
            throw new InvalidOperationException("boom");
        }));
        Assert.Equal("boom", error.Message);
        Assert.Equal(["second", "first"], undone); // newest first
        Assert.Empty(store.Read(tx => tx.ListEndpoints()));
        Assert.Empty(store.Read(tx => tx.ListAllocations()));

        store.Dispose();
        using var reopened = AgentStore.Open(_dir.Path);
        Assert.Empty(reopened.Read(tx => tx.ListEndpoints()));
    }

    [Fact]
    public void AConstraintViolationRollsBackTheWholeTransaction()
    {
        using var store = AgentStore.Open(_dir.Path);
        store.Write(tx => tx.InsertAllocation(new IpAllocationRecord("198.18.0.2", "198.18.0.0/24", "c1", "eth0", DateTimeOffset.UnixEpoch)));
        Assert.Throws<SqliteException>(() => store.Write(tx =>
        {
            tx.InsertEndpoint(Endpoint("c2"));
            // The same address again: the primary key refuses it, after the endpoint row was written.
            tx.InsertAllocation(new IpAllocationRecord("198.18.0.2", "198.18.0.0/24", "c2", "eth0", DateTimeOffset.UnixEpoch));
        }));
        Assert.Empty(store.Read(tx => tx.ListEndpoints()));
        Assert.Single(store.Read(tx => tx.ListAllocations()));
    }

    [Fact]
    public void EndpointRowsUpdateAndDelete()
    {
        using var store = AgentStore.Open(_dir.Path);
        var e = store.Write(tx => tx.InsertEndpoint(Endpoint("c1")));
        var second = store.Write(tx => tx.InsertEndpoint(Endpoint("c2")));
        Assert.NotEqual(e.Id, second.Id);
        store.Write(tx => tx.UpdateEndpoint(e with { State = EndpointStates.NotReady, HostIfIndex = 7, HostMac = "02:00:00:00:00:07" }));
        Assert.Equal(e with { State = EndpointStates.NotReady, HostIfIndex = 7, HostMac = "02:00:00:00:00:07" }, store.Read(tx => tx.GetEndpoint(e.Id)));
        Assert.Equal(second, store.Read(tx => tx.FindEndpoint("c2", "eth0")));
        Assert.True(store.Write(tx => tx.DeleteEndpoint(e.Id)));
        Assert.False(store.Write(tx => tx.DeleteEndpoint(e.Id)));
        Assert.Null(store.Read(tx => tx.GetEndpoint(e.Id)));
        Assert.Throws<InvalidOperationException>(() => store.Write(tx => tx.UpdateEndpoint(e)));
    }

    [Fact]
    public void EndpointIdsAreNeverReused()
    {
        long first;
        using (var store = AgentStore.Open(_dir.Path))
        {
            first = store.Write(tx => tx.InsertEndpoint(Endpoint("c1"))).Id;
            store.Write(tx => tx.DeleteEndpoint(first));
        }
        using var reopened = AgentStore.Open(_dir.Path);
        Assert.True(reopened.Write(tx => tx.InsertEndpoint(Endpoint("c2"))).Id > first);
    }

    [Fact]
    public void RefusesADatabaseWithANewerSchema()
    {
        AgentStore.Open(_dir.Path).Dispose();
        using (var raw = new SqliteConnection($"Data Source={Path.Combine(_dir.Path, AgentStore.FileName)};Pooling=False"))
        {
            raw.Open();
            using var command = raw.CreateCommand();
            command.CommandText = $"PRAGMA user_version = {AgentStore.SchemaVersion + 1};";
            command.ExecuteNonQuery();
        }
        var error = Assert.Throws<AgentException>(() => AgentStore.Open(_dir.Path));
        Assert.Equal(Api.ErrorCodes.IncompatibleVersion, error.Code);
        Assert.Contains("newer than this agent's", error.Message, StringComparison.Ordinal);
    }
}
