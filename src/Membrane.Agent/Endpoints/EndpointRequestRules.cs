using Membrane.Agent.Identities;
using Membrane.Api;

namespace Membrane.Agent.Endpoints;

/// <summary>
/// The rules for the CNI facts a request carries, from the CNI spec 1.1.0 ("Parameters"):
/// CNI_CONTAINERID is non-empty and only alphanumerics, '-', '_' and '.'; CNI_IFNAME is at
/// most 15 characters (IFNAMSIZ - 1) and not empty, ".", "..", nor containing '/', ':' or
/// whitespace. The agent checks them again although the plugin does: the socket is an API.
/// </summary>
internal static class EndpointRequestRules
{
    public static void ValidateAttachment(string operation, string containerId, string ifName)
    {
        if (containerId.Length == 0 || !containerId.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new AgentException(ErrorCodes.InvalidEnvironment,
                $"failed to {operation}: invalid container id '{containerId}': it must be non-empty and only letters, digits, '-', '_' or '.'");
        }
        if (ifName.Length is 0 or > 15 || ifName is "." or ".." || ifName.Any(c => c is '/' or ':' || char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            throw new AgentException(ErrorCodes.InvalidEnvironment,
                $"failed to {operation}: invalid interface name '{ifName}': it must be 1-15 characters, not '.' or '..', without '/', ':' or whitespace");
        }
    }

    public static void ValidateNetNs(string operation, string netns)
    {
        if (netns.Length == 0 || netns[0] != '/')
        {
            throw new AgentException(ErrorCodes.InvalidEnvironment,
                $"failed to {operation}: invalid network namespace '{netns}': an absolute path is required");
        }
    }

    public static void ValidateMtu(string operation, int mtu, bool ipv6)
    {
        // 68: the IPv4 minimum (RFC 791); 1280 when the pod gets IPv6 (RFC 8200 §5).
        var min = ipv6 ? 1280 : 68;
        if (mtu < min || mtu > 65535)
        {
            throw new AgentException(ErrorCodes.InvalidNetworkConfig,
                $"failed to {operation}: invalid MTU {mtu}: it must be between {min} and 65535{(ipv6 ? " (the pod gets IPv6)" : "")}");
        }
    }

    public static LabelSet Labels(string operation, IReadOnlyList<Label> labels)
    {
        if (!LabelSet.TryCreate(labels.Select(l => new KeyValuePair<string, string>(l.Key ?? "", l.Value ?? "")), out var set, out var error))
        {
            throw new AgentException(ErrorCodes.InvalidRequest, $"failed to {operation}: {error}");
        }
        return set;
    }
}
