using Membrane.Datapath.Conntrack;
using Membrane.Packets;
using Xunit.Abstractions;
using static Membrane.Datapath.Tests.Conntrack.ConntrackKernelHarness;

namespace Membrane.Datapath.Tests.Conntrack;

/// <summary>
/// Issue 5's agreement test: the same frames go through the kernel (from_pod / to_pod with
/// BPF_PROG_TEST_RUN) and through the C# model (CtPacket.FromFrame + ConntrackModel), and
/// after every packet the verdict (passed or dropped) and the whole table (every entry's key,
/// state, per-direction packets, bytes and TCP flags, reply-seen, and the lifetime it was
/// given) must be equal. The model runs on CLOCK_MONOTONIC seconds like the datapath;
/// expiry itself is covered by the model's tests and ConntrackKernelTests.
///
/// Where the datapath deliberately tracks less than Linux: neither side tracks TCP windows
/// (so out-of-window junk is accepted by both — the scenarios include it) nor resynchronises
/// after IGNOREd packets; both are documented in bpf/lib/conntrack.h and the model. Where
/// the datapath tracks less than the model: it does not walk the extension headers inside
/// the quote of an ICMPv6 error (the model does, as Linux does), so an error quoting a
/// packet with extension headers is INVALID in the kernel and may be RELATED in the model;
/// no scenario sends one, and this is the only difference. No state the datapath tracks is
/// left out of the comparison.
/// </summary>
[Collection("kernel")]
public sealed class ConntrackDifferentialTests(ITestOutputHelper output) : IDisposable
{
    private const ushort PodPort = 40000;
    private const ushort PeerPort = 80;
    private readonly ConntrackKernelHarness _kernel = new();

    public void Dispose() => _kernel.Dispose();

    /// <summary>A packet of a scenario: who sends it and its bytes.</summary>
    public sealed record Step(string Label, bool FromPod, byte[] Frame)
    {
        public override string ToString() => $"{(FromPod ? "pod ->" : "-> pod")} {Label}";
    }

    private static Step P(string label, byte[] frame) => new(label, true, frame);

    private static Step X(string label, byte[] frame) => new(label, false, frame);

    private static Step Tcp(bool fromPod, TcpFlags flags, int payload = 0, int family = 4) =>
        new(flags.ToString(), fromPod, ConntrackKernelHarness.Tcp(family, fromPod, PodPort, PeerPort, flags, payload));

    private const TcpFlags Syn = TcpFlags.Syn;
    private const TcpFlags SynAck = TcpFlags.Syn | TcpFlags.Ack;
    private const TcpFlags Ack = TcpFlags.Ack;
    private const TcpFlags PshAck = TcpFlags.Psh | TcpFlags.Ack;
    private const TcpFlags FinAck = TcpFlags.Fin | TcpFlags.Ack;
    private const TcpFlags Rst = TcpFlags.Rst;
    private const TcpFlags RstAck = TcpFlags.Rst | TcpFlags.Ack;

    /// <summary>The named scenarios of the issue, each for IPv4 and IPv6.</summary>
    public static TheoryData<string, int> Scenarios()
    {
        var data = new TheoryData<string, int>();
        foreach (var name in ScenarioSteps(4).Keys)
        {
            data.Add(name, 4);
            data.Add(name, 6);
        }
        return data;
    }

    private static Dictionary<string, Step[]> ScenarioSteps(int f) => new()
    {
        ["pod opens, data, pod closes"] =
        [
            Tcp(true, Syn, family: f), Tcp(false, SynAck, family: f), Tcp(true, Ack, family: f),
            Tcp(true, PshAck, 100, f), Tcp(false, Ack, family: f), Tcp(false, PshAck, 300, f),
            Tcp(true, FinAck, family: f), Tcp(false, Ack, family: f), Tcp(false, FinAck, family: f), Tcp(true, Ack, family: f),
            Tcp(true, Ack, family: f), // a retransmitted last ACK in TIME_WAIT
        ],
        ["peer opens, half-close, data after FIN"] =
        [
            Tcp(false, Syn, family: f), Tcp(true, SynAck, family: f), Tcp(false, Ack, family: f),
            Tcp(false, FinAck, family: f), Tcp(true, Ack, family: f),
            Tcp(true, PshAck, 500, f), Tcp(false, Ack, family: f), // the half-closed side still receives
            Tcp(true, FinAck, family: f), Tcp(false, Ack, family: f),
        ],
        ["retransmitted SYN, late SYN-ACK, reset"] =
        [
            Tcp(true, Syn, family: f), Tcp(true, Syn, family: f), Tcp(true, Syn, family: f),
            Tcp(false, SynAck, family: f), Tcp(false, SynAck, family: f), Tcp(true, Ack, family: f),
            Tcp(false, RstAck, family: f), Tcp(true, PshAck, 10, f),
        ],
        ["RST answering a SYN, then reopen"] =
        [
            Tcp(true, Syn, family: f), Tcp(false, RstAck, family: f), Tcp(true, Syn, family: f), Tcp(false, SynAck, family: f),
        ],
        ["simultaneous open"] =
        [
            Tcp(true, Syn, family: f), Tcp(false, Syn, family: f), Tcp(true, SynAck, family: f), Tcp(false, SynAck, family: f),
            Tcp(true, Ack, family: f), Tcp(false, Ack, family: f),
        ],
        ["reopen from TIME_WAIT by either side"] =
        [
            Tcp(true, Syn, family: f), Tcp(false, SynAck, family: f), Tcp(true, Ack, family: f),
            Tcp(true, FinAck, family: f), Tcp(false, FinAck, family: f), Tcp(true, Ack, family: f),
            Tcp(false, Syn, family: f), Tcp(true, SynAck, family: f), Tcp(false, Ack, family: f),
            Tcp(true, RstAck, family: f), Tcp(true, Syn, family: f),
        ],
        ["invalid: no handshake, junk flags, out-of-window data"] =
        [
            Tcp(true, SynAck, family: f), Tcp(true, FinAck, family: f), Tcp(true, Rst, family: f), Tcp(true, TcpFlags.None, family: f),
            Tcp(true, Ack, family: f), // mid-stream pickup
            Tcp(false, Syn, family: f), Tcp(true, Syn, family: f), // SYNs in ESTABLISHED: ignored
            Tcp(false, PshAck, 1200, f), // "out of window": no window tracking on either side
            Tcp(true, TcpFlags.Syn | TcpFlags.Fin, family: f), Tcp(true, TcpFlags.Urg | TcpFlags.Ack, family: f),
            Tcp(false, TcpFlags.None, family: f),
        ],
        ["UDP both ways, echo both ways, GRE"] =
        [
            P("udp", Udp(f, true, 5353, 53)), P("udp", Udp(f, true, 5353, 53)), X("udp reply", Udp(f, false, 5353, 53)),
            X("udp from the peer", Udp(f, false, 6000, 7000)),
            P("echo request", Echo(f, true, true, 77)), X("echo reply", Echo(f, false, false, 77)),
            X("echo request to the pod", Echo(f, false, true, 78)), P("echo reply", Echo(f, true, false, 78)),
            P("unsolicited echo reply", Echo(f, true, false, 999)),
            P("gre", Gre(f, true)), X("gre back", Gre(f, false)),
        ],
        ["ICMP errors for tracked and untracked flows"] =
        [
            P("udp", Udp(f, true, 5353, 53)), X("unreachable for it", UdpUnreachable(f, false, 5353, 53)),
            X("unreachable for nothing", UdpUnreachable(f, false, 5354, 53)),
            X("udp from the peer", Udp(f, false, 6000, 7000)), P("pod's unreachable for it", UdpUnreachable(f, true, 6000, 7000)),
            P("pod's unreachable for nothing", UdpUnreachable(f, true, 6001, 7000)),
            P("udp", Udp(f, true, 5353, 53)), P("an error about its own packet, to the peer", MisaddressedUnreachable(f, 5353, 53)),
        ],
        ["ICMP errors quoting an echo, an error, a fragment"] =
        [
            P("echo request", Echo(f, true, true, 77)), X("time exceeded for it", ErrorQuoting(f, "echo")),
            X("error quoting an error", ErrorQuoting(f, "error")),
            X("error quoting a later fragment", ErrorQuoting(f, f == 4 ? "fragment" : "error")),
        ],
        ["the other family's ICMP is just a protocol; malformed TCP"] =
        [
            P("foreign icmp", ForeignIcmp(f, true)), X("foreign icmp back", ForeignIcmp(f, false)),
            P("truncated tcp", TruncatedTcp(f, true)), X("truncated tcp", TruncatedTcp(f, false)),
        ],
    };

    [SkippableTheory]
    [MemberData(nameof(Scenarios))]
    public void KernelAndModelAgreeOnEveryPacketOfTheScenario(string scenario, int family)
    {
        var steps = ScenarioSteps(family)[scenario];
        Compare(scenario, steps);
    }

    [SkippableFact]
    public void KernelAndModelAgreeOnLaterFragments()
    {
        Compare("later fragments", [P("udp", Udp(4, true, 1, 2)), P("later fragment", LaterFragment4(true)), X("later fragment", LaterFragment4(false))]);
    }

    /// <summary>
    /// Generated sequences: random TCP flag combinations in random directions on one or two
    /// connections, mixed with UDP and echo, 400 sequences of up to 24 packets (seeded, so a
    /// failure names a sequence that can be replayed).
    /// </summary>
    [SkippableFact]
    public void KernelAndModelAgreeOnGeneratedSequences()
    {
        TcpFlags[] flagChoices =
        [
            Syn, SynAck, Ack, PshAck, FinAck, TcpFlags.Fin, Rst, RstAck, TcpFlags.None,
            TcpFlags.Syn | TcpFlags.Fin, TcpFlags.Syn | TcpFlags.Rst, TcpFlags.Urg | TcpFlags.Ack, TcpFlags.Fin | TcpFlags.Psh | TcpFlags.Urg,
        ];
        var covered = new HashSet<(CtState, bool, TcpFlags)>();
        for (var seed = 0; seed < 400; seed++)
        {
            var random = new Random(seed);
            var family = random.Next(2) == 0 ? 4 : 6;
            var steps = new List<Step>();
            var count = random.Next(1, 25);
            for (var i = 0; i < count; i++)
            {
                var fromPod = random.Next(2) == 0;
                var roll = random.Next(20);
                if (roll < 16)
                {
                    var port = roll < 13 ? PeerPort : (ushort)81;
                    var flags = flagChoices[random.Next(flagChoices.Length)];
                    steps.Add(new(flags.ToString(), fromPod, ConntrackKernelHarness.Tcp(family, fromPod, PodPort, port, flags, random.Next(2) * 20)));
                }
                else if (roll < 18)
                {
                    steps.Add(new("udp", fromPod, Udp(family, fromPod, 5000, 53)));
                }
                else
                {
                    steps.Add(new("echo", fromPod, Echo(family, fromPod, random.Next(2) == 0, 9)));
                }
            }
            Compare($"generated sequence {seed} (IPv{family})", steps, covered);
        }
        // The generator must have reached the TCP states, or it proves little.
        var statesReached = covered.Select(c => c.Item1).ToHashSet();
        Assert.Superset(new HashSet<CtState> { CtState.None, CtState.SynSent, CtState.SynRecv, CtState.Established, CtState.FinWait, CtState.CloseWait, CtState.LastAck, CtState.TimeWait, CtState.Close, CtState.SynSent2 }, statesReached);
        output.WriteLine($"{covered.Count} (state, direction, flags) combinations driven through both");
    }

    private void Compare(string name, IReadOnlyList<Step> steps, HashSet<(CtState, bool, TcpFlags)>? covered = null)
    {
        _kernel.Flush();
        var model = new ConntrackModel();
        for (var i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            if (!CtPacket.TryFromFrame(step.Frame, out var packet, out var error))
            {
                // Malformed for the model: the datapath must drop it and change nothing.
                var table = _kernel.Table();
                Assert.True(_kernel.Run(step.Frame, step.FromPod) == TcActShot, $"{name} step {i} ({step}): the model cannot read it ({error}) but the kernel passed it");
                Assert.Equal(table, _kernel.Table());
                continue;
            }
            var before = StateOf(model, packet);
            var verdict = model.Process(packet, Now);
            var expected = verdict.Drops ? TcActShot : TcActOk;
            var actual = _kernel.Run(step.Frame, step.FromPod);
            var context = $"{name}, packet {i} ({step}; model: {verdict})\n  sequence: {string.Join(", ", steps.Select(s => s.ToString()))}";
            Assert.True(expected == actual, $"verdict differs at {context}: kernel {actual}, model {expected}");
            var kernelTable = _kernel.Table();
            var modelTable = model.Entries.Select(c => CtRow.From(c)).OrderBy(r => r.Key.ToString(), StringComparer.Ordinal).ToArray();
            Assert.True(modelTable.SequenceEqual(kernelTable),
                $"tables differ after {context}\n  kernel: {string.Join("\n          ", kernelTable)}\n  model:  {string.Join("\n          ", modelTable)}");
            if (packet.Protocol == IpProtocols.Tcp)
            {
                covered?.Add((before, step.FromPod, (TcpFlags)packet.TcpFlags));
            }
        }
    }

    private static CtState StateOf(ConntrackModel model, in CtPacket packet) =>
        model.TryLookup(packet.Tuple, Now, out var entry, out _) ? entry.State : CtState.None;
}
