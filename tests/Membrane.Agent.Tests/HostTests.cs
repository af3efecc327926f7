using Membrane.Agent.Identities;
using Membrane.Api;
using Microsoft.Extensions.Time.Testing;

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
        Assert.NotNull(identities.Lookup(ReservedIdentity.FirstAllocated));

        time.Advance(grace - TimeSpan.FromMinutes(2)); // several collector ticks, all too early
        await Task.Delay(200);
        Assert.NotNull(identities.Lookup(ReservedIdentity.FirstAllocated));

        time.Advance(TimeSpan.FromMinutes(3)); // past the grace period; the next tick frees it
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (identities.Lookup(ReservedIdentity.FirstAllocated) is not null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
        Assert.Null(identities.Lookup(ReservedIdentity.FirstAllocated));
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
