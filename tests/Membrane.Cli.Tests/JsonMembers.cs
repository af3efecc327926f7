using System.Text.Json;

namespace Membrane.Cli.Tests;

/// <summary>The member names a command's JSON output uses, at any depth (its help must name every one).</summary>
internal static class JsonMembers
{
    /// <summary>Every object member name in <paramref name="json"/>, sorted.</summary>
    public static SortedSet<string> Names(string json)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        using var doc = JsonDocument.Parse(json);
        Collect(doc.RootElement, names);
        return names;
    }

    private static void Collect(JsonElement e, SortedSet<string> names)
    {
        if (e.ValueKind == JsonValueKind.Object)
        {
            foreach (var p in e.EnumerateObject())
            {
                names.Add(p.Name);
                Collect(p.Value, names);
            }
        }
        else if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in e.EnumerateArray())
            {
                Collect(item, names);
            }
        }
    }
}
