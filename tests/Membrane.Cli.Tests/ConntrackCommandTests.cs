using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Membrane.Agent;
using Membrane.Agent.Conntrack;
using Membrane.Agent.Endpoints;
using Membrane.Api;
using Membrane.Cli.Client;
using Membrane.Datapath;
using Membrane.Datapath.Conntrack;
using Membrane.Testing;

namespace Membrane.Cli.Tests;

/// <summary>
/// <c>membrane bpf ct list|flush|stats|gc</c> run as a user runs them (the real CLI process)
/// against an in-process agent on a unix socket whose conntrack tables are a test double;
/// and the agent's --ct-* flags rejected before anything starts.
/// </summary>
public sealed class ConntrackCommandTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory($"{RunPrefix.Value}-ct-").FullName;
    private readonly Tables _tables = new();
    private AgentHost _host = null!;

    private string Socket => Path.Combine(_dir, "agent.sock");

    public async Task InitializeAsync()
    {
        _tables.Entries.AddRange(
        [
            Entry("198.18.0.3", 40000, "198.18.0.2", 80, 6, CtState.Established, lifetime: 1060),
            Entry("198.18.0.2", 0x1234, "198.18.0.4", 0, 1, CtState.Replied, lifetime: 990),
            Entry("fd00:198:18::2", 5353, "fd00:198:18::3", 53, 17, CtState.Unreplied, lifetime: 1000 + 21_600 + 90),
        ]);
        _host = new AgentHost(new AgentOptions
        {
            StateDir = Path.Combine(_dir, "state"),
            SocketPath = Socket,
            PodCidrs = AgentOptions.ParsePodCidrs("198.18.0.0/29"),
            NodeName = "node-ct",
            HandleSignals = false,
        }, new NoEndpoints(), conntrack: _tables);
        await _host.StartAsync(default);
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private (int Code, string Stdout, string Stderr) Membrane(params string[] args) =>
        Tools.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "membrane.dll"), "--socket", Socket, .. args]);

    private static ConntrackEntry Entry(string src, ushort sport, string dst, ushort dport, byte proto, CtState state, uint lifetime) => new()
    {
        Family = IPAddress.Parse(src).AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? ConntrackFamily.IPv4 : ConntrackFamily.IPv6,
        Protocol = proto,
        Source = IPAddress.Parse(src),
        SourcePort = sport,
        Destination = IPAddress.Parse(dst),
        DestinationPort = dport,
        State = state,
        Origin = proto == 17 ? CtOrigin.ToPod : CtOrigin.FromPod,
        Flags = CtEntryFlags.ReplySeen,
        SourceIdentity = 256,
        ReverseNatIndex = 0,
        PacketsOriginal = 3,
        BytesOriginal = 180,
        PacketsReply = 2,
        BytesReply = 1200,
        TcpFlagsOriginal = proto == 6 ? (byte)0x12 : (byte)0,
        TcpFlagsReply = proto == 6 ? (byte)0x12 : (byte)0,
        Created = 900,
        LastSeen = 990,
        Lifetime = lifetime,
        Now = 1000,
    };

    [Fact]
    public void ListPrintsOneReadableLinePerConnection()
    {
        var (code, stdout, stderr) = Membrane("bpf", "ct", "list");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.Matches(@"^PROTO\s+SOURCE\s+DESTINATION\s+STATE\s+ORIGIN\s+PACKETS ->/<-\s+BYTES ->/<-\s+EXPIRES IN$", lines[0]);
        Assert.Matches(@"^icmp\s+198\.18\.0\.2 id=4660\s+198\.18\.0\.4\s+REPLIED\s+from-pod\s+3/2\s+180/1200\s+expired$", lines[1]);
        Assert.Matches(@"^tcp\s+198\.18\.0\.3:40000\s+198\.18\.0\.2:80\s+ESTABLISHED\s+from-pod\s+3/2\s+180/1200\s+1m$", lines[2]);
        Assert.Matches(@"^udp\s+\[fd00:198:18::2\]:5353\s+\[fd00:198:18::3\]:53\s+UNREPLIED\s+to-pod\s+3/2\s+180/1200\s+6h1m30s$", lines[3]);
    }

    [Fact]
    public void ListJsonIsTheApisArrayAndFiltersReachTheAgent()
    {
        var (code, stdout, stderr) = Membrane("bpf", "ct", "list", "--family", "ipv4", "--protocol", "tcp", "--address", "198.18.0.2", "--port", "80", "-o", "json");
        Assert.True(code == 0, stderr);
        var entries = JsonSerializer.Deserialize(stdout, ApiJsonContext.Default.ListBpfConntrackEntry)!;
        Assert.Equal(["icmp", "tcp", "udp"], entries.Select(e => e.Protocol)); // the double does not filter; the agent passed the filter on
        Assert.Equal(new ConntrackFilter { Family = ConntrackFamily.IPv4, Protocol = 6, Address = IPAddress.Parse("198.18.0.2"), Port = 80 }, Assert.Single(_tables.Filters));
        using var doc = JsonDocument.Parse(stdout);
        var tcp = doc.RootElement[1];
        Assert.Equal("ESTABLISHED", tcp.GetProperty("state").GetString());
        Assert.Equal(40000, tcp.GetProperty("sourcePort").GetInt32());
        Assert.Equal(["SYN", "ACK"], tcp.GetProperty("tcpFlagsOriginal").EnumerateArray().Select(f => f.GetString()));
        Assert.Equal(60, tcp.GetProperty("expiresInSeconds").GetInt64());
        Assert.Equal(0x1234, doc.RootElement[0].GetProperty("icmpId").GetInt32());
        Assert.False(doc.RootElement[0].TryGetProperty("sourcePort", out _));
    }

    [Fact]
    public void ABadFilterIsTheAgentsErrorAndExitCode1()
    {
        var (code, _, stderr) = Membrane("bpf", "ct", "list", "--protocol", "carrier-pigeon");
        Assert.Equal(1, code);
        Assert.Contains("protocol 'carrier-pigeon'", stderr, StringComparison.Ordinal);
        Assert.Contains("(code 102)", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void FlushSaysHowManyWereRemoved()
    {
        var (code, stdout, stderr) = Membrane("bpf", "ct", "flush");
        Assert.True(code == 0, stderr);
        Assert.Equal("Flushed 3 conntrack entries", stdout.Trim());
        (code, stdout, stderr) = Membrane("bpf", "ct", "flush", "-o", "json");
        Assert.True(code == 0, stderr);
        Assert.Equal(0, JsonDocument.Parse(stdout).RootElement.GetProperty("deleted").GetInt32());
    }

    [Fact]
    public void GcAndStatsReportTheRunAndThePressure()
    {
        _tables.NextResult = new ConntrackGcResult(1000, TimeSpan.FromMilliseconds(3.5),
        [
            new ConntrackTableGc(ConntrackFamily.IPv4, 1000, 40, 960, 1024),
            new ConntrackTableGc(ConntrackFamily.IPv6, 3, 0, 3, 1024),
        ]);
        var (code, stdout, stderr) = Membrane("bpf", "ct", "gc");
        Assert.True(code == 0, stderr);
        Assert.Equal("Removed 40 expired of 1003 entries (ipv4 40 of 1000, ipv6 0 of 3) in 3.5 ms", stdout.Trim());

        (code, stdout, stderr) = Membrane("bpf", "ct", "stats");
        Assert.True(code == 0, stderr);
        Assert.Matches(@"(?m)^TABLE\s+ENTRIES\s+MAX\s+FILL\s+PRESSURE$", stdout);
        Assert.Matches(@"(?m)^ipv4\s+960\s+1024\s+93\.8%\s+YES$", stdout);
        Assert.Matches(@"(?m)^ipv6\s+3\s+1024\s+0\.3%\s+no$", stdout);
        Assert.Contains("Timeouts:   tcp-syn 1m, tcp-established 6h, tcp-close 10s, other 1m", stdout, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^GC:         every 1m30s \(adaptive, 10s to 5m\), next in ", stdout);
        Assert.Matches(@"(?m)^Last GC:    \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(request\), 40 of 1003 entries expired, 3\.5 ms$", stdout);
        Assert.Contains("Runs:       2, 40 entries removed in total", stdout, StringComparison.Ordinal);
        Assert.Contains("Warning:    a table is over 90% full", stdout, StringComparison.Ordinal);

        (code, stdout, stderr) = Membrane("bpf", "ct", "stats", "-o", "json");
        Assert.True(code == 0, stderr);
        var stats = JsonSerializer.Deserialize(stdout, ApiJsonContext.Default.ConntrackStatsResponse)!;
        Assert.Equal(("adaptive", 2L, 40L), (stats.GcMode, stats.Runs, stats.DeletedTotal));
        Assert.Equal([true, false], stats.LastGc!.Tables.Select(t => t.Pressure));
    }

    [Theory]
    [InlineData("list")]
    [InlineData("stats")]
    [InlineData("gc")]
    [InlineData("flush")]
    public void TheHelpDocumentsEveryJsonMemberTheCommandPrints(string command)
    {
        var (code, stdout, stderr) = Membrane("bpf", "ct", command, "-o", "json");
        Assert.True(code == 0, stderr);
        var names = JsonMembers.Names(stdout);
        Assert.NotEmpty(names);
        var help = Membrane("bpf", "ct", command, "--help").Stdout;
        var gcHelp = Membrane("bpf", "ct", "stats", "--help").Stdout; // gc points to the lastGc member there
        Assert.All(names, n => Assert.Contains(n, command == "gc" ? gcHelp : help, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("--ct-timeout-tcp-syn", "5x")]
    [InlineData("--ct-timeout-tcp-established", "0s")]
    [InlineData("--ct-timeout-tcp-close", "10")]
    [InlineData("--ct-timeout-other", "1.5m")]
    [InlineData("--ct-gc-interval", "0s")]
    [InlineData("--ct-max-entries", "12")]
    public void TheAgentRejectsABadConntrackFlagNamingIt(string flag, string value)
    {
        // Refused while the command line is read: no state dir, socket or datapath is touched.
        var state = Path.Combine(_dir, "never");
        var (code, _, stderr) = Tools.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "membrane.dll"), "agent",
            "--state-dir", state, "--socket", Path.Combine(_dir, "never.sock"), "--pod-cidr", "198.18.0.0/24", flag, value]);
        Assert.Equal(2, code);
        Assert.StartsWith($"error: failed to parse {flag}: ", stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(state));
    }

    [Theory]
    [InlineData("65535")]
    [InlineData("524281")]
    public void TheAgentRejectsAPodGsoMaxSizeOutsideTheKernelsRange(string value)
    {
        var state = Path.Combine(_dir, "never");
        var (code, _, stderr) = Tools.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "membrane.dll"), "agent",
            "--state-dir", state, "--socket", Path.Combine(_dir, "never.sock"), "--pod-cidr", "198.18.0.0/24", "--pod-gso-max-size", value]);
        Assert.Equal(2, code);
        Assert.Equal($"error: failed to start the agent: --pod-gso-max-size {value} is not between 65536 (no BIG TCP) and 524280", stderr.Trim());
        Assert.False(Directory.Exists(state));
    }

    /// <summary>An agent without endpoints: only the conntrack routes matter here.</summary>
    private sealed class NoEndpoints : IEndpointDatapath
    {
        public string Description => "conntrack-only test double";

        public string PinPath => "";

        public Task<DatapathEndpoint> CreateAsync(EndpointSpec spec, CancellationToken ct) => throw new NotSupportedException();

        public Task DeleteAsync(EndpointSpec spec, CancellationToken ct) => Task.CompletedTask;

        public Task<bool> HostInterfaceExistsAsync(EndpointSpec spec, CancellationToken ct) => Task.FromResult(false);

        public Task<IReadOnlyList<string>> CheckAsync(EndpointSpec spec, DatapathEndpoint current, CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<string>>([]);

        public Task<IReadOnlyList<BpfEndpointEntry>> ListMapEndpointsAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<BpfEndpointEntry>>([]);

        public uint SetIdentity(DatapathEndpoint current, uint identity) => throw new NotSupportedException();

        public Task<IReadOnlyList<BpfMetricEntry>> ReadMetricsAsync(CancellationToken ct) => Task.FromResult<IReadOnlyList<BpfMetricEntry>>([]);
    }

    /// <summary>Tables that hold the given entries; a collection returns <see cref="NextResult"/> once, else deletes nothing.</summary>
    private sealed class Tables : IConntrackDatapath
    {
        public List<ConntrackEntry> Entries { get; } = [];

        public ConcurrentQueue<ConntrackFilter> Filters { get; } = new();

        public ConntrackGcResult? NextResult { get; set; }

        public Task<IReadOnlyList<ConntrackEntry>> ListConntrackAsync(ConntrackFilter filter, CancellationToken ct)
        {
            Filters.Enqueue(filter);
            return Task.FromResult<IReadOnlyList<ConntrackEntry>>([.. Entries]);
        }

        public Task<int> FlushConntrackAsync(CancellationToken ct)
        {
            var n = Entries.Count;
            Entries.Clear();
            return Task.FromResult(n);
        }

        public Task<ConntrackGcResult> CollectConntrackAsync(CancellationToken ct)
        {
            var result = NextResult ?? new ConntrackGcResult(1000, TimeSpan.FromMilliseconds(1),
                [new ConntrackTableGc(ConntrackFamily.IPv4, 2, 0, 2, 1024), new ConntrackTableGc(ConntrackFamily.IPv6, 1, 0, 1, 1024)]);
            NextResult = null;
            return Task.FromResult(result);
        }

        public Task<ConntrackTimeouts> ReadConntrackTimeoutsAsync(CancellationToken ct) => Task.FromResult(new ConntrackTimeouts());
    }
}
