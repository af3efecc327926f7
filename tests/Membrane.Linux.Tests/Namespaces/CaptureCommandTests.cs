using System.Diagnostics;
using System.Text.Json;
using Membrane.Capture;
using Membrane.Packets;
using Membrane.Linux.Tests.Netlink;
using Membrane.Testing;
using Xunit.Abstractions;

namespace Membrane.Linux.Tests.Namespaces;

/// <summary>
/// <c>membrane capture</c> end to end: the built CLI captures inside a namespace while real
/// traffic (ping, ping6, TCP, UDP, ARP, ND) crosses a veth made with our rtnetlink.
/// </summary>
[Collection("kernel")]
public sealed class CaptureCommandTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void WritesAPcapngThatTsharkAndOurDecoderReadWithoutErrors()
    {
        Requires.Root();
        var cli = CliPath();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture("a");
        using var b = new NetNsFixture("b");
        var (_, nameInB) = TrafficTests.Connect(a, b, completeChecksums: true);
        var file = Path.Combine(Path.GetTempPath(), $"{RunPrefix.Next("cap")}.pcapng");
        try
        {
            var (code, _, stderr) = CaptureWhileTrafficFlows(cli, a, b, ["capture", "--netns", b.Name, "--interface", nameInB, "--count", "40", "--write", file]);
            Assert.True(code == 0, stderr);
            Assert.Contains("captured 40 packet(s)", stderr);

            using var reader = CaptureReader.Open(file);
            var layers = new Layer[16];
            var kinds = new HashSet<LayerKind>();
            var n = 0;
            while (reader.ReadNext(out var packet) == CaptureReadStatus.Packet)
            {
                n++;
                Assert.Equal(Membrane.Capture.LinkType.Ethernet, packet.LinkType);
                Assert.True(PacketDissector.TryDissect(packet.Span, Membrane.Packets.LinkType.Ethernet, layers, out var count, out var error),
                    $"packet {n}: {error.Message}");
                for (var i = 0; i < count; i++)
                {
                    kinds.Add(layers[i].Kind);
                }
            }
            Assert.Equal(40, n);
            Assert.Contains(LayerKind.Icmpv4, kinds);

            var tshark = Requires.Tool("tshark");
            var frames = Tools.Run(tshark, ["-r", file, "-T", "fields", "-e", "frame.interface_name"]);
            Assert.Equal(Enumerable.Repeat(nameInB, 40), frames.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Equal("", Tools.Run(tshark, ["-r", file, "-Y", "_ws.malformed"]).Stdout.Trim());
            // Each frame says which way it went (epb_flags): b both received and sent frames.
            var directions = Tools.Run(tshark, ["-r", file, "-T", "fields", "-e", "frame.packet_flags_direction"]).Stdout
                .Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
            Assert.Equal(["0x00000001", "0x00000002"], directions.Order());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [SkippableFact]
    public void PrintsPcapDecodeJsonPerPacket()
    {
        Requires.Root();
        var cli = CliPath();
        using var leaks = new LeakCheck();
        using var a = new NetNsFixture("a");
        using var b = new NetNsFixture("b");
        var (_, nameInB) = TrafficTests.Connect(a, b, completeChecksums: true);
        var (code, stdout, stderr) = CaptureWhileTrafficFlows(cli, a, b, ["capture", "--netns", b.Name, "--interface", nameInB, "--count", "25", "--output", "json"]);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(25, lines.Length);
        var protocols = new HashSet<string>();
        for (var i = 0; i < lines.Length; i++)
        {
            using var json = JsonDocument.Parse(lines[i]);
            Assert.Equal(i + 1, json.RootElement.GetProperty("number").GetInt32());
            Assert.True(json.RootElement.GetProperty("errors").GetArrayLength() == 0, lines[i]);
            foreach (var layer in json.RootElement.GetProperty("layers").EnumerateArray())
            {
                protocols.Add(layer.GetProperty("protocol").GetString()!);
            }
        }
        Assert.Contains("eth", protocols);
    }

    [SkippableFact]
    public void FailsClearlyForAnInterfaceOutsideTheNamespace()
    {
        Requires.Root();
        var cli = CliPath();
        using var a = new NetNsFixture();
        // eth0 exists in the root namespace only: resolving it inside must fail, not capture the host's.
        var (code, _, stderr) = Tools.Run(cli, ["capture", "--netns", a.Name, "--interface", "eth0", "--count", "1"], timeout: TimeSpan.FromSeconds(30));
        Assert.Equal(1, code);
        Assert.Contains($"failed to capture on eth0 in network namespace {a.Name}", stderr);
        Assert.Contains("No such device", stderr);
    }

    /// <summary>Starts the CLI, sends traffic a→b until it exits (it stops at --count), returns its result.</summary>
    private (int Code, string Stdout, string Stderr) CaptureWhileTrafficFlows(string cli, NetNsFixture a, NetNsFixture b, string[] args)
    {
        var psi = new ProcessStartInfo(cli) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        try
        {
            // The CLI needs a moment to start and bind; traffic before that is simply not seen.
            while (!process.HasExited && DateTime.UtcNow < deadline)
            {
                PacketSocketTests.GenerateTraffic(a, b);
                process.WaitForExit(100);
            }
            Assert.True(process.WaitForExit(5000), "membrane capture did not stop at --count");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }
        output.WriteLine(stderr.Result);
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The CLI as the build leaves it: src/Membrane.Cli/bin/&lt;configuration&gt;/net10.0/membrane.</summary>
    private static string CliPath()
    {
        var tfmDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var path = Path.Combine(Tools.RepoRoot, "src", "Membrane.Cli", "bin", tfmDir.Parent!.Name, tfmDir.Name, "membrane");
        Requires.That(File.Exists(path), $"the CLI is not built at {path} (make build)");
        return path;
    }
}
