using System.Reflection;
using System.Runtime.InteropServices;
using Membrane.Linux.Bpf;
using Membrane.Linux.Bpf.Datapath;
using Xunit;

namespace Membrane.Testing;

/// <summary>
/// Checks a C# mirror (marked [CTwin]) against its C twin in a compiled object's BTF: a
/// struct's size, member names, offsets and sizes; an enum's names and values. A change on
/// one side without the other fails with the member named (Cilium's alignchecker).
/// </summary>
public static class BtfLayout
{
    /// <summary>The mirror types of <paramref name="assembly"/> (optionally of one namespace).</summary>
    public static IEnumerable<Type> MirrorTypes(Assembly assembly, string? inNamespace = null) =>
        assembly.GetTypes().Where(t => t.GetCustomAttribute<CTwinAttribute>() is not null && (inNamespace is null || t.Namespace == inNamespace));

    /// <summary>Opens the BTF of an object the build compiled.</summary>
    public static BtfFile Open(string objectPath)
    {
        Assert.True(File.Exists(objectPath), $"{objectPath} is missing: the build compiles bpf/*.c");
        return BtfFile.Open(objectPath);
    }

    /// <summary>Asserts that struct <paramref name="type"/> has its C twin's layout, member for member.</summary>
    public static void AssertStructMatches(BtfFile btf, Type type)
    {
        var cName = type.GetCustomAttribute<CTwinAttribute>()!.Name;
        var layout = btf.FindStruct(cName);
        Assert.True(layout is not null, $"struct {cName} is not in the object's BTF");
        Assert.Equal(layout.Size, SizeOf(type));
        var fields = type.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)
            .Select(f => (Field: f, Twin: f.GetCustomAttribute<CTwinAttribute>()))
            .ToArray();
        Assert.All(fields, f => Assert.True(f.Twin is not null, $"{type.Name}.{f.Field.Name} has no [CTwin]"));
        Assert.Equal(layout.Members.Select(m => m.Name).Order(), fields.Select(f => f.Twin!.Name).Order());
        foreach (var member in layout.Members)
        {
            var field = fields.Single(f => f.Twin!.Name == member.Name).Field;
            Assert.True(member.Offset == (int)Marshal.OffsetOf(type, field.Name),
                $"{cName}.{member.Name} is at {member.Offset} in C, {Marshal.OffsetOf(type, field.Name)} in C#");
            Assert.True(member.Size == SizeOf(field.FieldType),
                $"{cName}.{member.Name} is {member.Size} bytes in C, {SizeOf(field.FieldType)} in C#");
        }
    }

    /// <summary>
    /// Asserts that enum <paramref name="type"/> has its C twin's names and values. Members
    /// without a [CTwin] are C#-side conveniences (EndpointFlags.None) unless
    /// <paramref name="untwinnedByName"/>, which matches them by their own name.
    /// </summary>
    public static void AssertEnumMatches(BtfFile btf, Type type, bool untwinnedByName = false)
    {
        var cName = type.GetCustomAttribute<CTwinAttribute>()!.Name;
        var values = btf.FindEnum(cName);
        Assert.True(values is not null, $"enum {cName} is not in the object's BTF");
        var mirrored = type.GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => untwinnedByName || f.GetCustomAttribute<CTwinAttribute>() is not null)
            .ToDictionary(f => f.GetCustomAttribute<CTwinAttribute>()?.Name ?? f.Name,
                f => Convert.ToInt64(f.GetRawConstantValue(), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(values.OrderBy(kv => kv.Key), mirrored.OrderBy(kv => kv.Key));
    }

    // Unsafe.SizeOf<T> is the managed layout size, which for these blittable structs is the native one.
    private static int SizeOf(Type t) =>
        (int)typeof(System.Runtime.CompilerServices.Unsafe).GetMethod(nameof(System.Runtime.CompilerServices.Unsafe.SizeOf))!
            .MakeGenericMethod(t).Invoke(null, null)!;
}
