using Microsoft.Data.Sqlite;

namespace Membrane.Agent.Store;

/// <summary>
/// The agent's durable state: one SQLite database (<c>membrane.db</c>) in the state dir that
/// holds endpoints, IP allocations and identities.
/// </summary>
/// <remarks>
/// <para>Durability: the database runs in WAL mode with <c>synchronous=FULL</c>, so a
/// transaction is on disk (the WAL is fsync'ed) before <c>COMMIT</c> returns
/// (sqlite.org/pragma.html#pragma_synchronous: "FULL … ensures that an operating system crash
/// or power failure will not corrupt the database"; in WAL mode FULL syncs the WAL on every
/// commit, NORMAL would not). Every change the agent makes goes through
/// <see cref="Write{T}(Func{StoreTransaction, T})"/>, one transaction per logical change, and the
/// agent acknowledges a request only after that call returned: whatever was acknowledged
/// survives a crash at any point, and a crash mid-change leaves nothing of it.</para>
/// <para>Concurrency: one connection, used under a lock. SQLite serialises writers anyway,
/// and the transactions here are a few row writes long, so a single connection is both the
/// simplest and the fastest choice for one process.</para>
/// </remarks>
public sealed partial class AgentStore : IDisposable
{
    /// <summary>The file name of the database inside the state dir.</summary>
    public const string FileName = "membrane.db";

    private readonly SqliteConnection _connection;
    private readonly Lock _lock = new();
    private bool _disposed;

    private AgentStore(string path, SqliteConnection connection)
    {
        DatabasePath = path;
        _connection = connection;
    }

    /// <summary>The database file.</summary>
    public string DatabasePath { get; }

    /// <summary>
    /// Opens (creating when missing) the database in <paramref name="stateDir"/> and brings its
    /// schema up to <see cref="SchemaVersion"/>.
    /// </summary>
    /// <exception cref="AgentException">The database cannot be opened or has a newer schema.</exception>
    public static AgentStore Open(string stateDir)
    {
        var path = Path.Combine(Path.GetFullPath(stateDir), FileName);
        SqliteConnection? connection = null;
        try
        {
            Directory.CreateDirectory(stateDir);
            connection = new SqliteConnection(new SqliteConnectionStringBuilder
            {
                DataSource = path,
                Mode = SqliteOpenMode.ReadWriteCreate,
                // A pooled connection would keep the file open after Dispose: a reopened store
                // must really reopen the file, and a stopped agent must hold nothing.
                Pooling = false,
                DefaultTimeout = 30,
            }.ToString());
            connection.Open();
            Execute(connection, "PRAGMA journal_mode=WAL;");
            Execute(connection, "PRAGMA synchronous=FULL;");
            Execute(connection, "PRAGMA foreign_keys=ON;");
            var store = new AgentStore(path, connection);
            store.Migrate();
            return store;
        }
        catch (SqliteException e)
        {
            connection?.Dispose();
            throw new AgentException(Api.ErrorCodes.IoFailure, $"failed to open the state database {path}: {e.Message}", inner: e);
        }
        catch (Exception)
        {
            connection?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> in one write transaction (<c>BEGIN IMMEDIATE</c>) and commits
    /// it. If <paramref name="work"/> or the commit throws, the transaction is rolled back, every
    /// undo action registered with <see cref="StoreTransaction.OnRollback"/> runs (newest first),
    /// and the exception propagates: nothing of the change remains, on disk or in memory.
    /// </summary>
    public T Write<T>(Func<StoreTransaction, T> work)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // IMMEDIATE takes the write lock up front, so a transaction never fails half-way
            // with SQLITE_BUSY on its first write (sqlite.org/lang_transaction.html).
            using var sqlite = _connection.BeginTransaction(deferred: false);
            var tx = new StoreTransaction(_connection, sqlite);
            try
            {
                var result = work(tx);
                sqlite.Commit();
                return result;
            }
            catch
            {
                try
                {
                    sqlite.Rollback();
                }
                catch (SqliteException)
                {
                    // SQLite may already have rolled back on its own (an I/O error does that);
                    // either way the transaction's changes are gone.
                }
                tx.RunUndo();
                throw;
            }
            finally
            {
                tx.Close();
            }
        }
    }

    /// <summary>Runs <paramref name="work"/> in one write transaction; see <see cref="Write{T}(Func{StoreTransaction, T})"/>.</summary>
    public void Write(Action<StoreTransaction> work) => Write<object?>(tx =>
    {
        work(tx);
        return null;
    });

    /// <summary>Runs <paramref name="read"/> in a read transaction: a consistent snapshot.</summary>
    public T Read<T>(Func<StoreTransaction, T> read)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using var sqlite = _connection.BeginTransaction(deferred: true);
            var tx = new StoreTransaction(_connection, sqlite);
            try
            {
                return read(tx);
            }
            finally
            {
                tx.Close();
            }
        }
    }

    /// <summary>The value of a PRAGMA (for diagnostics and tests).</summary>
    public string? Pragma(string name)
    {
        if (!name.All(c => char.IsAsciiLetter(c) || c == '_'))
        {
            throw new ArgumentException($"failed to read pragma '{name}': not a pragma name", nameof(name));
        }
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using var command = _connection.CreateCommand();
            command.CommandText = $"PRAGMA {name};";
            return Convert.ToString(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            _connection.Dispose();
        }
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
