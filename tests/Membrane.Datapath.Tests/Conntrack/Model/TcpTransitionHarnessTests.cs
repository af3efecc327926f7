using Membrane.Datapath.Conntrack;
using Xunit.Abstractions;

namespace Membrane.Datapath.Tests.Conntrack.Model;

/// <summary>
/// The transition harness of issue 5: every (state, direction, flag combination) — 10 TCP states × 2 directions ×
/// all 64 combinations of FIN/SYN/RST/PSH/ACK/URG — is driven through the model (the entry brought to the state
/// by real packets, then the segment sent) and the outcome checked against <see cref="TcpOracle"/>, including what
/// happened to the entry. The test lists any (state, direction, flag index) it did not reach.
/// </summary>
public sealed class TcpTransitionHarnessTests(ITestOutputHelper output)
{
    private const CtDirection O = CtDirection.Original;
    private const CtDirection R = CtDirection.Reply;
    private const uint Length = 77;

    // How each state is reached with real segments from a fresh table (RFC 9293 §3.5, §3.6, §3.10.7).
    private static readonly Dictionary<CtState, (CtDirection, byte)[]> Paths = new()
    {
        [CtState.None] = [],
        [CtState.SynSent] = [(O, Ct.Syn)],
        [CtState.SynRecv] = [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack)],
        [CtState.Established] = [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack)],
        [CtState.FinWait] = [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack), (O, Ct.Fin | Ct.Ack)],
        [CtState.CloseWait] = [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack), (O, Ct.Fin | Ct.Ack), (R, Ct.Ack)],
        [CtState.LastAck] = [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack), (O, Ct.Fin | Ct.Ack), (R, Ct.Ack), (R, Ct.Fin | Ct.Ack)],
        [CtState.TimeWait] = [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack), (O, Ct.Fin | Ct.Ack), (R, Ct.Ack), (R, Ct.Fin | Ct.Ack), (O, Ct.Ack)],
        [CtState.Close] = [(O, Ct.Syn), (R, Ct.Syn | Ct.Ack), (O, Ct.Ack), (O, Ct.Rst)],
        [CtState.SynSent2] = [(O, Ct.Syn), (R, Ct.Syn)],
    };

    [Fact]
    public void Every_state_direction_and_flag_combination_matches_the_oracle_through_the_model()
    {
        var covered = new HashSet<(CtState, CtDirection, Segment)>();
        var failures = new List<string>();
        int driven = 0;
        foreach (var state in TcpOracle.States)
        {
            foreach (var direction in new[] { O, R })
            {
                foreach (byte flags in TcpOracle.AllFlagCombinations)
                {
                    string? failure = Drive(state, direction, flags);
                    driven++;
                    if (failure is not null)
                    {
                        failures.Add($"{state} {direction} {CtPacket.TcpFlagNames(flags)}: {failure}");
                    }
                    covered.Add((state, direction, TcpOracle.Classify(flags)));
                }
            }
        }

        var uncovered = (from s in TcpOracle.States
                         from d in new[] { O, R }
                         from i in Enum.GetValues<Segment>()
                         where !covered.Contains((s, d, i))
                         select $"{s}/{d}/{i}").ToList();
        output.WriteLine($"drove {driven} transitions, covered {covered.Count} (state, direction, index) triples");
        Assert.True(uncovered.Count == 0, "transitions not covered: " + string.Join(", ", uncovered));
        Assert.Equal(10 * 2 * 6, covered.Count);
        Assert.Equal(10 * 2 * 64, driven);
        Assert.True(failures.Count == 0, $"{failures.Count} transitions disagree with the oracle:\n" + string.Join('\n', failures.Take(60)));
    }

    [Fact]
    public void Every_table_cell_matches_the_oracle()
    {
        var failures = new List<string>();
        foreach (var state in TcpOracle.States)
        {
            foreach (var direction in new[] { O, R })
            {
                foreach (byte flags in TcpOracle.AllFlagCombinations)
                {
                    var (expect, rule) = TcpOracle.Expect(state, direction, flags);
                    var actual = TcpConntrack.Transition(state, direction, flags);
                    if (!Agrees(expect, actual, state))
                    {
                        failures.Add($"{state} {direction} {CtPacket.TcpFlagNames(flags)}: table {actual}, oracle {expect} ({rule})");
                    }
                }
            }
        }
        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    private static bool Agrees(OracleExpectation expect, TcpTransition actual, CtState old) => expect.Kind switch
    {
        OracleKind.MoveTo => actual == new TcpTransition(expect.State, TcpTransitionOutcome.Changed),
        OracleKind.Ignore => actual == new TcpTransition(old, TcpTransitionOutcome.Ignored),
        OracleKind.Invalid => actual == new TcpTransition(old, TcpTransitionOutcome.Invalid),
        _ => actual == new TcpTransition(CtState.SynSent, TcpTransitionOutcome.Reopen),
    };

    // Brings a fresh model to `state`, sends the segment and compares everything with the oracle.
    // Returns null when it agrees, else what differs.
    private static string? Drive(CtState state, CtDirection direction, byte flags)
    {
        var model = new ConntrackModel();
        ulong now = 1000;
        foreach (var (d, f) in Paths[state])
        {
            model.Process(Ct.Tcp(d, f, Length), now++);
        }
        if (state == CtState.None)
        {
            return DriveWithoutEntry(model, direction, flags, now);
        }
        if (!model.TryGet(Ct.TcpKey, out var before) || before.State != state)
        {
            return $"setup did not reach {state}";
        }

        var (expect, rule) = TcpOracle.Expect(state, direction, flags);
        var packet = Ct.Tcp(direction, flags, Length);
        now += 5;
        var verdict = model.Process(packet, now);
        model.TryGet(Ct.TcpKey, out var after);
        string Why(string what) => $"{what}; verdict {verdict}; oracle {expect} by rule \"{rule}\"";

        switch (expect.Kind)
        {
            case OracleKind.MoveTo:
            {
                var result = direction == O ? CtResult.Established : CtResult.Reply;
                if (verdict != new CtVerdict(result, CtReason.Tracked, Ct.TcpKey, direction, state, expect.State))
                {
                    return Why("wrong verdict");
                }
                var stats = before.Stats(direction);
                var expected = new CtConnection(Ct.TcpKey, expect.State,
                    direction == O ? new CtDirectionStats(stats.Packets + 1, stats.Bytes + Length, (byte)(stats.TcpFlags | flags)) : before.Original,
                    direction == R ? new CtDirectionStats(stats.Packets + 1, stats.Bytes + Length, (byte)(stats.TcpFlags | flags)) : before.Reply,
                    before.Created, now + Ct.DefaultTimeout(expect.State), now, before.ReplySeen || direction == R);
                return after == expected ? null : Why($"entry {after}, expected {expected}");
            }
            case OracleKind.Ignore:
            {
                var result = direction == O ? CtResult.Established : CtResult.Reply;
                if (verdict != new CtVerdict(result, CtReason.TcpIgnored, Ct.TcpKey, direction, state, state))
                {
                    return Why("wrong verdict");
                }
                return after == before ? null : Why($"ignored segment changed the entry to {after}");
            }
            case OracleKind.Invalid:
                if (verdict != new CtVerdict(CtResult.Invalid, CtReason.TcpInvalidTransition, Ct.TcpKey, direction, state, state))
                {
                    return Why("wrong verdict");
                }
                return after == before ? null : Why($"invalid segment changed the entry to {after}");
            default:
            {
                // Reopen: the old connection is gone and the SYN's own tuple holds a fresh SYN_SENT entry.
                if (verdict != new CtVerdict(CtResult.New, CtReason.Reopened, packet.Tuple, CtDirection.Original, state, CtState.SynSent))
                {
                    return Why("wrong verdict");
                }
                var fresh = new CtConnection(packet.Tuple, CtState.SynSent, new CtDirectionStats(1, Length, flags), default, now, now + 60, now, false);
                if (!model.TryGet(packet.Tuple, out var reopened) || reopened != fresh)
                {
                    return Why($"reopened entry {reopened}, expected {fresh}");
                }
                return model.Count == 1 ? null : Why($"the old connection survived: {model.Count} entries");
            }
        }
    }

    // State NONE. ORIGINAL: a first packet. REPLY: no entry can be in NONE, so the table's REPLY/NONE column
    // (all sIV) is unreachable through the model; what comes closest is the responder's packet after the
    // connection expired, which must be judged as a first packet in its own orientation (spec step 1: an
    // expired entry is absent) — i.e. by the ORIGINAL/NONE rule. Both the cell and that behaviour are checked.
    private static string? DriveWithoutEntry(ConntrackModel model, CtDirection direction, byte flags, ulong now)
    {
        CtPacket packet;
        if (direction == R)
        {
            var cell = TcpConntrack.Transition(CtState.None, R, flags);
            var (cellExpect, _) = TcpOracle.Expect(CtState.None, R, flags);
            if (!Agrees(cellExpect, cell, CtState.None))
            {
                return $"table cell REPLY/NONE is {cell}, oracle {cellExpect}";
            }
            model.Process(Ct.Tcp(O, Ct.Syn, Length), now);
            now += 61; // SYN_SENT lives 60 s: now it is expired (lifetime < now).
            packet = Ct.Tcp(R, flags, Length);
        }
        else
        {
            packet = Ct.Tcp(O, flags, Length);
        }
        int countBefore = model.Count;
        var (expect, rule) = TcpOracle.Expect(CtState.None, O, flags);
        var verdict = model.Process(packet, now);
        string Why(string what) => $"{what}; verdict {verdict}; oracle {expect} by rule \"{rule}\"";
        if (expect.Kind == OracleKind.Invalid)
        {
            if (verdict.Result != CtResult.Invalid || verdict.Reason != CtReason.TcpCannotOpen)
            {
                return Why("wrong verdict");
            }
            return model.Count == countBefore && !model.TryGet(packet.Tuple, out _) ? null : Why("an entry was stored");
        }
        var reason = expect.State == CtState.Established ? CtReason.LoosePickup : CtReason.Opened;
        if (verdict != new CtVerdict(CtResult.New, reason, packet.Tuple, O, CtState.None, expect.State))
        {
            return Why("wrong verdict");
        }
        var expected = new CtConnection(packet.Tuple, expect.State, new CtDirectionStats(1, Length, flags), default, now,
            now + Ct.DefaultTimeout(expect.State), now, false);
        return model.TryGet(packet.Tuple, out var entry) && entry == expected ? null : Why($"entry {entry}, expected {expected}");
    }
}

/// <summary>The oracle itself is checked: total and unambiguous, and its classification is Linux's flag index.</summary>
public sealed class TcpOracleTests
{
    [Fact]
    public void Exactly_one_rule_holds_for_every_state_direction_and_flag_combination()
    {
        var problems = new List<string>();
        foreach (var state in TcpOracle.States)
        {
            foreach (var direction in new[] { CtDirection.Original, CtDirection.Reply })
            {
                foreach (byte flags in TcpOracle.AllFlagCombinations)
                {
                    var rules = TcpOracle.Matching(state, direction, flags).ToList();
                    if (rules.Count != 1)
                    {
                        problems.Add($"{state} {direction} {CtPacket.TcpFlagNames(flags)}: {rules.Count} rules ({string.Join(" | ", rules.Select(r => r.Name))})");
                    }
                }
            }
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    [Fact]
    public void Every_rule_is_used()
    {
        var used = (from s in TcpOracle.States
                    from d in new[] { CtDirection.Original, CtDirection.Reply }
                    from f in TcpOracle.AllFlagCombinations
                    select TcpOracle.Expect(s, d, f).Rule).ToHashSet();
        var unused = TcpOracle.Rules.Select(r => r.Name).Where(n => !used.Contains(n)).ToList();
        Assert.True(unused.Count == 0, "rules that never apply: " + string.Join("; ", unused));
    }

    [Theory]
    // get_conntrack_index: RST first, then SYN (ACK decides SYN vs SYNACK), then FIN, then ACK; PSH/URG/ECE/CWR never matter.
    [InlineData(0x02, TcpFlagIndex.Syn)]
    [InlineData(0x12, TcpFlagIndex.SynAck)]
    [InlineData(0x03, TcpFlagIndex.Syn)]       // SYN|FIN: SYN wins over FIN
    [InlineData(0x13, TcpFlagIndex.SynAck)]    // SYN|FIN|ACK
    [InlineData(0x06, TcpFlagIndex.Rst)]       // SYN|RST: RST wins
    [InlineData(0x14, TcpFlagIndex.Rst)]
    [InlineData(0x11, TcpFlagIndex.Fin)]
    [InlineData(0x01, TcpFlagIndex.Fin)]
    [InlineData(0x18, TcpFlagIndex.Ack)]       // PSH|ACK
    [InlineData(0xF0, TcpFlagIndex.Ack)]       // CWR|ECE|URG|ACK
    [InlineData(0x28, TcpFlagIndex.None)]      // URG|PSH
    [InlineData(0x00, TcpFlagIndex.None)]
    [InlineData(0xC0, TcpFlagIndex.None)]      // ECE|CWR only
    public void Flag_index_is_linux_get_conntrack_index(byte flags, TcpFlagIndex expected)
    {
        Assert.Equal(expected, TcpConntrack.FlagIndex(flags));
        Assert.Equal((int)expected, (int)TcpOracle.Classify(flags));
    }

    [Fact]
    public void Lookup_rejects_states_that_have_no_column()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => TcpConntrack.Transition(CtState.Unreplied, CtDirection.Original, 0x02));
        Assert.Throws<ArgumentOutOfRangeException>(() => TcpConntrack.Lookup(CtState.Established, (CtDirection)2, TcpFlagIndex.Ack));
        Assert.Throws<ArgumentOutOfRangeException>(() => TcpConntrack.Lookup(CtState.Established, CtDirection.Original, (TcpFlagIndex)6));
    }
}
