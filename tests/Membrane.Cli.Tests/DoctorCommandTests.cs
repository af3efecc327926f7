using System.Text.Json;
using Membrane.Testing;

namespace Membrane.Cli.Tests;

/// <summary><c>membrane doctor</c> run as a user runs it: the real CLI, on this kernel.</summary>
public sealed class DoctorCommandTests
{
    private static (int Code, string Stdout, string Stderr) Doctor(params string[] args) =>
        Tools.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "membrane.dll"), "doctor", .. args]);

    [SkippableFact]
    public void EveryRequiredCheckPassesOnThisMachineAndJsonHasTheDocumentedShape()
    {
        Requires.Root(); // the BPF probes need CAP_BPF
        var (code, stdout, stderr) = Doctor("--output", "json", "--bpf-dir", Path.Combine(AppContext.BaseDirectory, "bpf"));
        using var report = JsonDocument.Parse(stdout);
        var checks = report.RootElement.GetProperty("checks").EnumerateArray().ToList();
        var failed = checks.Where(c => !c.GetProperty("ok").GetBoolean()).Select(c => c.GetRawText());
        Assert.True(code == 0 && report.RootElement.GetProperty("ok").GetBoolean(), $"{string.Join("\n", failed)}\n{stderr}");
        var names = checks.Select(c => c.GetProperty("name").GetString()).ToList();
        foreach (var expected in new[] { "libbpf", "kernel", "bpf-syscall", "btf", "bpffs", "tcx", "ring-buffer", "lpm-trie", "bpf_redirect_peer", "vxlan", "bpf-objects" })
        {
            Assert.Contains(expected, names);
        }
        Assert.All(checks, c => Assert.False(string.IsNullOrEmpty(c.GetProperty("detail").GetString())));
    }

    [SkippableFact]
    public void MissingDatapathObjectsFailWithANonZeroExitCode()
    {
        Requires.Root();
        var empty = Directory.CreateTempSubdirectory("membrane-doctor-");
        try
        {
            var (code, stdout, _) = Doctor("--bpf-dir", empty.FullName);
            Assert.Equal(1, code);
            Assert.Contains(empty.FullName, stdout, StringComparison.Ordinal);
        }
        finally
        {
            empty.Delete(recursive: true);
        }
    }
}
