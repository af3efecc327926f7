using Microsoft.Data.Sqlite;

namespace Membrane.Agent.Store;

public sealed partial class StoreTransaction
{
    /// <summary>Records that <paramref name="a"/>.Address is taken.</summary>
    /// <exception cref="SqliteException">The address is already recorded (primary key).</exception>
    public void InsertAllocation(IpAllocationRecord a)
    {
        using var command = Command(
            "INSERT INTO ip_allocations (address, pool, container_id, if_name, allocated_at) VALUES ($addr, $pool, $cid, $if, $at);");
        command.Parameters.AddWithValue("$addr", a.Address);
        command.Parameters.AddWithValue("$pool", a.Pool);
        command.Parameters.AddWithValue("$cid", a.ContainerId);
        command.Parameters.AddWithValue("$if", a.IfName);
        command.Parameters.AddWithValue("$at", a.AllocatedAt.ToUnixTimeMilliseconds());
        command.ExecuteNonQuery();
    }

    /// <summary>Deletes one allocation; false when there was none.</summary>
    public bool DeleteAllocation(string address)
    {
        using var command = Command("DELETE FROM ip_allocations WHERE address = $addr;");
        command.Parameters.AddWithValue("$addr", address);
        return command.ExecuteNonQuery() == 1;
    }

    /// <summary>The allocations held by one container interface.</summary>
    public List<IpAllocationRecord> AllocationsOf(string containerId, string ifName)
    {
        using var command = Command(
            "SELECT address, pool, container_id, if_name, allocated_at FROM ip_allocations WHERE container_id = $cid AND if_name = $if ORDER BY address;");
        command.Parameters.AddWithValue("$cid", containerId);
        command.Parameters.AddWithValue("$if", ifName);
        return ReadAllocations(command);
    }

    /// <summary>Every allocation.</summary>
    public List<IpAllocationRecord> ListAllocations()
    {
        using var command = Command("SELECT address, pool, container_id, if_name, allocated_at FROM ip_allocations ORDER BY container_id, if_name, address;");
        return ReadAllocations(command);
    }

    private static List<IpAllocationRecord> ReadAllocations(SqliteCommand command)
    {
        var list = new List<IpAllocationRecord>();
        using var r = command.ExecuteReader();
        while (r.Read())
        {
            list.Add(new IpAllocationRecord(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), FromUnixMs(r.GetInt64(4))));
        }
        return list;
    }
}
