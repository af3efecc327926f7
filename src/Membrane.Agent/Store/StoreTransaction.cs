using Microsoft.Data.Sqlite;

namespace Membrane.Agent.Store;

/// <summary>
/// One open transaction of the <see cref="AgentStore"/>. The typed row operations live in the
/// partial files by table; in-memory state that changes together with rows (IPAM bitmaps,
/// identity reference counts) registers its undo with <see cref="OnRollback"/>.
/// </summary>
public sealed partial class StoreTransaction
{
    private readonly SqliteConnection _connection;
    private readonly SqliteTransaction _transaction;
    private List<Action>? _undo;
    private bool _closed;

    internal StoreTransaction(SqliteConnection connection, SqliteTransaction transaction)
    {
        _connection = connection;
        _transaction = transaction;
    }

    /// <summary>
    /// Registers an action that undoes an in-memory change made as part of this transaction;
    /// it runs (newest first) if the transaction rolls back.
    /// </summary>
    public void OnRollback(Action undo)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        (_undo ??= []).Add(undo);
    }

    internal void RunUndo()
    {
        if (_undo is null)
        {
            return;
        }
        for (var i = _undo.Count - 1; i >= 0; i--)
        {
            _undo[i]();
        }
        _undo = null;
    }

    internal void Close() => _closed = true;

    private SqliteCommand Command(string sql)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        var command = _connection.CreateCommand();
        command.Transaction = _transaction;
        command.CommandText = sql;
        return command;
    }

    private static object DbValue(object? value) => value ?? DBNull.Value;

    private static string? NullableString(SqliteDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private static DateTimeOffset FromUnixMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
