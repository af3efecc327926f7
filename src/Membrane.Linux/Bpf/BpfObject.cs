using System.Runtime.InteropServices;
using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>
/// A BPF ELF object (clang -target bpf -g) opened and loaded through libbpf. Maps and
/// programs found in it own duplicates of libbpf's fds, so they stay usable after the
/// object is disposed (the kernel objects live while any fd or pin refers to them).
/// </summary>
public sealed unsafe class BpfObject : IDisposable
{
    private readonly SafeBpfObjectHandle _handle;
    private byte* _elfCopy; // open_mem keeps pointing at the buffer until load finishes

    private BpfObject(SafeBpfObjectHandle handle, string name, byte* elfCopy)
    {
        _handle = handle;
        Name = name;
        _elfCopy = elfCopy;
    }

    /// <summary>The object's name (its file name without ".o", or the name given to <see cref="OpenBytes"/>).</summary>
    public string Name { get; }

    /// <summary>True after a successful <see cref="Load()"/>.</summary>
    public bool IsLoaded { get; private set; }

    /// <summary>Opens (parses, does not load) the object file at <paramref name="path"/>.</summary>
    public static BpfObject OpenFile(string path)
    {
        LibbpfLog.EnsureInstalled();
        using var capture = LibbpfLog.BeginCapture();
        var obj = Libbpf.ObjectOpenFile(path, 0);
        if (obj == 0)
        {
            // libbpf 1.x sets errno on a NULL return (libbpf_err_ptr).
            var errno = (Errno)Marshal.GetLastPInvokeError();
            throw new BpfVerifierException($"open BPF object {path}", errno == Errno.None ? Errno.EINVAL : errno, capture.Text);
        }
        return new BpfObject(new SafeBpfObjectHandle(obj), Path.GetFileNameWithoutExtension(path), null);
    }

    /// <summary>Opens an object from its ELF bytes (for example an embedded resource).</summary>
    public static BpfObject OpenBytes(ReadOnlySpan<byte> elf, string name)
    {
        LibbpfLog.EnsureInstalled();
        var copy = (byte*)NativeMemory.Alloc((nuint)elf.Length);
        elf.CopyTo(new Span<byte>(copy, elf.Length));
        var nameBytes = System.Text.Encoding.UTF8.GetBytes(name + "\0");
        using var capture = LibbpfLog.BeginCapture();
        nint obj;
        fixed (byte* namePtr = nameBytes)
        {
            var opts = new BpfObjectOpenOpts { Size = (nuint)sizeof(BpfObjectOpenOpts), ObjectName = namePtr };
            obj = Libbpf.ObjectOpenMem(copy, (nuint)elf.Length, &opts);
        }
        if (obj == 0)
        {
            var errno = (Errno)Marshal.GetLastPInvokeError();
            NativeMemory.Free(copy);
            throw new BpfVerifierException($"open BPF object {name}", errno == Errno.None ? Errno.EINVAL : errno, capture.Text);
        }
        return new BpfObject(new SafeBpfObjectHandle(obj), name, copy);
    }

    /// <summary>Opens and loads the object file at <paramref name="path"/>.</summary>
    public static BpfObject Load(string path)
    {
        var obj = OpenFile(path);
        try
        {
            obj.Load();
            return obj;
        }
        catch
        {
            obj.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Creates the maps and loads every program into the kernel. On failure the exception
    /// carries everything libbpf printed during the load, the verifier log included.
    /// Warnings and information reach <see cref="LibbpfLog.Logger"/> as libbpf prints them
    /// either way; libbpf's debug chatter is kept only for the exception.
    /// </summary>
    public void Load()
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        if (IsLoaded)
        {
            throw new InvalidOperationException($"failed to load BPF object {Name}: it is already loaded");
        }
        int ret;
        string log;
        using (var capture = LibbpfLog.BeginCapture())
        {
            ret = Libbpf.ObjectLoad(_handle.DangerousGetHandle());
            log = capture.Text;
        }
        FreeElfCopy();
        if (ret < 0)
        {
            throw new BpfVerifierException($"load BPF object {Name}", ErrnoExtensions.FromNegative(ret), log);
        }
        IsLoaded = true;
    }

    /// <summary>Names of the maps the object defines (including libbpf's internal .rodata/.bss maps).</summary>
    public IReadOnlyList<string> MapNames
    {
        get
        {
            var names = new List<string>();
            for (var m = Libbpf.ObjectNextMap(_handle.DangerousGetHandle(), 0); m != 0; m = Libbpf.ObjectNextMap(_handle.DangerousGetHandle(), m))
            {
                names.Add(Libbpf.PtrToString(Libbpf.MapName(m)) ?? "");
            }
            return names;
        }
    }

    /// <summary>Names of the programs (the C function names).</summary>
    public IReadOnlyList<string> ProgramNames
    {
        get
        {
            var names = new List<string>();
            for (var p = Libbpf.ObjectNextProgram(_handle.DangerousGetHandle(), 0); p != 0; p = Libbpf.ObjectNextProgram(_handle.DangerousGetHandle(), p))
            {
                names.Add(Libbpf.PtrToString(Libbpf.ProgramName(p)) ?? "");
            }
            return names;
        }
    }

    /// <summary>
    /// Changes the size of map <paramref name="name"/> before <see cref="Load()"/> creates it
    /// (the object's max_entries is only the default; the agent sizes its tables from its
    /// options).
    /// </summary>
    public void SetMapMaxEntries(string name, uint maxEntries)
    {
        var map = UnloadedMap("resize map " + name, name);
        var ret = Libbpf.MapSetMaxEntries(map, maxEntries);
        if (ret < 0)
        {
            throw new BpfException($"resize map {name} of BPF object {Name} to {maxEntries} entries", ErrnoExtensions.FromNegative(ret));
        }
    }

    /// <summary>Changes the type of map <paramref name="name"/> before <see cref="Load()"/> creates it (tests swap an LRU hash for a plain one to see it fill up).</summary>
    public void SetMapType(string name, BpfMapType type)
    {
        var map = UnloadedMap("change the type of map " + name, name);
        var ret = Libbpf.MapSetType(map, (uint)type);
        if (ret < 0)
        {
            throw new BpfException($"change the type of map {name} of BPF object {Name} to {type}", ErrnoExtensions.FromNegative(ret));
        }
    }

    private nint UnloadedMap(string operation, string name)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        if (IsLoaded)
        {
            throw new InvalidOperationException($"failed to {operation}: BPF object {Name} is already loaded");
        }
        var map = Libbpf.ObjectFindMapByName(_handle.DangerousGetHandle(), name);
        return map != 0 ? map : throw new BpfException($"{operation} in BPF object {Name}", Errno.ENOENT);
    }

    /// <summary>The loaded map called <paramref name="name"/>; the caller owns (disposes) it.</summary>
    public BpfMap FindMap(string name)
    {
        EnsureLoaded("find map " + name);
        var map = Libbpf.ObjectFindMapByName(_handle.DangerousGetHandle(), name);
        if (map == 0)
        {
            throw new BpfException($"find map {name} in BPF object {Name}", Errno.ENOENT);
        }
        return BpfMap.FromFd(BpfFs.Dup(Libbpf.MapFd(map), "map " + name));
    }

    /// <summary>The loaded map called <paramref name="name"/> with typed keys and values.</summary>
    public BpfMap<TKey, TValue> FindMap<TKey, TValue>(string name)
        where TKey : unmanaged where TValue : unmanaged
        => new(FindMap(name));

    /// <summary>The loaded per-CPU map called <paramref name="name"/> with typed keys and values.</summary>
    public BpfPerCpuMap<TKey, TValue> FindPerCpuMap<TKey, TValue>(string name)
        where TKey : unmanaged where TValue : unmanaged
        => new(FindMap(name));

    /// <summary>The loaded program called <paramref name="name"/> (its C function name); the caller owns it.</summary>
    public BpfProgram FindProgram(string name)
    {
        EnsureLoaded("find program " + name);
        var prog = Libbpf.ObjectFindProgramByName(_handle.DangerousGetHandle(), name);
        if (prog == 0)
        {
            throw new BpfException($"find program {name} in BPF object {Name}", Errno.ENOENT);
        }
        return BpfProgram.FromFd(BpfFs.Dup(Libbpf.ProgramFd(prog), "program " + name));
    }

    private void EnsureLoaded(string what)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        if (!IsLoaded)
        {
            throw new InvalidOperationException($"failed to {what} in BPF object {Name}: the object is not loaded");
        }
    }

    private void FreeElfCopy()
    {
        if (_elfCopy is not null)
        {
            NativeMemory.Free(_elfCopy);
            _elfCopy = null;
        }
    }

    /// <summary>Closes libbpf's object and its fds; maps, programs and links found in it stay valid.</summary>
    public void Dispose()
    {
        _handle.Dispose();
        FreeElfCopy();
    }

    private sealed class SafeBpfObjectHandle : SafeHandle
    {
        public SafeBpfObjectHandle(nint obj) : base(0, ownsHandle: true) => SetHandle(obj);

        public override bool IsInvalid => handle == 0;

        protected override bool ReleaseHandle()
        {
            Libbpf.ObjectClose(handle);
            return true;
        }
    }
}
