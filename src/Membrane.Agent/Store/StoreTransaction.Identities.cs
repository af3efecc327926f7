using Microsoft.Data.Sqlite;

namespace Membrane.Agent.Store;

public sealed partial class StoreTransaction
{
    /// <summary>Records a newly allocated identity.</summary>
    public void InsertIdentity(IdentityRecord identity)
    {
        using var command = Command("INSERT INTO identities (id, labels, created_at, unused_since) VALUES ($id, $labels, $created, $unused);");
        command.Parameters.AddWithValue("$id", (long)identity.Id);
        command.Parameters.AddWithValue("$labels", identity.Labels);
        command.Parameters.AddWithValue("$created", identity.CreatedAt.ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$unused", DbValue(identity.UnusedSince?.ToUnixTimeMilliseconds()));
        command.ExecuteNonQuery();
    }

    /// <summary>Sets (or with null clears) the time since which no endpoint uses an identity.</summary>
    public void SetIdentityUnusedSince(uint id, DateTimeOffset? unusedSince)
    {
        using var command = Command("UPDATE identities SET unused_since = $unused WHERE id = $id;");
        command.Parameters.AddWithValue("$id", (long)id);
        command.Parameters.AddWithValue("$unused", DbValue(unusedSince?.ToUnixTimeMilliseconds()));
        if (command.ExecuteNonQuery() != 1)
        {
            throw new InvalidOperationException($"failed to update identity {id}: it does not exist");
        }
    }

    /// <summary>Deletes an identity; false when there was none.</summary>
    public bool DeleteIdentity(uint id)
    {
        using var command = Command("DELETE FROM identities WHERE id = $id;");
        command.Parameters.AddWithValue("$id", (long)id);
        return command.ExecuteNonQuery() == 1;
    }

    /// <summary>Every allocated identity, by number.</summary>
    public List<IdentityRecord> ListIdentities()
    {
        using var command = Command("SELECT id, labels, created_at, unused_since FROM identities ORDER BY id;");
        var list = new List<IdentityRecord>();
        using var r = command.ExecuteReader();
        while (r.Read())
        {
            list.Add(new IdentityRecord(checked((uint)r.GetInt64(0)), r.GetString(1), FromUnixMs(r.GetInt64(2)),
                r.IsDBNull(3) ? null : FromUnixMs(r.GetInt64(3))));
        }
        return list;
    }

    /// <summary>How many endpoints use each identity (the reference counts, derived from the endpoints).</summary>
    public Dictionary<uint, int> IdentityUseCounts()
    {
        using var command = Command("SELECT identity, count(*) FROM endpoints GROUP BY identity;");
        var counts = new Dictionary<uint, int>();
        using var r = command.ExecuteReader();
        while (r.Read())
        {
            counts[checked((uint)r.GetInt64(0))] = r.GetInt32(1);
        }
        return counts;
    }
}
