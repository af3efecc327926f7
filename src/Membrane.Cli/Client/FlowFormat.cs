using System.Globalization;
using Membrane.Api;
using Membrane.Policy.Identities;

namespace Membrane.Cli.Client;

/// <summary>
/// The pieces a flow is printed with, as <c>hubble observe</c> prints them
/// (cilium/hubble pkg/printer): <c>namespace/pod:port</c> or <c>address:port</c> for an
/// endpoint, <c>(ID:n)</c> or a reserved identity's name, the record kind
/// (<c>to-endpoint</c>, <c>drop</c>, <c>policy-verdict:L3-L4</c>), the verdict and its reason.
/// </summary>
internal static class FlowFormat
{
    /// <summary>Hubble's time.StampMilli (<c>Nov  7 22:51:28.123</c>) in the local time zone.</summary>
    public static string Time(DateTimeOffset time)
    {
        var local = time.ToLocalTime();
        return string.Create(CultureInfo.InvariantCulture,
            $"{local.ToString("MMM", CultureInfo.InvariantCulture)} {local.Day,2} {local.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)}");
    }

    /// <summary>The source as printed: pod (with namespace) or address, and the port if the protocol has one.</summary>
    public static string Source(Flow flow) => Host(flow.Source, flow.IP?.Source, FlowMatcher.PortsOf(flow)?.Source);

    /// <summary>The destination as printed.</summary>
    public static string Destination(Flow flow) => Host(flow.Destination, flow.IP?.Destination, FlowMatcher.PortsOf(flow)?.Destination);

    /// <summary>namespace/pod, or the address when the endpoint is no pod of this node.</summary>
    public static string Name(FlowEndpoint? endpoint, string? address) =>
        endpoint?.PodName is { Length: > 0 } pod
            ? endpoint.Namespace is { Length: > 0 } ns ? $"{ns}/{pod}" : pod
            : address ?? "?";

    private static string Host(FlowEndpoint? endpoint, string? address, int? port)
    {
        var name = Name(endpoint, address);
        if (port is not { } p)
        {
            return name;
        }
        // [fd00::2]:80 (RFC 3986 3.2.2); a pod name never holds a colon.
        return name.Contains(':', StringComparison.Ordinal) ? $"[{name}]:{p}" : $"{name}:{p}";
    }

    /// <summary>(ID:256) for an allocated identity, (world), (host), … for a reserved one, as hubble's fmtIdentity.</summary>
    public static string Identity(FlowEndpoint? endpoint) =>
        endpoint is null ? "" :
        endpoint.Identity < ReservedIdentities.FirstAllocated && ReservedIdentities.NameOf(endpoint.Identity) is { } reserved ? $"({reserved})" :
        $"(ID:{endpoint.Identity})";

    /// <summary>
    /// The record kind: a trace's observation point (to-endpoint, to-stack), drop, or
    /// policy-verdict:MATCH with what decided it (identity, any-identity, default-deny; none
    /// when the record does not say).
    /// </summary>
    public static string Kind(Flow flow) => flow.EventType.Type switch
    {
        FlowNames.EventTrace => flow.TraceObservationPoint is { Length: > 0 } point ? Dashed(point) : "trace",
        FlowNames.EventDrop => "drop",
        FlowNames.EventPolicyVerdict => "policy-verdict:" + (flow.PolicyMatchType is { Length: > 0 } match ? Dashed(match) : "none"),
        var type => $"type-{type}",
    };

    /// <summary>INGRESS or EGRESS when the flow's direction is known, else null.</summary>
    public static string? Direction(Flow flow) =>
        flow.TrafficDirection is { Length: > 0 } d && d != FlowNames.DirectionUnknown ? d.ToUpperInvariant() : null;

    /// <summary>The drop reason's name when the flow was dropped, else null.</summary>
    public static string? Reason(Flow flow) =>
        flow.Verdict == FlowNames.Dropped
            ? flow.DropReasonDesc is { Length: > 0 } desc ? desc : flow.DropReason is { } code and not 0 ? $"reason {code}" : null
            : null;

    /// <summary>Hubble's arrow: -> for a request, &lt;- for a reply (printed with its ends swapped), &lt;&gt; when the record does not say.</summary>
    public static string Arrow(Flow flow) => flow.IsReply switch
    {
        true => "<-",
        false => "->",
        null => "<>",
    };

    // TO_ENDPOINT -> to-endpoint, as the --type flag and hubble spell observation points.
    private static string Dashed(string name) => name.ToLowerInvariant().Replace('_', '-');
}
