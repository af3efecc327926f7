using Membrane.Linux.Interop;

namespace Membrane.Linux.Bpf;

/// <summary>Facts about this machine that BPF user space needs.</summary>
public static class BpfSystem
{
    private static readonly Lazy<int> s_possibleCpus = new(() =>
    {
        var n = Libbpf.NumPossibleCpus();
        BpfException.ThrowIfNegative(n, "count the possible CPUs");
        return n;
    });

    /// <summary>
    /// CPUs that may ever come online (/sys/devices/system/cpu/possible), which is how many
    /// slots a per-CPU map value has; not <see cref="Environment.ProcessorCount"/>.
    /// </summary>
    public static int PossibleCpus => s_possibleCpus.Value;

    /// <summary>
    /// The version of the libbpf this process loads ("v1.1"), or false with the loader's
    /// message when libbpf.so.1 cannot be loaded.
    /// </summary>
    public static unsafe bool TryGetLibbpfVersion(out string versionOrError)
    {
        try
        {
            versionOrError = Libbpf.PtrToString(Libbpf.VersionString()) ?? "unknown";
            return true;
        }
        catch (DllNotFoundException e)
        {
            versionOrError = e.Message;
            return false;
        }
        catch (EntryPointNotFoundException e)
        {
            versionOrError = e.Message;
            return false;
        }
    }
}
