using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>A member of a BTF struct: its name, byte offset and byte size.</summary>
public readonly record struct BtfMemberLayout(string Name, int Offset, int Size);

/// <summary>The layout of a struct as BTF describes it.</summary>
public sealed record BtfStructLayout(string Name, int Size, IReadOnlyList<BtfMemberLayout> Members);

/// <summary>
/// Type information (BTF) read with libbpf's btf__parse from a BPF object compiled with -g
/// or from /sys/kernel/btf/vmlinux. Membrane uses it to prove that its C# mirrors of the
/// datapath's structs have the compiled C layout (as Cilium's alignchecker does).
/// </summary>
public sealed unsafe class BtfFile : IDisposable
{
    private nint _btf;

    private BtfFile(nint btf) => _btf = btf;

    /// <summary>Parses the BTF of an ELF object (its .BTF section) or a raw BTF file.</summary>
    public static BtfFile Open(string path)
    {
        LibbpfLog.EnsureInstalled();
        var btf = Libbpf.BtfParse(path, 0);
        if (btf == 0)
        {
            var errno = (Errno)System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            throw new BpfException($"read BTF from {path}", errno == Errno.None ? Errno.ENODATA : errno);
        }
        return new BtfFile(btf);
    }

    /// <summary>The layout of struct <paramref name="name"/>, or null when the BTF has no such struct.</summary>
    public BtfStructLayout? FindStruct(string name)
    {
        ObjectDisposedException.ThrowIf(_btf == 0, this);
        var id = Libbpf.BtfFindByNameKind(_btf, name, Libbpf.BTF_KIND_STRUCT);
        if (id < 0)
        {
            return null;
        }
        var type = Libbpf.BtfTypeById(_btf, (uint)id);
        var members = (BtfMember*)(type + 1);
        var list = new List<BtfMemberLayout>(type->Vlen);
        for (var i = 0; i < type->Vlen; i++)
        {
            var m = members[i];
            var bitOffset = type->KindFlag ? m.Offset & 0xffffff : m.Offset;
            var bitfieldSize = type->KindFlag ? m.Offset >> 24 : 0;
            var size = bitfieldSize != 0 ? -(int)bitfieldSize : (int)Libbpf.BtfResolveSize(_btf, m.Type);
            list.Add(new BtfMemberLayout(Name(m.NameOff), (int)(bitOffset / 8), size));
        }
        return new BtfStructLayout(name, (int)type->SizeOrType, list);
    }

    /// <summary>The values of enum <paramref name="name"/> (name → value), or null when absent.</summary>
    public IReadOnlyDictionary<string, long>? FindEnum(string name)
    {
        ObjectDisposedException.ThrowIf(_btf == 0, this);
        var id = Libbpf.BtfFindByNameKind(_btf, name, Libbpf.BTF_KIND_ENUM);
        if (id < 0)
        {
            return null;
        }
        var type = Libbpf.BtfTypeById(_btf, (uint)id);
        // struct btf_enum { __u32 name_off; __s32 val; } follows the type, vlen times.
        var entries = (int*)(type + 1);
        var result = new Dictionary<string, long>(type->Vlen);
        for (var i = 0; i < type->Vlen; i++)
        {
            result[Name((uint)entries[2 * i])] = entries[2 * i + 1];
        }
        return result;
    }

    private string Name(uint offset) => Libbpf.PtrToString(Libbpf.BtfNameByOffset(_btf, offset)) ?? "";

    /// <summary>Frees libbpf's BTF.</summary>
    public void Dispose()
    {
        if (_btf != 0)
        {
            Libbpf.BtfFree(_btf);
            _btf = 0;
        }
    }
}
