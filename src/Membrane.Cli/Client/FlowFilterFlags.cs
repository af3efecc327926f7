using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.Json;
using Membrane.Api;

namespace Membrane.Cli.Client;

/// <summary>
/// The filter flags of <c>membrane observe</c>, named and combined as <c>hubble observe</c>
/// combines them (cilium/hubble cmd/observe/flows_filter.go): every flag goes into one of two
/// trackers, the whitelist or, right after <c>--not</c>, the blacklist. A tracker holds a
/// left and a right <see cref="FlowFilter"/> that the agent ORs: a one-sided flag
/// (<c>--from-pod</c>, <c>--verdict</c>, …) adds its value to both, an either-side flag
/// (<c>--pod</c>, <c>--label</c>, <c>--ip</c>, <c>--port</c>, <c>--identity</c>) adds the
/// source member to the left and the destination member to the right. Values of one flag OR
/// (one member holds them all); different flags AND (members of one filter). When left and
/// right come out equal (no either-side flag) one filter is sent.
/// </summary>
internal sealed class FlowFilterFlags
{
    private enum Side { Both, Either }

    private sealed record Flag(string Name, string Description, string ValueName, Side Side,
        Action<FlowFilter, string> Left, Action<FlowFilter, string>? Right = null)
    {
        public Option<string[]> Option { get; } = new("--" + Name)
        {
            Description = Description,
            HelpName = ValueName,
            // Repeatable, one value each time (--pod a --pod b), as hubble's flags.
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
    }

    // Pairs of flags that would make a tracker's left and right filters say something other
    // than what the operator meant (hubble rejects the same pairs): `--pod a --from-pod b`
    // would match "a or b sends" on the left but "b sends to a" on the right.
    private static readonly string[][] Conflicts =
    [
        ["from-ip", "ip", "from-pod", "pod"],
        ["to-ip", "ip", "to-pod", "pod"],
        ["label", "from-label"],
        ["label", "to-label"],
        ["port", "from-port"],
        ["port", "to-port"],
        ["identity", "from-identity"],
        ["identity", "to-identity"],
    ];

    private readonly Flag[] _flags =
    [
        new("from-pod", "Flows from this pod: [namespace/]name-prefix", "[NS/]POD", Side.Both, (f, v) => Add(f.SourcePod ??= [], v)),
        new("to-pod", "Flows to this pod: [namespace/]name-prefix", "[NS/]POD", Side.Both, (f, v) => Add(f.DestinationPod ??= [], v)),
        new("pod", "Flows from or to this pod: [namespace/]name-prefix", "[NS/]POD", Side.Either,
            (f, v) => Add(f.SourcePod ??= [], v), (f, v) => Add(f.DestinationPod ??= [], v)),
        new("from-label", "Flows from an endpoint whose labels match: k=v, k!=v, k, !k; commas AND; source:key (k8s:app) or any source (app)", "SELECTOR", Side.Both,
            (f, v) => Add(f.SourceLabel ??= [], v)),
        new("to-label", "Flows to an endpoint whose labels match the selector", "SELECTOR", Side.Both, (f, v) => Add(f.DestinationLabel ??= [], v)),
        new("label", "Flows from or to an endpoint whose labels match the selector", "SELECTOR", Side.Either,
            (f, v) => Add(f.SourceLabel ??= [], v), (f, v) => Add(f.DestinationLabel ??= [], v)),
        new("from-identity", "Flows from this security identity (number)", "ID", Side.Both, (f, v) => Add(f.SourceIdentity ??= [], Identity(v))),
        new("to-identity", "Flows to this security identity", "ID", Side.Both, (f, v) => Add(f.DestinationIdentity ??= [], Identity(v))),
        new("identity", "Flows from or to this security identity", "ID", Side.Either,
            (f, v) => Add(f.SourceIdentity ??= [], Identity(v)), (f, v) => Add(f.DestinationIdentity ??= [], Identity(v))),
        new("from-ip", "Flows from this address or CIDR", "IP|CIDR", Side.Both, (f, v) => Add(f.SourceIp ??= [], v)),
        new("to-ip", "Flows to this address or CIDR", "IP|CIDR", Side.Both, (f, v) => Add(f.DestinationIp ??= [], v)),
        new("ip", "Flows from or to this address or CIDR", "IP|CIDR", Side.Either,
            (f, v) => Add(f.SourceIp ??= [], v), (f, v) => Add(f.DestinationIp ??= [], v)),
        new("from-port", "Flows from this TCP/UDP/SCTP port", "PORT", Side.Both, (f, v) => Add(f.SourcePort ??= [], Port(v))),
        new("to-port", "Flows to this TCP/UDP/SCTP port", "PORT", Side.Both, (f, v) => Add(f.DestinationPort ??= [], Port(v))),
        new("port", "Flows from or to this TCP/UDP/SCTP port", "PORT", Side.Either,
            (f, v) => Add(f.SourcePort ??= [], Port(v)), (f, v) => Add(f.DestinationPort ??= [], Port(v))),
        new("protocol", "Flows of this L4 protocol: tcp, udp, sctp, icmp (both families), icmpv4, icmpv6", "PROTO", Side.Both,
            (f, v) => Add(f.Protocol ??= [], v.Trim().ToLowerInvariant())),
        new("verdict", "Flows with this verdict: FORWARDED, DROPPED", "VERDICT", Side.Both, (f, v) => Add(f.Verdict ??= [], v.Trim().ToUpperInvariant())),
        new("type", "Flows of this record kind: drop, policy-verdict, trace, trace:to-endpoint, trace:to-stack", "TYPE", Side.Both,
            (f, v) => Add(f.EventType ??= [], v.Trim().ToLowerInvariant())),
        new("tcp-flags", "TCP segments with every flag of this set, e.g. SYN or SYN,ACK", "FLAGS", Side.Both,
            (f, v) => Add(f.TcpFlags ??= [], v.Trim().ToUpperInvariant())),
        new("traffic-direction", "Flows in this direction of the endpoint whose policy applies: ingress, egress", "DIR", Side.Both,
            (f, v) => Add(f.TrafficDirection ??= [], v.Trim().ToLowerInvariant())),
    ];

    /// <summary><c>--not</c>: the next filter flag excludes rather than selects.</summary>
    public Option<bool> Not { get; } = new("--not")
    {
        Description = "Negate the next filter flag: --not --from-pod web shows every flow except web's. As in hubble, all negated flags form one excluded filter: --not --verdict DROPPED --not --to-port 53 leaves out the dropped flows to port 53",
        Arity = ArgumentArity.Zero,
    };

    /// <summary>Every option, <c>--not</c> last, to add to the command.</summary>
    public IEnumerable<Option> Options => [.. _flags.Select(f => f.Option), Not];

    /// <summary>
    /// Walks the command line in order (<c>--not</c> applies to the flag after it, which only
    /// the token order tells) and builds the whitelist and blacklist. Every value is checked by
    /// compiling it alone with <see cref="FlowMatcher"/>, so that a bad CIDR or type names the
    /// flag that carried it before anything is sent.
    /// </summary>
    /// <exception cref="ArgumentException">A bad value, two conflicting flags, --not twice in a row or at the end.</exception>
    public (List<FlowFilter>? Whitelist, List<FlowFilter>? Blacklist) Build(ParseResult parse)
    {
        var whitelist = new Tracker();
        var blacklist = new Tracker();
        var negate = false;
        var tokens = parse.Tokens;
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (token.Type != TokenType.Option)
            {
                continue;
            }
            if (Names(Not, token.Value))
            {
                if (negate)
                {
                    throw new ArgumentException("failed to read the filter flags: --not --not (each --not negates the one flag after it)");
                }
                negate = true;
                continue;
            }
            if (Array.Find(_flags, f => Names(f.Option, token.Value)) is not { } flag)
            {
                continue;
            }
            if (i + 1 >= tokens.Count || tokens[i + 1].Type != TokenType.Argument)
            {
                throw new ArgumentException($"failed to read --{flag.Name}: it needs a value");
            }
            var value = tokens[++i].Value;
            Check(flag, value);
            var tracker = negate ? blacklist : whitelist;
            negate = false;
            tracker.Apply(flag, value);
        }
        if (negate)
        {
            throw new ArgumentException("failed to read the filter flags: --not at the end negates nothing (put it before a filter flag)");
        }
        return (whitelist.Filters(), blacklist.Filters());
    }

    // One value alone through the agent's own parser, so the CLI and the agent agree on what is valid.
    private static void Check(Flag flag, string value)
    {
        var filter = new FlowFilter();
        try
        {
            flag.Left(filter, value);
            _ = new FlowMatcher([filter], null);
        }
        catch (ArgumentException e)
        {
            // FlowMatcher says "failed to read flow filter whitelist[0].x[0]: why"; name the flag instead.
            var why = e.Message;
            var colon = why.IndexOf(": ", StringComparison.Ordinal);
            if (why.StartsWith("failed to read flow filter", StringComparison.Ordinal) && colon > 0)
            {
                why = why[(colon + 2)..];
            }
            throw new ArgumentException($"failed to read --{flag.Name} {value}: {why}", e);
        }
    }

    // The token carries the spelling used (the tokenizer has already split --flag=value).
    private static bool Names(Option option, string spelling) => option.Name == spelling || option.Aliases.Contains(spelling);

    private static void Add<T>(List<T> list, T value) => list.Add(value);

    private static uint Identity(string value) =>
        uint.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? id
            : throw new ArgumentException($"'{value}' is not a security identity (a number)");

    private static int Port(string value) =>
        int.TryParse(value.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port <= 65535
            ? port
            : throw new ArgumentException($"'{value}' is not a port (0-65535)");

    private sealed class Tracker
    {
        private readonly List<string> _changed = [];
        private FlowFilter? _left, _right;

        public void Apply(Flag flag, string value)
        {
            if (!_changed.Contains(flag.Name))
            {
                _changed.Add(flag.Name);
            }
            foreach (var group in Conflicts)
            {
                if (Array.IndexOf(group, flag.Name) >= 0 && Array.Find(group, other => other != flag.Name && _changed.Contains(other)) is { } other)
                {
                    throw new ArgumentException($"failed to read the filter flags: --{other} and --{flag.Name} cannot be combined (use one of them)");
                }
            }
            _left ??= new FlowFilter();
            _right ??= new FlowFilter();
            flag.Left(_left, value);
            (flag.Right ?? flag.Left)(_right, value);
        }

        public List<FlowFilter>? Filters()
        {
            if (_left is null || _right is null)
            {
                return null;
            }
            var info = ApiJsonContext.Default.FlowFilter;
            return JsonSerializer.Serialize(_left, info) == JsonSerializer.Serialize(_right, info) ? [_left] : [_left, _right];
        }
    }
}
