using System.Reflection;
using Membrane.Testing;
using System.Runtime.InteropServices;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;

namespace Membrane.Linux.Tests.Bpf;

/// <summary>
/// The C# mirrors (Membrane.Linux.Bpf.Datapath, marked [CTwin]) against the BTF of the
/// compiled test_filter.o: sizes, member offsets and sizes, member names, enum values.
/// A change on either side without the other fails here (Cilium's alignchecker).
/// </summary>
public sealed class DatapathLayoutTests
{
    public static TheoryData<string> Structs() => new(MirrorTypes().Where(t => t.IsValueType && !t.IsEnum).Select(t => t.Name));

    public static TheoryData<string> Enums() => new(MirrorTypes().Where(t => t.IsEnum).Select(t => t.Name));

    private static IEnumerable<Type> MirrorTypes() => BtfLayout.MirrorTypes(typeof(DropEvent).Assembly, typeof(DropEvent).Namespace);

    private static BtfFile OpenBtf() => BtfLayout.Open(BpfObjects.PathOf(BpfObjects.TestFilter));

    [Theory]
    [MemberData(nameof(Structs))]
    public void StructMatchesItsCTwin(string typeName)
    {
        using var btf = OpenBtf();
        BtfLayout.AssertStructMatches(btf, MirrorTypes().Single(t => t.Name == typeName));
    }

    [Theory]
    [MemberData(nameof(Enums))]
    public void EnumMatchesItsCTwin(string typeName)
    {
        using var btf = OpenBtf();
        BtfLayout.AssertEnumMatches(btf, MirrorTypes().Single(t => t.Name == typeName), untwinnedByName: true);
    }

    [Fact]
    public void EveryStructTheDatapathSharesIsMirrored()
    {
        // The map keys/values and event records user space reads; a new one needs a mirror.
        string[] shared = ["event_header", "drop_event", "trace_event", "metrics_key", "metrics_value", "verdict_key", "verdict_value"];
        var mirrored = MirrorTypes().Select(t => t.GetCustomAttribute<CTwinAttribute>()!.Name).ToHashSet();
        Assert.All(shared, s => Assert.Contains(s, mirrored));
    }

    [Fact]
    public void EveryMetricsSlotDecodesToTheKeyThatEncodesIt()
    {
        for (var slot = 0u; slot < (uint)MetricsLayout.Slots; slot++)
        {
            Assert.Equal(slot, MetricsKey.FromSlot(slot).ToSlot());
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => MetricsKey.FromSlot((uint)MetricsLayout.Slots));
        // Protocols without a class of their own share one slot and read back as "other".
        var gre = new MetricsKey { Reason = 7, Direction = Direction.Egress, L3 = 6, L4Protocol = 47 };
        var esp = gre with { L4Protocol = 50 };
        Assert.Equal(gre.ToSlot(), esp.ToSlot());
        Assert.Equal(MetricsKey.OtherProtocol, MetricsKey.FromSlot(gre.ToSlot()).L4Protocol);
        Assert.NotEqual(gre.ToSlot(), (gre with { L4Protocol = 6 }).ToSlot());
    }
}
