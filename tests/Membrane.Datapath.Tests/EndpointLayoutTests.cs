using System.Reflection;
using Membrane.Testing;
using System.Runtime.InteropServices;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;

namespace Membrane.Datapath.Tests;

/// <summary>
/// The C# mirrors of bpf/lib/endpoint.h (Membrane.Datapath, marked [CTwin]) against the BTF
/// of the compiled from_pod.o: sizes, member names, offsets and sizes, enum values. A change
/// on one side without the other fails here (Cilium's alignchecker).
/// </summary>
public sealed class EndpointLayoutTests
{
    public static TheoryData<string> Structs() => new(MirrorTypes().Where(t => !t.IsEnum).Select(t => t.Name));

    public static TheoryData<string> Enums() => new(MirrorTypes().Where(t => t.IsEnum).Select(t => t.Name));

    private static IEnumerable<Type> MirrorTypes() => BtfLayout.MirrorTypes(typeof(EndpointInfo).Assembly);

    private static BtfFile OpenBtf() => BtfLayout.Open(DatapathObjects.FromPod);

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
        BtfLayout.AssertEnumMatches(btf, MirrorTypes().Single(t => t.Name == typeName));
    }

    [Fact]
    public void EndpointReasonsDoNotCollideWithTheSharedOnes()
    {
        using var btf = OpenBtf();
        var shared = btf.FindEnum("drop_reason")!;
        var mine = btf.FindEnum("endpoint_drop_reason")!;
        Assert.Empty(shared.Values.Intersect(mine.Values));
        Assert.All(shared.Values, v => Assert.InRange(v, 0, 63));
        Assert.All(mine.Values, v => Assert.InRange(v, 64, 95));
    }

    [Fact]
    public void TheObjectsSharedStructsMatchTheKernelLayersMirrors()
    {
        // from_pod.o reuses maps.h and events.h; their mirrors live in Membrane.Linux.
        using var btf = OpenBtf();
        Assert.Equal(Marshal.SizeOf<MetricsKey>(), btf.FindStruct("metrics_key")!.Size);
        Assert.Equal(Marshal.SizeOf<MetricsValue>(), btf.FindStruct("metrics_value")!.Size);
        Assert.Equal(DropEvent.DataOffset, btf.FindStruct("drop_event")!.Members.Single(m => m.Name == "data").Offset);
    }
}
