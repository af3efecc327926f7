using Membrane.Linux.Bpf;
using Membrane.Testing;

namespace Membrane.Datapath.Tests;

/// <summary>Loading, pinning, adopting and removing the node's datapath on bpffs.</summary>
[Collection("kernel")]
public sealed class DatapathLifecycleTests : IDisposable
{
    private readonly DatapathTestScope _scope = new();

    public void Dispose() => _scope.Dispose();

    private string NodeDir => Path.Combine(_scope.PinRoot, _scope.Options.NodeName);

    [SkippableFact]
    public void TheFirstOpenLoadsAndPinsTheSecondAdoptsTheSameObjects()
    {
        uint programId, mapId, ctId;
        using (var first = Datapath.Open(_scope.Options))
        {
            Assert.False(first.Adopted);
            Assert.Equal(Datapath.ProgramName, first.Program.Name);
            Assert.Equal(
                ["ct4", "ct6", "ct_config", "endpoint_prefix", "endpoint_slots", "endpoints", "endpoints_by_ip", "event_state", "events", "from_pod", "ipcache", "metrics", "monitor_config", "policy_allow", "policy_config", "policy_deny", "policy_exact", "to_pod"],
                Directory.GetFiles(NodeDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            programId = first.Program.Id;
            mapId = first.Endpoints.Map.Id;
            ctId = first.Conntrack4.Map.Id;
            first.UpsertEndpoint(new EndpointEntry(5, System.Net.IPAddress.Parse("198.18.0.5"), null,
                System.Net.NetworkInformation.PhysicalAddress.Parse("02-00-00-00-00-05"),
                System.Net.NetworkInformation.PhysicalAddress.Parse("02-00-00-00-01-05"), 256));
        }
        using var second = Datapath.Open(_scope.Options);
        Assert.True(second.Adopted);
        Assert.False(second.IsStale);
        Assert.Equal(programId, second.Program.Id);
        Assert.Equal(mapId, second.Endpoints.Map.Id);
        Assert.Equal(ctId, second.Conntrack4.Map.Id);
        Assert.Single(second.ListEndpoints());
        Assert.True(second.TryGetEndpointByAddress(System.Net.IPAddress.Parse("198.18.0.5"), out var entry));
        Assert.Equal(5, entry.Ifindex);
    }

    [SkippableFact]
    public void AdoptingTheProgramOfAnotherBuildFlagsItStale()
    {
        // Another build of the same source: -Os instead of -O2 gives other instructions.
        var clang = Requires.Tool("clang");
        var other = Path.Combine(Path.GetTempPath(), RunPrefix.Next("from_pod") + ".o");
        try
        {
            var (exit, _, stderr) = Tools.Run(clang, ["-Os", "-g", "-target", "bpf", "-mcpu=v3", "-I/usr/include/x86_64-linux-gnu",
                "-c", Path.Combine(Tools.RepoRoot, "bpf", "from_pod.c"), "-o", other]);
            Assert.True(exit == 0, stderr);
            using (var old = Datapath.Open(_scope.Options with { ObjectPath = other }))
            {
                Assert.False(old.Adopted);
            }
            using var current = Datapath.Open(_scope.Options);
            Assert.True(current.Adopted);
            Assert.True(current.IsStale);
        }
        finally
        {
            File.Delete(other);
        }
    }

    [SkippableFact]
    public void MapPinsWithoutTheProgramPinAreLeftoversAndAreReplaced()
    {
        uint staleMap;
        using (var first = Datapath.Open(_scope.Options))
        {
            staleMap = first.Endpoints.Map.Id;
        }
        File.Delete(Path.Combine(NodeDir, Datapath.ProgramName)); // a start that died before its last pin
        using var second = Datapath.Open(_scope.Options);
        Assert.False(second.Adopted);
        Assert.NotEqual(staleMap, second.Endpoints.Map.Id);
    }

    [SkippableFact]
    public void AProgramPinWithoutItsMapsIsAnError()
    {
        using (Datapath.Open(_scope.Options))
        {
        }
        File.Delete(Path.Combine(NodeDir, "endpoints"));
        var e = Assert.Throws<BpfException>(() => Datapath.Open(_scope.Options));
        Assert.Contains("map endpoints", e.InnerException!.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void APinRootOffBpffsIsRefused()
    {
        var dir = Path.Combine(Path.GetTempPath(), RunPrefix.Next("notbpffs"));
        Directory.CreateDirectory(dir);
        try
        {
            var e = Assert.Throws<BpfException>(() => Datapath.Open(_scope.Options with { PinRoot = dir }));
            Assert.StartsWith("failed to open datapath pins", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [SkippableFact]
    public void RemovePinsLeavesNothingAndToleratesAMissingDirectory()
    {
        using (Datapath.Open(_scope.Options))
        {
        }
        Datapath.RemovePins(_scope.Options);
        Assert.False(Directory.Exists(NodeDir));
        Datapath.RemovePins(_scope.Options);
    }
}
