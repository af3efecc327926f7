using System.Text.Json;
using Membrane.Api;

namespace Membrane.Cni;

/// <summary>Writes the spec's result, error and version objects in the version the runtime asked for.</summary>
internal static class CniOutput
{
    private static readonly JsonWriterOptions s_options = new() { Indented = true };

    /// <summary>
    /// The ADD result (SPEC.md "Success"). Our two interfaces follow any from <c>prevResult</c>
    /// (chaining: the previous plugins' interfaces, IPs, routes and DNS pass through), and our
    /// IPs point at the pod-side interface by its index in the combined list.
    /// </summary>
    public static void WriteAddResult(Stream output, string version, CniRequest request, NetConf conf, CniAddResponse added)
    {
        using var w = new Utf8JsonWriter(output, s_options);
        var prev = conf.PrevResult;
        w.WriteStartObject();
        w.WriteString("cniVersion", version);

        w.WriteStartArray("interfaces");
        var prevInterfaces = CopyArray(w, prev, "interfaces");
        w.WriteStartObject();
        w.WriteString("name", added.HostInterface);
        w.WriteString("mac", added.HostMac);
        if (CniVersion.AtLeast(version, "1.1.0"))
        {
            w.WriteNumber("mtu", added.Mtu);
        }
        w.WriteEndObject();
        w.WriteStartObject();
        w.WriteString("name", request.IfName);
        w.WriteString("mac", added.PodMac);
        if (CniVersion.AtLeast(version, "1.1.0"))
        {
            w.WriteNumber("mtu", added.Mtu);
        }
        w.WriteString("sandbox", request.NetNs);
        w.WriteEndObject();
        w.WriteEndArray();

        var podInterfaceIndex = prevInterfaces + 1;
        w.WriteStartArray("ips");
        CopyArray(w, prev, "ips");
        foreach (var ip in added.Ips)
        {
            w.WriteStartObject();
            if (CniVersion.IpsCarryVersion(version))
            {
                w.WriteString("version", IsIpv6(ip.Address) ? "6" : "4");
            }
            w.WriteString("address", ip.Address);
            if (ip.Gateway is not null)
            {
                w.WriteString("gateway", ip.Gateway);
            }
            w.WriteNumber("interface", podInterfaceIndex);
            w.WriteEndObject();
        }
        w.WriteEndArray();

        w.WriteStartArray("routes");
        CopyArray(w, prev, "routes");
        foreach (var route in added.Routes)
        {
            w.WriteStartObject();
            w.WriteString("dst", route.Destination);
            if (route.Gateway is not null)
            {
                w.WriteString("gw", route.Gateway);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();

        w.WritePropertyName("dns");
        if (prev is { } p && p.TryGetProperty("dns", out var dns) && dns.ValueKind == JsonValueKind.Object)
        {
            dns.WriteTo(w);
        }
        else
        {
            w.WriteStartObject();
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.Flush();
        output.WriteByte((byte)'\n');
    }

    /// <summary>The error object (SPEC.md "Error"): cniVersion, code, msg, details.</summary>
    public static void WriteError(Stream output, string version, int code, string message, string? details)
    {
        using var w = new Utf8JsonWriter(output, s_options);
        w.WriteStartObject();
        w.WriteString("cniVersion", version);
        w.WriteNumber("code", code);
        w.WriteString("msg", message);
        if (!string.IsNullOrEmpty(details))
        {
            w.WriteString("details", details);
        }
        w.WriteEndObject();
        w.Flush();
        output.WriteByte((byte)'\n');
    }

    /// <summary>The VERSION answer (SPEC.md "VERSION").</summary>
    public static void WriteVersion(Stream output, string version)
    {
        using var w = new Utf8JsonWriter(output, s_options);
        w.WriteStartObject();
        w.WriteString("cniVersion", version);
        w.WriteStartArray("supportedVersions");
        foreach (var v in CniVersion.Supported)
        {
            w.WriteStringValue(v);
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.Flush();
        output.WriteByte((byte)'\n');
    }

    private static int CopyArray(Utf8JsonWriter w, JsonElement? prev, string name)
    {
        if (prev is not { } p || !p.TryGetProperty(name, out var array) || array.ValueKind != JsonValueKind.Array)
        {
            return 0;
        }
        var n = 0;
        foreach (var item in array.EnumerateArray())
        {
            item.WriteTo(w);
            n++;
        }
        return n;
    }

    // An IPv6 address always has a ':'; an IPv4 one never does.
    private static bool IsIpv6(string cidr) => cidr.Contains(':', StringComparison.Ordinal);
}
