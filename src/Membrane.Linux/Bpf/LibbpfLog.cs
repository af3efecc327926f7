using System.Runtime.InteropServices;
using System.Text;
using Membrane.Linux.Interop;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Membrane.Linux.Bpf;

/// <summary>
/// Routes libbpf's messages (libbpf_set_print is process-wide) into
/// Microsoft.Extensions.Logging, and captures them per thread while an object loads so that
/// a failed load can carry the verifier log in its <see cref="BpfVerifierException"/>.
/// </summary>
public static unsafe class LibbpfLog
{
    private static readonly object s_gate = new();
    private static bool s_installed;
    private static ILogger s_logger = NullLogger.Instance;

    [ThreadStatic]
    private static StringBuilder? t_capture;

    /// <summary>Where libbpf's messages go when no load on the printing thread captures them.</summary>
    public static ILogger Logger
    {
        get => s_logger;
        set => s_logger = value ?? NullLogger.Instance;
    }

    /// <summary>Installs the print callback (idempotent).</summary>
    internal static void EnsureInstalled()
    {
        if (Volatile.Read(ref s_installed))
        {
            return;
        }
        lock (s_gate)
        {
            if (!s_installed)
            {
                Libbpf.SetPrint(&OnPrint);
                Volatile.Write(ref s_installed, true);
            }
        }
    }

    /// <summary>Starts capturing libbpf's output on this thread; dispose to stop and read it.</summary>
    internal static Capture BeginCapture()
    {
        EnsureInstalled();
        var previous = t_capture;
        t_capture = new StringBuilder();
        return new Capture(previous);
    }

    internal readonly struct Capture(StringBuilder? previous) : IDisposable
    {
        public string Text => t_capture?.ToString() ?? "";

        public void Dispose() => t_capture = previous;
    }

    // int (*)(enum libbpf_print_level level, const char *fmt, va_list ap). Runs on whatever
    // thread called into libbpf; it must never let an exception escape into native code.
    [UnmanagedCallersOnly]
    private static int OnPrint(int level, byte* format, nint args)
    {
        try
        {
            var text = Format(format, args);
            var capture = t_capture;
            if (capture is not null)
            {
                capture.Append(text);
                // A debug-level message during a capture is only kept in the capture.
                if (level == Libbpf.LIBBPF_DEBUG)
                {
                    return 0;
                }
            }
            var logLevel = level switch
            {
                Libbpf.LIBBPF_WARN => LogLevel.Warning,
                Libbpf.LIBBPF_INFO => LogLevel.Information,
                _ => LogLevel.Debug,
            };
            if (s_logger.IsEnabled(logLevel))
            {
                s_logger.Log(logLevel, "{Message}", text.TrimEnd('\n')); // libbpf prefixes its own "libbpf: "
            }
        }
        catch (Exception)
        {
            // Losing a log line is better than crashing the process from a native frame.
        }
        return 0;
    }

    private static string Format(byte* format, nint args)
    {
        // A va_list may be consumed once. On x86-64 it is a pointer to a 24-byte
        // __va_list_tag whose copy is what va_copy makes (SysV ABI 3.5.7); on arm64 a
        // 32-byte struct passed by reference. Measure with a copy, format with the original.
        var tagSize = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 32 : 24;
        var copy = stackalloc byte[32];
        Buffer.MemoryCopy((void*)args, copy, 32, tagSize);
        var length = Libc.Vsnprintf(null, 0, format, (nint)copy);
        if (length <= 0)
        {
            return "";
        }
        var buffer = new byte[length + 1];
        fixed (byte* p = buffer)
        {
            Libc.Vsnprintf(p, (nuint)buffer.Length, format, args);
        }
        return Encoding.UTF8.GetString(buffer, 0, length);
    }
}
