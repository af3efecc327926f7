namespace Membrane.Linux.Interop;

/// <summary>The native libraries Membrane calls, named in one place (dotnet/runtime's Interop.Libraries).</summary>
internal static partial class Libraries
{
    /// <summary>The kernel's reference BPF loader (Debian libbpf1).</summary>
    internal const string Libbpf = "libbpf.so.1";

    /// <summary>glibc; "libc.so" on Debian is a linker script, so the soname is used.</summary>
    internal const string Libc = "libc.so.6";
}
