using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>
/// Where a batched walk over a map stands (the kernel's opaque in_batch/out_batch token:
/// a bucket index for hash maps, a key for others, kernel/bpf/hashtab.c and syscall.c).
/// Create one per walk and pass it to each LookupBatch call until <see cref="IsDone"/>.
/// </summary>
public sealed class BpfBatchCursor
{
    internal BpfBatchCursor(int tokenSize) => Token = new byte[Math.Max(tokenSize, 8)];

    internal byte[] Token { get; }

    internal bool Started { get; set; }

    /// <summary>True once the walk has returned the last element.</summary>
    public bool IsDone { get; internal set; }
}

public sealed unsafe partial class BpfMap
{
    /// <summary>Starts a batched walk over this map.</summary>
    public BpfBatchCursor CreateBatchCursor() => new(KeySize);

    /// <summary>
    /// Reads up to <paramref name="maxCount"/> elements (BPF_MAP_LOOKUP_BATCH, Linux 5.6) into
    /// <paramref name="keys"/> (maxCount × KeySize bytes) and <paramref name="values"/>
    /// (maxCount × LookupSize bytes); returns how many were read.
    /// </summary>
    public int LookupBatch(BpfBatchCursor cursor, Span<byte> keys, Span<byte> values, int maxCount)
    {
        if (cursor.IsDone)
        {
            return 0;
        }
        if (keys.Length < maxCount * KeySize || values.Length < maxCount * LookupSize)
        {
            throw new ArgumentException($"failed to look up a batch of map {Name}: buffers hold fewer than {maxCount} elements");
        }
        var count = (uint)maxCount;
        var opts = new BpfMapBatchOpts { Size = (nuint)sizeof(BpfMapBatchOpts) };
        int ret;
        fixed (byte* token = cursor.Token)
        fixed (byte* k = keys)
        fixed (byte* v = values)
        {
            ret = Libbpf.MapLookupBatch(Handle.Fd, cursor.Started ? token : null, token, k, v, &count, &opts);
        }
        cursor.Started = true;
        if (ret == -(int)Errno.ENOENT)
        {
            // The kernel reports the end with ENOENT, possibly together with a last partial batch.
            cursor.IsDone = true;
            return (int)count;
        }
        if (ret == -(int)Errno.EINVAL || ret == -(int)Errno.ENOTSUPP || ret == -(int)Errno.EOPNOTSUPP)
        {
            throw new BpfNotSupportedException($"batch lookups on {Type} maps", "5.6", ErrnoExtensions.FromNegative(ret));
        }
        BpfException.ThrowIfNegative(ret, $"look up a batch of map {Name}");
        return (int)count;
    }

    /// <summary>
    /// Creates or replaces <paramref name="count"/> elements in one syscall
    /// (BPF_MAP_UPDATE_BATCH); returns how many were written. The kernel takes no
    /// NOEXIST/EXIST flags per batch (generic_map_update_batch accepts only BPF_F_LOCK).
    /// </summary>
    public int UpdateBatch(ReadOnlySpan<byte> keys, ReadOnlySpan<byte> values, int count)
    {
        if (keys.Length < count * KeySize || values.Length < count * LookupSize)
        {
            throw new ArgumentException($"failed to update a batch of map {Name}: buffers hold fewer than {count} elements");
        }
        var n = (uint)count;
        var opts = new BpfMapBatchOpts { Size = (nuint)sizeof(BpfMapBatchOpts) };
        int ret;
        fixed (byte* k = keys)
        fixed (byte* v = values)
        {
            ret = Libbpf.MapUpdateBatch(Handle.Fd, k, v, &n, &opts);
        }
        if (ret < 0)
        {
            throw new BpfException($"update a batch of map {Name} ({n} of {count} written)", ErrnoExtensions.FromNegative(ret));
        }
        return (int)n;
    }

    /// <summary>Deletes <paramref name="count"/> keys in one syscall (BPF_MAP_DELETE_BATCH); fails with ENOENT at the first missing key.</summary>
    public int DeleteBatch(ReadOnlySpan<byte> keys, int count)
    {
        if (keys.Length < count * KeySize)
        {
            throw new ArgumentException($"failed to delete a batch of map {Name}: buffer holds fewer than {count} keys");
        }
        var n = (uint)count;
        var opts = new BpfMapBatchOpts { Size = (nuint)sizeof(BpfMapBatchOpts) };
        int ret;
        fixed (byte* k = keys)
        {
            ret = Libbpf.MapDeleteBatch(Handle.Fd, k, &n, &opts);
        }
        if (ret < 0)
        {
            throw new BpfException($"delete a batch of map {Name} ({n} of {count} deleted)", ErrnoExtensions.FromNegative(ret));
        }
        return (int)n;
    }

    /// <summary>Puts <paramref name="program"/> into slot <paramref name="slot"/> of a program array (for tail calls).</summary>
    public void SetProgram(uint slot, BpfProgram program)
    {
        RequireType(BpfMapType.ProgramArray, "set a program");
        var fd = program.Handle.Fd;
        Update(AsBytes(ref slot), AsBytes(ref fd));
    }

    /// <summary>The id of the program in slot <paramref name="slot"/> of a program array, or null when empty.</summary>
    public uint? GetProgramId(uint slot)
    {
        RequireType(BpfMapType.ProgramArray, "read a program");
        uint id = 0;
        return TryLookup(AsBytes(ref slot), AsBytes(ref id)) ? id : null;
    }

    /// <summary>Empties slot <paramref name="slot"/> of a program array.</summary>
    public bool ClearProgram(uint slot)
    {
        RequireType(BpfMapType.ProgramArray, "clear a program");
        return Delete(AsBytes(ref slot));
    }

    private void RequireType(BpfMapType type, string verb)
    {
        if (Type != type)
        {
            throw new InvalidOperationException($"failed to {verb} in map {Name}: it is a {Type} map, not {type}");
        }
    }

    private static Span<byte> AsBytes<T>(ref T value) where T : unmanaged
        => System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<T>(ref value));
}
