using System.Net;
using System.Text.Json;
using Membrane.Api;
using Membrane.Testing;

namespace Membrane.Node.Tests;

/// <summary>
/// Flows on a whole node: pods made by the CNI plugin, a policy imported, real connections —
/// and what the agent's observer makes of the datapath's records: a denied connection is a
/// DROPPED flow with POLICY_DENIED and both pods' names, labels and identities; an allowed one
/// FORWARDED; the Hubble-style filters select exactly what they should; a follow stream gets
/// a flow that happens after it started.
/// </summary>
[Collection("node")]
public sealed class FlowNodeTests
{
    private static readonly TimeSpan Denied = TimeSpan.FromMilliseconds(1200);

    private sealed record Scenario(TestNode Node, TestPod Frontend, TestPod Backend, TestPod Db, EndpointInfo FrontendInfo, EndpointInfo DbInfo);

    private static async Task<Scenario> StartAsync(TestNode node)
    {
        var frontend = node.AddPod("frontend", ("app", "frontend"));
        var backend = node.AddPod("backend", ("app", "backend"));
        var db = node.AddPod("db", ("app", "db"));
        await node.Client.PolicyImportAsync([new PolicyFile { Name = "backend.yaml", Text = PolicyFixtures.Backend }]);
        var endpoints = await node.Client.EndpointsAsync();
        return new Scenario(node, frontend, backend, db,
            endpoints.Single(e => e.ContainerId == frontend.ContainerId), endpoints.Single(e => e.ContainerId == db.ContainerId));
    }

    /// <summary>db -> backend:8080 is dropped by the backend's policy, frontend -> backend:8080 connects.</summary>
    private static async Task DeniedThenAllowedAsync(Scenario s)
    {
        Assert.False(await NsTraffic.TcpConnects(s.Db.Namespace, s.Backend.Namespace, IPAddress.Parse(s.Backend.Ipv4), 8080, Denied));
        Assert.True(await NsTraffic.TcpConnects(s.Frontend.Namespace, s.Backend.Namespace, IPAddress.Parse(s.Backend.Ipv4), 8080, TimeSpan.FromSeconds(5)));
    }

    /// <summary>Flows until one matches <paramref name="wanted"/> (records reach the agent within its 100 ms poll).</summary>
    private static async Task<List<Flow>> FlowsUntil(TestNode node, Func<Flow, bool> wanted, ObserveRequest? request = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            var flows = new List<Flow>();
            await foreach (var line in node.Client.ObserveAsync(request ?? new ObserveRequest()))
            {
                if (line.Flow is { } flow)
                {
                    flows.Add(flow);
                }
            }
            if (flows.Any(wanted) || DateTime.UtcNow > deadline)
            {
                return flows;
            }
            await Task.Delay(100);
        }
    }

    private static bool Is(Flow f, string src, string dst, int dport, string type) =>
        f.IP?.Source == src && f.IP.Destination == dst && f.L4?.TCP?.DestinationPort == dport && f.L4.TCP.Flags?.SYN == true &&
        f.EventType.Type == (type switch { "drop" => FlowNames.EventDrop, "trace" => FlowNames.EventTrace, _ => FlowNames.EventPolicyVerdict });

    [SkippableFact]
    public async Task ADeniedConnectionIsADroppedFlowAndAnAllowedOneForwarded()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var s = await StartAsync(node);
        await DeniedThenAllowedAsync(s);

        var flows = await FlowsUntil(node, f => Is(f, s.Frontend.Ipv4, s.Backend.Ipv4, 8080, "trace"));
        var dump = string.Join("\n", flows.Select(f => JsonSerializer.Serialize(f, ApiJsonContext.Default.Flow)));

        var drop = flows.FirstOrDefault(f => Is(f, s.Db.Ipv4, s.Backend.Ipv4, 8080, "drop"));
        Assert.True(drop is not null, "no drop flow for db -> backend:8080:\n" + dump);
        Assert.Equal(FlowNames.Dropped, drop.Verdict);
        Assert.Equal("POLICY_DENIED", drop.DropReasonDesc);
        Assert.Equal(s.DbInfo.Identity, drop.Source!.Identity);
        Assert.Equal("db", drop.Source.PodName);
        Assert.Equal("default", drop.Source.Namespace);
        Assert.Contains("k8s:app=db", drop.Source.Labels);
        Assert.Equal("backend", drop.Destination!.PodName);
        Assert.Contains("k8s:app=backend", drop.Destination.Labels);
        Assert.Equal(node.Name, drop.NodeName);

        // The verdict record of the same connection: the backend's ingress policy, no rule allowed it.
        var verdict = flows.FirstOrDefault(f => Is(f, s.Db.Ipv4, s.Backend.Ipv4, 8080, "policy-verdict"));
        Assert.True(verdict is { Verdict: FlowNames.Dropped, DropReasonDesc: "POLICY_DENIED", TrafficDirection: "INGRESS", PolicyMatchType: "default-deny" }, dump);
        Assert.Equal(s.DbInfo.Identity, verdict.Source!.Identity);

        var trace = flows.First(f => Is(f, s.Frontend.Ipv4, s.Backend.Ipv4, 8080, "trace"));
        Assert.Equal(FlowNames.Forwarded, trace.Verdict);
        Assert.Equal("TO_ENDPOINT", trace.TraceObservationPoint);
        Assert.Equal(s.FrontendInfo.Identity, trace.Source!.Identity);
        Assert.Equal("frontend", trace.Source.PodName);
        Assert.Equal("backend", trace.Destination!.PodName);
        Assert.False(trace.IsReply);
        Assert.Equal("TCP Flags: SYN", trace.Summary);
        var allowed = flows.FirstOrDefault(f => Is(f, s.Frontend.Ipv4, s.Backend.Ipv4, 8080, "policy-verdict"));
        Assert.True(allowed is { Verdict: FlowNames.Forwarded, PolicyMatchType: "identity", TrafficDirection: "INGRESS" }, dump);
        // The reply's SYN-ACK is traced too (medium aggregation: TCP flags), as a reply.
        Assert.Contains(flows, f => f.IP?.Source == s.Backend.Ipv4 && f.L4?.TCP?.Flags is { SYN: true, ACK: true } && f.IsReply == true);
    }

    public static TheoryData<string> FilterCases() => new(FilterTable.Keys);

    // Each filter, and the predicate the flows it selects must satisfy exactly.
    private static readonly Dictionary<string, (Func<Scenario, ObserveRequest> Request, Func<Scenario, Flow, bool> Selects)> FilterTable = new()
    {
        ["from-pod"] = (s => Filter(new FlowFilter { SourcePod = ["default/db"] }), (s, f) => f.Source?.PodName == "db"),
        ["to-pod prefix"] = (s => Filter(new FlowFilter { DestinationPod = ["back"] }), (s, f) => f.Destination?.PodName == "backend"),
        ["verdict"] = (s => Filter(new FlowFilter { Verdict = ["DROPPED"] }), (s, f) => f.Verdict == FlowNames.Dropped),
        ["type drop"] = (s => Filter(new FlowFilter { EventType = ["drop"] }), (s, f) => f.EventType.Type == FlowNames.EventDrop),
        ["type trace:to-endpoint"] = (s => Filter(new FlowFilter { EventType = ["trace:to-endpoint"] }), (s, f) => f.TraceObservationPoint == "TO_ENDPOINT"),
        ["from-ip"] = (s => Filter(new FlowFilter { SourceIp = [s.Frontend.Ipv4 + "/32"] }), (s, f) => f.IP?.Source == s.Frontend.Ipv4),
        ["to-port"] = (s => Filter(new FlowFilter { DestinationPort = [8080] }), (s, f) => f.L4?.TCP?.DestinationPort == 8080),
        ["from-label"] = (s => Filter(new FlowFilter { SourceLabel = ["app=frontend"] }), (s, f) => f.Source?.Labels.Contains("k8s:app=frontend") == true),
        ["from-identity"] = (s => Filter(new FlowFilter { SourceIdentity = [s.DbInfo.Identity] }), (s, f) => f.Source?.Identity == s.DbInfo.Identity),
        ["protocol"] = (s => Filter(new FlowFilter { Protocol = ["icmp"] }), (s, f) => f.L4?.ICMPv4 is not null || f.L4?.ICMPv6 is not null),
        ["tcp-flags"] = (s => Filter(new FlowFilter { TcpFlags = ["SYN,ACK"] }), (s, f) => f.L4?.TCP?.Flags is { SYN: true, ACK: true }),
        ["or within a kind"] = (s => Filter(new FlowFilter { SourcePod = ["db", "frontend"] }), (s, f) => f.Source?.PodName is "db" or "frontend"),
        ["and across kinds"] = (s => Filter(new FlowFilter { SourcePod = ["frontend"], EventType = ["policy-verdict"] }),
            (s, f) => f.Source?.PodName == "frontend" && f.EventType.Type == FlowNames.EventPolicyVerdict),
        ["not"] = (s => new ObserveRequest { Blacklist = [new FlowFilter { Verdict = ["FORWARDED"] }] }, (s, f) => f.Verdict != FlowNames.Forwarded),
    };

    private static ObserveRequest Filter(FlowFilter filter) => new() { Whitelist = [filter] };

    [SkippableFact]
    public async Task EachFilterSelectsExactlyTheFlowsItShould()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var s = await StartAsync(node);
        await DeniedThenAllowedAsync(s);
        Assert.Equal(System.Net.NetworkInformation.IPStatus.Success, NsTraffic.Ping(s.Frontend.Namespace, IPAddress.Parse(s.Db.Ipv4)));
        await FlowsUntil(node, f => f.L4?.ICMPv4 is { Type: 0 });

        // One window for every query, closed in the past, so each sees the same flows.
        var until = DateTimeOffset.UtcNow;
        var all = await FlowsUntil(node, _ => true, new ObserveRequest { Until = until });
        var failures = new List<string>();
        foreach (var (name, (request, selects)) in FilterTable)
        {
            var r = request(s);
            r.Until = until;
            var got = (await FlowsUntil(node, _ => true, r)).Select(Key).ToList();
            var want = all.Where(f => selects(s, f)).Select(Key).ToList();
            if (want.Count == 0)
            {
                failures.Add($"{name}: the scenario made no flow the filter should select (the case proves nothing)");
            }
            else if (!got.SequenceEqual(want))
            {
                failures.Add($"{name}: got {got.Count} flows, want {want.Count}:\n  got  {string.Join("\n       ", got)}\n  want {string.Join("\n       ", want)}");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static string Key(Flow f) => JsonSerializer.Serialize(f, ApiJsonContext.Default.Flow);

    [SkippableFact]
    public async Task AFollowStreamGetsAFlowThatHappensAfterItStarted()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var s = await StartAsync(node);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var request = new ObserveRequest { Follow = true, Whitelist = [new FlowFilter { SourcePod = ["db"], Verdict = ["DROPPED"], EventType = ["drop"] }] };
        var first = Task.Run(async () =>
        {
            await foreach (var line in node.Client.ObserveAsync(request, cts.Token))
            {
                if (line.Flow is { } flow)
                {
                    return flow;
                }
            }
            return null;
        });
        await Task.Delay(300); // the stream is open
        Assert.False(first.IsCompleted, "nothing matched yet, so the stream must still be waiting");
        Assert.False(await NsTraffic.TcpConnects(s.Db.Namespace, s.Backend.Namespace, IPAddress.Parse(s.Backend.Ipv4), 8080, Denied));
        var flow = await first.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        Assert.NotNull(flow);
        Assert.Equal("POLICY_DENIED", flow.DropReasonDesc);
        Assert.Equal(s.Backend.Ipv4, flow.IP!.Destination);
    }

    [SkippableFact]
    public async Task TheMonitorStreamsTheRawRecordsAsTheyArrive()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var s = await StartAsync(node);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var records = new List<MonitorRecord>();
        var reading = Task.Run(async () =>
        {
            await foreach (var record in node.Client.MonitorAsync(cts.Token))
            {
                records.Add(record);
                if (record.TypeName == "drop")
                {
                    return;
                }
            }
        });
        await Task.Delay(300);
        Assert.False(await NsTraffic.TcpConnects(s.Db.Namespace, s.Backend.Namespace, IPAddress.Parse(s.Backend.Ipv4), 8080, Denied));
        await reading.WaitAsync(TimeSpan.FromSeconds(10));
        await cts.CancelAsync();
        // The verdict record comes first (policy-verdict, subtype 1: ingress), then the drop
        // (reason POLICY_DENIED = 8 in the body's first two bytes), each with its header fields.
        var verdict = records.First(r => r.TypeName == "policy-verdict");
        Assert.Equal((3, 1, 128), (verdict.Type, verdict.SubType, verdict.Length));
        var drop = records.Last();
        Assert.Equal((1, 120), (drop.Type, drop.Length));
        Assert.StartsWith("0008", drop.Body, StringComparison.Ordinal);
        Assert.Equal((120 - 8) * 2, drop.Body.Length);
    }

    /// <summary>GET /metrics inside the node's namespace (the agent listens on its loopback there).</summary>
    private static async Task<string> Scrape(TestNode node, int port)
    {
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = node.Node.Run(() => new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp));
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), ct);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            },
        });
        var response = await http.GetAsync($"http://127.0.0.1:{port}/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString());
        return await response.Content.ReadAsStringAsync();
    }

    private static readonly System.Text.RegularExpressions.Regex SampleLine =
        new(@"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*=""[^""]*""(,[a-zA-Z_][a-zA-Z0-9_]*=""[^""]*"")*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$");

    /// <summary>The value of one sample; every line of the text must be a comment or a valid sample (Prometheus text format 0.0.4).</summary>
    private static double Sample(string text, string series)
    {
        double? value = null;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# HELP ", StringComparison.Ordinal) || line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                continue;
            }
            Assert.Matches(SampleLine, line);
            if (line.StartsWith(series + " ", StringComparison.Ordinal))
            {
                value = double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        return value ?? 0;
    }

    [SkippableFact]
    public async Task TheMetricsEndpointCountsExactlyThePacketsTheDatapathDropped()
    {
        TestNode.RequirePrerequisites();
        var port = 19962;
        using var node = new TestNode(agentArgs: ["--metrics-listen", $"127.0.0.1:{port}"]);
        var s = await StartAsync(node);
        const string series = "membrane_drop_count_total{reason=\"policy-denied\",direction=\"ingress\"}";
        var before = await Scrape(node, port);
        Assert.Contains("membrane_endpoint_count 3", before);
        Assert.Contains("# TYPE membrane_api_request_duration_seconds histogram", before);
        var dropsBefore = Sample(before, series);

        // Three UDP datagrams db -> backend: the backend's ingress allows only TCP 8080, and a
        // dropped first packet leaves no connection, so each one is judged and dropped.
        for (var i = 0; i < 3; i++)
        {
            Assert.Null(await NsTraffic.UdpExchange(s.Db.Namespace, s.Backend.Namespace, IPAddress.Parse(s.Backend.Ipv4), waitMs: 300));
        }
        var after = await Scrape(node, port);
        Assert.Equal(dropsBefore + 3, Sample(after, series));
        Assert.True(Sample(after, "membrane_bpf_map_entries{map_name=\"policy\"}") > 0, after);
        Assert.True(Sample(after, "membrane_flows_processed_total{verdict=\"DROPPED\"}") >= 3, after);
    }

    [SkippableFact]
    public async Task AFloodOfRecordsIsCountedAsLostWhileTheAgentStaysResponsiveAndBounded()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode(agentArgs: ["--flow-buffer-size", "1024"]);
        var rssBefore = RssKiB(node.AgentPid!.Value);

        // 300,000 drops through the node's own pinned from_pod, run by the kernel (ifindex 1 is
        // no endpoint: each is an unknown-endpoint drop with a record), far faster than any
        // reader: the 1 MiB ring buffer overflows.
        const int packets = 300_000;
        using var program = Linux.Bpf.BpfProgram.OpenPinned(Path.Combine(node.BpfRoot, node.Name, "from_pod"));
        var frame = new byte[64];
        frame[12] = 0x08; // IPv4 ethertype; the rest does not matter
        frame[14] = 0x45;
        var status = await node.Client.FlowStatusAsync();
        var seenBefore = status.SeenFlows + status.LostKernel + status.LostAgent;

        // A follow stream whose filter matches no flow: what reaches it are the notices of
        // lost records, where they happen (a buffer's worth of flows later they are gone).
        using var watching = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var notices = Task.Run(async () =>
        {
            await foreach (var line in node.Client.ObserveAsync(new ObserveRequest
            {
                Follow = true,
                Whitelist = [new FlowFilter { SourcePod = ["no-such-pod"] }],
            }, watching.Token))
            {
                if (line.LostEvents is { NumEventsLost: > 0 } lost)
                {
                    return lost;
                }
            }
            return null;
        });
        await Task.Delay(300);

        var run = Task.Run(() => program.TestRun(frame, new byte[128], packets));
        // The API answers while the flood is read.
        var answered = System.Diagnostics.Stopwatch.StartNew();
        await node.Client.StatusAsync();
        Assert.True(answered.Elapsed < TimeSpan.FromSeconds(2), $"status took {answered.Elapsed}");
        await run;
        // A fast agent may keep up with that; a second flood while it is stopped (SIGSTOP to the
        // agent this test started) cannot be read in time: the kernel's ring overflows for sure.
        var agent = node.AgentPid!.Value;
        Assert.Equal(0, Kill(agent, 19)); // SIGSTOP
        try
        {
            program.TestRun(frame, new byte[128], packets);
        }
        finally
        {
            Assert.Equal(0, Kill(agent, 18)); // SIGCONT
        }

        // Every record arrives or is counted lost (the lost counters are read once a second).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        do
        {
            await Task.Delay(500);
            status = await node.Client.FlowStatusAsync();
        }
        while (status.SeenFlows + status.LostKernel + status.LostAgent - seenBefore < 2 * packets && DateTime.UtcNow < deadline);
        Assert.True(status.SeenFlows + status.LostKernel + status.LostAgent - seenBefore >= 2 * packets,
            $"seen {status.SeenFlows}, lost in kernel {status.LostKernel}, in agent {status.LostAgent}: records went missing uncounted");
        Assert.True(status.LostKernel > 0, "nothing was lost while the agent was stopped: the flood proves nothing");
        Assert.Equal(1024, status.NumFlows); // the buffer is full and stays at its size
        Assert.Equal(1024, status.MaxFlows);

        // The stream said where records were lost.
        var notice = await notices.WaitAsync(TimeSpan.FromSeconds(15));
        await watching.CancelAsync();
        Assert.NotNull(notice);
        Assert.Contains(notice.Source, new[] { "PERF_EVENT_RING_BUFFER", "HUBBLE_RING_BUFFER" });
        Assert.True(RssKiB(node.AgentPid!.Value) - rssBefore < 64 * 1024, "the agent's memory grew by more than 64 MiB reading the flood");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private static long RssKiB(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
}
