using Microsoft.Data.Sqlite;

namespace Membrane.Agent.Store;

public sealed partial class StoreTransaction
{
    private const string EndpointColumns =
        "id, container_id, if_name, netns, network, pod_namespace, pod_name, labels, identity, mtu, ipv4, ipv6, " +
        "host_interface, host_ifindex, host_mac, pod_mac, state, created_at";

    /// <summary>Inserts an endpoint and returns it with its new id.</summary>
    public EndpointRecord InsertEndpoint(EndpointRecord e)
    {
        using var command = Command(
            "INSERT INTO endpoints (container_id, if_name, netns, network, pod_namespace, pod_name, labels, identity, mtu, " +
            "ipv4, ipv6, host_interface, host_ifindex, host_mac, pod_mac, state, created_at) VALUES " +
            "($cid, $if, $netns, $network, $podns, $pod, $labels, $identity, $mtu, $ipv4, $ipv6, $host, $ifindex, $hmac, $pmac, $state, $created) " +
            "RETURNING id;");
        BindEndpoint(command, e);
        var id = Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        return e with { Id = id };
    }

    /// <summary>Replaces every column of the endpoint with id <paramref name="e"/>.Id.</summary>
    /// <exception cref="InvalidOperationException">No such endpoint.</exception>
    public void UpdateEndpoint(EndpointRecord e)
    {
        using var command = Command(
            "UPDATE endpoints SET container_id = $cid, if_name = $if, netns = $netns, network = $network, pod_namespace = $podns, " +
            "pod_name = $pod, labels = $labels, identity = $identity, mtu = $mtu, ipv4 = $ipv4, ipv6 = $ipv6, host_interface = $host, " +
            "host_ifindex = $ifindex, host_mac = $hmac, pod_mac = $pmac, state = $state, created_at = $created WHERE id = $id;");
        BindEndpoint(command, e);
        command.Parameters.AddWithValue("$id", e.Id);
        if (command.ExecuteNonQuery() != 1)
        {
            throw new InvalidOperationException($"failed to update endpoint {e.Id}: it does not exist");
        }
    }

    /// <summary>Deletes an endpoint row; false when there was none.</summary>
    public bool DeleteEndpoint(long id)
    {
        using var command = Command("DELETE FROM endpoints WHERE id = $id;");
        command.Parameters.AddWithValue("$id", id);
        return command.ExecuteNonQuery() == 1;
    }

    /// <summary>The endpoint of a container interface, or null.</summary>
    public EndpointRecord? FindEndpoint(string containerId, string ifName)
    {
        using var command = Command($"SELECT {EndpointColumns} FROM endpoints WHERE container_id = $cid AND if_name = $if;");
        command.Parameters.AddWithValue("$cid", containerId);
        command.Parameters.AddWithValue("$if", ifName);
        return ReadEndpoints(command).FirstOrDefault();
    }

    /// <summary>The endpoint with <paramref name="id"/>, or null.</summary>
    public EndpointRecord? GetEndpoint(long id)
    {
        using var command = Command($"SELECT {EndpointColumns} FROM endpoints WHERE id = $id;");
        command.Parameters.AddWithValue("$id", id);
        return ReadEndpoints(command).FirstOrDefault();
    }

    /// <summary>Every endpoint, by id.</summary>
    public List<EndpointRecord> ListEndpoints()
    {
        using var command = Command($"SELECT {EndpointColumns} FROM endpoints ORDER BY id;");
        return ReadEndpoints(command);
    }

    /// <summary>How many endpoints there are.</summary>
    public int CountEndpoints()
    {
        using var command = Command("SELECT count(*) FROM endpoints;");
        return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void BindEndpoint(SqliteCommand command, EndpointRecord e)
    {
        var p = command.Parameters;
        p.AddWithValue("$cid", e.ContainerId);
        p.AddWithValue("$if", e.IfName);
        p.AddWithValue("$netns", DbValue(e.NetNs));
        p.AddWithValue("$network", e.Network);
        p.AddWithValue("$podns", DbValue(e.PodNamespace));
        p.AddWithValue("$pod", DbValue(e.PodName));
        p.AddWithValue("$labels", e.Labels);
        p.AddWithValue("$identity", (long)e.Identity);
        p.AddWithValue("$mtu", e.Mtu);
        p.AddWithValue("$ipv4", DbValue(e.Ipv4));
        p.AddWithValue("$ipv6", DbValue(e.Ipv6));
        p.AddWithValue("$host", e.HostInterface);
        p.AddWithValue("$ifindex", e.HostIfIndex);
        p.AddWithValue("$hmac", DbValue(e.HostMac));
        p.AddWithValue("$pmac", DbValue(e.PodMac));
        p.AddWithValue("$state", e.State);
        p.AddWithValue("$created", e.CreatedAt.ToUnixTimeMilliseconds());
    }

    private static List<EndpointRecord> ReadEndpoints(SqliteCommand command)
    {
        var list = new List<EndpointRecord>();
        using var r = command.ExecuteReader();
        while (r.Read())
        {
            list.Add(new EndpointRecord
            {
                Id = r.GetInt64(0),
                ContainerId = r.GetString(1),
                IfName = r.GetString(2),
                NetNs = NullableString(r, 3),
                Network = r.GetString(4),
                PodNamespace = NullableString(r, 5),
                PodName = NullableString(r, 6),
                Labels = r.GetString(7),
                Identity = checked((uint)r.GetInt64(8)),
                Mtu = r.GetInt32(9),
                Ipv4 = NullableString(r, 10),
                Ipv6 = NullableString(r, 11),
                HostInterface = r.GetString(12),
                HostIfIndex = r.GetInt32(13),
                HostMac = NullableString(r, 14),
                PodMac = NullableString(r, 15),
                State = r.GetString(16),
                CreatedAt = FromUnixMs(r.GetInt64(17)),
            });
        }
        return list;
    }
}
