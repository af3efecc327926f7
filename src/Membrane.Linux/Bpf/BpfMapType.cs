namespace Membrane.Linux.Bpf;

/// <summary>BPF map types Membrane uses (values of enum bpf_map_type, include/uapi/linux/bpf.h).</summary>
public enum BpfMapType
{
    Unspecified = 0,
    Hash = 1,
    Array = 2,
    ProgramArray = 3,
    PerfEventArray = 4,
    PerCpuHash = 5,
    PerCpuArray = 6,
    LruHash = 9,
    LruPerCpuHash = 10,
    /// <summary>Longest-prefix-match trie (Linux 4.11); keys start with a 32-bit prefix length.</summary>
    LpmTrie = 11,
    ArrayOfMaps = 12,
    HashOfMaps = 13,
    /// <summary>BPF ring buffer (Linux 5.8); max entries is its size in bytes, a power of two.</summary>
    RingBuffer = 27,
}

/// <summary>How an update treats an existing key (BPF_ANY / BPF_NOEXIST / BPF_EXIST).</summary>
public enum BpfUpdateFlags : ulong
{
    /// <summary>Create or replace.</summary>
    Any = 0,
    /// <summary>Create only; fails with EEXIST when the key exists.</summary>
    NoExist = 1,
    /// <summary>Replace only; fails with ENOENT when the key is missing.</summary>
    Exist = 2,
}

/// <summary>Flags for creating a map (BPF_F_* of include/uapi/linux/bpf.h).</summary>
[Flags]
public enum BpfMapCreateFlags : uint
{
    None = 0,
    /// <summary>BPF_F_NO_PREALLOC: allocate hash entries on demand; required for LPM tries.</summary>
    NoPrealloc = 1,
}

/// <summary>Extension helpers over <see cref="BpfMapType"/>.</summary>
public static class BpfMapTypeExtensions
{
    /// <summary>True for the per-CPU kinds, whose values hold one slot per possible CPU.</summary>
    public static bool IsPerCpu(this BpfMapType type) =>
        type is BpfMapType.PerCpuHash or BpfMapType.PerCpuArray or BpfMapType.LruPerCpuHash;
}
