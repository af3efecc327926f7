using System.Text.Json;
using System.Text.RegularExpressions;
using Membrane.Api;

namespace Membrane.Cni;

/// <summary>
/// The network configuration on stdin (SPEC.md "Network Configuration"), Membrane's keys:
/// <c>{"cniVersion","name","type":"membrane","socket","mtu","args":{"cni":{"labels":[{key,value}]}}}</c>,
/// plus <c>prevResult</c> when chained and <c>cni.dev/valid-attachments</c> for GC.
/// </summary>
internal sealed partial class NetConf
{
    public const int DefaultMtu = 1500;
    /// <summary>IPv4's minimum MTU (RFC 791) up to the largest the kernel takes for veth.</summary>
    public const int MinMtu = 68, MaxMtu = 65535;

    public required string CniVersion { get; init; }
    public required string Name { get; init; }
    public required string Type { get; init; }
    public string Socket { get; init; } = MembraneClient.DefaultSocketPath;
    public int Mtu { get; init; } = DefaultMtu;
    public IReadOnlyList<Label> Labels { get; init; } = [];
    /// <summary>The previous plugin's result, kept verbatim to pass through (chaining).</summary>
    public JsonElement? PrevResult { get; init; }
    public IReadOnlyList<Attachment> ValidAttachments { get; init; } = [];

    /// <summary>
    /// Parses and validates the configuration. Malformed JSON is code 6; a missing or wrong
    /// field is code 7, an unsupported version code 1, a field Membrane refuses code 2.
    /// </summary>
    public static NetConf Parse(ReadOnlySpan<byte> json, CniCommand command)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { AllowTrailingCommas = false, MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw CniException.Decode("failed to decode the network configuration on stdin", $"{e.Message}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw CniException.Decode("failed to decode the network configuration on stdin", "expected a JSON object");
            }
            var version = RequiredString(root, "cniVersion");
            if (!Cni.CniVersion.IsSupported(version))
            {
                throw new CniException(Api.ErrorCodes.IncompatibleVersion,
                    $"incompatible CNI versions: config is \"{version}\", plugin supports [{string.Join(", ", Cni.CniVersion.Supported)}]");
            }
            var name = RequiredString(root, "name");
            if (!NamePattern().IsMatch(name))
            {
                throw CniException.InvalidConfig($"invalid network name \"{name}\": must start with an alphanumeric character, followed by alphanumerics, '_', '.' or '-'");
            }
            var type = RequiredString(root, "type");
            if (root.TryGetProperty("ipam", out _))
            {
                throw new CniException(Api.ErrorCodes.UnsupportedField,
                    "unsupported field \"ipam\": the membrane agent allocates pod addresses itself (configure --pod-cidr on the agent)");
            }
            var socket = OptionalString(root, "socket") ?? MembraneClient.DefaultSocketPath;
            if (!socket.StartsWith('/'))
            {
                throw CniException.InvalidConfig($"invalid field \"socket\": \"{socket}\" is not an absolute path");
            }
            var mtu = DefaultMtu;
            if (root.TryGetProperty("mtu", out var mtuElement))
            {
                if (mtuElement.ValueKind != JsonValueKind.Number || !mtuElement.TryGetInt32(out mtu) || mtu < MinMtu || mtu > MaxMtu)
                {
                    throw CniException.InvalidConfig($"invalid field \"mtu\": {mtuElement.GetRawText()} is not an integer from {MinMtu} to {MaxMtu}");
                }
            }
            JsonElement? prev = null;
            if (root.TryGetProperty("prevResult", out var prevElement) && prevElement.ValueKind != JsonValueKind.Null)
            {
                if (prevElement.ValueKind != JsonValueKind.Object)
                {
                    throw CniException.InvalidConfig("invalid field \"prevResult\": expected an object");
                }
                prev = prevElement.Clone();
            }
            return new NetConf
            {
                CniVersion = version,
                Name = name,
                Type = type,
                Socket = socket,
                Mtu = mtu,
                Labels = ParseLabels(root),
                PrevResult = prev,
                ValidAttachments = command == CniCommand.Gc ? ParseValidAttachments(root) : [],
            };
        }
    }

    /// <summary>args.cni.labels (CNI CONVENTIONS.md "Args in network config"): a list of {key, value}.</summary>
    private static List<Label> ParseLabels(JsonElement root)
    {
        var labels = new List<Label>();
        if (!root.TryGetProperty("args", out var args) || args.ValueKind != JsonValueKind.Object
            || !args.TryGetProperty("cni", out var cni) || cni.ValueKind != JsonValueKind.Object
            || !cni.TryGetProperty("labels", out var list))
        {
            return labels; // args may carry anything a plugin does not understand (SPEC.md)
        }
        if (list.ValueKind != JsonValueKind.Array)
        {
            throw CniException.InvalidConfig("invalid field \"args.cni.labels\": expected a list of {\"key\",\"value\"} objects");
        }
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var i = 0;
        foreach (var item in list.EnumerateArray())
        {
            var where = $"args.cni.labels[{i++}]";
            if (item.ValueKind != JsonValueKind.Object
                || !item.TryGetProperty("key", out var k) || k.ValueKind != JsonValueKind.String
                || !item.TryGetProperty("value", out var v) || v.ValueKind != JsonValueKind.String)
            {
                throw CniException.InvalidConfig($"invalid field \"{where}\": expected {{\"key\": string, \"value\": string}}");
            }
            var key = k.GetString()!;
            var value = v.GetString()!;
            if ((LabelSyntax.ValidateKey(key) ?? LabelSyntax.ValidateValue(value)) is { } why)
            {
                throw CniException.InvalidConfig($"invalid field \"{where}\": {why}");
            }
            if (!seen.Add(key))
            {
                throw CniException.InvalidConfig($"invalid field \"{where}\": label key \"{key}\" is given twice");
            }
            labels.Add(new Label(key, value));
        }
        return labels;
    }

    /// <summary>GC's <c>cni.dev/valid-attachments</c> (SPEC.md 1.1.0 "GC"): [{containerID, ifname}].</summary>
    private static List<Attachment> ParseValidAttachments(JsonElement root)
    {
        var result = new List<Attachment>();
        if (!root.TryGetProperty("cni.dev/valid-attachments", out var list) || list.ValueKind == JsonValueKind.Null)
        {
            return result;
        }
        if (list.ValueKind != JsonValueKind.Array)
        {
            throw CniException.InvalidConfig("invalid field \"cni.dev/valid-attachments\": expected a list");
        }
        var i = 0;
        foreach (var item in list.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object
                || !item.TryGetProperty("containerID", out var id) || id.ValueKind != JsonValueKind.String
                || !item.TryGetProperty("ifname", out var ifName) || ifName.ValueKind != JsonValueKind.String)
            {
                throw CniException.InvalidConfig($"invalid field \"cni.dev/valid-attachments[{i}]\": expected {{\"containerID\": string, \"ifname\": string}}");
            }
            result.Add(new Attachment(id.GetString()!, ifName.GetString()!));
            i++;
        }
        return result;
    }

    private static string RequiredString(JsonElement root, string name) =>
        OptionalString(root, name) is { Length: > 0 } s ? s
            : throw CniException.InvalidConfig($"missing field \"{name}\" in the network configuration");

    private static string? OptionalString(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return e.ValueKind == JsonValueKind.String ? e.GetString()
            : throw CniException.InvalidConfig($"invalid field \"{name}\": expected a string, found {e.ValueKind.ToString().ToLowerInvariant()}");
    }

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$")]
    private static partial Regex NamePattern();
}
