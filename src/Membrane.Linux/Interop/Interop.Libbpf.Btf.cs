using System.Runtime.InteropServices;

namespace Membrane.Linux.Interop;

/// <summary>libbpf's BTF API (btf.h): enough to read struct layouts out of an object file.</summary>
internal static unsafe partial class Libbpf
{
    [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__parse", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint BtfParse(string path, nint btfExt);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__free")]
    internal static partial void BtfFree(nint btf);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__find_by_name_kind", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int BtfFindByNameKind(nint btf, string name, uint kind);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__type_by_id")]
    internal static partial BtfType* BtfTypeById(nint btf, uint id);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__name_by_offset")]
    internal static partial byte* BtfNameByOffset(nint btf, uint offset);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "btf__resolve_size")]
    internal static partial long BtfResolveSize(nint btf, uint typeId);

    internal const uint BTF_KIND_STRUCT = 4;
    internal const uint BTF_KIND_UNION = 5;
    internal const uint BTF_KIND_ENUM = 6;
}

/// <summary>struct btf_type (include/uapi/linux/btf.h): 12 bytes, followed by kind-specific data.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BtfType
{
    public uint NameOff;
    /// <summary>bits 0-15 vlen, 24-28 kind, 31 kind_flag.</summary>
    public uint Info;
    /// <summary>size for STRUCT/UNION, type id otherwise.</summary>
    public uint SizeOrType;

    public readonly int Vlen => (int)(Info & 0xffff);
    public readonly uint Kind => (Info >> 24) & 0x1f;
    public readonly bool KindFlag => (Info >> 31) != 0;
}

/// <summary>struct btf_member: follows a STRUCT/UNION btf_type, vlen times.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct BtfMember
{
    public uint NameOff;
    public uint Type;
    /// <summary>bit offset; with kind_flag set, bits 0-23 offset and 24-31 bitfield size.</summary>
    public uint Offset;
}
