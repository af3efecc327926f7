using System.Net;
using System.Net.Sockets;
using System.Text;
using Membrane.Agent.Store;
using Membrane.Api;
using Microsoft.Extensions.Logging;

namespace Membrane.Agent.Tests;

/// <summary>The agent end to end: a real AgentHost on a real unix socket, spoken to by Membrane.Api's client.</summary>
public sealed class ApiServerTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly RecordingDatapath _datapath = new();
    private readonly ListLoggerProvider _log = new();
    private readonly ILoggerFactory _loggerFactory;
    private AgentHost _host = null!;
    private MembraneClient _client = null!;

    public ApiServerTests() => _loggerFactory = LoggerFactory.Create(b => b.AddProvider(_log).SetMinimumLevel(LogLevel.Debug));

    private string Socket => _dir.File("agent.sock");

    private AgentOptions Options(string? stateDir = null, string? socket = null) => new()
    {
        StateDir = stateDir ?? _dir.File("state"),
        SocketPath = socket ?? Socket,
        PodCidrs = AgentOptions.ParsePodCidrs("198.18.0.0/29,fd00:198:18::/120"),
        NodeName = "node-a",
        HandleSignals = false,
    };

    public async Task InitializeAsync()
    {
        _host = new AgentHost(Options(), _datapath, _loggerFactory);
        await _host.StartAsync(default);
        _client = new MembraneClient(Socket, TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _host.DisposeAsync();
        _loggerFactory.Dispose();
        _dir.Dispose();
    }

    private static CniAddRequest Add(string cid) => new()
    {
        ContainerId = cid,
        IfName = "eth0",
        NetNs = "/var/run/netns/" + cid,
        PodNamespace = "default",
        PodName = cid,
        Labels = [new Label("app", "web")],
    };

    /// <summary>A raw request, for bodies MembraneClient would never send.</summary>
    private Task<(HttpStatusCode Status, ApiError? Error, string Body)> RawAsync(HttpMethod method, string path, string? body = null) =>
        UnixSocketHttp.SendAsync(Socket, method, path, body);

    [Fact]
    public async Task StatusDescribesTheNode()
    {
        var status = await _client.StatusAsync();
        Assert.Equal("node-a", status.NodeName);
        Assert.Equal(["198.18.0.0/29", "fd00:198:18::/120"], status.PodCidrs);
        Assert.Equal(0, status.Endpoints);
        Assert.Equal("recording test double", status.Datapath);
        Assert.Equal("/sys/fs/bpf/membrane/test", status.BpfPinPath);
        Assert.Equal(_dir.File("state"), status.StateDir);
        Assert.False(string.IsNullOrEmpty(status.Version));
        Assert.InRange(status.UptimeSeconds, 0, 60);
    }

    [Fact]
    public void TheSocketIsOwnerOnly()
    {
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Socket));
    }

    [Fact]
    public async Task AddCheckListGetGcAndDelWorkOverTheSocket()
    {
        var added = await _client.CniAddAsync(Add("c1"));
        Assert.Equal([new IpConfig("198.18.0.2/32", "198.18.0.1"), new IpConfig("fd00:198:18::2/128", "fd00:198:18::1")], added.Ips);
        Assert.Equal(added.EndpointId, (await _client.CniAddAsync(Add("c1"))).EndpointId); // idempotent
        await _client.CniAddAsync(Add("c2"));

        await _client.CniCheckAsync(new CniCheckRequest { ContainerId = "c1", IfName = "eth0", NetNs = "/var/run/netns/c1" });

        var list = await _client.EndpointsAsync();
        Assert.Equal(["c1", "c2"], list.Select(e => e.ContainerId));
        Assert.Equal(["app=web", "k8s:io.kubernetes.pod.namespace=default"], list[0].Labels);
        Assert.Equal("ready", list[0].State);
        var one = await _client.EndpointAsync(added.EndpointId);
        Assert.Equal(("c1", "198.18.0.2", "fd00:198:18::2"), (one.ContainerId, one.Ipv4, one.Ipv6));
        Assert.Equal(2, (await _client.StatusAsync()).Endpoints);

        var gc = await _client.CniGcAsync(new CniGcRequest { ValidAttachments = [new Attachment("c1", "eth0")] });
        Assert.Equal([new Attachment("c2", "eth0")], gc.Released);

        await _client.CniDelAsync(new CniDelRequest { ContainerId = "c1", IfName = "eth0", NetNs = "/var/run/netns/c1" });
        await _client.CniDelAsync(new CniDelRequest { ContainerId = "c1", IfName = "eth0" }); // again: still fine
        Assert.Empty(await _client.EndpointsAsync());
        Assert.Empty(_datapath.Kernel);

        // Every request was logged with its answer.
        Assert.Contains(_log.Lines, l => l.StartsWith("Membrane.Agent.Api: POST /v1/cni/add -> 200", StringComparison.Ordinal));
        Assert.Contains(_log.Lines, l => l.StartsWith("Membrane.Agent.Api: POST /v1/cni/del -> 204", StringComparison.Ordinal));
        // ...once: the framework's own per-request lines are filtered out.
        Assert.DoesNotContain(_log.Lines, l => l.StartsWith("Microsoft.AspNetCore.Hosting.Diagnostics: Request starting", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheDatapathViewsAreServed()
    {
        var added = await _client.CniAddAsync(Add("c1"));
        _datapath.Metrics.Add(new BpfMetricEntry { Reason = "forwarded", ReasonCode = 0, Direction = "egress", Packets = 3, Bytes = 210 });
        var map = Assert.Single(await _client.BpfEndpointsAsync());
        Assert.Equal(added.EndpointId, map.EndpointId); // joined by ifindex: the double does not know the id
        Assert.Equal("198.18.0.2", map.Ipv4);
        var metric = Assert.Single(await _client.BpfMetricsAsync());
        Assert.Equal(("forwarded", 3ul, 210ul), (metric.Reason, metric.Packets, metric.Bytes));

        _datapath.FailRead = new IOException("bpf(BPF_MAP_GET_NEXT_KEY): Operation not permitted");
        var error = await Assert.ThrowsAsync<MembraneApiException>(() => _client.BpfMetricsAsync());
        Assert.Equal(HttpStatusCode.InternalServerError, error.Status);
        Assert.Equal(ErrorCodes.KernelFailure, error.Error.Code);
        Assert.Equal("failed to read the datapath's counters: bpf(BPF_MAP_GET_NEXT_KEY): Operation not permitted", error.Error.Message);
    }

    [Fact]
    public async Task ErrorsCarryTheirCodeAndHttpStatus()
    {
        var check = await Assert.ThrowsAsync<MembraneApiException>(() =>
            _client.CniCheckAsync(new CniCheckRequest { ContainerId = "nope", IfName = "eth0", NetNs = "/var/run/netns/nope" }));
        Assert.Equal(HttpStatusCode.NotFound, check.Status);
        Assert.Equal(ErrorCodes.UnknownContainer, check.Error.Code);

        for (var i = 0; i < 5; i++)
        {
            await _client.CniAddAsync(Add($"c{i}"));
        }
        var exhausted = await Assert.ThrowsAsync<MembraneApiException>(() => _client.CniAddAsync(Add("c5")));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, exhausted.Status);
        Assert.Equal(ErrorCodes.AddressesExhausted, exhausted.Error.Code);
        Assert.Equal("failed to allocate an IPv4 address from 198.18.0.0/29: the range is exhausted (5 of 5 in use)", exhausted.Error.Message);

        _datapath.FailCreate = _ => new IOException("RTM_NEWLINK: Permission denied");
        await _client.CniDelAsync(new CniDelRequest { ContainerId = "c0", IfName = "eth0" });
        var kernel = await Assert.ThrowsAsync<MembraneApiException>(() => _client.CniAddAsync(Add("c9")));
        Assert.Equal(HttpStatusCode.InternalServerError, kernel.Status);
        Assert.Equal(ErrorCodes.KernelFailure, kernel.Error.Code);
        Assert.Contains("Permission denied", kernel.Error.Message, StringComparison.Ordinal);

        var missing = await Assert.ThrowsAsync<MembraneApiException>(() => _client.EndpointAsync(12345));
        Assert.Equal(HttpStatusCode.NotFound, missing.Status);
        Assert.Equal(ErrorCodes.UnknownContainer, missing.Error.Code);
    }

    [Theory]
    [InlineData("{", "Expected depth to be zero")]
    [InlineData("not json", "is an invalid")]
    [InlineData("", "does not contain any JSON tokens")]
    [InlineData("null", "the body is null")]
    [InlineData("""{"containerId":"c1","ifName":"eth0"}""", "missing required properties including: 'netns'")]
    [InlineData("""{"containerId":"c1","ifName":"eth0","netns":"/x","mtu":"big"}""", "$.mtu")]
    [InlineData("""{"containerId":"c1","ifName":"eth0","netns":"/x","labels":null}""", "labels")]
    [InlineData("""{"containerId":"c1","ifName":"eth0","netns":"/x","labels":[{"key":"app"}]}""", "value")]
    [InlineData("""{"containerId":null,"ifName":"eth0","netns":"/x"}""", "containerId")]
    [InlineData("""[1,2,3]""", "CniAddRequest")]
    public async Task AMalformedBodyIs400WithCode6SayingWhatIsWrong(string body, string why)
    {
        var (status, error, raw) = await RawAsync(HttpMethod.Post, "v1/cni/add", body);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.NotNull(error);
        Assert.Equal(ErrorCodes.DecodeFailure, error.Code);
        Assert.StartsWith("failed to decode the add request: ", error.Message, StringComparison.Ordinal);
        Assert.Contains(why, $"{error.Message} {error.Details}", StringComparison.Ordinal);
        Assert.StartsWith("{\"code\":6,", raw, StringComparison.Ordinal);
        Assert.Empty(_datapath.Calls);
    }

    [Fact]
    public async Task UnknownPathsAndMethodsGetAnApiError()
    {
        var (status, error, _) = await RawAsync(HttpMethod.Get, "v1/nothing");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal(ErrorCodes.InvalidRequest, error!.Code);
        Assert.Contains("no such API path", error.Message, StringComparison.Ordinal);

        (status, error, _) = await RawAsync(HttpMethod.Get, "v1/cni/add");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, status);
        Assert.Contains("does not take GET", error!.Message, StringComparison.Ordinal);

        (status, error, _) = await RawAsync(HttpMethod.Get, "v1/endpoints/abc");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(ErrorCodes.InvalidRequest, error!.Code);
    }

    [Fact]
    public async Task EndpointsSurviveARestartOfTheAgent()
    {
        var added = await _client.CniAddAsync(Add("c1"));
        await _host.StopAsync();
        Assert.False(File.Exists(Socket));
        await Assert.ThrowsAsync<AgentUnreachableException>(() => _client.StatusAsync());

        _host = new AgentHost(Options(), _datapath, _loggerFactory);
        await _host.StartAsync(default);
        var list = await _client.EndpointsAsync();
        Assert.Equal(added.EndpointId, Assert.Single(list).Id);
        Assert.Equal("198.18.0.3", (await _client.CniAddAsync(Add("c2"))).Ips[0].Address.Split('/')[0]);
    }

    [Fact]
    public async Task ASecondAgentCannotTakeTheSocketOrTheStateDir()
    {
        await using var sameSocket = new AgentHost(Options(stateDir: _dir.File("state2")), _datapath, _loggerFactory);
        var error = await Assert.ThrowsAsync<AgentException>(() => sameSocket.StartAsync(default));
        Assert.Contains("accepts connections there", error.Message, StringComparison.Ordinal);

        await using var sameState = new AgentHost(Options(socket: _dir.File("other.sock")), _datapath, _loggerFactory);
        error = await Assert.ThrowsAsync<AgentException>(() => sameState.StartAsync(default));
        Assert.Contains("another agent uses it", error.Message, StringComparison.Ordinal);

        // The first agent is unharmed.
        Assert.Equal("node-a", (await _client.StatusAsync()).NodeName);
    }

    [SkippableFact]
    public async Task AStaleSocketIsReplacedButAPlainFileIsNot()
    {
        await _host.StopAsync();
        // A socket file whose listener died: bound by a process that exited without unlinking it
        // (.NET's Socket unlinks on Dispose, so another process makes it).
        var python = Membrane.Testing.Requires.Tool(Membrane.Testing.Tools.DebianPython);
        var made = Membrane.Testing.Tools.Run(python, ["-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen()", Socket]);
        Assert.Equal(0, made.ExitCode);
        Assert.True(File.Exists(Socket));
        _host = new AgentHost(Options(), _datapath, _loggerFactory);
        await _host.StartAsync(default);
        Assert.Equal("node-a", (await _client.StatusAsync()).NodeName);
        await _host.StopAsync();

        await File.WriteAllTextAsync(Socket, "precious");
        await using var blocked = new AgentHost(Options(), _datapath, _loggerFactory);
        var error = await Assert.ThrowsAsync<AgentException>(() => blocked.StartAsync(default));
        Assert.Contains("not a socket", error.Message, StringComparison.Ordinal);
        Assert.Equal("precious", await File.ReadAllTextAsync(Socket));
        File.Delete(Socket);
    }

    [Fact]
    public async Task RunAsyncServesUntilCancelled()
    {
        await _host.StopAsync();
        using var cts = new CancellationTokenSource();
        var host = new AgentHost(Options(), _datapath, _loggerFactory);
        var run = host.RunAsync(cts.Token);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        StatusResponse? status = null;
        while (status is null && DateTime.UtcNow < deadline)
        {
            try
            {
                status = await _client.StatusAsync();
            }
            catch (AgentUnreachableException)
            {
                await Task.Delay(50);
            }
        }
        Assert.NotNull(status);
        await cts.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.False(File.Exists(Socket));
        // The state dir is free again: a new agent can start on it.
        _host = new AgentHost(Options(), _datapath, _loggerFactory);
        await _host.StartAsync(default);
    }
}
