namespace Membrane.Linux;

/// <summary>Reverse-path filtering (net.ipv4.conf.*.rp_filter; Documentation/networking/ip-sysctl.rst).</summary>
public enum RpFilterMode
{
    /// <summary>0: no source validation.</summary>
    Off = 0,
    /// <summary>1: strict (RFC 3704 strict reverse path): the reply must leave by the arrival interface.</summary>
    Strict = 1,
    /// <summary>2: loose (RFC 3704 loose reverse path): the source must be reachable by any interface.</summary>
    Loose = 2,
}

/// <summary>
/// Kernel parameters under /proc/sys. The net.* subtree belongs to the network namespace of
/// the calling thread (net/sysctl_net.c resolves it from current->nsproxy), so inside a
/// namespace call these through <see cref="Namespaces.NetNs.Run{T}(System.Func{T})"/>, or use
/// the NetNs helpers that do.
/// </summary>
public static class Sysctl
{
    private const string Root = "/proc/sys/";

    /// <summary>
    /// Reads a parameter. <paramref name="key"/> is dotted ("net.ipv4.ip_forward") or a path
    /// relative to /proc/sys ("net/ipv4/conf/eth0.100/rp_filter", needed when an interface
    /// name contains a dot).
    /// </summary>
    public static string Read(string key)
    {
        var path = PathOf(key);
        try
        {
            return File.ReadAllText(path).TrimEnd('\n');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"failed to read sysctl {key}: {e.Message}", e);
        }
    }

    /// <summary>Writes a parameter (see <see cref="Read"/> for the key forms).</summary>
    public static void Write(string key, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var path = PathOf(key);
        try
        {
            // FileMode.Open: never create anything under /proc/sys; a missing key is an error.
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
            stream.Write(System.Text.Encoding.ASCII.GetBytes(value + "\n"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"failed to write sysctl {key}={value}: {e.Message}", e);
        }
    }

    /// <summary>The /proc/sys path of a key; rejects anything that could leave /proc/sys.</summary>
    internal static string PathOf(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var relative = key.Contains('/') ? key : key.Replace('.', '/');
        foreach (var part in relative.Split('/'))
        {
            if (part.Length == 0 || part is "." or ".." || part.Contains('\0'))
            {
                throw new ArgumentException($"invalid sysctl key '{key}'", nameof(key));
            }
        }
        return Root + relative;
    }

    /// <summary>The path form of a per-interface key (interface names may contain dots).</summary>
    internal static string InterfaceKey(string family, string interfaceName, string parameter)
    {
        ArgumentException.ThrowIfNullOrEmpty(interfaceName);
        if (interfaceName.Contains('/') || interfaceName is "." or "..")
        {
            throw new ArgumentException($"invalid interface name '{interfaceName}'", nameof(interfaceName));
        }
        return $"net/{family}/conf/{interfaceName}/{parameter}";
    }
}
