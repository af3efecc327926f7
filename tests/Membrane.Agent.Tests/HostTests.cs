using System.Diagnostics;
using Membrane.Agent.Identities;
using Membrane.Api;
using Membrane.Testing;
using Microsoft.Extensions.Time.Testing;
using Membrane.Policy.Identities;

namespace Membrane.Agent.Tests;

public sealed class HostTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private AgentOptions Options(TimeSpan grace) => new()
    {
        StateDir = _dir.File("state"),
        SocketPath = _dir.File("agent.sock"),
        PodCidrs = AgentOptions.ParsePodCidrs("198.18.0.0/24"),
        NodeName = "node-a",
        IdentityGracePeriod = grace,
        HandleSignals = false,
    };

    [Fact]
    public async Task TheHostFreesIdentitiesOnceTheirGracePeriodIsOver()
    {
        var time = new FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        var grace = TimeSpan.FromMinutes(10);
        await using var host = new AgentHost(Options(grace), new RecordingDatapath(), time: time);
        await host.StartAsync(default);
        using var client = new MembraneClient(_dir.File("agent.sock"));
        await client.CniAddAsync(new CniAddRequest { ContainerId = "c1", IfName = "eth0", NetNs = "/var/run/netns/c1", Labels = [new Label("app", "web")] });
        await client.CniDelAsync(new CniDelRequest { ContainerId = "c1", IfName = "eth0" });
        var identities = host.Identities!;
        Assert.NotNull(identities.Lookup(ReservedIdentities.FirstAllocated));

        time.Advance(grace - TimeSpan.FromMinutes(2)); // several collector ticks, all too early
        await Task.Delay(200);
        Assert.NotNull(identities.Lookup(ReservedIdentities.FirstAllocated));

        time.Advance(TimeSpan.FromMinutes(3)); // past the grace period; the next tick frees it
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (identities.Lookup(ReservedIdentities.FirstAllocated) is not null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
        Assert.Null(identities.Lookup(ReservedIdentities.FirstAllocated));
    }

    // SIGTERM is what service managers and `kill` send. (SIGINT is not tested here: a shell
    // that starts the test run in the background leaves SIGINT ignored for its children, and
    // the runtime keeps an inherited SIG_IGN for SIGINT, so the result would depend on how the
    // tests were started.)
    [SkippableFact]
    public async Task SigtermStopsTheAgentCleanly()
    {
        const string signal = "TERM";
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : Requires.Tool("dotnet");
        var kill = Requires.Tool("kill");
        var socket = _dir.File("agent.sock");
        var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // Killed if it fails to come up: without diagnostics it leaves no IPC pipes and socket in /tmp behind.
        psi.Environment["DOTNET_EnableDiagnostics"] = "0";
        foreach (var arg in (string[])["exec", typeof(CrashChild).Assembly.Location, "agent", _dir.File("state"), socket])
        {
            psi.ArgumentList.Add(arg);
        }
        using var child = Process.Start(psi)!;
        var stdout = child.StandardOutput.ReadToEndAsync();
        var stderr = child.StandardError.ReadToEndAsync();
        try
        {
            using var client = new MembraneClient(socket);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            StatusResponse? status = null;
            while (status is null && DateTime.UtcNow < deadline && !child.HasExited)
            {
                try
                {
                    status = await client.StatusAsync();
                }
                catch (AgentUnreachableException)
                {
                    await Task.Delay(50);
                }
            }
            if (status is null)
            {
                child.Kill();
                Assert.Fail($"the agent did not come up: {await stderr}");
            }
            Assert.Equal("child", status.NodeName);

            Assert.Equal(0, Tools.Run(kill, [$"-{signal}", child.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]).ExitCode);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await child.WaitForExitAsync(timeout.Token);
            Assert.Equal(0, child.ExitCode);
            Assert.Contains("stopped", await stdout, StringComparison.Ordinal);
            Assert.False(File.Exists(socket), "the socket is removed on a clean stop");
        }
        finally
        {
            if (!child.HasExited)
            {
                child.Kill();
            }
        }
        // The state dir's lock went with it.
        await using var next = new AgentHost(Options(TimeSpan.FromMinutes(1)), new RecordingDatapath());
        await next.StartAsync(default);
    }

    [Theory]
    [InlineData("", "failed to parse --pod-cidr: no CIDR given")]
    [InlineData(" , ", "failed to parse --pod-cidr: no CIDR given")]
    [InlineData("198.18.0.0/24,nonsense", "failed to parse pod CIDR 'nonsense'")]
    public void PodCidrArgumentsAreParsedStrictly(string text, string why)
    {
        var error = Assert.Throws<ArgumentException>(() => AgentOptions.ParsePodCidrs(text));
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParsesADualStackPodCidrArgument()
    {
        var cidrs = AgentOptions.ParsePodCidrs("198.18.0.0/24,fd00:198:18::/64");
        Assert.Equal(["198.18.0.0/24", "fd00:198:18::/64"], cidrs.Select(c => c.ToString()));
    }

    [Fact]
    public void InvalidOptionsAreRefusedUpFront()
    {
        var error = Assert.Throws<ArgumentException>(() => new AgentHost(Options(TimeSpan.FromMinutes(1)) with { NodeName = "a/b" }, new RecordingDatapath()));
        Assert.Contains("invalid node name", error.Message, StringComparison.Ordinal);
        error = Assert.Throws<ArgumentException>(() => new AgentHost(Options(TimeSpan.FromMinutes(1)) with { PodCidrs = [] }, new RecordingDatapath()));
        Assert.Contains("no pod CIDR", error.Message, StringComparison.Ordinal);
        error = Assert.Throws<ArgumentException>(() => new AgentHost(Options(TimeSpan.FromMinutes(1)) with { PodCidrs = AgentOptions.ParsePodCidrs("198.18.0.0/31") }, new RecordingDatapath()));
        Assert.Contains("leaves no address for pods", error.Message, StringComparison.Ordinal);
        error = Assert.Throws<ArgumentException>(() => new AgentHost(Options(TimeSpan.FromMinutes(1)) with { PodCidrs = AgentOptions.ParsePodCidrs("198.18.0.0/16,198.18.1.0/24") }, new RecordingDatapath()));
        Assert.Contains("overlap", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUnusableSocketPathIsAClearError()
    {
        // The socket's folder is a file: nothing can be bound there.
        File.WriteAllText(_dir.File("not-a-dir"), "");
        await using var host = new AgentHost(Options(TimeSpan.FromMinutes(1)) with { SocketPath = _dir.File("not-a-dir/agent.sock") }, new RecordingDatapath());
        var error = await Assert.ThrowsAsync<AgentException>(() => host.StartAsync(default));
        Assert.StartsWith($"failed to listen on {_dir.File("not-a-dir/agent.sock")}: ", error.Message, StringComparison.Ordinal);
        // The failed start released the state dir: another agent can use it.
        await using var next = new AgentHost(Options(TimeSpan.FromMinutes(1)), new RecordingDatapath());
        await next.StartAsync(default);
    }
}
