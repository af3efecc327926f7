using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Membrane.Linux.Bpf;
using Membrane.Linux.Namespaces;
using Membrane.Linux.Netlink;

namespace Membrane.Cli;

/// <summary>
/// `membrane doctor`: checks that this machine has what the agent needs, each check trying
/// the real thing where that is harmless (loading the objects, creating a VXLAN device in a
/// throwaway namespace). Prints a table or JSON; exits 1 when a required check fails.
/// </summary>
internal static class DoctorCommand
{
    /// <summary>The oldest kernel the datapath runs on: bpf_redirect_peer (5.10), with the clsact fallback for tcx.</summary>
    private static readonly Version MinimumKernel = new(5, 10);

    // Relaxed escaping keeps details readable ("5.10+", not "5.10\u002B"); the output is never embedded in HTML.
    private static readonly DoctorJsonContext JsonContext = new(new JsonSerializerOptions
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
    });

    public static Command Create()
    {
        var output = new Option<string>("--output", "-o")
        {
            Description = "Output format: table or json",
            DefaultValueFactory = _ => "table",
        }.AcceptOnlyFromAmong("table", "json");
        var bpfDir = new Option<DirectoryInfo?>("--bpf-dir")
        {
            Description = "Where the datapath objects (*.o) are; default: bpf/ beside this executable",
        };
        var command = new Command("doctor", "Check that this machine has what the agent needs");
        command.Options.Add(output);
        command.Options.Add(bpfDir);
        command.SetAction(parseResult =>
        {
            var dir = parseResult.GetValue(bpfDir)?.FullName ?? Path.Combine(AppContext.BaseDirectory, "bpf");
            var checks = RunChecks(dir);
            var ok = checks.All(c => c.Passed || !c.Required);
            if (parseResult.GetValue(output) == "json")
            {
                var report = new DoctorReport(ok, checks.Select(c => new DoctorCheck(c.Name, c.Passed, c.Detail)).ToArray());
                Console.Out.WriteLine(JsonSerializer.Serialize(report, JsonContext.DoctorReport));
            }
            else
            {
                WriteTable(Console.Out, checks, ok);
            }
            return ok ? 0 : 1;
        });
        return command;
    }

    internal sealed record CheckResult(string Name, bool Required, bool Passed, string Detail);

    internal static IReadOnlyList<CheckResult> RunChecks(string bpfDir)
    {
        var results = new List<CheckResult>
        {
            Check("libbpf", required: true, () => BpfSystem.TryGetLibbpfVersion(out var v)
                ? (true, $"libbpf.so.1 {v}")
                : (false, "libbpf.so.1 not loadable (apt install libbpf1): " + v)),
            Check("kernel", required: true, () =>
            {
                var v = BpfFeatures.KernelVersion;
                return (v >= MinimumKernel, $"{BpfFeatures.KernelRelease} (needs {MinimumKernel}+; tcx needs 6.6+)");
            }),
            Check("bpf-syscall", required: true, () => Feature(BpfFeature.Syscall, "bpf() works for this process", "bpf() refused: run as root (CAP_BPF, CAP_NET_ADMIN)")),
            Check("btf", required: false, () => Feature(BpfFeature.KernelBtf, BpfFeatures.KernelBtfPath, "no kernel BTF (CONFIG_DEBUG_INFO_BTF); not needed by the current datapath")),
            Check("bpffs", required: true, () => Feature(BpfFeature.BpfFsMounted, $"mounted at {BpfFs.DefaultRoot}", $"not mounted at {BpfFs.DefaultRoot}: mount -t bpf bpf {BpfFs.DefaultRoot}")),
            Check("tcx", required: false, () => Feature(BpfFeature.Tcx, "tcx links available", "no tcx links (Linux 6.6+): the legacy tc clsact path will be used")),
            Check("ring-buffer", required: true, () => Feature(BpfFeature.RingBuffer, "BPF_MAP_TYPE_RINGBUF available", "no BPF ring buffers (Linux 5.8+)")),
            Check("lpm-trie", required: true, () => Feature(BpfFeature.LpmTrie, "BPF_MAP_TYPE_LPM_TRIE available", "no LPM tries (Linux 4.11+)")),
            Check("bpf_redirect_peer", required: true, () => Feature(BpfFeature.RedirectPeer, "helper available to tc programs", "helper missing (Linux 5.10+)")),
            Check("vxlan", required: true, ProbeVxlan),
            Check("bpf-objects", required: true, () => LoadObjects(bpfDir)),
        };
        return results;
    }

    private static CheckResult Check(string name, bool required, Func<(bool Ok, string Detail)> probe)
    {
        try
        {
            var (ok, detail) = probe();
            return new CheckResult(name, required, ok, detail);
        }
        catch (Exception e)
        {
            // Any failure of a probe is that check failing; the doctor reports, it never crashes.
            return new CheckResult(name, required, false, e.Message);
        }
    }

    private static (bool, string) Feature(BpfFeature feature, string yes, string no) =>
        BpfFeatures.Has(feature) ? (true, yes) : (false, no);

    /// <summary>Loads every datapath object into the kernel (and unloads it): presence and verifier acceptance.</summary>
    private static (bool, string) LoadObjects(string dir)
    {
        var objects = Directory.Exists(dir) ? Directory.GetFiles(dir, "*.o").Order(StringComparer.Ordinal).ToArray() : [];
        if (objects.Length == 0)
        {
            return (false, $"no BPF objects in {dir} (make build compiles bpf/*.c)");
        }
        var failures = new List<string>();
        foreach (var path in objects)
        {
            try
            {
                using var obj = BpfObject.Load(path);
            }
            catch (BpfException e)
            {
                // First line only: the verifier log is long; `membrane doctor` is a summary.
                failures.Add($"{Path.GetFileName(path)}: {e.Message.Split('\n')[0]}");
            }
        }
        return failures.Count == 0
            ? (true, $"{objects.Length} loaded from {dir}: {string.Join(", ", objects.Select(Path.GetFileName))}")
            : (false, string.Join("; ", failures));
    }

    /// <summary>
    /// The overlay is VXLAN (KERNEL-NOTES: Geneve is not built here). As root, create an
    /// external-mode VXLAN device in a throwaway namespace — the only proof that the kernel
    /// can; otherwise look for the driver in sysfs or the module lists.
    /// </summary>
    private static (bool, string) ProbeVxlan()
    {
        if (Environment.IsPrivilegedProcess)
        {
            var name = $"mbdoctor{Environment.ProcessId}";
            try
            {
                using var ns = NetNs.Create(name);
                using var rtnl = Rtnetlink.Open(ns);
                rtnl.CreateVxlanExternal("vxprobe");
                return (true, "created an external-mode VXLAN device in a throwaway namespace");
            }
            finally
            {
                if (NetNs.Exists(name))
                {
                    NetNs.Delete(name);
                }
            }
        }
        if (Directory.Exists("/sys/module/vxlan"))
        {
            return (true, "driver loaded (/sys/module/vxlan); run as root to try creating one");
        }
        var modules = $"/lib/modules/{BpfFeatures.KernelRelease}";
        foreach (var list in new[] { "modules.builtin", "modules.dep" })
        {
            var path = Path.Combine(modules, list);
            if (File.Exists(path) && File.ReadLines(path).Any(l => l.Contains("/vxlan.ko", StringComparison.Ordinal)))
            {
                return (true, $"driver listed in {path}; run as root to try creating one");
            }
        }
        return (false, "no VXLAN driver found (CONFIG_VXLAN); run as root to probe for certain");
    }

    private static void WriteTable(TextWriter w, IReadOnlyList<CheckResult> checks, bool ok)
    {
        var width = checks.Max(c => c.Name.Length) + 2;
        w.WriteLine($"{"CHECK".PadRight(width)}{"RESULT",-8}DETAIL");
        foreach (var c in checks)
        {
            var result = c.Passed ? "ok" : c.Required ? "FAIL" : "warn";
            w.WriteLine($"{c.Name.PadRight(width)}{result,-8}{c.Detail}");
        }
        w.WriteLine();
        w.WriteLine(ok ? "ready: every required check passed" : "not ready: a required check failed");
    }
}

/// <summary>The JSON shape of `membrane doctor --output json`.</summary>
internal sealed record DoctorReport(bool Ok, IReadOnlyList<DoctorCheck> Checks);

/// <summary>One check: its name, whether it passed, and what was found.</summary>
internal sealed record DoctorCheck(string Name, bool Ok, string Detail);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(DoctorReport))]
internal sealed partial class DoctorJsonContext : JsonSerializerContext;
