using System.Runtime.InteropServices;

namespace Membrane.Linux.Interop;

/// <summary>
/// libbpf 1.1 (tools/lib/bpf): objects, programs and maps. Opaque libbpf structs are
/// <see cref="nint"/>; fds returned by libbpf for object-owned maps and programs belong to
/// the object and are dup'ed before being wrapped. Return values are −errno (libbpf 1.0
/// "strict mode"); errno after a failure can be stale, so callers use the return value.
/// </summary>
internal static unsafe partial class Libbpf
{
    // --- objects (libbpf.h) ---

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__open_file", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint ObjectOpenFile(string path, nint opts);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__open_mem", SetLastError = true)]
    internal static partial nint ObjectOpenMem(byte* buffer, nuint size, BpfObjectOpenOpts* opts);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__load")]
    internal static partial int ObjectLoad(nint obj);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__close")]
    internal static partial void ObjectClose(nint obj);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__name")]
    internal static partial byte* ObjectName(nint obj);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__find_map_by_name", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint ObjectFindMapByName(nint obj, string name);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__find_program_by_name", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint ObjectFindProgramByName(nint obj, string name);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__next_map")]
    internal static partial nint ObjectNextMap(nint obj, nint previous);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_object__next_program")]
    internal static partial nint ObjectNextProgram(nint obj, nint previous);

    // --- maps of an object ---

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__name")]
    internal static partial byte* MapName(nint map);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__fd")]
    internal static partial int MapFd(nint map);

    // Before the object is loaded only; 0 or a negative errno.
    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__set_max_entries")]
    internal static partial int MapSetMaxEntries(nint map, uint maxEntries);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map__set_type")]
    internal static partial int MapSetType(nint map, uint type);

    // --- programs of an object ---

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__name")]
    internal static partial byte* ProgramName(nint prog);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__section_name")]
    internal static partial byte* ProgramSectionName(nint prog);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__fd")]
    internal static partial int ProgramFd(nint prog);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_program__type")]
    internal static partial int ProgramType(nint prog);

    // --- low-level map API (bpf.h) ---

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_create", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int MapCreate(int mapType, string? name, uint keySize, uint valueSize, uint maxEntries, BpfMapCreateOpts* opts);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_lookup_elem")]
    internal static partial int MapLookupElem(int fd, void* key, void* value);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_update_elem")]
    internal static partial int MapUpdateElem(int fd, void* key, void* value, ulong flags);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_delete_elem")]
    internal static partial int MapDeleteElem(int fd, void* key);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_get_next_key")]
    internal static partial int MapGetNextKey(int fd, void* key, void* nextKey);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_lookup_batch")]
    internal static partial int MapLookupBatch(int fd, void* inBatch, void* outBatch, void* keys, void* values, uint* count, BpfMapBatchOpts* opts);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_update_batch")]
    internal static partial int MapUpdateBatch(int fd, void* keys, void* values, uint* count, BpfMapBatchOpts* opts);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_map_delete_batch")]
    internal static partial int MapDeleteBatch(int fd, void* keys, uint* count, BpfMapBatchOpts* opts);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_obj_pin", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int ObjPin(int fd, string path);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_obj_get", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int ObjGet(string path);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_obj_get_info_by_fd")]
    internal static partial int ObjGetInfoByFd(int fd, void* info, uint* infoLength);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_prog_get_fd_by_id")]
    internal static partial int ProgGetFdById(uint id);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_prog_test_run_opts")]
    internal static partial int ProgTestRunOpts(int progFd, BpfTestRunOpts* opts);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "libbpf_version_string")]
    internal static partial byte* VersionString();

    [LibraryImport(Libraries.Libbpf, EntryPoint = "libbpf_num_possible_cpus")]
    internal static partial int NumPossibleCpus();

    // --- probes (libbpf_probes.c) ---

    [LibraryImport(Libraries.Libbpf, EntryPoint = "libbpf_probe_bpf_helper")]
    internal static partial int ProbeHelper(int progType, int helperId, nint opts);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "libbpf_probe_bpf_map_type")]
    internal static partial int ProbeMapType(int mapType, nint opts);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "libbpf_probe_bpf_prog_type")]
    internal static partial int ProbeProgType(int progType, nint opts);

    // --- legacy tc (netlink.c) ---

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_tc_hook_create")]
    internal static partial int TcHookCreate(BpfTcHook* hook);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_tc_hook_destroy")]
    internal static partial int TcHookDestroy(BpfTcHook* hook);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_tc_attach")]
    internal static partial int TcAttach(BpfTcHook* hook, BpfTcOpts* opts);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_tc_detach")]
    internal static partial int TcDetach(BpfTcHook* hook, BpfTcOpts* opts);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_tc_query")]
    internal static partial int TcQuery(BpfTcHook* hook, BpfTcOpts* opts);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "bpf_xdp_query_id")]
    internal static partial int XdpQueryId(int ifindex, int flags, uint* progId);

    // --- constants of the kernel ABI (include/uapi/linux/bpf.h); only used below Membrane.Linux.Bpf ---

    internal const int BPF_PROG_TYPE_SCHED_CLS = 3;
    internal const int BPF_PROG_TYPE_XDP = 6;
    internal const int BPF_FUNC_redirect_peer = 155;
    internal const int BPF_TC_INGRESS = 1;
    internal const int BPF_TC_EGRESS = 2;
    internal const int BPF_MAP_TYPE_RINGBUF = 27;
    internal const int BPF_MAP_TYPE_LPM_TRIE = 11;
    internal const uint BPF_F_NO_PREALLOC = 1;

    internal static string? PtrToString(byte* s) => s is null ? null : Marshal.PtrToStringUTF8((nint)s);
}

/// <summary>struct bpf_object_open_opts (libbpf.h, 1.1): only the fields Membrane sets.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct BpfObjectOpenOpts
{
    public nuint Size;              // sz
    public byte* ObjectName;        // object_name
    public byte RelaxedMaps;        // relaxed_maps (bool)
    private fixed byte _rest[256];  // later fields stay zero; sz tells libbpf how far we know
}

/// <summary>struct bpf_map_create_opts (bpf.h, 1.1), 48 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BpfMapCreateOpts
{
    public nuint Size;              // sz @0
    public uint BtfFd;              // @8
    public uint BtfKeyTypeId;       // @12
    public uint BtfValueTypeId;     // @16
    public uint BtfVmlinuxValueTypeId; // @20
    public uint InnerMapFd;         // @24
    public uint MapFlags;           // @28
    public ulong MapExtra;          // @32
    public uint NumaNode;           // @40
    public uint MapIfindex;         // @44
}

/// <summary>struct bpf_map_batch_opts (bpf.h), 24 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BpfMapBatchOpts
{
    public nuint Size;
    public ulong ElemFlags;
    public ulong Flags;
}

/// <summary>struct bpf_test_run_opts (bpf.h, 1.1), 80 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct BpfTestRunOpts
{
    public nuint Size;              // @0
    public void* DataIn;            // @8
    public void* DataOut;           // @16
    public uint DataSizeIn;         // @24
    public uint DataSizeOut;        // @28 in: buffer size, out: bytes written
    public void* CtxIn;             // @32
    public void* CtxOut;            // @40
    public uint CtxSizeIn;          // @48
    public uint CtxSizeOut;         // @52
    public uint Retval;             // @56
    public int Repeat;              // @60
    public uint Duration;           // @64 average ns per run
    public uint Flags;              // @68
    public uint Cpu;                // @72
    public uint BatchSize;          // @76
}

/// <summary>struct bpf_tc_hook (libbpf.h), 24 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BpfTcHook
{
    public nuint Size;
    public int Ifindex;
    public int AttachPoint;         // enum bpf_tc_attach_point
    public uint Parent;
    private uint _pad;
}

/// <summary>struct bpf_tc_opts (libbpf.h), 32 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BpfTcOpts
{
    public nuint Size;
    public int ProgFd;
    public uint Flags;
    public uint ProgId;
    public uint Handle;
    public uint Priority;
    private uint _pad;
}
