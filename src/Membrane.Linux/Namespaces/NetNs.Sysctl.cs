namespace Membrane.Linux.Namespaces;

public sealed partial class NetNs
{
    /// <summary>Reads a net.* sysctl inside this namespace (see <see cref="Sysctl.Read"/> for the key forms).</summary>
    public string ReadSysctl(string key) => Run(() => Sysctl.Read(key));

    /// <summary>Writes a net.* sysctl inside this namespace.</summary>
    public void WriteSysctl(string key, string value) => Run(() => Sysctl.Write(key, value));

    /// <summary>net.ipv4.ip_forward: route IPv4 between interfaces of this namespace.</summary>
    public void SetIpv4Forwarding(bool enabled) => WriteSysctl("net.ipv4.ip_forward", enabled ? "1" : "0");

    /// <summary>net.ipv6.conf.all.forwarding: route IPv6 between interfaces of this namespace.</summary>
    public void SetIpv6Forwarding(bool enabled) => WriteSysctl("net.ipv6.conf.all.forwarding", enabled ? "1" : "0");

    /// <summary>
    /// net.ipv4.conf.INTERFACE.rp_filter ("all" and "default" are accepted as interface names).
    /// The kernel applies the maximum of "all" and the interface's value.
    /// </summary>
    public void SetRpFilter(string interfaceName, RpFilterMode mode) =>
        WriteSysctl(Sysctl.InterfaceKey("ipv4", interfaceName, "rp_filter"), ((int)mode).ToString(System.Globalization.CultureInfo.InvariantCulture));
}
