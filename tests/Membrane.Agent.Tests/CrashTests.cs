using System.Diagnostics;
using Membrane.Agent.Endpoints;
using Membrane.Agent.Identities;
using Membrane.Agent.Ipam;
using Membrane.Agent.Store;
using Membrane.Testing;

namespace Membrane.Agent.Tests;

/// <summary>
/// kill -9 of a process in the middle of ADDs and DELs loses nothing it acknowledged, and the
/// next start finishes whatever was in flight.
/// </summary>
public sealed class CrashTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [SkippableFact]
    public async Task SigkillLosesNothingAcknowledged()
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : Requires.Tool("dotnet");
        var state = _dir.File("state");
        var acked = new Dictionary<string, string>();
        var deleting = new HashSet<string>();
        var deleted = new HashSet<string>();
        for (var round = 0; round < 3; round++)
        {
            var psi = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            // The child dies by SIGKILL: without diagnostics it leaves no IPC pipes and socket in /tmp behind.
            psi.Environment["DOTNET_EnableDiagnostics"] = "0";
            foreach (var arg in (string[])["exec", typeof(CrashChild).Assembly.Location, "crash-writer", state])
            {
                psi.ArgumentList.Add(arg);
            }
            using var child = Process.Start(psi)!;
            var stderr = child.StandardError.ReadToEndAsync();
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                var lines = 0;
                // Kill at a different moment each round: after 40, 57, 74 answers.
                while (lines < 40 + 17 * round && await child.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
                {
                    Record(line, acked, deleting, deleted);
                    lines++;
                }
                Assert.True(lines > 0, "the child printed nothing");
            }
            catch (OperationCanceledException)
            {
                child.Kill();
                Assert.Fail($"the child stopped answering; its stderr: {await stderr}");
            }
            finally
            {
                child.Kill(); // SIGKILL on Linux
                await child.WaitForExitAsync();
            }
            // Whatever it had printed before it died was acknowledged as well.
            while (await child.StandardOutput.ReadLineAsync() is { } rest)
            {
                Record(rest, acked, deleting, deleted);
            }

            using var store = AgentStore.Open(state);
            var ipam = new IpamAllocator(store, [IpamAllocator.ParseCidr("198.18.0.0/16")]);
            var identities = new IdentityAllocator(store, TimeSpan.FromMinutes(5));
            var datapath = new RecordingDatapath();
            var manager = new EndpointManager(store, ipam, identities, datapath);
            await manager.RestoreAsync(default);
            var endpoints = manager.List().ToDictionary(e => e.ContainerId);
            foreach (var (cid, address) in acked)
            {
                if (deleted.Contains(cid))
                {
                    Assert.False(endpoints.ContainsKey(cid), $"{cid} was deleted (acknowledged) but is back");
                    continue;
                }
                if (deleting.Contains(cid))
                {
                    continue; // killed during its DEL: gone or still there are both right
                }
                Assert.True(endpoints.TryGetValue(cid, out var endpoint), $"acknowledged endpoint {cid} is lost");
                Assert.Equal(address.Split('/')[0], endpoint.Ipv4);
            }
            // Nothing half-done survives the restore, and the allocations are exactly the endpoints'.
            Assert.All(endpoints.Values, e => Assert.NotEqual(EndpointStates.Creating, e.State));
            var allocations = store.Read(tx => tx.ListAllocations());
            Assert.Equal(endpoints.Values.Select(e => e.Ipv4).Order(), allocations.Select(a => a.Address).Order());
            Assert.Equal(endpoints.Count, ipam.Pools[0].InUse);
            var references = identities.List().Where(i => i.ReservedName is null).Sum(i => i.References);
            Assert.Equal(endpoints.Count, references);
        }
    }

    private static void Record(string line, Dictionary<string, string> acked, HashSet<string> deleting, HashSet<string> deleted)
    {
        var parts = line.Split(' ');
        switch (parts[0])
        {
            case "acked":
                acked[parts[1]] = parts[2];
                break;
            case "deleting":
                deleting.Add(parts[1]);
                break;
            case "deleted":
                deleted.Add(parts[1]);
                break;
        }
    }
}
