using System.Runtime.InteropServices;

namespace Membrane.Linux.Interop;

internal static unsafe partial class Libbpf
{
    /// <summary>libbpf_set_print: fn is int (*)(enum libbpf_print_level, const char *fmt, va_list args).</summary>
    [LibraryImport(Libraries.Libbpf, EntryPoint = "libbpf_set_print")]
    internal static partial nint SetPrint(delegate* unmanaged<int, byte*, nint, int> fn);

    internal const int LIBBPF_WARN = 0;
    internal const int LIBBPF_INFO = 1;
    internal const int LIBBPF_DEBUG = 2;
}

internal static unsafe partial class Libc
{
    /// <summary>vsnprintf(3): formats libbpf's printf-style messages from their va_list.</summary>
    [LibraryImport(Libraries.Libc, EntryPoint = "vsnprintf")]
    internal static partial int Vsnprintf(byte* buffer, nuint size, byte* format, nint args);
}
