using System.Reflection;
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

    private static IEnumerable<Type> MirrorTypes() =>
        typeof(DropEvent).Assembly.GetTypes().Where(t => t.Namespace == typeof(DropEvent).Namespace && t.GetCustomAttribute<CTwinAttribute>() is not null);

    private static BtfFile OpenBtf()
    {
        var path = BpfObjects.PathOf(BpfObjects.TestFilter);
        Assert.True(File.Exists(path), $"{path} is missing: the build compiles bpf/*.c");
        return BtfFile.Open(path);
    }

    [Theory]
    [MemberData(nameof(Structs))]
    public void StructMatchesItsCTwin(string typeName)
    {
        var type = MirrorTypes().Single(t => t.Name == typeName);
        var cName = type.GetCustomAttribute<CTwinAttribute>()!.Name;
        using var btf = OpenBtf();
        var layout = btf.FindStruct(cName);
        Assert.True(layout is not null, $"struct {cName} is not in the object's BTF");
        Assert.Equal(layout.Size, SizeOf(type));

        var fields = type.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)
            .Select(f => (Field: f, Twin: f.GetCustomAttribute<CTwinAttribute>()))
            .ToArray();
        Assert.All(fields, f => Assert.True(f.Twin is not null, $"{typeName}.{f.Field.Name} has no [CTwin]"));
        Assert.Equal(layout.Members.Select(m => m.Name).Order(), fields.Select(f => f.Twin!.Name).Order());
        foreach (var member in layout.Members)
        {
            var field = fields.Single(f => f.Twin!.Name == member.Name).Field;
            Assert.True(member.Offset == (int)Marshal.OffsetOf(type, field.Name),
                $"{cName}.{member.Name} is at {member.Offset} in C, {Marshal.OffsetOf(type, field.Name)} in C#");
            Assert.True(member.Size == SizeOf(field),
                $"{cName}.{member.Name} is {member.Size} bytes in C, {SizeOf(field)} in C#");
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
        Assert.True(values is not null, $"enum {cName} is not in the object's BTF");
        var mirrored = type.GetFields(BindingFlags.Public | BindingFlags.Static)
            .ToDictionary(f => f.GetCustomAttribute<CTwinAttribute>()?.Name ?? f.Name, f => Convert.ToInt64(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(values.OrderBy(kv => kv.Key), mirrored.OrderBy(kv => kv.Key));
    }

    [Fact]
    public void EveryStructTheDatapathSharesIsMirrored()
    {
        // The map keys/values and event records user space reads; a new one needs a mirror.
        string[] shared = ["event_header", "drop_event", "metrics_key", "metrics_value", "verdict_key", "verdict_value"];
        var mirrored = MirrorTypes().Select(t => t.GetCustomAttribute<CTwinAttribute>()!.Name).ToHashSet();
        Assert.All(shared, s => Assert.Contains(s, mirrored));
    }

    // Unsafe.SizeOf<T> is the managed layout size, which for these blittable structs is the native one.
    private static int SizeOf(FieldInfo field) => SizeOf(field.FieldType);

    private static int SizeOf(Type t) =>
        (int)typeof(System.Runtime.CompilerServices.Unsafe).GetMethod(nameof(System.Runtime.CompilerServices.Unsafe.SizeOf))!
            .MakeGenericMethod(t).Invoke(null, null)!;
}
