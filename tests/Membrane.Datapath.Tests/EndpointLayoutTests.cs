using System.Reflection;
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

    private static IEnumerable<Type> MirrorTypes() =>
        typeof(EndpointInfo).Assembly.GetTypes().Where(t => t.GetCustomAttribute<CTwinAttribute>() is not null);

    private static BtfFile OpenBtf()
    {
        Assert.True(File.Exists(DatapathObjects.FromPod), $"{DatapathObjects.FromPod} is missing: the build compiles bpf/*.c");
        return BtfFile.Open(DatapathObjects.FromPod);
    }

    [Theory]
    [MemberData(nameof(Structs))]
    public void StructMatchesItsCTwin(string typeName)
    {
        var type = MirrorTypes().Single(t => t.Name == typeName);
        var cName = type.GetCustomAttribute<CTwinAttribute>()!.Name;
        using var btf = OpenBtf();
        var layout = btf.FindStruct(cName);
        Assert.True(layout is not null, $"struct {cName} is not in from_pod.o's BTF");
        Assert.Equal(layout.Size, SizeOf(type));
        var fields = type.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance);
        Assert.All(fields, f => Assert.True(f.GetCustomAttribute<CTwinAttribute>() is not null, $"{typeName}.{f.Name} has no [CTwin]"));
        Assert.Equal(layout.Members.Select(m => m.Name).Order(), fields.Select(f => f.GetCustomAttribute<CTwinAttribute>()!.Name).Order());
        foreach (var member in layout.Members)
        {
            var field = fields.Single(f => f.GetCustomAttribute<CTwinAttribute>()!.Name == member.Name);
            Assert.True(member.Offset == (int)Marshal.OffsetOf(type, field.Name), $"{cName}.{member.Name} is at {member.Offset} in C, {Marshal.OffsetOf(type, field.Name)} in C#");
            Assert.True(member.Size == SizeOf(field.FieldType), $"{cName}.{member.Name} is {member.Size} bytes in C, {SizeOf(field.FieldType)} in C#");
        }
    }

    [Theory]
    [MemberData(nameof(Enums))]
    public void EnumMatchesItsCTwin(string typeName)
    {
        var type = MirrorTypes().Single(t => t.Name == typeName);
        var cName = type.GetCustomAttribute<CTwinAttribute>()!.Name;
        using var btf = OpenBtf();
        var values = btf.FindEnum(cName);
        Assert.True(values is not null, $"enum {cName} is not in from_pod.o's BTF");
        // Members without a twin (EndpointFlags.None) are C#-side conveniences.
        var mirrored = type.GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.GetCustomAttribute<CTwinAttribute>() is not null)
            .ToDictionary(f => f.GetCustomAttribute<CTwinAttribute>()!.Name, f => Convert.ToInt64(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(values.OrderBy(kv => kv.Key), mirrored.OrderBy(kv => kv.Key));
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

    private static int SizeOf(Type t) =>
        (int)typeof(System.Runtime.CompilerServices.Unsafe).GetMethod(nameof(System.Runtime.CompilerServices.Unsafe.SizeOf))!
            .MakeGenericMethod(t).Invoke(null, null)!;
}
