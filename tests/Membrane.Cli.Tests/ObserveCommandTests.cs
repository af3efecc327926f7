using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Membrane.Api;
using Membrane.Testing;

namespace Membrane.Cli.Tests;

/// <summary>
/// <c>membrane observe</c> run as a user runs it (the real CLI process) against a fake agent on
/// a unix socket: the flags become the ObserveRequest hubble's CLI would build, the canned
/// flows print in each output form, a follow stream shows a flow the moment it is sent and
/// ends cleanly on Ctrl-C, --write produces a pcapng file tshark reads with the comments, and
/// bad flags fail before the agent is asked.
/// </summary>
public sealed class ObserveCommandTests : IAsyncLifetime
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 27, 22, 51, 28, 123, TimeSpan.Zero);
    private readonly ObserveFakeAgent _agent = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    // TZ=UTC: compact and table print local time, as hubble does.
    private static readonly Dictionary<string, string> Env = new() { ["TZ"] = "UTC", ["NO_COLOR"] = "" };

    private (int Code, string Stdout, string Stderr) Membrane(params string[] args) =>
        Tools.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "membrane.dll"), "--socket", _agent.SocketPath, .. args],
            timeout: TimeSpan.FromSeconds(60), env: Env);

    private static string Line(FlowLine line) => JsonSerializer.Serialize(line, ApiJsonContext.Default.FlowLine);

    private static FlowEndpoint Pod(string ns, string name, uint identity, string app) => new()
    {
        ID = identity - 250,
        Identity = identity,
        Namespace = ns,
        PodName = name,
        Labels = [$"k8s:app={app}", $"k8s:io.kubernetes.pod.namespace={ns}"],
    };

    /// <summary>frontend -> backend SYN, delivered.</summary>
    private static Flow Forwarded() => new()
    {
        Time = T0,
        Uuid = "01000001",
        Verdict = FlowNames.Forwarded,
        IP = new FlowIp { Source = "198.18.0.2", Destination = "198.18.0.3", IpVersion = "IPv4" },
        L4 = new FlowLayer4 { TCP = new FlowTcp { SourcePort = 34567, DestinationPort = 8080, Flags = FlowTcpFlags.FromByte(0x02) } },
        Source = Pod("default", "frontend", 256, "frontend"),
        Destination = Pod("default", "backend", 257, "backend"),
        NodeName = "node-1",
        EventType = new FlowEventType { Type = FlowNames.EventTrace, SubType = 0 },
        TraceObservationPoint = "TO_ENDPOINT",
        IsReply = false,
        Interface = new FlowInterface { Index = 7, Name = "lxc-backend" },
        Summary = "TCP Flags: SYN",
        PacketLength = 74,
        Ethernet = new FlowEthernet { Source = "02:00:00:00:00:02", Destination = "02:00:00:00:00:03" },
        DropReason = 0,
    };

    /// <summary>web -> db SYN, denied by db's ingress policy.</summary>
    private static Flow Denied() => new()
    {
        Time = T0.AddSeconds(1),
        Verdict = FlowNames.Dropped,
        DropReason = 133,
        DropReasonDesc = "POLICY_DENIED",
        IP = new FlowIp { Source = "198.18.0.4", Destination = "198.18.0.5", IpVersion = "IPv4" },
        L4 = new FlowLayer4 { TCP = new FlowTcp { SourcePort = 40000, DestinationPort = 5432, Flags = FlowTcpFlags.FromByte(0x02) } },
        Source = Pod("default", "web", 258, "web"),
        Destination = Pod("default", "db", 259, "db"),
        NodeName = "node-1",
        EventType = new FlowEventType { Type = FlowNames.EventPolicyVerdict },
        TrafficDirection = "INGRESS",
        PolicyMatchType = "default-deny",
        IsReply = false,
        Interface = new FlowInterface { Index = 9, Name = "lxc-db" },
        Summary = "TCP Flags: SYN",
        PacketLength = 74,
    };

    /// <summary>A DNS answer from outside the cluster to frontend, over IPv6: a reply, printed client first.</summary>
    private static Flow Reply() => new()
    {
        Time = T0.AddSeconds(2),
        Verdict = FlowNames.Forwarded,
        IP = new FlowIp { Source = "fd00:198:18::53", Destination = "fd00:198:18::2", IpVersion = "IPv6" },
        L4 = new FlowLayer4 { UDP = new FlowPorts { SourcePort = 53, DestinationPort = 5353 } },
        Source = new FlowEndpoint { Identity = 2, Labels = ["reserved:world"] },
        Destination = Pod("default", "frontend", 256, "frontend"),
        EventType = new FlowEventType { Type = FlowNames.EventTrace, SubType = 3 },
        TraceObservationPoint = "TO_STACK",
        IsReply = true,
        Summary = "UDP",
    };

    private static readonly FlowLine Lost = new() { LostEvents = new LostEvents { Source = "PERF_EVENT_RING_BUFFER", NumEventsLost = 7 } };

    private static string[] Canned() => [Line(new FlowLine { Flow = Forwarded() }), Line(new FlowLine { Flow = Denied() }), Line(Lost), Line(new FlowLine { Flow = Reply() })];

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public static TheoryData<string, string> Requests => new()
    {
        // Counts and time (hubble's defaults).
        { "", """{"number":20,"follow":false,"include_packet":false}""" },
        { "--last 5", """{"number":5,"follow":false,"include_packet":false}""" },
        { "-f", """{"number":0,"follow":true,"include_packet":false}""" },
        { "--last 3 --follow", """{"number":3,"follow":true,"include_packet":false}""" },
        { "--all", """{"number":0,"follow":false,"include_packet":false}""" },
        { "--all -f", """{"number":2147483647,"follow":true,"include_packet":false}""" },
        { "--since 2026-11-27T21:00:00Z -f", """{"number":2147483647,"follow":true,"since":"2026-11-27T21:00:00+00:00","include_packet":false}""" },
        { "--until 2026-11-27T21:00:00Z -f", """{"number":0,"follow":true,"until":"2026-11-27T21:00:00+00:00","include_packet":false}""" },
        { "--since 2026-11-27T21:00:00Z --until 2026-11-27T23:30:00.5+01:00",
            """{"number":0,"follow":false,"since":"2026-11-27T21:00:00+00:00","until":"2026-11-27T22:30:00.5+00:00","include_packet":false}""" },
        { "--since 2026-11-27 --last 7", """{"number":7,"follow":false,"since":"2026-11-27T00:00:00+00:00","include_packet":false}""" },

        // One-sided flags: one filter; values of a flag OR (one member), flags AND (members).
        { "--from-pod default/web", """{"number":20,"follow":false,"whitelist":[{"source_pod":["default/web"]}],"include_packet":false}""" },
        { "--from-pod a --from-pod b", """{"number":20,"follow":false,"whitelist":[{"source_pod":["a","b"]}],"include_packet":false}""" },
        { "--from-pod a --to-port 80 --to-label app=db --from-identity 256 --to-ip 198.18.0.0/24",
            """{"number":20,"follow":false,"whitelist":[{"source_pod":["a"],"destination_label":["app=db"],"source_identity":[256],"destination_ip":["198.18.0.0/24"],"destination_port":[80]}],"include_packet":false}""" },
        { "--to-pod ns/db --from-label !app --from-ip fd00:198:18::/48 --from-port 53 --to-identity 2",
            """{"number":20,"follow":false,"whitelist":[{"destination_pod":["ns/db"],"source_label":["!app"],"destination_identity":[2],"source_ip":["fd00:198:18::/48"],"source_port":[53]}],"include_packet":false}""" },
        { "--protocol TCP --tcp-flags syn,ack --traffic-direction Ingress --verdict dropped --type Trace:to-endpoint --type drop",
            """{"number":20,"follow":false,"whitelist":[{"protocol":["tcp"],"verdict":["DROPPED"],"event_type":["trace:to-endpoint","drop"],"tcp_flags":["SYN,ACK"],"traffic_direction":["ingress"]}],"include_packet":false}""" },

        // Either-side flags: a pair, source member left, destination member right, the rest in both.
        { "--pod web", """{"number":20,"follow":false,"whitelist":[{"source_pod":["web"]},{"destination_pod":["web"]}],"include_packet":false}""" },
        { "--pod web --verdict DROPPED",
            """{"number":20,"follow":false,"whitelist":[{"source_pod":["web"],"verdict":["DROPPED"]},{"destination_pod":["web"],"verdict":["DROPPED"]}],"include_packet":false}""" },
        { "--ip 198.18.0.0/24 --port 53",
            """{"number":20,"follow":false,"whitelist":[{"source_ip":["198.18.0.0/24"],"source_port":[53]},{"destination_ip":["198.18.0.0/24"],"destination_port":[53]}],"include_packet":false}""" },
        { "--label app=web --identity 256 --identity 257",
            """{"number":20,"follow":false,"whitelist":[{"source_label":["app=web"],"source_identity":[256,257]},{"destination_label":["app=web"],"destination_identity":[256,257]}],"include_packet":false}""" },

        // --not: the next flag only, into the blacklist; all negated flags form one blacklist tracker, as in hubble.
        { "--not --from-pod web", """{"number":20,"follow":false,"blacklist":[{"source_pod":["web"]}],"include_packet":false}""" },
        { "--to-pod db --not --verdict FORWARDED --not --type trace:to-stack --protocol tcp",
            """{"number":20,"follow":false,"whitelist":[{"destination_pod":["db"],"protocol":["tcp"]}],"blacklist":[{"verdict":["FORWARDED"],"event_type":["trace:to-stack"]}],"include_packet":false}""" },
        { "--not --pod kube-system/coredns -f",
            """{"number":0,"follow":true,"blacklist":[{"source_pod":["kube-system/coredns"]},{"destination_pod":["kube-system/coredns"]}],"include_packet":false}""" },
        { "--pod=web --not --port=53",
            """{"number":20,"follow":false,"whitelist":[{"source_pod":["web"]},{"destination_pod":["web"]}],"blacklist":[{"source_port":[53]},{"destination_port":[53]}],"include_packet":false}""" },
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public void FlagsBecomeHubblesRequest(string args, string expected)
    {
        var (code, _, stderr) = Membrane(["observe", .. args.Split(' ', StringSplitOptions.RemoveEmptyEntries)]);
        Assert.True(code == 0, stderr);
        var request = Assert.Single(_agent.Requests);
        Assert.Equal(("POST", "/v1/flows"), (request.Method, request.Path));
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), JsonNode.Parse(request.Body)), $"expected {expected}\n     got {request.Body}");

        // --print-raw-filters shows the same request without sending it.
        var (printCode, printed, printErr) = Membrane(["observe", .. args.Split(' ', StringSplitOptions.RemoveEmptyEntries), "--print-raw-filters"]);
        Assert.True(printCode == 0, printErr);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), JsonNode.Parse(printed)), $"expected {expected}\n printed {printed}");
        Assert.Single(_agent.Requests);
    }

    [Fact]
    public void SinceTakesADurationBackFromNow()
    {
        var before = DateTimeOffset.UtcNow;
        var (code, _, stderr) = Membrane("observe", "--since", "1h30m", "--until", "90s");
        var after = DateTimeOffset.UtcNow;
        Assert.True(code == 0, stderr);
        var request = JsonSerializer.Deserialize(Assert.Single(_agent.Requests).Body, ApiJsonContext.Default.ObserveRequest)!;
        Assert.InRange(request.Since!.Value, before.AddMinutes(-90), after.AddMinutes(-90));
        Assert.InRange(request.Until!.Value, before.AddSeconds(-90), after.AddSeconds(-90));
        Assert.Equal(0, request.Number);
    }

    [Fact]
    public void CompactIsOneHubbleLineAFlowAndLostEventsGoToStderr()
    {
        _agent.Respond = (_, r, ct) => r.NdjsonAsync(Canned(), ct);
        var (code, stdout, stderr) = Membrane("observe");
        Assert.True(code == 0, stderr);
        Assert.Equal(
        [
            "Nov 27 22:51:28.123: default/frontend:34567 (ID:256) -> default/backend:8080 (ID:257) to-endpoint FORWARDED (TCP Flags: SYN)",
            "Nov 27 22:51:29.123: default/web:40000 (ID:258) -> default/db:5432 (ID:259) policy-verdict:default-deny INGRESS DROPPED (POLICY_DENIED) (TCP Flags: SYN)",
            "Nov 27 22:51:30.123: default/frontend:5353 (ID:256) <- [fd00:198:18::53]:53 (world) to-stack FORWARDED (UDP)",
        ], Lines(stdout));
        Assert.Equal("EVENTS LOST: 7 (PERF_EVENT_RING_BUFFER)", stderr.Trim());
        Assert.DoesNotContain("\e[", stdout, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void CompactIsColouredOnATerminalUnlessToldNot()
    {
        var script = Requires.Tool("script");
        _agent.Respond = (_, r, ct) => r.NdjsonAsync(Canned(), ct);
        string OnTerminal(string extra, string noColor)
        {
            // script(1) gives the CLI a pseudo-terminal as stdout.
            var command = $"TZ=UTC NO_COLOR={noColor} dotnet {Path.Combine(AppContext.BaseDirectory, "membrane.dll")} --socket {_agent.SocketPath} observe {extra}";
            var (code, stdout, stderr) = Tools.Run(script, ["-qec", command, "/dev/null"], timeout: TimeSpan.FromSeconds(60));
            Assert.True(code == 0, stdout + stderr);
            return stdout;
        }
        var coloured = OnTerminal("", "");
        Assert.Contains("\e[32mFORWARDED\e[0m", coloured, StringComparison.Ordinal);
        Assert.Contains("\e[31mDROPPED\e[0m \e[31m(POLICY_DENIED)\e[0m", coloured, StringComparison.Ordinal);
        Assert.Contains("\e[36mdefault/frontend:34567\e[0m \e[35m(ID:256)\e[0m", coloured, StringComparison.Ordinal);
        // Only colours are checked for: .NET itself writes a keypad-mode sequence to a terminal.
        Assert.DoesNotMatch(@"\e\[\d*m", OnTerminal("--no-color", ""));
        Assert.DoesNotMatch(@"\e\[\d*m", OnTerminal("", "1"));
    }

    [Fact]
    public void JsonIsEachLineOfTheStreamAsSent()
    {
        var sent = Canned();
        _agent.Respond = (_, r, ct) => r.NdjsonAsync(sent, ct);
        var (code, stdout, stderr) = Membrane("observe", "-o", "json");
        Assert.True(code == 0, stderr);
        var printed = Lines(stdout);
        Assert.Equal(sent.Length, printed.Length);
        for (var i = 0; i < sent.Length; i++)
        {
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(sent[i]), JsonNode.Parse(printed[i])), $"line {i}: sent {sent[i]}\nprinted {printed[i]}");
        }
        // Hubble's field names, for jq users.
        var denied = JsonNode.Parse(printed[1])!["flow"]!;
        Assert.Equal("DROPPED", (string?)denied["verdict"]);
        Assert.Equal("POLICY_DENIED", (string?)denied["drop_reason_desc"]);
        Assert.Equal(5432, (int?)denied["l4"]!["TCP"]!["destination_port"]);
        Assert.Equal("default", (string?)denied["source"]!["namespace"]);
        Assert.Equal(7UL, (ulong?)JsonNode.Parse(printed[2])!["lost_events"]!["num_events_lost"]);
        Assert.Equal("", stderr);

        // The help describes every member the stream carries.
        var help = Membrane("observe", "--help").Stdout;
        var names = printed.SelectMany(JsonMembers.Names).ToHashSet();
        Assert.Contains("ethernet", names);
        Assert.All(names, n => Assert.Contains(n, help, StringComparison.Ordinal));
    }

    [Fact]
    public void TableAlignsTheColumns()
    {
        _agent.Respond = (_, r, ct) => r.NdjsonAsync(Canned(), ct);
        var (code, stdout, stderr) = Membrane("observe", "-o", "table");
        Assert.True(code == 0, stderr);
        var lines = Lines(stdout);
        Assert.Equal(4, lines.Length);
        Assert.Matches(@"^TIMESTAMP\s+SOURCE\s+DESTINATION\s+TYPE\s+VERDICT\s+SUMMARY$", lines[0]);
        Assert.Matches(@"^Nov 27 22:51:28\.123\s+default/frontend:34567 \(ID:256\)\s+default/backend:8080 \(ID:257\)\s+to-endpoint\s+FORWARDED\s+TCP Flags: SYN$", lines[1]);
        Assert.Matches(@"^Nov 27 22:51:29\.123\s+default/web:40000 \(ID:258\)\s+default/db:5432 \(ID:259\)\s+policy-verdict:default-deny INGRESS\s+DROPPED \(POLICY_DENIED\)\s+TCP Flags: SYN$", lines[2]);
        Assert.Matches(@"^Nov 27 22:51:30\.123\s+\[fd00:198:18::53\]:53 \(world\)\s+default/frontend:5353 \(ID:256\)\s+to-stack\s+FORWARDED\s+UDP$", lines[3]);
        foreach (var column in new[] { "SOURCE", "DESTINATION", "TYPE", "VERDICT", "SUMMARY" })
        {
            var at = lines[0].IndexOf(column, StringComparison.Ordinal);
            Assert.All(lines.Skip(1), row => Assert.True(row[at - 1] == ' ' && row[at] != ' ', $"{column} is not aligned in '{row}'"));
        }
        Assert.Equal("EVENTS LOST: 7 (PERF_EVENT_RING_BUFFER)", stderr.Trim());
    }

    [Fact]
    public async Task FollowPrintsAFlowTheMomentItIsSentAndCtrlCEndsIt()
    {
        var second = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _agent.Respond = async (_, r, ct) =>
        {
            await r.StartAsync(ct);
            await r.LineAsync(Line(new FlowLine { Flow = Forwarded() }), ct);
            await second.Task.WaitAsync(ct);
            await r.LineAsync(Line(new FlowLine { Flow = Denied() }), ct);
            await Task.Delay(Timeout.Infinite, ct); // a follow stream stays open
        };
        using var process = Start("observe", "--follow", "-o", "compact");
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            var first = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.StartsWith("Nov 27 22:51:28.123: default/frontend:34567 (ID:256) -> default/backend:8080", first, StringComparison.Ordinal);
            Assert.False(process.HasExited, "observe --follow ended while the stream was open");

            second.SetResult(); // a flow that happens after the CLI started
            var next = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.StartsWith("Nov 27 22:51:29.123: default/web:40000 (ID:258) -> default/db:5432 (ID:259) policy-verdict:default-deny INGRESS DROPPED", next, StringComparison.Ordinal);

            await InterruptAsync(process);
            Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}: {await stderr}");
            Assert.Equal(("POST", """{"number":0,"follow":true,"include_packet":false}"""),
                (Assert.Single(_agent.Requests).Method, Assert.Single(_agent.Requests).Body));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
    }

    /// <summary>The CLI as a running process whose output the test reads as it comes.</summary>
    private Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // Followers end by SIGKILL: without diagnostics they leave no IPC pipes and socket in /tmp behind.
            Environment = { ["TZ"] = "UTC", ["DOTNET_EnableDiagnostics"] = "0" },
        };
        foreach (string a in (string[])[Path.Combine(AppContext.BaseDirectory, "membrane.dll"), "--socket", _agent.SocketPath, .. args])
        {
            psi.ArgumentList.Add(a);
        }
        return Process.Start(psi)!;
    }

    /// <summary>Ctrl-C: SIGINT to the process (ours, by pid), then its end.</summary>
    internal static async Task InterruptAsync(Process process)
    {
        var (code, _, stderr) = Tools.Run("kill", ["-INT", process.Id.ToString(CultureInfo.InvariantCulture)]);
        Assert.True(code == 0, stderr);
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
    }

    [SkippableFact]
    public async Task CtrlCEndsAFollowCaptureWithACompleteFile()
    {
        var tshark = Requires.Tool("tshark");
        var denied = Denied();
        denied.PacketData = TcpFrame(IPAddress.Parse("198.18.0.4"), IPAddress.Parse("198.18.0.5"), 40000, 5432);
        _agent.Respond = async (_, r, ct) =>
        {
            await r.StartAsync(ct);
            await r.LineAsync(Line(new FlowLine { Flow = denied }), ct);
            await Task.Delay(Timeout.Infinite, ct);
        };
        var file = Path.Combine(_agent.Folder, "follow.pcapng");
        using var process = Start("observe", "-f", "--verdict", "DROPPED", "--write", file);
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            var first = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Contains("DROPPED (POLICY_DENIED)", first, StringComparison.Ordinal);
            await InterruptAsync(process);
            Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}: {await stderr}");
            Assert.Contains($"wrote 1 packet(s) to {file}", await stderr, StringComparison.Ordinal);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
        var (code, fields, error) = Tools.Run(tshark, ["-r", file, "-T", "fields", "-e", "frame.comment", "-e", "tcp.dstport"]);
        Assert.True(code == 0, error);
        Assert.Equal(
            "verdict=DROPPED drop_reason=POLICY_DENIED type=policy-verdict:default-deny direction=INGRESS src=default/web src_identity=258 dst=default/db dst_identity=259 node=node-1\t5432",
            fields.Trim());
    }

    [Fact]
    public void AReaderThatGoesAwayEndsAFollowStream()
    {
        _agent.Respond = async (_, r, ct) =>
        {
            await r.StartAsync(ct);
            while (true)
            {
                await r.LineAsync(Line(new FlowLine { Flow = Forwarded() }), ct);
                await Task.Delay(100, ct);
            }
        };
        // head exits after one line; the CLI's next write fails and it ends, as hubble does on SIGPIPE.
        var command = $"dotnet {Path.Combine(AppContext.BaseDirectory, "membrane.dll")} --socket {_agent.SocketPath} observe -f | head -n 1; echo \"rc=${{PIPESTATUS[0]}}\"";
        var (code, stdout, stderr) = Tools.Run("bash", ["-c", command], timeout: TimeSpan.FromSeconds(30), env: Env);
        Assert.True(code == 0, stderr);
        var lines = Lines(stdout);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("Nov 27 22:51:28.123: default/frontend:34567", lines[0], StringComparison.Ordinal);
        Assert.Equal("rc=0", lines[1]);
        Assert.Equal("", stderr);
    }

    [Fact]
    public void TableFollowPrintsEachRowAsItComes()
    {
        _agent.Respond = (_, r, ct) => r.NdjsonAsync(Canned(), ct);
        var (code, stdout, stderr) = Membrane("observe", "-f", "-o", "table");
        Assert.True(code == 0, stderr);
        var lines = Lines(stdout);
        Assert.Equal(4, lines.Length);
        Assert.Matches(@"^TIMESTAMP\s+SOURCE\s+DESTINATION\s+TYPE\s+VERDICT\s+SUMMARY$", lines[0]);
        Assert.Matches(@"^Nov 27 22:51:29\.123\s+default/web:40000 \(ID:258\)\s+default/db:5432 \(ID:259\)\s+policy-verdict:default-deny INGRESS\s+DROPPED \(POLICY_DENIED\)\s+TCP Flags: SYN$", lines[2]);
    }

    [SkippableFact]
    public void WriteProducesAPcapngThatTsharkReadsWithTheComments()
    {
        var tshark = Requires.Tool("tshark");
        var forwarded = Forwarded();
        forwarded.PacketData = TcpFrame(IPAddress.Parse("198.18.0.2"), IPAddress.Parse("198.18.0.3"), 34567, 8080);
        var denied = Denied();
        denied.PacketData = TcpFrame(IPAddress.Parse("198.18.0.4"), IPAddress.Parse("198.18.0.5"), 40000, 5432);
        var noBytes = Reply();
        _agent.Respond = (_, r, ct) => r.NdjsonAsync(
            [Line(new FlowLine { Flow = forwarded }), Line(new FlowLine { Flow = denied }), Line(new FlowLine { Flow = noBytes })], ct);
        var file = Path.Combine(_agent.Folder, "flows.pcapng");

        var (code, stdout, stderr) = Membrane("observe", "--write", file, "-o", "json");
        Assert.True(code == 0, stderr);
        Assert.True(JsonNode.Parse(Assert.Single(_agent.Requests).Body)!["include_packet"]!.GetValue<bool>());
        Assert.Contains($"wrote 2 packet(s) to {file}; 1 flow(s) carried no packet bytes", stderr, StringComparison.Ordinal);
        var printed = Lines(stdout);
        Assert.Equal(3, printed.Length);
        Assert.All(printed, l => Assert.Null(JsonNode.Parse(l)!["flow"]!["packet_data"]));

        // frame.comment is the packet comment field since Wireshark 3.6 (before: pkt_comment).
        var (tsharkCode, fields, tsharkErr) = Tools.Run(tshark,
            ["-r", file, "-T", "fields", "-E", "separator=|", "-e", "frame.comment", "-e", "ip.src", "-e", "ip.dst", "-e", "tcp.dstport",
             "-e", "frame.len", "-e", "frame.cap_len", "-e", "frame.interface_name", "-e", "frame.time_epoch"]);
        Assert.True(tsharkCode == 0, tsharkErr);
        var rows = Lines(fields).Select(l => l.Split('|')).ToArray();
        Assert.Equal(2, rows.Length);
        Assert.Equal(
            "verdict=FORWARDED type=to-endpoint observation_point=TO_ENDPOINT src=default/frontend src_identity=256 dst=default/backend dst_identity=257 node=node-1",
            rows[0][0]);
        Assert.Equal(
            "verdict=DROPPED drop_reason=POLICY_DENIED type=policy-verdict:default-deny direction=INGRESS src=default/web src_identity=258 dst=default/db dst_identity=259 node=node-1",
            rows[1][0]);
        Assert.Equal(["198.18.0.2", "198.18.0.3", "8080", "74", "54", "lxc-backend"], rows[0][1..7]);
        Assert.Equal(["198.18.0.4", "198.18.0.5", "5432", "74", "54", "lxc-db"], rows[1][1..7]);
        Assert.Equal(T0.ToUnixTimeMilliseconds() / 1000m, decimal.Parse(rows[0][7], CultureInfo.InvariantCulture));
        Assert.Equal(T0.AddSeconds(1).ToUnixTimeMilliseconds() / 1000m, decimal.Parse(rows[1][7], CultureInfo.InvariantCulture));
    }

    [Fact]
    public void WriteLeavesNoFileWhenTheAgentRefuses()
    {
        _agent.Respond = (_, r, ct) => r.ErrorAsync(400, """{"code":102,"msg":"failed to read flow filter whitelist[0].source_pod[0]: no","details":null}""", ct);
        var file = Path.Combine(_agent.Folder, "refused.pcapng");
        var (code, stdout, stderr) = Membrane("observe", "--write", file);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Contains("error: failed to read flow filter whitelist[0].source_pod[0]: no (code 102)", stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(file));
    }

    public static TheoryData<string, string> BadFlags => new()
    {
        { "--from-ip 198.18.0.300/24", "error: failed to read --from-ip 198.18.0.300/24: '198.18.0.300/24' is not an IP address or CIDR" },
        { "--ip not-an-ip", "error: failed to read --ip not-an-ip: 'not-an-ip' is not an IP address or CIDR" },
        { "--type bogus", "error: failed to read --type bogus: 'bogus' is not one of drop, policy-verdict, trace (or trace:POINT)" },
        { "--type drop:to-stack", "error: failed to read --type drop:to-stack: 'drop:to-stack' names no observation point" },
        { "--type trace:from-space", "names no observation point; trace takes one of to-endpoint, to-stack" },
        { "--verdict MAYBE", "error: failed to read --verdict MAYBE: 'MAYBE' is not one of forwarded, dropped" },
        { "--protocol carrier-pigeon", "error: failed to read --protocol carrier-pigeon:" },
        { "--to-port 70000", "error: failed to read --to-port 70000: '70000' is not a port (0-65535)" },
        { "--port -1", "failed to read --port -1: '-1' is not a port (0-65535)" },
        { "--from-identity web", "error: failed to read --from-identity web: 'web' is not a security identity (a number)" },
        { "--tcp-flags SYN,XYZ", "error: failed to read --tcp-flags SYN,XYZ: 'SYN,XYZ' is not a comma-separated list of TCP flags" },
        { "--label a=b=c", "error: failed to read --label a=b=c: 'a=b=c' in 'a=b=c' is not key=value" },
        { "--traffic-direction sideways", "error: failed to read --traffic-direction sideways: 'sideways' is not one of ingress, egress" },
        { "--pod kube-system/", "error: failed to read --pod kube-system/: 'kube-system/' is not [namespace/]pod-name" },
        { "--pod a --from-pod b", "error: failed to read the filter flags: --pod and --from-pod cannot be combined" },
        { "--to-ip 198.18.0.1 --ip 198.18.0.2", "error: failed to read the filter flags: --to-ip and --ip cannot be combined" },
        { "--port 53 --to-port 80", "--port and --to-port cannot be combined" },
        { "--not --not --pod a", "error: failed to read the filter flags: --not --not" },
        { "--pod a --not", "error: failed to read the filter flags: --not at the end negates nothing" },
        { "--since yesterday", "error: failed to read --since: 'yesterday' is neither a duration back from now" },
        { "--until 5x", "error: failed to read --until: '5x' is neither" },
        { "--since 1h --until 2h", "error: failed to read --since and --until:" },
        { "--last 0", "error: failed to read --last 0: it must be at least 1" },
        { "--all --last 5", "error: failed to read --all: it cannot be combined with --last" },
        { "-o yaml", "'yaml'" },
    };

    [Theory]
    [MemberData(nameof(BadFlags))]
    public void ABadFlagFailsBeforeTheAgentIsAsked(string args, string message)
    {
        var (code, stdout, stderr) = Membrane(["observe", .. args.Split(' ')]);
        Assert.Equal(1, code);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("Nov 27", stdout, StringComparison.Ordinal);
        Assert.Empty(_agent.Requests);
    }

    [Fact]
    public void HelpNamesEveryHubbleFilterFlag()
    {
        var (code, stdout, stderr) = Membrane("observe", "--help");
        Assert.True(code == 0, stderr);
        foreach (var flag in new[]
        {
            "--last", "--all", "--follow", "--since", "--until", "--output", "--no-color", "--write", "--print-raw-filters", "--not",
            "--from-pod", "--to-pod", "--pod", "--from-label", "--to-label", "--label", "--from-identity", "--to-identity", "--identity",
            "--from-ip", "--to-ip", "--ip", "--from-port", "--to-port", "--port", "--protocol", "--verdict", "--type", "--tcp-flags",
            "--traffic-direction",
        })
        {
            Assert.Matches($@"(?m)^\s+(-\w, )?{flag}\b", stdout);
        }
    }

    // Ethernet II + IPv4 (RFC 791, header checksum filled in) + a 20-byte TCP SYN (RFC 9293): 54 bytes.
    private static byte[] TcpFrame(IPAddress source, IPAddress destination, ushort sourcePort, ushort destinationPort)
    {
        var frame = new byte[54];
        byte[] dstMac = [0x02, 0, 0, 0, 0, 0x03], srcMac = [0x02, 0, 0, 0, 0, 0x02];
        dstMac.CopyTo(frame, 0);
        srcMac.CopyTo(frame, 6);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(12), 0x0800);
        var ip = frame.AsSpan(14, 20);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], 40);
        ip[8] = 64;
        ip[9] = 6;
        source.GetAddressBytes().CopyTo(ip[12..]);
        destination.GetAddressBytes().CopyTo(ip[16..]);
        uint sum = 0;
        for (var i = 0; i < 20; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(ip[i..]);
        }
        while (sum > 0xffff)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], (ushort)~sum);
        var tcp = frame.AsSpan(34, 20);
        BinaryPrimitives.WriteUInt16BigEndian(tcp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], destinationPort);
        tcp[12] = 5 << 4;
        tcp[13] = 0x02;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], 64240);
        return frame;
    }
}
