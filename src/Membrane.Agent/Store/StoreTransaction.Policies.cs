namespace Membrane.Agent.Store;

public sealed partial class StoreTransaction
{
    /// <summary>Adds a policy or replaces the one with the same namespace and name.</summary>
    public void UpsertPolicy(PolicyRecord policy)
    {
        using var command = Command("""
            INSERT INTO policies (namespace, name, kind, source_name, source_text, imported_at)
            VALUES ($ns, $name, $kind, $source, $text, $at)
            ON CONFLICT (namespace, name) DO UPDATE SET kind = $kind, source_name = $source, source_text = $text, imported_at = $at;
            """);
        command.Parameters.AddWithValue("$ns", policy.Namespace);
        command.Parameters.AddWithValue("$name", policy.Name);
        command.Parameters.AddWithValue("$kind", policy.Kind);
        command.Parameters.AddWithValue("$source", policy.SourceName);
        command.Parameters.AddWithValue("$text", policy.SourceText);
        command.Parameters.AddWithValue("$at", policy.ImportedAt.ToUnixTimeMilliseconds());
        command.ExecuteNonQuery();
    }

    /// <summary>Deletes one policy; false when there was none.</summary>
    public bool DeletePolicy(string @namespace, string name)
    {
        using var command = Command("DELETE FROM policies WHERE namespace = $ns AND name = $name;");
        command.Parameters.AddWithValue("$ns", @namespace);
        command.Parameters.AddWithValue("$name", name);
        return command.ExecuteNonQuery() == 1;
    }

    /// <summary>Deletes every policy; returns how many there were.</summary>
    public int DeleteAllPolicies()
    {
        using var command = Command("DELETE FROM policies;");
        return command.ExecuteNonQuery();
    }

    /// <summary>Every policy, by namespace and name.</summary>
    public List<PolicyRecord> ListPolicies()
    {
        using var command = Command("SELECT namespace, name, kind, source_name, source_text, imported_at FROM policies ORDER BY namespace, name;");
        var list = new List<PolicyRecord>();
        using var r = command.ExecuteReader();
        while (r.Read())
        {
            list.Add(new PolicyRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), FromUnixMs(r.GetInt64(5))));
        }
        return list;
    }
}
