using System.Net;

namespace Membrane.Api;

/// <summary>
/// A compiled <see cref="ObserveRequest"/>'s filters: parses every CIDR, label selector and
/// event type once (a bad one is an <see cref="ArgumentException"/> naming the filter and the
/// value) and then answers <see cref="Matches"/> per flow. The agent applies it before a flow
/// is sent; the semantics are Hubble's: whitelist filters OR, blacklist filters exclude,
/// members of one filter AND, values of one member OR.
/// </summary>
public sealed class FlowMatcher
{
    private readonly CompiledFilter[] _whitelist;
    private readonly CompiledFilter[] _blacklist;

    /// <summary>Compiles the two lists.</summary>
    /// <exception cref="ArgumentException">A value cannot be parsed; the message says which.</exception>
    public FlowMatcher(IReadOnlyList<FlowFilter>? whitelist, IReadOnlyList<FlowFilter>? blacklist)
    {
        _whitelist = Compile(whitelist, "whitelist");
        _blacklist = Compile(blacklist, "blacklist");
    }

    /// <summary>A matcher for everything.</summary>
    public static FlowMatcher All { get; } = new(null, null);

    /// <summary>True when <paramref name="flow"/> passes.</summary>
    public bool Matches(Flow flow)
    {
        if (_whitelist.Length > 0 && !Array.Exists(_whitelist, f => f.Matches(flow)))
        {
            return false;
        }
        return !Array.Exists(_blacklist, f => f.Matches(flow));
    }

    private static CompiledFilter[] Compile(IReadOnlyList<FlowFilter>? filters, string list)
    {
        if (filters is null)
        {
            return [];
        }
        var compiled = new CompiledFilter[filters.Count];
        for (var i = 0; i < filters.Count; i++)
        {
            compiled[i] = new CompiledFilter(filters[i] ?? throw new ArgumentException($"failed to read flow filter {list}[{i}]: it is null"), $"{list}[{i}]");
        }
        return compiled;
    }

    /// <summary>The L4 protocol name of a flow as filters and summaries use it (tcp, udp, sctp, icmpv4, icmpv6), or null.</summary>
    public static string? ProtocolOf(Flow flow) => flow.L4 switch
    {
        { TCP: not null } => "tcp",
        { UDP: not null } => "udp",
        { SCTP: not null } => "sctp",
        { ICMPv4: not null } => "icmpv4",
        { ICMPv6: not null } => "icmpv6",
        _ => null,
    };

    /// <summary>The TCP, UDP or SCTP ports of a flow, or null for another protocol.</summary>
    public static (int Source, int Destination)? PortsOf(Flow flow) => flow.L4 switch
    {
        { TCP: { } t } => (t.SourcePort, t.DestinationPort),
        { UDP: { } u } => (u.SourcePort, u.DestinationPort),
        { SCTP: { } s } => (s.SourcePort, s.DestinationPort),
        _ => null,
    };

    /// <summary>The event kinds a filter can name (as `--type` takes them).</summary>
    public static IReadOnlyList<string> EventTypeNames { get; } = ["drop", "policy-verdict", "trace"];

    /// <summary>The trace observation points (as `--type trace:POINT` takes them, lower case with dashes).</summary>
    public static IReadOnlyList<string> ObservationPoints { get; } = ["to-endpoint", "to-stack"];

    private sealed class CompiledFilter
    {
        private readonly (string? Namespace, string Prefix)[]? _sourcePod, _destinationPod;
        private readonly LabelSelector[]? _sourceLabel, _destinationLabel;
        private readonly HashSet<uint>? _sourceIdentity, _destinationIdentity;
        private readonly IPNetwork[]? _sourceIp, _destinationIp;
        private readonly HashSet<int>? _sourcePort, _destinationPort;
        private readonly HashSet<string>? _protocol;
        private readonly HashSet<string>? _verdict;
        private readonly (int Type, string? Point)[]? _eventType;
        private readonly string[][]? _tcpFlags;
        private readonly HashSet<string>? _direction;

        public CompiledFilter(FlowFilter f, string where)
        {
            _sourcePod = Map(f.SourcePod, where + ".source_pod", ParsePod);
            _destinationPod = Map(f.DestinationPod, where + ".destination_pod", ParsePod);
            _sourceLabel = Map(f.SourceLabel, where + ".source_label", LabelSelector.Parse);
            _destinationLabel = Map(f.DestinationLabel, where + ".destination_label", LabelSelector.Parse);
            _sourceIdentity = Set(f.SourceIdentity);
            _destinationIdentity = Set(f.DestinationIdentity);
            _sourceIp = Map(f.SourceIp, where + ".source_ip", ParseNetwork);
            _destinationIp = Map(f.DestinationIp, where + ".destination_ip", ParseNetwork);
            _sourcePort = Set(Check(f.SourcePort, where + ".source_port"));
            _destinationPort = Set(Check(f.DestinationPort, where + ".destination_port"));
            _protocol = Names(f.Protocol, where + ".protocol", ["tcp", "udp", "sctp", "icmp", "icmpv4", "icmpv6"]);
            _verdict = Names(f.Verdict, where + ".verdict", ["forwarded", "dropped"]);
            _eventType = Map(f.EventType, where + ".event_type", ParseEventType);
            _tcpFlags = Map(f.TcpFlags, where + ".tcp_flags", ParseFlags);
            _direction = Names(f.TrafficDirection, where + ".traffic_direction", ["ingress", "egress"]);
        }

        public bool Matches(Flow flow)
        {
            if (_sourcePod is not null && !Array.Exists(_sourcePod, p => PodMatches(flow.Source, p)))
                return false;
            if (_destinationPod is not null && !Array.Exists(_destinationPod, p => PodMatches(flow.Destination, p)))
                return false;
            if (_sourceLabel is not null && !Array.Exists(_sourceLabel, s => s.Matches(flow.Source?.Labels)))
                return false;
            if (_destinationLabel is not null && !Array.Exists(_destinationLabel, s => s.Matches(flow.Destination?.Labels)))
                return false;
            if (_sourceIdentity is not null && (flow.Source is null || !_sourceIdentity.Contains(flow.Source.Identity)))
                return false;
            if (_destinationIdentity is not null && (flow.Destination is null || !_destinationIdentity.Contains(flow.Destination.Identity)))
                return false;
            if (_sourceIp is not null && !AddressIn(flow.IP?.Source, _sourceIp))
                return false;
            if (_destinationIp is not null && !AddressIn(flow.IP?.Destination, _destinationIp))
                return false;
            var ports = PortsOf(flow);
            if (_sourcePort is not null && (ports is null || !_sourcePort.Contains(ports.Value.Source)))
                return false;
            if (_destinationPort is not null && (ports is null || !_destinationPort.Contains(ports.Value.Destination)))
                return false;
            if (_protocol is not null && !ProtocolMatches(flow))
                return false;
            if (_verdict is not null && !_verdict.Contains(flow.Verdict.ToLowerInvariant()))
                return false;
            if (_eventType is not null && !Array.Exists(_eventType, t => t.Type == flow.EventType.Type &&
                    (t.Point is null || string.Equals(t.Point, flow.TraceObservationPoint, StringComparison.Ordinal))))
                return false;
            if (_tcpFlags is not null && !TcpFlagsMatch(flow))
                return false;
            if (_direction is not null && !_direction.Contains(flow.TrafficDirection.ToLowerInvariant()))
                return false;
            return true;
        }

        private bool ProtocolMatches(Flow flow)
        {
            var protocol = ProtocolOf(flow);
            if (protocol is null)
            {
                return false;
            }
            return _protocol!.Contains(protocol) || (_protocol.Contains("icmp") && protocol.StartsWith("icmp", StringComparison.Ordinal));
        }

        private bool TcpFlagsMatch(Flow flow)
        {
            if (flow.L4?.TCP?.Flags is not { } flags)
            {
                return false;
            }
            var set = flags.Names().ToHashSet(StringComparer.Ordinal);
            return Array.Exists(_tcpFlags!, wanted => Array.TrueForAll(wanted, set.Contains));
        }

        private static bool PodMatches(FlowEndpoint? endpoint, (string? Namespace, string Prefix) pod) =>
            endpoint?.PodName is { } name && name.StartsWith(pod.Prefix, StringComparison.Ordinal) &&
            (pod.Namespace is null || string.Equals(endpoint.Namespace, pod.Namespace, StringComparison.Ordinal));

        private static bool AddressIn(string? text, IPNetwork[] networks) =>
            text is not null && IPAddress.TryParse(text, out var address) && Array.Exists(networks, n => n.Contains(address));

        private static T[]? Map<TIn, T>(List<TIn>? values, string where, Func<TIn, string, T> parse)
        {
            if (values is null || values.Count == 0)
            {
                return null;
            }
            var result = new T[values.Count];
            for (var i = 0; i < values.Count; i++)
            {
                result[i] = parse(values[i], $"{where}[{i}]");
            }
            return result;
        }

        private static HashSet<T>? Set<T>(List<T>? values) => values is { Count: > 0 } ? [.. values] : null;

        private static List<int>? Check(List<int>? ports, string where)
        {
            if (ports?.FindIndex(p => p is < 0 or > 65535) is { } i and >= 0)
            {
                throw new ArgumentException($"failed to read flow filter {where}[{i}]: port {ports[i]} is not between 0 and 65535");
            }
            return ports;
        }

        private static HashSet<string>? Names(List<string>? values, string where, string[] allowed)
        {
            if (values is null || values.Count == 0)
            {
                return null;
            }
            var set = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < values.Count; i++)
            {
                var value = (values[i] ?? "").Trim().ToLowerInvariant();
                if (Array.IndexOf(allowed, value) < 0)
                {
                    throw new ArgumentException($"failed to read flow filter {where}[{i}]: '{values[i]}' is not one of {string.Join(", ", allowed)}");
                }
                set.Add(value);
            }
            return set;
        }

        private static (string?, string) ParsePod(string value, string where)
        {
            var text = (value ?? "").Trim();
            var slash = text.IndexOf('/', StringComparison.Ordinal);
            var (ns, name) = slash < 0 ? (null, text) : (text[..slash], text[(slash + 1)..]);
            if (name.Length == 0 || ns is { Length: 0 } || name.Contains('/', StringComparison.Ordinal))
            {
                throw new ArgumentException($"failed to read flow filter {where}: '{value}' is not [namespace/]pod-name");
            }
            return (ns, name);
        }

        private static IPNetwork ParseNetwork(string value, string where)
        {
            var text = (value ?? "").Trim();
            if (IPNetwork.TryParse(text, out var network))
            {
                return network;
            }
            if (IPAddress.TryParse(text, out var address))
            {
                return new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
            }
            throw new ArgumentException($"failed to read flow filter {where}: '{value}' is not an IP address or CIDR");
        }

        private static (int, string?) ParseEventType(string value, string where)
        {
            var text = (value ?? "").Trim().ToLowerInvariant();
            var colon = text.IndexOf(':', StringComparison.Ordinal);
            var (kind, point) = colon < 0 ? (text, null) : (text[..colon], text[(colon + 1)..]);
            var type = kind switch
            {
                "drop" => FlowNames.EventDrop,
                "trace" => FlowNames.EventTrace,
                "policy-verdict" => FlowNames.EventPolicyVerdict,
                _ => throw new ArgumentException($"failed to read flow filter {where}: '{value}' is not one of {string.Join(", ", EventTypeNames)} (or trace:POINT)"),
            };
            if (point is null)
            {
                return (type, null);
            }
            if (type != FlowNames.EventTrace || !ObservationPoints.Contains(point))
            {
                throw new ArgumentException($"failed to read flow filter {where}: '{value}' names no observation point; trace takes one of {string.Join(", ", ObservationPoints)}");
            }
            return (type, point.ToUpperInvariant().Replace('-', '_'));
        }

        private static string[] ParseFlags(string value, string where)
        {
            var flags = (value ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(f => f.ToUpperInvariant()).ToArray();
            string[] known = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
            var bad = Array.Find(flags, f => Array.IndexOf(known, f) < 0);
            if (flags.Length == 0 || bad is not null)
            {
                throw new ArgumentException($"failed to read flow filter {where}: '{value}' is not a comma-separated list of TCP flags ({string.Join(", ", known)})");
            }
            return flags;
        }
    }

    /// <summary>
    /// A label selector as `--label` takes it: terms separated by commas, all of which must hold —
    /// key=value (also key==value), key!=value, key (exists), !key (does not exist). A key without
    /// a source ("app") matches a label of any source ("k8s:app"); with one ("k8s:app") only that.
    /// </summary>
    private sealed class LabelSelector
    {
        private readonly (string Key, string? Value, bool Negate)[] _terms;

        private LabelSelector((string, string?, bool)[] terms) => _terms = terms;

        public static LabelSelector Parse(string value, string where)
        {
            var terms = new List<(string, string?, bool)>();
            foreach (var raw in (value ?? "").Split(',', StringSplitOptions.TrimEntries))
            {
                string key;
                string? v = null;
                var negate = false;
                int i;
                if ((i = raw.IndexOf("!=", StringComparison.Ordinal)) > 0)
                {
                    (key, v, negate) = (raw[..i], raw[(i + 2)..], true);
                }
                else if ((i = raw.IndexOf("==", StringComparison.Ordinal)) > 0)
                {
                    (key, v) = (raw[..i], raw[(i + 2)..]);
                }
                else if ((i = raw.IndexOf('=', StringComparison.Ordinal)) > 0)
                {
                    (key, v) = (raw[..i], raw[(i + 1)..]);
                }
                else if (raw.StartsWith('!'))
                {
                    (key, negate) = (raw[1..], true);
                }
                else
                {
                    key = raw;
                }
                key = key.Trim();
                if (key.Length == 0 || key.Contains('=', StringComparison.Ordinal) || key.Contains('!', StringComparison.Ordinal) ||
                    (v is not null && (v.Contains('=', StringComparison.Ordinal) || v.Contains('!', StringComparison.Ordinal))))
                {
                    throw new ArgumentException($"failed to read flow filter {where}: '{raw}' in '{value}' is not key=value, key!=value, key or !key");
                }
                terms.Add((key, v?.Trim(), negate));
            }
            return new LabelSelector([.. terms]);
        }

        public bool Matches(List<string>? labels)
        {
            labels ??= [];
            foreach (var (key, value, negate) in _terms)
            {
                var found = false;
                string? foundValue = null;
                foreach (var label in labels)
                {
                    var (labelKey, labelValue) = Split(label);
                    if (KeyMatches(key, labelKey))
                    {
                        found = true;
                        foundValue = labelValue;
                        if (value is null || labelValue == value)
                        {
                            break;
                        }
                    }
                }
                var holds = value is null ? found : found && foundValue == value;
                if (holds == negate)
                {
                    return false;
                }
            }
            return true;
        }

        private static (string Key, string Value) Split(string label)
        {
            var eq = label.IndexOf('=', StringComparison.Ordinal);
            return eq < 0 ? (label, "") : (label[..eq], label[(eq + 1)..]);
        }

        // "k8s:app" against "app" (any source) or "k8s:app" (that source).
        private static bool KeyMatches(string wanted, string labelKey)
        {
            if (string.Equals(wanted, labelKey, StringComparison.Ordinal))
            {
                return true;
            }
            var colon = labelKey.IndexOf(':', StringComparison.Ordinal);
            return !wanted.Contains(':', StringComparison.Ordinal) && colon >= 0 &&
                   labelKey.AsSpan(colon + 1).SequenceEqual(wanted);
        }
    }
}
