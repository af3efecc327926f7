using Membrane.Agent.Conntrack;
using Membrane.Datapath;

namespace Membrane.Agent.Tests;

/// <summary>The --ct-* flags: durations, table size, and errors that name the flag.</summary>
public sealed class ConntrackSettingsTests
{
    [Theory]
    [InlineData("60s", 60)]
    [InlineData("10m", 600)]
    [InlineData("6h", 21600)]
    [InlineData("1h30m", 5400)]
    [InlineData("1d", 86400)]
    [InlineData("2m5s", 125)]
    [InlineData(" 45s ", 45)]
    public void DurationsInGoSyntaxParse(string text, int seconds) =>
        Assert.Equal(TimeSpan.FromSeconds(seconds), ConntrackSettings.ParseDuration("--ct-timeout-other", text));

    [Theory]
    [InlineData("")]
    [InlineData("60")]
    [InlineData("s")]
    [InlineData("5x")]
    [InlineData("-5s")]
    [InlineData("1.5s")]
    [InlineData("1h 30m")]
    [InlineData("10ms")]
    public void MalformedDurationsAreRejectedNamingTheFlag(string text)
    {
        var e = Assert.Throws<ArgumentException>(() => ConntrackSettings.ParseDuration("--ct-timeout-tcp-syn", text));
        Assert.StartsWith("failed to parse --ct-timeout-tcp-syn: ", e.Message, StringComparison.Ordinal);
        Assert.Contains($"'{text}'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ADurationBeyondTimeSpanIsRejectedNotWrapped()
    {
        var e = Assert.Throws<ArgumentException>(() => ConntrackSettings.ParseDuration("--ct-gc-interval", "99999999999999999d"));
        Assert.Contains("--ct-gc-interval", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoFlagsGiveTheDefaults()
    {
        var s = ConntrackSettings.FromFlags();
        Assert.Equal(DatapathOptions.DefaultConntrackMaxEntries, s.MaxEntries);
        Assert.Equal(new Datapath.Conntrack.ConntrackTimeouts(), s.Timeouts);
        Assert.Equal(TimeSpan.FromHours(6), s.Timeouts.TcpEstablished);
        Assert.Null(s.GcInterval);
    }

    [Fact]
    public void EveryFlagReachesItsSetting()
    {
        var s = ConntrackSettings.FromFlags("131072", "30s", "2h", "5s", "2m", "15s");
        Assert.Equal(131072u, s.MaxEntries);
        Assert.Equal(TimeSpan.FromSeconds(30), s.Timeouts.TcpSyn);
        Assert.Equal(TimeSpan.FromHours(2), s.Timeouts.TcpEstablished);
        Assert.Equal(TimeSpan.FromSeconds(5), s.Timeouts.TcpClose);
        Assert.Equal(TimeSpan.FromMinutes(2), s.Timeouts.Other);
        Assert.Equal(TimeSpan.FromSeconds(15), s.GcInterval);
        Assert.Equal(new Datapath.Conntrack.CtConfig { TcpSyn = 30, TcpEstablished = 7200, TcpClose = 5, Other = 120 }, s.Timeouts.ToConfig());
    }

    [Theory]
    [InlineData("--ct-timeout-tcp-syn", null, "0s", null, null, null, null)]
    [InlineData("--ct-timeout-tcp-established", null, null, "soon", null, null, null)]
    [InlineData("--ct-timeout-tcp-close", null, null, null, "0m", null, null)]
    [InlineData("--ct-timeout-other", null, null, null, null, "100000d", null)]
    [InlineData("--ct-gc-interval", null, null, null, null, null, "0s")]
    [InlineData("--ct-gc-interval", null, null, null, null, null, "2d")]
    [InlineData("--ct-max-entries", "lots", null, null, null, null, null)]
    [InlineData("--ct-max-entries", "100", null, null, null, null, null)]
    [InlineData("--ct-max-entries", "33554432", null, null, null, null, null)]
    [InlineData("--ct-max-entries", "-1", null, null, null, null, null)]
    public void ABadValueIsRejectedNamingItsFlag(string flag, string? max, string? syn, string? established, string? close, string? other, string? gc)
    {
        var e = Assert.Throws<ArgumentException>(() => ConntrackSettings.FromFlags(max, syn, established, close, other, gc));
        Assert.StartsWith($"failed to parse {flag}: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AgentOptionsValidateTheirConntrackSettings()
    {
        var options = new AgentOptions
        {
            StateDir = "/tmp/x",
            SocketPath = "/tmp/x.sock",
            PodCidrs = AgentOptions.ParsePodCidrs("198.18.0.0/24"),
            Conntrack = new ConntrackSettings { Timeouts = new Datapath.Conntrack.ConntrackTimeouts { TcpClose = TimeSpan.FromMilliseconds(1500) } },
        };
        var e = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains("--ct-timeout-tcp-close", e.Message, StringComparison.Ordinal);
        Assert.Contains("1s500ms", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, "0s")]
    [InlineData(45, "45s")]
    [InlineData(90, "1m30s")]
    [InlineData(21600, "6h")]
    [InlineData(90061, "1d1h1m1s")]
    public void FormatWritesWhatParseReads(int seconds, string text)
    {
        Assert.Equal(text, ConntrackSettings.Format(TimeSpan.FromSeconds(seconds)));
        Assert.Equal(TimeSpan.FromSeconds(seconds), ConntrackSettings.ParseDuration("--x", text));
    }
}
