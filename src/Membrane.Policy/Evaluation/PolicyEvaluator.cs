using System.Net;
using Membrane.Policy.Labels;
using Membrane.Policy.Model;
using Membrane.Policy.Repository;

namespace Membrane.Policy.Evaluation;

/// <summary>One end of a flow: its labels (its identity) and, where known, its address.</summary>
/// <param name="Labels">The labels; <c>reserved:world</c> for an address outside the cluster.</param>
/// <param name="Address">The IP address; CIDR rules need it for a world peer.</param>
public sealed record PolicyPeer(LabelSet Labels, IPAddress? Address = null)
{
    /// <summary>A peer outside the cluster at <paramref name="address"/>.</summary>
    public static PolicyPeer World(IPAddress? address = null) => new(LabelSet.ForReserved("world"), address);

    public override string ToString() => Address is null ? $"[{Labels}]" : $"[{Labels}] {Address}";
}

/// <summary>How one direction judged a flow.</summary>
public enum DirectionOutcome
{
    /// <summary>No rule selects the endpoint for this direction: everything is allowed.</summary>
    Unrestricted,
    /// <summary>Selected, and at least one allow rule matched.</summary>
    Allowed,
    /// <summary>Selected, no allow rule matched, but the peer is the local host and <see cref="PolicyOptions.AllowLocalhost"/> is set.</summary>
    AllowedFromHost,
    /// <summary>Selected, and no allow rule matched (POLICY_DENIED).</summary>
    DeniedByDefault,
    /// <summary>A deny rule matched (POLICY_DENY); it beats every allow.</summary>
    DeniedByRule,
}

/// <summary>The verdict of one direction, with the rules that decided it.</summary>
/// <param name="Direction">Egress (of the source) or ingress (of the destination).</param>
/// <param name="Outcome">What happened.</param>
/// <param name="Rules">The deny rules that matched (DeniedByRule), or the allow rules that matched (otherwise).</param>
/// <param name="SelectedBy">The rule sets that select the endpoint and enforce this direction (<c>ns/name spec</c>).</param>
public sealed record DirectionVerdict(TrafficDirection Direction, DirectionOutcome Outcome, IReadOnlyList<RuleOrigin> Rules,
    IReadOnlyList<string> SelectedBy)
{
    /// <summary>Whether the direction lets the flow through.</summary>
    public bool Allowed => Outcome is DirectionOutcome.Unrestricted or DirectionOutcome.Allowed or DirectionOutcome.AllowedFromHost;

    public override string ToString() => Outcome switch
    {
        DirectionOutcome.Unrestricted => $"{Direction}: unrestricted (no policy selects the endpoint)",
        DirectionOutcome.DeniedByDefault => $"{Direction}: DENIED, no allow rule matched (selected by {string.Join(", ", SelectedBy)})",
        DirectionOutcome.AllowedFromHost => $"{Direction}: ALLOWED, from the local host (allow-localhost)",
        _ => $"{Direction}: {(Allowed ? "ALLOWED" : "DENIED")} by {string.Join(", ", Rules)}",
    };
}

/// <summary>A flow's verdict: the sender's egress and the receiver's ingress must both allow it.</summary>
public sealed record PolicyVerdict(DirectionVerdict Egress, DirectionVerdict Ingress)
{
    /// <summary>Whether the flow is allowed.</summary>
    public bool Allowed => Egress.Allowed && Ingress.Allowed;

    /// <summary><c>ALLOWED</c> or <c>DENIED</c>, then each direction.</summary>
    public override string ToString() => $"{(Allowed ? "ALLOWED" : "DENIED")}\n  {Egress}\n  {Ingress}";
}

/// <summary>
/// The reference evaluator: the meaning of a policy set, written as plainly as possible so the
/// resolver and the datapath can be checked against it (<c>membrane policy trace</c> answers
/// with it).
/// </summary>
/// <remarks>
/// Semantics (issue 6, DESIGN.md "Control plane"; Cilium's and Kubernetes' policy model):
/// <list type="bullet">
/// <item>An endpoint selected by no rule set enforcing a direction is unrestricted in it; once
/// one selects it, the direction is default-deny (Kubernetes: "pods become isolated").</item>
/// <item>Allowed is the union of the matching allow rules of every rule set that selects the
/// endpoint ("policies are additive").</item>
/// <item>A matching deny rule beats every allow (Cilium deny policies "take precedence"),
/// also in a direction no rule set enforces.</item>
/// <item>A flow needs the sender's egress and the receiver's ingress. A world or CIDR peer has
/// no policy of its own: rule sets select pods of their namespace only.</item>
/// <item>For ICMP and ICMPv6, <c>port</c> is the ICMP type.</item>
/// </list>
/// </remarks>
public static class PolicyEvaluator
{
    /// <summary>Judges a flow from <paramref name="source"/> to <paramref name="destination"/>.</summary>
    public static PolicyVerdict Evaluate(PolicySnapshot policies, PolicyPeer source, PolicyPeer destination, byte protocol, int port,
        PolicyOptions? options = null) =>
        new(EvaluateDirection(policies, source, destination, TrafficDirection.Egress, protocol, port, options),
            EvaluateDirection(policies, destination, source, TrafficDirection.Ingress, protocol, port, options));

    /// <summary>
    /// Judges one direction of <paramref name="endpoint"/>'s policy: its egress towards
    /// <paramref name="peer"/>, or its ingress from <paramref name="peer"/>.
    /// </summary>
    public static DirectionVerdict EvaluateDirection(PolicySnapshot policies, PolicyPeer endpoint, PolicyPeer peer,
        TrafficDirection direction, byte protocol, int port, PolicyOptions? options = null)
    {
        var enforcing = new List<string>();
        var allows = new List<RuleOrigin>();
        var denies = new List<RuleOrigin>();
        foreach (var spec in policies.Specs)
        {
            if (!spec.Subject.Matches(endpoint.Labels))
            {
                continue;
            }
            if (spec.DefaultDeny(direction))
            {
                enforcing.Add(spec.ToString());
            }
            foreach (var rule in spec.Rules)
            {
                if (rule.Direction == direction && rule.MatchesPeer(peer.Labels, peer.Address) && rule.MatchesPort(protocol, port))
                {
                    (rule.Action == RuleAction.Deny ? denies : allows).Add(rule.Origin);
                }
            }
        }
        if (denies.Count > 0)
        {
            return new DirectionVerdict(direction, DirectionOutcome.DeniedByRule, denies, enforcing);
        }
        if (enforcing.Count == 0)
        {
            return new DirectionVerdict(direction, DirectionOutcome.Unrestricted, allows, enforcing);
        }
        if (allows.Count > 0)
        {
            return new DirectionVerdict(direction, DirectionOutcome.Allowed, allows, enforcing);
        }
        return new DirectionVerdict(direction,
            direction == TrafficDirection.Ingress && (options ?? PolicyOptions.Default).AllowLocalhost && peer.Labels.IsReserved("host")
                ? DirectionOutcome.AllowedFromHost : DirectionOutcome.DeniedByDefault,
            allows, enforcing);
    }
}
