using Membrane.Agent.Endpoints;
using Membrane.Agent.Identities;
using Membrane.Agent.Ipam;
using Membrane.Agent.Store;
using Membrane.Api;

namespace Membrane.Agent.Tests;

/// <summary>
/// The entry point of this assembly when it runs as a child process (the test runner loads it
/// as a library and never calls this). <c>crash-writer STATEDIR</c> adds endpoints through the
/// real EndpointManager as fast as it can and prints "acked CID ADDRESS" after each ADD
/// returned: everything printed was acknowledged. Every third ADD is followed by a DEL of an
/// earlier endpoint, announced by "deleting CID" and acknowledged by "deleted CID". The crash
/// test kills it with SIGKILL. <c>agent STATEDIR SOCKET</c> runs an AgentHost (with the
/// recording datapath) the way <c>membrane agent</c> does, until SIGINT or SIGTERM.
/// </summary>
public static class CrashChild
{
    public static async Task<int> Main(string[] args)
    {
        if (args is ["agent", var agentState, var socket])
        {
            return await RunAgentAsync(agentState, socket);
        }
        if (args is not ["crash-writer", var stateDir])
        {
            await Console.Error.WriteLineAsync("usage: crash-writer STATEDIR | agent STATEDIR SOCKET");
            return 2;
        }
        using var store = AgentStore.Open(stateDir);
        var ipam = new IpamAllocator(store, [IpamAllocator.ParseCidr("198.18.0.0/16")]);
        var identities = new IdentityAllocator(store, TimeSpan.FromMinutes(5));
        var manager = new EndpointManager(store, ipam, identities, new RecordingDatapath());
        await manager.RestoreAsync(default);
        using var stdout = new StreamWriter(Console.OpenStandardOutput()) { AutoFlush = true };
        for (var i = 0; ; i++)
        {
            var cid = $"{Environment.ProcessId}-{i}";
            var added = await manager.AddAsync(new CniAddRequest
            {
                ContainerId = cid,
                IfName = "eth0",
                NetNs = "/var/run/netns/" + cid,
                Labels = [new Label("app", $"a{i % 7}")],
            }, default);
            await stdout.WriteLineAsync($"acked {cid} {added.Ips[0].Address}");
            if (i % 3 == 2)
            {
                // Some DELs too, so that a kill can also land in the middle of one.
                await stdout.WriteLineAsync($"deleting {Environment.ProcessId}-{i - 1}");
                await manager.DeleteAsync(new CniDelRequest { ContainerId = $"{Environment.ProcessId}-{i - 1}", IfName = "eth0" }, default);
                await stdout.WriteLineAsync($"deleted {Environment.ProcessId}-{i - 1}");
            }
        }
    }

    private static async Task<int> RunAgentAsync(string stateDir, string socket)
    {
        var options = new AgentOptions
        {
            StateDir = stateDir,
            SocketPath = socket,
            PodCidrs = AgentOptions.ParsePodCidrs("198.18.0.0/24"),
            NodeName = "child",
        };
        await using var host = new AgentHost(options, new RecordingDatapath());
        await host.RunAsync(CancellationToken.None);
        await Console.Out.WriteLineAsync("stopped");
        return 0;
    }
}
