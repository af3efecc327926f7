using System.Text.Json;
using Membrane.Api;

namespace Membrane.Cli.Tests;

/// <summary>
/// The filter semantics the agent applies for <c>membrane observe</c> (Hubble's): each filter
/// kind selects exactly the flows it should out of a fixed set; values of one kind OR, kinds
/// AND, whitelist filters OR, a blacklist filter excludes.
/// </summary>
public sealed class FlowMatcherTests
{
    private static FlowEndpoint Pod(string ns, string name, uint identity, string app) => new()
    {
        ID = identity - 200,
        Identity = identity,
        Namespace = ns,
        PodName = name,
        Labels = [$"k8s:{(app == "kube-dns" ? "k8s-app" : "app")}={app}", $"k8s:io.kubernetes.pod.namespace={ns}"],
    };

    private static readonly FlowEndpoint Web = Pod("default", "web-7d9c", 258, "web");
    private static readonly FlowEndpoint Api = Pod("default", "api-55f1", 259, "api");
    private static readonly FlowEndpoint Db = Pod("default", "db-0", 257, "db");
    private static readonly FlowEndpoint Dns = Pod("kube-system", "coredns-abc", 260, "kube-dns");
    private static readonly FlowEndpoint World = new() { Identity = 2, Labels = ["reserved:world"] };

    private static Flow Tcp(FlowEndpoint src, string srcIp, int sport, FlowEndpoint dst, string dstIp, int dport, byte flags) => new()
    {
        IP = new FlowIp { Source = srcIp, Destination = dstIp, IpVersion = "IPv4" },
        L4 = new FlowLayer4 { TCP = new FlowTcp { SourcePort = sport, DestinationPort = dport, Flags = FlowTcpFlags.FromByte(flags) } },
        Source = src,
        Destination = dst,
    };

    /// <summary>The flows every case chooses from, by name.</summary>
    private static readonly Dictionary<string, Flow> Flows = new()
    {
        // web -> db SYN, denied by db's ingress policy.
        ["web-db"] = With(Tcp(Web, "198.18.0.2", 40000, Db, "198.18.0.3", 5432, 0x02), f =>
        {
            f.Verdict = FlowNames.Dropped;
            f.DropReason = 133;
            f.DropReasonDesc = "POLICY_DENIED";
            f.EventType = new FlowEventType { Type = FlowNames.EventPolicyVerdict };
            f.TrafficDirection = "INGRESS";
            f.PolicyMatchType = "NONE";
        }),
        // api -> db SYN, allowed by an L3/L4 rule.
        ["api-db"] = With(Tcp(Api, "198.18.0.4", 41000, Db, "198.18.0.3", 5432, 0x02), f =>
        {
            f.Verdict = FlowNames.Forwarded;
            f.EventType = new FlowEventType { Type = FlowNames.EventPolicyVerdict };
            f.TrafficDirection = "INGRESS";
            f.PolicyMatchType = "L3_L4";
        }),
        // db's SYN-ACK back to api, delivered.
        ["db-api-reply"] = With(Tcp(Db, "198.18.0.3", 5432, Api, "198.18.0.4", 41000, 0x12), f =>
        {
            f.Verdict = FlowNames.Forwarded;
            f.EventType = new FlowEventType { Type = FlowNames.EventTrace, SubType = 0 };
            f.TraceObservationPoint = "TO_ENDPOINT";
            f.IsReply = true;
        }),
        // coredns answers web over IPv6, handed to the stack.
        ["dns-web"] = new Flow
        {
            Verdict = FlowNames.Forwarded,
            IP = new FlowIp { Source = "fd00:198:18::5", Destination = "fd00:198:18::2", IpVersion = "IPv6" },
            L4 = new FlowLayer4 { UDP = new FlowPorts { SourcePort = 53, DestinationPort = 5353 } },
            Source = Dns,
            Destination = Web,
            EventType = new FlowEventType { Type = FlowNames.EventTrace, SubType = 3 },
            TraceObservationPoint = "TO_STACK",
        },
        // An echo request from outside, dropped by the datapath.
        ["world-web-icmp"] = new Flow
        {
            Verdict = FlowNames.Dropped,
            DropReasonDesc = "CT_NO_MAP_FOUND",
            IP = new FlowIp { Source = "198.19.0.9", Destination = "198.18.0.2", IpVersion = "IPv4" },
            L4 = new FlowLayer4 { ICMPv4 = new FlowIcmp { Type = 8 } },
            Source = World,
            Destination = Web,
            EventType = new FlowEventType { Type = FlowNames.EventDrop, SubType = 190 },
            TrafficDirection = "INGRESS",
        },
    };

    private static Flow With(Flow flow, Action<Flow> change)
    {
        change(flow);
        return flow;
    }

    public static TheoryData<string, string?, string?, string> Cases => new()
    {
        // Each kind alone.
        { "nothing selects everything", null, null, "web-db api-db db-api-reply dns-web world-web-icmp" },
        { "source pod with namespace", """[{"source_pod":["default/web"]}]""", null, "web-db" },
        { "source pod is a name prefix in any namespace", """[{"source_pod":["web"]}]""", null, "web-db" },
        { "source pod in another namespace", """[{"source_pod":["kube-system/core"]}]""", null, "dns-web" },
        { "the namespace must match", """[{"source_pod":["default/core"]}]""", null, "" },
        { "destination pod", """[{"destination_pod":["default/db"]}]""", null, "web-db api-db" },
        { "source label by key without source", """[{"source_label":["app=api"]}]""", null, "api-db" },
        { "source label with its source", """[{"source_label":["k8s:app=api"]}]""", null, "api-db" },
        { "source label absent", """[{"source_label":["!app"]}]""", null, "dns-web world-web-icmp" },
        { "source label not equal", """[{"source_label":["app!=web"]}]""", null, "api-db db-api-reply dns-web world-web-icmp" },
        { "destination label terms AND", """[{"destination_label":["app=db,k8s:io.kubernetes.pod.namespace=default"]}]""", null, "web-db api-db" },
        { "destination label terms AND (one fails)", """[{"destination_label":["app=db,k8s:io.kubernetes.pod.namespace=kube-system"]}]""", null, "" },
        { "source identity (reserved world)", """[{"source_identity":[2]}]""", null, "world-web-icmp" },
        { "destination identity", """[{"destination_identity":[259]}]""", null, "db-api-reply" },
        { "source CIDR", """[{"source_ip":["198.18.0.0/24"]}]""", null, "web-db api-db db-api-reply" },
        { "destination IPv6 CIDR", """[{"destination_ip":["fd00:198:18::/48"]}]""", null, "dns-web" },
        { "source address", """[{"source_ip":["198.18.0.4"]}]""", null, "api-db" },
        { "destination port", """[{"destination_port":[5432]}]""", null, "web-db api-db" },
        { "source port", """[{"source_port":[5432]}]""", null, "db-api-reply" },
        { "a port never matches ICMP", """[{"source_port":[0]}]""", null, "" },
        { "protocol tcp", """[{"protocol":["tcp"]}]""", null, "web-db api-db db-api-reply" },
        { "protocol udp", """[{"protocol":["udp"]}]""", null, "dns-web" },
        { "protocol icmp is both families", """[{"protocol":["icmp"]}]""", null, "world-web-icmp" },
        { "protocol icmpv6", """[{"protocol":["icmpv6"]}]""", null, "" },
        { "verdict (case does not matter)", """[{"verdict":["dropped"]}]""", null, "web-db world-web-icmp" },
        { "event type drop", """[{"event_type":["drop"]}]""", null, "world-web-icmp" },
        { "event type policy-verdict", """[{"event_type":["policy-verdict"]}]""", null, "web-db api-db" },
        { "event type trace", """[{"event_type":["trace"]}]""", null, "db-api-reply dns-web" },
        { "event type trace at a point", """[{"event_type":["trace:to-stack"]}]""", null, "dns-web" },
        { "event type trace at the other point", """[{"event_type":["trace:to-endpoint"]}]""", null, "db-api-reply" },
        { "TCP flag set: SYN alone is in SYN-ACK too", """[{"tcp_flags":["SYN"]}]""", null, "web-db api-db db-api-reply" },
        { "TCP flag set: every flag of it", """[{"tcp_flags":["SYN,ACK"]}]""", null, "db-api-reply" },
        { "traffic direction", """[{"traffic_direction":["ingress"]}]""", null, "web-db api-db world-web-icmp" },
        { "traffic direction egress", """[{"traffic_direction":["egress"]}]""", null, "" },

        // Values of one kind OR; kinds AND; filters OR.
        { "values of one kind OR", """[{"source_pod":["default/web","default/api"]}]""", null, "web-db api-db" },
        { "kinds AND", """[{"destination_pod":["default/db"],"verdict":["FORWARDED"]}]""", null, "api-db" },
        { "kinds AND across sides", """[{"source_ip":["198.18.0.0/16"],"destination_port":[5432,5353]}]""", null, "web-db api-db" },
        { "whitelist filters OR", """[{"verdict":["DROPPED"]},{"protocol":["udp"]}]""", null, "web-db dns-web world-web-icmp" },
        { "an either-side pair (--pod web)", """[{"source_pod":["default/web"]},{"destination_pod":["default/web"]}]""", null, "web-db dns-web world-web-icmp" },
        { "an either-side pair with a common member (--ip 198.18.0.4 --protocol tcp)",
            """[{"source_ip":["198.18.0.4"],"protocol":["tcp"]},{"destination_ip":["198.18.0.4"],"protocol":["tcp"]}]""", null, "api-db db-api-reply" },

        // --not.
        { "a blacklist alone excludes", null, """[{"verdict":["DROPPED"]}]""", "api-db db-api-reply dns-web" },
        { "a blacklist filter's kinds AND (hubble's --not x --not y)", null, """[{"verdict":["DROPPED"],"protocol":["tcp"]}]""",
            "api-db db-api-reply dns-web world-web-icmp" },
        { "blacklist filters OR (--not --pod is a pair)", null, """[{"source_pod":["default/db"]},{"destination_pod":["default/db"]}]""",
            "dns-web world-web-icmp" },
        { "whitelist then blacklist", """[{"destination_pod":["default/db"]}]""", """[{"source_pod":["default/web"]}]""", "api-db" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void EachFilterSelectsExactlyItsFlows(string what, string? whitelist, string? blacklist, string expected)
    {
        var matcher = new FlowMatcher(Filters(whitelist), Filters(blacklist));
        var selected = Flows.Where(f => matcher.Matches(f.Value)).Select(f => f.Key);
        Assert.True(expected.Split(' ', StringSplitOptions.RemoveEmptyEntries).SequenceEqual(selected),
            $"{what}: expected [{expected}], got [{string.Join(' ', selected)}]");
    }

    public static TheoryData<string, string> BadFilters => new()
    {
        { """[{"source_ip":["198.18.0.300/24"]}]""", "whitelist[0].source_ip[0]: '198.18.0.300/24' is not an IP address or CIDR" },
        { """[{"event_type":["bogus"]}]""", "whitelist[0].event_type[0]: 'bogus' is not one of drop, policy-verdict, trace" },
        { """[{"event_type":["drop:to-stack"]}]""", "names no observation point" },
        { """[{"verdict":["MAYBE"]}]""", "'MAYBE' is not one of forwarded, dropped" },
        { """[{"destination_port":[70000]}]""", "port 70000 is not between 0 and 65535" },
        { """[{"tcp_flags":["SYN,XYZ"]}]""", "is not a comma-separated list of TCP flags" },
        { """[{"source_label":["a=b=c"]}]""", "is not key=value, key!=value, key or !key" },
        { """[{"source_pod":["ns/"]}]""", "is not [namespace/]pod-name" },
        { """[{"traffic_direction":["sideways"]}]""", "'sideways' is not one of ingress, egress" },
        { """[{"protocol":["carrier-pigeon"]}]""", "'carrier-pigeon' is not one of tcp" },
    };

    [Theory]
    [MemberData(nameof(BadFilters))]
    public void ABadValueIsRejectedWithItsPlace(string whitelist, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => new FlowMatcher(Filters(whitelist), null));
        Assert.StartsWith("failed to read flow filter ", e.Message, StringComparison.Ordinal);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    private static List<FlowFilter>? Filters(string? json) =>
        json is null ? null : JsonSerializer.Deserialize(json, ApiJsonContext.Default.ListFlowFilter);
}
