using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>
/// A BPF map seen as bytes: the kernel's element operations on raw key and value buffers.
/// <see cref="BpfMap{TKey,TValue}"/> and <see cref="BpfPerCpuMap{TKey,TValue}"/> add types on top.
/// Owns its fd: the map lives while this fd, another fd or a pin refers to it.
/// </summary>
public sealed unsafe partial class BpfMap : IDisposable
{
    private BpfMap(SafeFileDescriptor fd, in BpfMapInfo info)
    {
        Handle = fd;
        Type = (BpfMapType)info.Type;
        Id = info.Id;
        KeySize = (int)info.KeySize;
        ValueSize = (int)info.ValueSize;
        MaxEntries = (int)info.MaxEntries;
        Flags = info.MapFlags;
        fixed (byte* name = info.Name)
        {
            Name = new string((sbyte*)name);
        }
    }

    /// <summary>The map's fd.</summary>
    public SafeFileDescriptor Handle { get; }

    /// <summary>The map's name as the kernel knows it (at most 15 bytes).</summary>
    public string Name { get; }

    /// <summary>The map type.</summary>
    public BpfMapType Type { get; }

    /// <summary>The kernel-wide id of the map.</summary>
    public uint Id { get; }

    /// <summary>Key size in bytes.</summary>
    public int KeySize { get; }

    /// <summary>Value size in bytes (for per-CPU maps: of one CPU's slot before rounding to 8).</summary>
    public int ValueSize { get; }

    /// <summary>Capacity (for a ring buffer: its size in bytes).</summary>
    public int MaxEntries { get; }

    /// <summary>Creation flags (BPF_F_*).</summary>
    public uint Flags { get; }

    /// <summary>
    /// Bytes one lookup of this map reads: the value size, or for per-CPU maps the value
    /// rounded up to 8 bytes times the number of possible CPUs (kernel/bpf/syscall.c
    /// bpf_map_value_size).
    /// </summary>
    public int LookupSize => Type.IsPerCpu() ? PerCpuStride * BpfSystem.PossibleCpus : ValueSize;

    /// <summary>The distance between two CPUs' slots in a per-CPU value.</summary>
    public int PerCpuStride => (ValueSize + 7) & ~7;

    /// <summary>Creates a standalone map (bpf_map_create). The caller owns it.</summary>
    public static BpfMap Create(BpfMapType type, int keySize, int valueSize, int maxEntries,
        string? name = null, BpfMapCreateFlags flags = BpfMapCreateFlags.None)
    {
        LibbpfLog.EnsureInstalled();
        var opts = new BpfMapCreateOpts { Size = (nuint)sizeof(BpfMapCreateOpts), MapFlags = (uint)flags };
        var fd = Libbpf.MapCreate((int)type, name, (uint)keySize, (uint)valueSize, (uint)maxEntries, &opts);
        if (fd < 0)
        {
            var errno = ErrnoExtensions.FromNegative(fd);
            if (errno is Errno.EINVAL or Errno.EOPNOTSUPP or Errno.ENOTSUPP && !BpfFeatures.HasMapType(type))
            {
                throw new BpfNotSupportedException($"BPF map type {type}", BpfFeatures.SinceKernel(type));
            }
            throw new BpfException($"create {type} map {name}", errno);
        }
        return FromFd(new SafeFileDescriptor(fd));
    }

    /// <summary>Opens a map pinned at <paramref name="path"/> on bpffs.</summary>
    public static BpfMap OpenPinned(string path) => FromFd(BpfFs.Open(path, "map"));

    /// <summary>Pins the map at <paramref name="path"/> so that it outlives this process.</summary>
    public void Pin(string path) => BpfFs.Pin(Handle, path, $"map {Name}");

    internal static BpfMap FromFd(SafeFileDescriptor fd)
    {
        BpfMapInfo info = default;
        var length = (uint)sizeof(BpfMapInfo);
        var ret = Libbpf.ObjGetInfoByFd(fd.Fd, &info, &length);
        if (ret < 0)
        {
            fd.Dispose();
            throw new BpfException("read map info", ErrnoExtensions.FromNegative(ret));
        }
        return new BpfMap(fd, info);
    }

    /// <summary>Reads the value of <paramref name="key"/> into <paramref name="value"/>; false when the key is absent.</summary>
    public bool TryLookup(ReadOnlySpan<byte> key, Span<byte> value)
    {
        CheckKey(key);
        CheckValue(value.Length, "look up");
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            var ret = Libbpf.MapLookupElem(Handle.Fd, k, v);
            if (ret == -(int)Errno.ENOENT)
            {
                return false;
            }
            BpfException.ThrowIfNegative(ret, $"look up an element of map {Name}");
            return true;
        }
    }

    /// <summary>Creates or replaces an element, as <paramref name="flags"/> allows.</summary>
    public void Update(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, BpfUpdateFlags flags = BpfUpdateFlags.Any)
    {
        var ret = TryUpdateCore(key, value, flags);
        BpfException.ThrowIfNegative(ret, $"update an element of map {Name} ({flags})");
    }

    /// <summary>Like <see cref="Update"/> but returns the errno instead of throwing (EEXIST for NoExist, ENOENT for Exist, E2BIG when full).</summary>
    public Errno TryUpdate(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, BpfUpdateFlags flags = BpfUpdateFlags.Any)
        => ErrnoExtensions.FromNegative(TryUpdateCore(key, value, flags));

    private int TryUpdateCore(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, BpfUpdateFlags flags)
    {
        CheckKey(key);
        CheckValue(value.Length, "update");
        fixed (byte* k = key)
        fixed (byte* v = value)
        {
            return Libbpf.MapUpdateElem(Handle.Fd, k, v, (ulong)flags);
        }
    }

    /// <summary>Deletes an element; false when the key was absent.</summary>
    public bool Delete(ReadOnlySpan<byte> key)
    {
        CheckKey(key);
        fixed (byte* k = key)
        {
            var ret = Libbpf.MapDeleteElem(Handle.Fd, k);
            if (ret == -(int)Errno.ENOENT)
            {
                return false;
            }
            BpfException.ThrowIfNegative(ret, $"delete an element of map {Name}");
            return true;
        }
    }

    /// <summary>
    /// Writes the key after <paramref name="key"/> (or the first key when <paramref name="key"/>
    /// is empty) into <paramref name="nextKey"/>; false at the end. Concurrent deletes may
    /// restart a hash map's walk from the beginning (kernel htab_map_get_next_key).
    /// </summary>
    public bool TryGetNextKey(ReadOnlySpan<byte> key, Span<byte> nextKey)
    {
        if (!key.IsEmpty)
        {
            CheckKey(key);
        }
        CheckKey(nextKey);
        fixed (byte* k = key)
        fixed (byte* n = nextKey)
        {
            var ret = Libbpf.MapGetNextKey(Handle.Fd, key.IsEmpty ? null : k, n);
            if (ret == -(int)Errno.ENOENT)
            {
                return false;
            }
            BpfException.ThrowIfNegative(ret, $"iterate the keys of map {Name}");
            return true;
        }
    }

    private void CheckKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != KeySize)
        {
            throw new ArgumentException($"failed to use map {Name}: key is {key.Length} bytes, the map's keys are {KeySize}", nameof(key));
        }
    }

    private void CheckValue(int length, string verb)
    {
        if (length != LookupSize)
        {
            throw new ArgumentException($"failed to {verb} map {Name}: value buffer is {length} bytes, the map needs {LookupSize}", "value");
        }
    }

    /// <summary>Closes this fd (the map lives on while pinned or used by a program).</summary>
    public void Dispose() => Handle.Dispose();
}
