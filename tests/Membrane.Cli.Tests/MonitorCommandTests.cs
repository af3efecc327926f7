using System.Text.Json;
using System.Text.Json.Nodes;
using Membrane.Api;
using Membrane.Cli.Client;
using Membrane.Testing;

namespace Membrane.Cli.Tests;

/// <summary>
/// <c>membrane monitor</c> run as a user runs it against a fake agent: the raw records as text
/// and as JSON, --count stopping a stream the agent keeps open.
/// </summary>
public sealed class MonitorCommandTests : IAsyncLifetime
{
    private readonly ObserveFakeAgent _agent = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _agent.DisposeAsync();

    private (int Code, string Stdout, string Stderr) Membrane(params string[] args) =>
        Tools.Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "membrane.dll"), "--socket", _agent.SocketPath, .. args],
            timeout: TimeSpan.FromSeconds(60));

    private static readonly MonitorRecord[] Records =
    [
        new() { Time = DateTimeOffset.UnixEpoch.AddDays(20_000), Type = 1, TypeName = "drop", SubType = 133, Length = 16, Id = 0x01000005, Body = "0008000001020304" },
        new() { Time = DateTimeOffset.UnixEpoch.AddDays(20_000), Type = 4, TypeName = "trace", SubType = 0, Length = 12, Id = 0x00000006, Body = "ABCDEF01" },
        new() { Time = DateTimeOffset.UnixEpoch.AddDays(20_000), Type = 9, TypeName = "", SubType = 2, Length = 8, Id = 7, Body = "" },
    ];

    private static string Line(MonitorRecord record) => JsonSerializer.Serialize(record, ApiJsonContext.Default.MonitorRecord);

    [Fact]
    public void TextIsOneLineARecordWithTheBodyInHex()
    {
        _agent.Respond = (_, r, ct) => r.NdjsonAsync(Records.Select(Line), ct);
        var (code, stdout, stderr) = Membrane("monitor");
        Assert.True(code == 0, stderr);
        Assert.Equal(
        [
            "drop sub_type=133 len=16 id=0x01000005 00 08 00 00 01 02 03 04",
            "trace sub_type=0 len=12 id=0x00000006 ab cd ef 01",
            "type-9 sub_type=2 len=8 id=0x00000007",
        ], stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(("GET", "/v1/monitor"), (Assert.Single(_agent.Requests).Method, Assert.Single(_agent.Requests).Path));
    }

    [Fact]
    public void CountStopsAStreamThatStaysOpen()
    {
        _agent.Respond = async (_, r, ct) =>
        {
            await r.NdjsonAsync(Records.Select(Line), ct);
            await Task.Delay(Timeout.Infinite, ct);
        };
        var (code, stdout, stderr) = Membrane("monitor", "--count", "2", "-o", "json");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        var help = Membrane("monitor", "--help").Stdout;
        Assert.All(lines.SelectMany(JsonMembers.Names), n => Assert.Contains(n, help, StringComparison.Ordinal));
        for (var i = 0; i < lines.Length; i++)
        {
            Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Line(Records[i])), JsonNode.Parse(lines[i])), lines[i]);
        }
    }

    [Fact]
    public async Task CtrlCEndsTheStreamWithExitCode0()
    {
        _agent.Respond = async (_, r, ct) =>
        {
            await r.NdjsonAsync([Line(Records[0])], ct);
            await Task.Delay(Timeout.Infinite, ct);
        };
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "membrane.dll"), "--socket", _agent.SocketPath, "monitor" })
        {
            psi.ArgumentList.Add(a);
        }
        using var process = System.Diagnostics.Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            var first = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal("drop sub_type=133 len=16 id=0x01000005 00 08 00 00 01 02 03 04", first);
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

    [Theory]
    [InlineData("--count 0", "error: failed to read --count 0: it must be at least 1")]
    [InlineData("-o yaml", "'yaml'")]
    public void ABadFlagFailsBeforeTheAgentIsAsked(string args, string message)
    {
        var (code, _, stderr) = Membrane(["monitor", .. args.Split(' ')]);
        Assert.Equal(1, code);
        Assert.Contains(message, stderr, StringComparison.Ordinal);
        Assert.Empty(_agent.Requests);
    }

    [Theory]
    [InlineData("00 08 00 00", "00 08 00 00")]
    [InlineData("0a0B0c", "0a 0b 0c")]
    [InlineData("abc", "ab c")]
    public void FormatPairsHexDigitsWhateverTheSeparators(string body, string expected)
    {
        var record = new MonitorRecord { Type = 5, TypeName = "policy-verdict", SubType = 1, Length = 11, Id = 0xff, Body = body };
        Assert.Equal($"policy-verdict sub_type=1 len=11 id=0x000000ff {expected}", MonitorCommand.Format(record));
    }
}
