using System.Runtime.InteropServices;

namespace Membrane.Linux.Interop;

internal static unsafe partial class Libbpf
{
    /// <summary>ring_buffer__new: sample_cb is int (*)(void *ctx, void *data, size_t size).</summary>
    [LibraryImport(Libraries.Libbpf, EntryPoint = "ring_buffer__new", SetLastError = true)]
    internal static partial nint RingBufferNew(int mapFd, delegate* unmanaged<nint, byte*, nuint, int> sampleCallback, nint context, nint opts);

    /// <summary>Waits up to timeoutMs for records and calls the callback for each; returns the count or −errno.</summary>
    [LibraryImport(Libraries.Libbpf, EntryPoint = "ring_buffer__poll")]
    internal static partial int RingBufferPoll(nint ringBuffer, int timeoutMs);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "ring_buffer__consume")]
    internal static partial int RingBufferConsume(nint ringBuffer);

    [LibraryImport(Libraries.Libbpf, EntryPoint = "ring_buffer__free")]
    internal static partial void RingBufferFree(nint ringBuffer);
}
