using System.Text;
using System.Text.Json;

namespace Membrane.Cni.Tests;

/// <summary>Runs the plugin in-process with a given environment and stdin; returns exit code and parsed stdout.</summary>
internal static class CniHarness
{
    public static (int ExitCode, JsonElement Output, string Raw) Run(Dictionary<string, string> env, string stdin)
    {
        using var input = new MemoryStream(Encoding.UTF8.GetBytes(stdin));
        using var output = new MemoryStream();
        var code = CniPlugin.RunAsync(k => env.TryGetValue(k, out var v) ? v : null, input, output, TextWriter.Null).GetAwaiter().GetResult();
        var raw = Encoding.UTF8.GetString(output.ToArray());
        var json = raw.Length == 0 ? default : JsonDocument.Parse(raw).RootElement.Clone();
        return (code, json, raw);
    }

    public static Dictionary<string, string> Env(string command, string containerId = "c0ffee", string netns = "/run/netns/pod1",
        string ifName = "eth0", string? args = null)
    {
        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = containerId,
            ["CNI_NETNS"] = netns,
            ["CNI_IFNAME"] = ifName,
            ["CNI_PATH"] = "/usr/lib/cni",
        };
        if (args is not null)
        {
            env["CNI_ARGS"] = args;
        }
        return env;
    }

    public static string Conf(string version, string socket, string extra = "") =>
        $$"""{"cniVersion":"{{version}}","name":"membrane-test","type":"membrane","socket":"{{socket}}"{{extra}}}""";
}
