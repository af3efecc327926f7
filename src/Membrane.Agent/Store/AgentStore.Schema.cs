using Microsoft.Data.Sqlite;

namespace Membrane.Agent.Store;

public sealed partial class AgentStore
{
    /// <summary>The schema version this agent writes (SQLite's <c>user_version</c>).</summary>
    public static int SchemaVersion => s_migrations.Length;

    // s_migrations[i] takes the schema from version i to i + 1. Append only: a released
    // migration is never edited, so every database walks the same path.
    private static readonly string[] s_migrations =
    [
        """
        CREATE TABLE endpoints (
            id             INTEGER PRIMARY KEY AUTOINCREMENT, -- AUTOINCREMENT: an id is never reused
            container_id   TEXT    NOT NULL,
            if_name        TEXT    NOT NULL,
            netns          TEXT,
            network        TEXT    NOT NULL,
            pod_namespace  TEXT,
            pod_name       TEXT,
            labels         TEXT    NOT NULL,               -- LabelSet.ToString(): sorted key=value;…
            identity       INTEGER NOT NULL,
            mtu            INTEGER NOT NULL,
            ipv4           TEXT,                           -- address/prefix
            ipv6           TEXT,
            host_interface TEXT    NOT NULL,
            host_ifindex   INTEGER NOT NULL DEFAULT 0,
            host_mac       TEXT,
            pod_mac        TEXT,
            state          TEXT    NOT NULL,
            created_at     INTEGER NOT NULL,               -- unix ms
            UNIQUE (container_id, if_name)
        );
        CREATE TABLE ip_allocations (
            address      TEXT    PRIMARY KEY,             -- canonical IPAddress.ToString()
            pool         TEXT    NOT NULL,                -- the pod CIDR it came from
            container_id TEXT    NOT NULL,
            if_name      TEXT    NOT NULL,
            allocated_at INTEGER NOT NULL
        );
        CREATE INDEX ip_allocations_owner ON ip_allocations (container_id, if_name);
        CREATE TABLE identities (
            id           INTEGER PRIMARY KEY,
            labels       TEXT    NOT NULL UNIQUE,
            created_at   INTEGER NOT NULL,
            unused_since INTEGER                          -- null while an endpoint uses it
        );
        """,
        """
        CREATE TABLE policies (
            namespace    TEXT    NOT NULL,
            name         TEXT    NOT NULL,
            kind         TEXT    NOT NULL,                -- CiliumNetworkPolicy | NetworkPolicy
            source_name  TEXT    NOT NULL,                -- the file it was imported from
            source_text  TEXT    NOT NULL,                -- the policy's own YAML document
            imported_at  INTEGER NOT NULL,                -- unix ms
            PRIMARY KEY (namespace, name)
        );
        """,
    ];

    private void Migrate()
    {
        lock (_lock)
        {
            var version = UserVersion();
            if (version > SchemaVersion)
            {
                throw new AgentException(Api.ErrorCodes.IncompatibleVersion,
                    $"failed to open the state database {DatabasePath}: its schema version {version} is newer than this agent's {SchemaVersion}");
            }
            for (; version < SchemaVersion; version++)
            {
                // The migration and the version bump commit together (user_version lives in the
                // database header, which is part of the transaction), so a crash mid-migration
                // leaves the previous version intact.
                using var tx = _connection.BeginTransaction(deferred: false);
                using var command = _connection.CreateCommand();
                command.Transaction = tx;
                command.CommandText = s_migrations[version] +
                    $"\nPRAGMA user_version = {(version + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)};";
                command.ExecuteNonQuery();
                tx.Commit();
            }
        }
    }

    private int UserVersion()
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "PRAGMA user_version;";
        return Convert.ToInt32(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
