using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Membrane.Policy.Model;

/// <summary>CIDR parsing and containment.</summary>
public static class Cidrs
{
    /// <summary>
    /// Parses <c>addr/len</c>, or a bare address as a host prefix (/32, /128), as Cilium's
    /// <c>api.CIDR</c> does. Host bits after the prefix are cleared, as Go's
    /// <c>net.ParseCIDR</c> (which Cilium and Kubernetes use) returns the network.
    /// </summary>
    public static bool TryParse(string text, out IPNetwork network, [NotNullWhen(false)] out string? error)
    {
        network = default;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var addressText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(addressText, out var address) || addressText.Contains('%', StringComparison.Ordinal)
            || (address.AddressFamily == AddressFamily.InterNetwork && addressText.Count(c => c == '.') != 3))
        {
            error = $"\"{text}\" is not a CIDR: \"{addressText}\" is not an IP address";
            return false;
        }
        var bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var length = bits;
        if (slash >= 0)
        {
            var lengthText = text[(slash + 1)..];
            if (lengthText.Length == 0 || lengthText.Length > 3 || !lengthText.All(char.IsAsciiDigit)
                || !int.TryParse(lengthText, NumberStyles.None, CultureInfo.InvariantCulture, out length) || length > bits)
            {
                error = $"\"{text}\" is not a CIDR: prefix length \"{lengthText}\" must be 0–{bits}";
                return false;
            }
        }
        network = new IPNetwork(Mask(address, length), length);
        error = null;
        return true;
    }

    /// <summary>Whether <paramref name="inner"/> lies within <paramref name="outer"/> (same family, not shorter, inside).</summary>
    public static bool IsWithin(IPNetwork inner, IPNetwork outer) =>
        inner.BaseAddress.AddressFamily == outer.BaseAddress.AddressFamily
        && inner.PrefixLength >= outer.PrefixLength
        && outer.Contains(inner.BaseAddress);

    private static IPAddress Mask(IPAddress address, int length)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var keep = Math.Clamp(length - i * 8, 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }
        return new IPAddress(bytes);
    }
}
