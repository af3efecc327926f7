using System.Globalization;
using Membrane.Api;
using Membrane.Datapath.Policy;
using Membrane.Policy.Evaluation;
using Membrane.Policy.Model;

namespace Membrane.Agent.Policy;

/// <summary>The API's view of policies, kernel entries and trace verdicts.</summary>
internal static class PolicyViews
{
    public static PolicyInfo Info(PolicyResource policy, IReadOnlyList<long> endpoints) => new()
    {
        Namespace = policy.Key.Namespace,
        Name = policy.Key.Name,
        Kind = policy.Kind.ToString(),
        Source = policy.Location.File,
        Rules = [.. policy.Rules.Select(r => new PolicyRuleInfo
        {
            Path = r.Origin.Path,
            Direction = r.Direction.ToString().ToLowerInvariant(),
            Action = r.Action.ToString().ToLowerInvariant(),
            RuleNumber = PolicyManager.RuleNumber(r.Origin),
            Location = $"{r.Origin.Location.File}:{r.Origin.Location.Line}:{r.Origin.Location.Column}",
        })],
        Endpoints = endpoints,
        Yaml = policy.SourceText,
    };

    /// <summary>
    /// Decodes a policy trie key (bpf/lib/policy.h): the prefix length says how much matches —
    /// up to the direction (any protocol), up to the protocol (any port), or the protocol and
    /// the port's top bits (a block of ports).
    /// </summary>
    public static BpfPolicyEntry Entry(Datapath.Policy.PolicyKey key, bool deny, uint rule, PolicyManager policy)
    {
        byte protocol = 0;
        int from = 0, to = ushort.MaxValue;
        if (key.PrefixLength >= (uint)PolicyPrefix.AnyPort)
        {
            protocol = key.Protocol;
            var bits = (int)(key.PrefixLength - (uint)PolicyPrefix.AnyPort);
            if (bits > 0)
            {
                from = key.Port;
                to = from + (1 << (16 - bits)) - 1;
            }
        }
        var peer = key.Identity == 0 ? null : policy.Identity(key.Identity);
        return new BpfPolicyEntry
        {
            Direction = key.Direction.ToString().ToLowerInvariant(),
            PeerIdentity = key.Identity,
            // A reserved label has no value: reserved:host, as Cilium prints it.
            PeerLabels = peer is null ? [] : [.. peer.Labels.Labels.Select(l => l.Value.Length == 0 ? $"{l.Source}:{l.Key}" : l.ToString()).Concat(peer.Prefix is { } p ? [$"cidr:{p}"] : [])],
            Protocol = protocol == 0 ? "ANY" : IpProtocol.Name(protocol),
            FromPort = from,
            ToPort = to,
            Action = deny ? "deny" : "allow",
            Rule = rule,
            RuleOrigin = policy.RuleOriginOf(rule)?.ToString(),
        };
    }

    public static PolicyTraceResponse Trace(PolicyVerdict verdict, PolicyPeer source, PolicyPeer destination) => new()
    {
        Verdict = verdict.Allowed ? "ALLOWED" : "DENIED",
        Allowed = verdict.Allowed,
        SrcLabels = [.. source.Labels.Labels.Select(l => l.ToString())],
        DstLabels = [.. destination.Labels.Labels.Select(l => l.ToString())],
        Egress = Direction(verdict.Egress),
        Ingress = Direction(verdict.Ingress),
    };

    private static PolicyTraceDirection Direction(DirectionVerdict v) => new()
    {
        Direction = v.Direction.ToString().ToLowerInvariant(),
        Outcome = v.Outcome switch
        {
            DirectionOutcome.Unrestricted => "unrestricted",
            DirectionOutcome.Allowed => "allowed",
            DirectionOutcome.AllowedFromHost => "allowed-from-host",
            DirectionOutcome.DeniedByDefault => "denied-by-default",
            DirectionOutcome.DeniedByRule => "denied-by-rule",
            _ => v.Outcome.ToString().ToLowerInvariant(),
        },
        Allowed = v.Allowed,
        Rules = [.. v.Rules.Select(r => r.ToString())],
        SelectedBy = v.SelectedBy,
    };

    public static string Number(long n) => n.ToString(CultureInfo.InvariantCulture);
}
