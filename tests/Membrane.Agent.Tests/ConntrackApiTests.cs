using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Membrane.Agent.Conntrack;
using Membrane.Api;
using Membrane.Datapath;
using Microsoft.Extensions.Time.Testing;

namespace Membrane.Agent.Tests;

/// <summary>/v1/bpf/ct over the agent's real unix socket, through MembraneClient, with conntrack tables faked.</summary>
public sealed class ConntrackApiTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly FakeConntrackDatapath _conntrack = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private AgentHost _host = null!;
    private MembraneClient _client = null!;

    private string Socket => _dir.File("agent.sock");

    private AgentOptions Options(TimeSpan? gcInterval = null) =>
        _dir.AgentOptions("node-a") with { Conntrack = new ConntrackSettings { GcInterval = gcInterval } };

    public async Task InitializeAsync()
    {
        _conntrack.Entries.AddRange(
        [
            FakeConntrackDatapath.Entry("fd00:198:18::2", 5353, "fd00:198:18::3", 53, 17, Datapath.Conntrack.CtState.Unreplied),
            FakeConntrackDatapath.Entry("198.18.0.3", 40000, "198.18.0.2", 80, 6),
            FakeConntrackDatapath.Entry("198.18.0.2", 0x1234, "198.18.0.4", 0, 1, Datapath.Conntrack.CtState.Replied, lifetime: 990),
            FakeConntrackDatapath.Entry("198.18.0.2", 40001, "198.18.0.3", 80, 6, Datapath.Conntrack.CtState.TimeWait),
        ]);
        _host = new AgentHost(Options(), new RecordingDatapath(), time: _time, conntrack: _conntrack);
        await _host.StartAsync(default);
        _client = new MembraneClient(Socket, TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task ListIsSortedAndSaysEverythingAboutEachConnection()
    {
        var entries = await _client.BpfConntrackAsync();

        // ipv4 before ipv6; within a family by protocol (icmp 1, tcp 6, udp 17), then source, source port.
        Assert.Equal(
            ["ipv4 icmp 198.18.0.2", "ipv4 tcp 198.18.0.2", "ipv4 tcp 198.18.0.3", "ipv6 udp fd00:198:18::2"],
            entries.Select(e => $"{e.Family} {e.Protocol} {e.Source}"));
        var tcp = entries[2];
        Assert.Equal(("198.18.0.3", 40000, "198.18.0.2", 80), (tcp.Source, tcp.SourcePort, tcp.Destination, tcp.DestinationPort));
        Assert.Equal((6, "ESTABLISHED", "from-pod", true), (tcp.ProtocolNumber, tcp.State, tcp.Origin, tcp.ReplySeen));
        Assert.Equal((3ul, 180ul, 2ul, 120ul), (tcp.PacketsOriginal, tcp.BytesOriginal, tcp.PacketsReply, tcp.BytesReply));
        Assert.Equal(["SYN", "ACK"], tcp.TcpFlagsOriginal!);
        Assert.Equal(["FIN", "SYN", "ACK"], tcp.TcpFlagsReply!);
        Assert.Equal((256u, 100L, 10L, 60L), (tcp.SourceIdentity, tcp.AgeSeconds, tcp.IdleSeconds, tcp.ExpiresInSeconds));
        Assert.Equal("TIME_WAIT", entries[1].State);

        var icmp = entries[0];
        Assert.Equal((null, null, 0x1234), (icmp.SourcePort, icmp.DestinationPort, icmp.IcmpId));
        Assert.Null(icmp.TcpFlagsOriginal);
        Assert.Equal("REPLIED", icmp.State);
        Assert.Equal(-10, icmp.ExpiresInSeconds); // expired, awaiting collection

        var udp = entries[3];
        Assert.Equal(("UNREPLIED", 5353, 53, (int?)null), (udp.State, udp.SourcePort, udp.DestinationPort, udp.IcmpId));
    }

    [Fact]
    public async Task TheJsonMembersAreTheDocumentedOnes()
    {
        using var http = RawClient();
        using var doc = JsonDocument.Parse(await http.GetStringAsync("v1/bpf/ct"));
        var names = (int i) => doc.RootElement[i].EnumerateObject().Select(p => p.Name).ToHashSet();
        string[] common = ["family", "protocol", "protocolNumber", "source", "destination", "state", "origin", "replySeen",
            "packetsOriginal", "bytesOriginal", "packetsReply", "bytesReply", "sourceIdentity", "ageSeconds", "idleSeconds", "expiresInSeconds"];
        Assert.True(names(0).SetEquals([.. common, "icmpId"]), string.Join(",", names(0)));
        Assert.True(names(1).SetEquals([.. common, "sourcePort", "destinationPort", "tcpFlagsOriginal", "tcpFlagsReply"]), string.Join(",", names(1)));
        Assert.True(names(3).SetEquals([.. common, "sourcePort", "destinationPort"]), string.Join(",", names(3)));
    }

    [Fact]
    public async Task QueryParametersBecomeTheDatapathsFilter()
    {
        await _client.BpfConntrackAsync("ipv6", "icmpv6", "fd00:198:18::2", 443);
        await _client.BpfConntrackAsync(protocol: "132");
        await _client.BpfConntrackAsync();
        Assert.Equal(
            [
                new ConntrackFilter { Family = ConntrackFamily.IPv6, Protocol = 58, Address = IPAddress.Parse("fd00:198:18::2"), Port = 443 },
                new ConntrackFilter { Protocol = 132 },
                new ConntrackFilter(),
            ],
            _conntrack.Filters);
    }

    [Theory]
    [InlineData("family=ipv5", "family 'ipv5'")]
    [InlineData("protocol=bogus", "protocol 'bogus'")]
    [InlineData("protocol=256", "protocol '256'")]
    [InlineData("address=198.18.0.300", "address '198.18.0.300'")]
    [InlineData("address=10", "address '10'")]
    [InlineData("port=70000", "port '70000'")]
    public async Task ABadFilterIsA400NamingTheParameter(string query, string named)
    {
        var e = await Assert.ThrowsAsync<MembraneApiException>(() => _client.GetAsync("v1/bpf/ct?" + query, ApiJsonContext.Default.ListBpfConntrackEntry));
        Assert.Equal(HttpStatusCode.BadRequest, e.Status);
        Assert.Equal(ErrorCodes.InvalidRequest, e.Error.Code);
        Assert.Contains(named, e.Error.Message, StringComparison.Ordinal);
        Assert.Empty(_conntrack.Filters);
    }

    [Fact]
    public async Task FlushRemovesEverythingAndSaysHowMuch()
    {
        Assert.Equal(new ConntrackFlushResponse(4), await _client.BpfConntrackFlushAsync());
        Assert.Empty(await _client.BpfConntrackAsync());
        Assert.Equal(new ConntrackFlushResponse(0), await _client.BpfConntrackFlushAsync());
    }

    [Fact]
    public async Task GcRunsOnRequestAndStatsReportItWithThePressure()
    {
        // The start-up run (interval trigger) has happened: the host starts the collector before it answers.
        var before = await _client.BpfConntrackStatsAsync();
        Assert.Equal(1, before.Runs);
        Assert.Equal("interval", before.LastGc!.Trigger);
        Assert.Equal("adaptive", before.GcMode);
        Assert.Equal((90, 10, 300), (before.GcIntervalSeconds, before.GcMinIntervalSeconds, before.GcMaxIntervalSeconds));
        Assert.Equal(_time.GetUtcNow().AddSeconds(90), before.NextGc);

        _conntrack.Results.Enqueue(FakeConntrackDatapath.Result(alive4: 950, deleted4: 30, alive6: 2, deleted6: 1, ms: 12.25));
        var run = await _client.BpfConntrackGcAsync();
        Assert.Equal(("request", 31, 983, 12.25), (run.Trigger, run.Deleted, run.Scanned, run.DurationMs));
        Assert.Equal(
            [
                new ConntrackTableStats { Family = "ipv4", Scanned = 980, Deleted = 30, Entries = 950, MaxEntries = 1000, Fill = 0.95, Pressure = true },
                new ConntrackTableStats { Family = "ipv6", Scanned = 3, Deleted = 1, Entries = 2, MaxEntries = 1000, Fill = 0.002, Pressure = false },
            ],
            run.Tables);

        var after = await _client.BpfConntrackStatsAsync();
        Assert.Equal((2L, 31L, 0.9), (after.Runs, after.DeletedTotal, after.PressureThreshold));
        var last = Assert.IsType<ConntrackGcRunInfo>(after.LastGc);
        Assert.Equal(run with { Tables = [] }, last with { Tables = [] }); // records compare lists by reference
        Assert.Equal(run.Tables, last.Tables);
        Assert.Equal(new ConntrackTimeoutsInfo { TcpSyn = 60, TcpEstablished = 21600, TcpClose = 10, Other = 60 }, after.Timeouts);
    }

    [Fact]
    public async Task StatsShowAPinnedIntervalAndTheDatapathsLifetimes()
    {
        await _host.DisposeAsync();
        _conntrack.Timeouts = new Datapath.Conntrack.ConntrackTimeouts { TcpSyn = TimeSpan.FromSeconds(30), Other = TimeSpan.FromMinutes(2) };
        _host = new AgentHost(Options(TimeSpan.FromSeconds(5)), new RecordingDatapath(), time: _time, conntrack: _conntrack);
        await _host.StartAsync(default);

        var stats = await _client.BpfConntrackStatsAsync();
        Assert.Equal(("fixed", 5.0, 5.0, 5.0), (stats.GcMode, stats.GcIntervalSeconds, stats.GcMinIntervalSeconds, stats.GcMaxIntervalSeconds));
        Assert.Equal(new ConntrackTimeoutsInfo { TcpSyn = 30, TcpEstablished = 21600, TcpClose = 10, Other = 120 }, stats.Timeouts);
    }

    [Fact]
    public async Task WithoutConntrackTablesEveryRouteSaysSo()
    {
        await _host.DisposeAsync();
        _host = new AgentHost(Options(), new RecordingDatapath(), time: _time);
        await _host.StartAsync(default);
        Assert.Null(_host.Conntrack);

        foreach (var call in new Func<Task>[] { () => _client.BpfConntrackAsync(), () => _client.BpfConntrackFlushAsync(), () => _client.BpfConntrackStatsAsync(), () => _client.BpfConntrackGcAsync() })
        {
            var e = await Assert.ThrowsAsync<MembraneApiException>(call);
            Assert.Equal(ErrorCodes.InvalidRequest, e.Error.Code);
            Assert.Contains("has no conntrack tables", e.Error.Message, StringComparison.Ordinal);
        }
        Assert.Equal(1, _conntrack.Collections); // only the first host's start-up run reached the tables
    }

    [Fact]
    public async Task AKernelFailureIsCode101()
    {
        _conntrack.FailCollect = new IOException("bpf syscall failed");
        var e = await Assert.ThrowsAsync<MembraneApiException>(() => _client.BpfConntrackGcAsync());
        Assert.Equal(ErrorCodes.KernelFailure, e.Error.Code);
        Assert.Contains("failed to garbage-collect the conntrack tables: bpf syscall failed", e.Error.Message, StringComparison.Ordinal);
    }

    private HttpClient RawClient() => UnixSocketHttp.Client(Socket);
}
