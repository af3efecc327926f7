using Membrane.Datapath.Conntrack;

namespace Membrane.Datapath.Tests.Conntrack.Model;

public sealed class ConntrackTimeoutsTests
{
    [Fact]
    public void Defaults_are_ciliums()
    {
        var t = ConntrackTimeouts.Default;
        Assert.Equal((60u, 21600u, 10u, 60u), (t.SecondsFor(CtState.SynSent, 6), t.SecondsFor(CtState.Established, 6), t.SecondsFor(CtState.TimeWait, 6), t.SecondsFor(CtState.Unreplied, 17)));
        var config = t.ToConfig();
        Assert.Equal((60u, 21600u, 10u, 60u), (config.TcpSyn, config.TcpEstablished, config.TcpClose, config.Other));
    }

    [Theory]
    [InlineData(CtState.SynSent, (byte)6, 1)]
    [InlineData(CtState.SynRecv, (byte)6, 1)]
    [InlineData(CtState.SynSent2, (byte)6, 1)]
    [InlineData(CtState.Established, (byte)6, 2)]
    [InlineData(CtState.FinWait, (byte)6, 2)]
    [InlineData(CtState.CloseWait, (byte)6, 2)]
    [InlineData(CtState.LastAck, (byte)6, 3)]
    [InlineData(CtState.TimeWait, (byte)6, 3)]
    [InlineData(CtState.Close, (byte)6, 3)]
    [InlineData(CtState.Unreplied, (byte)17, 4)]
    [InlineData(CtState.Replied, (byte)1, 4)]
    [InlineData(CtState.Replied, (byte)58, 4)]
    [InlineData(CtState.Unreplied, (byte)47, 4)]
    public void Each_state_maps_to_its_class(CtState state, byte protocol, int seconds)
    {
        // Distinct values per class, so a wrong mapping cannot pass by coincidence.
        var t = new ConntrackTimeouts { TcpSyn = TimeSpan.FromSeconds(1), TcpEstablished = TimeSpan.FromSeconds(2), TcpClose = TimeSpan.FromSeconds(3), Other = TimeSpan.FromSeconds(4) };
        Assert.Equal(TimeSpan.FromSeconds(seconds), t.For(state, protocol));
    }

    public static TheoryData<string, TimeSpan, string> BadValues() => new()
    {
        { "syn", TimeSpan.Zero, "tcp-syn" },
        { "established", TimeSpan.FromSeconds(-5), "tcp-established" },
        { "close", TimeSpan.FromMilliseconds(1500), "tcp-close" },
        { "other", TimeSpan.FromSeconds((double)int.MaxValue + 1), "other" },
    };

    [Theory]
    [MemberData(nameof(BadValues))]
    public void Unusable_values_are_rejected_naming_the_timeout(string which, TimeSpan value, string name)
    {
        var t = which switch
        {
            "syn" => new ConntrackTimeouts { TcpSyn = value },
            "established" => new ConntrackTimeouts { TcpEstablished = value },
            "close" => new ConntrackTimeouts { TcpClose = value },
            _ => new ConntrackTimeouts { Other = value },
        };
        Assert.False(t.TryValidate(out var error));
        Assert.StartsWith($"failed to validate conntrack timeout {name}=", error);
        Assert.Throws<ArgumentOutOfRangeException>(() => t.ToConfig());
        Assert.Throws<ArgumentOutOfRangeException>(() => new ConntrackModel(t));
    }

    [Fact]
    public void The_largest_and_smallest_usable_values_are_accepted()
    {
        var t = new ConntrackTimeouts { TcpSyn = TimeSpan.FromSeconds(1), Other = TimeSpan.FromSeconds(ConntrackTimeouts.MaxSeconds) };
        Assert.True(t.TryValidate(out var error), error);
        Assert.Equal(ConntrackTimeouts.MaxSeconds, t.ToConfig().Other);
    }
}
