using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Membrane.Api;
using Membrane.Testing;

namespace Membrane.Cli.Tests;

/// <summary>
/// <c>membrane observe</c> against a real node (the built agent in its own network namespace,
/// pods made by the CNI plugin, the backend policy imported): a denied connection prints as a
/// dropped policy verdict with both pods, `-o json` carries it in Hubble's names, `--write`
/// captures the kernel's bytes of it in a pcapng tshark reads with the comment, and a follow
/// stream prints a connection made after it started. Skips without root and bin/ (make build).
/// </summary>
public sealed class ObserveLiveTests
{
    private static readonly TimeSpan Denied = TimeSpan.FromMilliseconds(1200);

    private static (int Code, string Stdout, string Stderr) Membrane(TestNode node, params string[] args) =>
        Tools.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "membrane.dll"), "--socket", node.SocketPath, .. args],
            timeout: TimeSpan.FromSeconds(60), env: new Dictionary<string, string> { ["TZ"] = "UTC" });

    /// <summary>Runs observe until its output has a line matching <paramref name="wanted"/> (records reach the agent within its poll).</summary>
    private static (string Stdout, string Stderr) Until(TestNode node, Regex wanted, params string[] args)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (true)
        {
            var (code, stdout, stderr) = Membrane(node, ["observe", .. args]);
            Assert.True(code == 0, stderr);
            if (wanted.IsMatch(stdout) || DateTime.UtcNow > deadline)
            {
                return (stdout, stderr);
            }
            Thread.Sleep(100);
        }
    }

    [SkippableFact]
    public async Task ADeniedConnectionPrintsAsADroppedVerdictAndIsCapturedWithItsComment()
    {
        TestNode.RequirePrerequisites();
        var tshark = Requires.Tool("tshark");
        using var node = new TestNode();
        var backend = node.AddPod("backend", ("app", "backend"));
        var db = node.AddPod("db", ("app", "db"));
        await node.Client.PolicyImportAsync([new PolicyFile { Name = "backend.yaml", Text = PolicyFixtures.Backend }]);
        var endpoints = await node.Client.EndpointsAsync();
        var dbIdentity = endpoints.Single(e => e.ContainerId == db.ContainerId).Identity;
        var backendIdentity = endpoints.Single(e => e.ContainerId == backend.ContainerId).Identity;
        Assert.False(await NsTraffic.TcpConnects(db.Namespace, backend.Namespace, IPAddress.Parse(backend.Ipv4), 8080, Denied));

        // compact: the policy verdict of the denied SYN, as hubble prints one.
        var line = new Regex($@"(?m)^\w{{3}} [ \d]\d \d\d:\d\d:\d\d\.\d{{3}}: default/db:\d+ \(ID:{dbIdentity}\) -> default/backend:8080 \(ID:{backendIdentity}\) policy-verdict:\S+ INGRESS DROPPED \(POLICY_DENIED\) \(TCP Flags: SYN\)$");
        var (compact, _) = Until(node, line, "--from-pod", "default/db", "--type", "policy-verdict");
        Assert.Matches(line, compact);

        // json and --write together: the same flows, the kernel's bytes in the file.
        var file = Path.Combine(node.StateDir, "denied.pcapng");
        var (json, stderr) = Until(node, new Regex("POLICY_DENIED"), "--from-pod", "default/db", "--to-port", "8080", "--verdict", "DROPPED",
            "-o", "json", "--write", file);
        var flows = json.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonSerializer.Deserialize(l, ApiJsonContext.Default.FlowLine)!.Flow).OfType<Flow>().ToList();
        Assert.NotEmpty(flows);
        Assert.All(flows, f =>
        {
            Assert.Equal(FlowNames.Dropped, f.Verdict);
            Assert.Equal("POLICY_DENIED", f.DropReasonDesc);
            Assert.Equal((db.Ipv4, backend.Ipv4), (f.IP!.Source, f.IP.Destination));
            Assert.Equal(("db", "default", dbIdentity), (f.Source!.PodName, f.Source.Namespace, f.Source.Identity));
            Assert.Equal(("backend", backendIdentity), (f.Destination!.PodName, f.Destination.Identity));
            Assert.Contains("k8s:app=db", f.Source.Labels);
            Assert.Null(f.PacketData); // in the file, not on stdout
        });
        Assert.Contains($"wrote {flows.Count} packet(s) to {file}", stderr, StringComparison.Ordinal);

        var (code, fields, error) = Tools.Run(tshark,
            ["-r", file, "-T", "fields", "-E", "separator=|", "-e", "frame.comment", "-e", "ip.src", "-e", "ip.dst", "-e", "tcp.dstport", "-e", "tcp.flags.syn"]);
        Assert.True(code == 0, error);
        var rows = fields.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(r => r.Split('|')).ToArray();
        Assert.Equal(flows.Count, rows.Length);
        Assert.All(rows, r =>
        {
            Assert.Matches($"^verdict=DROPPED drop_reason=POLICY_DENIED type=(policy-verdict:\\S+ direction=INGRESS|drop( direction=\\w+)?) src=default/db src_identity={dbIdentity} dst=default/backend dst_identity={backendIdentity} node={node.Name}$", r[0]);
            Assert.Equal([db.Ipv4, backend.Ipv4, "8080"], r[1..4]);
            Assert.True(r[4] is "1" or "True", $"not a SYN: {string.Join('|', r)}");
        });
    }

    [SkippableFact]
    public async Task FollowPrintsAConnectionMadeAfterItStarted()
    {
        TestNode.RequirePrerequisites();
        using var node = new TestNode();
        var frontend = node.AddPod("frontend", ("app", "frontend"));
        var backend = node.AddPod("backend", ("app", "backend"));
        await node.Client.PolicyImportAsync([new PolicyFile { Name = "backend.yaml", Text = PolicyFixtures.Backend }]);

        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // `observe -f` ends by SIGKILL: without diagnostics it leaves no IPC pipes and socket in /tmp behind.
        psi.Environment["DOTNET_EnableDiagnostics"] = "0";
        foreach (var a in (string[])[Path.Combine(AppContext.BaseDirectory, "membrane.dll"), "--socket", node.SocketPath,
                     "observe", "-f", "--from-pod", "default/frontend", "--type", "trace:to-endpoint", "--tcp-flags", "SYN", "--not", "--tcp-flags", "ACK"])
        {
            psi.ArgumentList.Add(a);
        }
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            var first = process.StandardOutput.ReadLineAsync();
            await Task.Delay(1500); // the CLI is up and following; nothing matches yet
            Assert.False(first.IsCompleted, $"a flow printed before the connection: {(first.IsCompleted ? first.Result : "")}");
            Assert.True(await NsTraffic.TcpConnects(frontend.Namespace, backend.Namespace, IPAddress.Parse(backend.Ipv4), 8080, TimeSpan.FromSeconds(5)));
            var printed = await first.WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Matches($@": default/frontend:\d+ \(ID:\d+\) -> default/backend:8080 \(ID:\d+\) to-endpoint FORWARDED \(TCP Flags: SYN\)$", printed);
            await ObserveCommandTests.InterruptAsync(process);
            Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}: {await stderr}");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
    }
}
