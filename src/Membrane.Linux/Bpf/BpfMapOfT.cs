using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Membrane.Linux.Bpf;

/// <summary>
/// A BPF map with typed keys and values: hash, LRU hash, LPM trie and array maps. The
/// structs must have exactly the kernel map's key and value sizes (checked when wrapped).
/// For per-CPU maps use <see cref="BpfPerCpuMap{TKey,TValue}"/>.
/// </summary>
public sealed class BpfMap<TKey, TValue> : IDisposable
    where TKey : unmanaged
    where TValue : unmanaged
{
    /// <summary>Wraps <paramref name="map"/>, taking ownership of it.</summary>
    public BpfMap(BpfMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (map.Type.IsPerCpu() || map.Type == BpfMapType.RingBuffer)
        {
            map.Dispose();
            throw new ArgumentException($"failed to wrap map {map.Name}: a {map.Type} map needs {(map.Type == BpfMapType.RingBuffer ? nameof(BpfRingBufferReader) : "BpfPerCpuMap<TKey,TValue>")}");
        }
        if (Unsafe.SizeOf<TKey>() != map.KeySize || Unsafe.SizeOf<TValue>() != map.ValueSize)
        {
            map.Dispose();
            throw new ArgumentException($"failed to wrap map {map.Name}: {typeof(TKey).Name}/{typeof(TValue).Name} are {Unsafe.SizeOf<TKey>()}/{Unsafe.SizeOf<TValue>()} bytes, the map's key/value are {map.KeySize}/{map.ValueSize}");
        }
        Map = map;
    }

    /// <summary>The untyped map underneath (its fd, name, type, pinning).</summary>
    public BpfMap Map { get; }

    /// <summary>Creates a standalone map whose key and value sizes are those of the type arguments.</summary>
    public static BpfMap<TKey, TValue> Create(BpfMapType type, int maxEntries, string? name = null, BpfMapCreateFlags flags = BpfMapCreateFlags.None)
        => new(BpfMap.Create(type, Unsafe.SizeOf<TKey>(), Unsafe.SizeOf<TValue>(), maxEntries, name,
            type == BpfMapType.LpmTrie ? flags | BpfMapCreateFlags.NoPrealloc : flags));

    /// <summary>Opens the map pinned at <paramref name="path"/>.</summary>
    public static BpfMap<TKey, TValue> OpenPinned(string path) => new(BpfMap.OpenPinned(path));

    /// <summary>Pins the map on bpffs.</summary>
    public void Pin(string path) => Map.Pin(path);

    /// <summary>Reads the value of <paramref name="key"/>; false when absent. For an LPM trie, the longest matching prefix.</summary>
    public bool TryLookup(in TKey key, out TValue value)
    {
        value = default;
        return Map.TryLookup(Bytes(in key), MemoryMarshal.AsBytes(new Span<TValue>(ref value)));
    }

    /// <summary>The value of <paramref name="key"/>; setting it creates or replaces the element.</summary>
    public TValue this[in TKey key]
    {
        get => TryLookup(key, out var v) ? v : throw new KeyNotFoundException($"failed to look up an element of map {Map.Name}: no such key");
        set => Update(key, value);
    }

    /// <summary>Creates or replaces an element, as <paramref name="flags"/> allows.</summary>
    public void Update(in TKey key, in TValue value, BpfUpdateFlags flags = BpfUpdateFlags.Any)
        => Map.Update(Bytes(in key), Bytes(in value), flags);

    /// <summary>Like <see cref="Update"/>, returning the errno (EEXIST, ENOENT, E2BIG) instead of throwing.</summary>
    public Errno TryUpdate(in TKey key, in TValue value, BpfUpdateFlags flags = BpfUpdateFlags.Any)
        => Map.TryUpdate(Bytes(in key), Bytes(in value), flags);

    /// <summary>Deletes an element; false when it was absent (array elements cannot be deleted: EINVAL).</summary>
    public bool Delete(in TKey key) => Map.Delete(Bytes(in key));

    /// <summary>The keys, walked with BPF_MAP_GET_NEXT_KEY.</summary>
    public IEnumerable<TKey> Keys => BpfMapKeys.Walk<TKey>(Map);

    /// <summary>Starts a batched walk.</summary>
    public BpfBatchCursor CreateBatchCursor() => Map.CreateBatchCursor();

    /// <summary>Reads up to min(keys, values) elements; returns how many. Repeat until the cursor is done.</summary>
    public int LookupBatch(BpfBatchCursor cursor, Span<TKey> keys, Span<TValue> values)
        => Map.LookupBatch(cursor, MemoryMarshal.AsBytes(keys), MemoryMarshal.AsBytes(values), Math.Min(keys.Length, values.Length));

    /// <summary>Creates or replaces keys[i] → values[i] in one syscall; returns how many were written.</summary>
    public int UpdateBatch(ReadOnlySpan<TKey> keys, ReadOnlySpan<TValue> values)
    {
        if (keys.Length != values.Length)
        {
            throw new ArgumentException($"failed to update a batch of map {Map.Name}: {keys.Length} keys but {values.Length} values");
        }
        return Map.UpdateBatch(MemoryMarshal.AsBytes(keys), MemoryMarshal.AsBytes(values), keys.Length);
    }

    /// <summary>Deletes the keys in one syscall; returns how many were deleted.</summary>
    public int DeleteBatch(ReadOnlySpan<TKey> keys) => Map.DeleteBatch(MemoryMarshal.AsBytes(keys), keys.Length);

    /// <summary>Closes the map's fd.</summary>
    public void Dispose() => Map.Dispose();

    private static ReadOnlySpan<byte> Bytes<T>(in T value) where T : unmanaged
        => MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value));
}

/// <summary>
/// A per-CPU BPF map (per-CPU hash, per-CPU array, LRU per-CPU hash): each key has one value
/// per possible CPU, read and written as a span of <see cref="CpuCount"/> values.
/// </summary>
public sealed class BpfPerCpuMap<TKey, TValue> : IDisposable
    where TKey : unmanaged
    where TValue : unmanaged
{
    private const int StackLimit = 1024; // value × possible CPUs up to this size stays on the stack
    private readonly int _stride;

    /// <summary>Wraps <paramref name="map"/>, taking ownership of it.</summary>
    public BpfPerCpuMap(BpfMap map)
    {
        ArgumentNullException.ThrowIfNull(map);
        if (!map.Type.IsPerCpu())
        {
            map.Dispose();
            throw new ArgumentException($"failed to wrap map {map.Name}: a {map.Type} map is not per-CPU");
        }
        if (Unsafe.SizeOf<TKey>() != map.KeySize || Unsafe.SizeOf<TValue>() != map.ValueSize)
        {
            map.Dispose();
            throw new ArgumentException($"failed to wrap map {map.Name}: {typeof(TKey).Name}/{typeof(TValue).Name} are {Unsafe.SizeOf<TKey>()}/{Unsafe.SizeOf<TValue>()} bytes, the map's key/value are {map.KeySize}/{map.ValueSize}");
        }
        Map = map;
        _stride = map.PerCpuStride;
    }

    /// <summary>The untyped map underneath.</summary>
    public BpfMap Map { get; }

    /// <summary>How many values each key has: the possible CPUs (libbpf_num_possible_cpus), not the online ones.</summary>
    public int CpuCount => BpfSystem.PossibleCpus;

    /// <summary>Creates a standalone per-CPU map.</summary>
    public static BpfPerCpuMap<TKey, TValue> Create(BpfMapType type, int maxEntries, string? name = null)
        => new(BpfMap.Create(type, Unsafe.SizeOf<TKey>(), Unsafe.SizeOf<TValue>(), maxEntries, name));

    /// <summary>Opens the per-CPU map pinned at <paramref name="path"/>.</summary>
    public static BpfPerCpuMap<TKey, TValue> OpenPinned(string path) => new(BpfMap.OpenPinned(path));

    /// <summary>Pins the map on bpffs.</summary>
    public void Pin(string path) => Map.Pin(path);

    /// <summary>Reads every CPU's value of <paramref name="key"/> into <paramref name="perCpu"/> (length <see cref="CpuCount"/>).</summary>
    public bool TryLookup(in TKey key, Span<TValue> perCpu)
    {
        CheckSpan(perCpu.Length);
        var size = Map.LookupSize;
        Span<byte> raw = size <= StackLimit ? stackalloc byte[StackLimit] : new byte[size];
        raw = raw[..size];
        if (!Map.TryLookup(MemoryMarshal.AsBytes(new ReadOnlySpan<TKey>(in key)), raw))
        {
            return false;
        }
        Unpack(raw, perCpu);
        return true;
    }

    /// <summary>Writes every CPU's value of <paramref name="key"/>.</summary>
    public void Update(in TKey key, ReadOnlySpan<TValue> perCpu, BpfUpdateFlags flags = BpfUpdateFlags.Any)
    {
        CheckSpan(perCpu.Length);
        var size = Map.LookupSize;
        Span<byte> raw = size <= StackLimit ? stackalloc byte[StackLimit] : new byte[size];
        raw = raw[..size];
        Pack(perCpu, raw);
        Map.Update(MemoryMarshal.AsBytes(new ReadOnlySpan<TKey>(in key)), raw, flags);
    }

    /// <summary>Deletes an element; false when it was absent.</summary>
    public bool Delete(in TKey key) => Map.Delete(MemoryMarshal.AsBytes(new ReadOnlySpan<TKey>(in key)));

    /// <summary>The keys, walked with BPF_MAP_GET_NEXT_KEY.</summary>
    public IEnumerable<TKey> Keys => BpfMapKeys.Walk<TKey>(Map);

    /// <summary>Starts a batched walk.</summary>
    public BpfBatchCursor CreateBatchCursor() => Map.CreateBatchCursor();

    /// <summary>
    /// Reads up to keys.Length elements; <paramref name="values"/> receives CpuCount values per
    /// key (key i's CPU c at i × CpuCount + c). Returns how many keys were read.
    /// </summary>
    public int LookupBatch(BpfBatchCursor cursor, Span<TKey> keys, Span<TValue> values)
    {
        var max = Math.Min(keys.Length, values.Length / CpuCount);
        var raw = new byte[max * Map.LookupSize];
        var n = Map.LookupBatch(cursor, MemoryMarshal.AsBytes(keys), raw, max);
        for (var i = 0; i < n; i++)
        {
            Unpack(raw.AsSpan(i * Map.LookupSize, Map.LookupSize), values.Slice(i * CpuCount, CpuCount));
        }
        return n;
    }

    /// <summary>Closes the map's fd.</summary>
    public void Dispose() => Map.Dispose();

    private void CheckSpan(int length)
    {
        if (length != CpuCount)
        {
            throw new ArgumentException($"failed to use per-CPU map {Map.Name}: {length} values given, there are {CpuCount} possible CPUs");
        }
    }

    // Each CPU's slot is rounded up to 8 bytes (kernel/bpf/syscall.c bpf_map_value_size).
    private void Unpack(ReadOnlySpan<byte> raw, Span<TValue> perCpu)
    {
        for (var cpu = 0; cpu < perCpu.Length; cpu++)
        {
            perCpu[cpu] = MemoryMarshal.Read<TValue>(raw.Slice(cpu * _stride));
        }
    }

    private void Pack(ReadOnlySpan<TValue> perCpu, Span<byte> raw)
    {
        raw.Clear();
        for (var cpu = 0; cpu < perCpu.Length; cpu++)
        {
            var v = perCpu[cpu];
            MemoryMarshal.Write(raw.Slice(cpu * _stride), in v);
        }
    }
}

internal static class BpfMapKeys
{
    public static IEnumerable<TKey> Walk<TKey>(BpfMap map) where TKey : unmanaged
    {
        var current = new byte[map.KeySize];
        var next = new byte[map.KeySize];
        var started = false;
        while (map.TryGetNextKey(started ? current : ReadOnlySpan<byte>.Empty, next))
        {
            started = true;
            yield return MemoryMarshal.Read<TKey>(next);
            (current, next) = (next, current);
        }
    }
}
