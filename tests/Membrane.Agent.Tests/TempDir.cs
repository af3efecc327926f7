namespace Membrane.Agent.Tests;

/// <summary>A fresh folder under /tmp for one test, removed on dispose (short: unix socket paths are limited to 108 bytes).</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = Directory.CreateTempSubdirectory($"{Membrane.Testing.RunPrefix.Value}-agent-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>The options of an in-process agent whose state and socket (agent.sock) live in this folder.</summary>
    public AgentOptions AgentOptions(string nodeName, string podCidrs = "198.18.0.0/29") => new()
    {
        StateDir = File("state"),
        SocketPath = File("agent.sock"),
        PodCidrs = Agent.AgentOptions.ParsePodCidrs(podCidrs),
        NodeName = nodeName,
        HandleSignals = false,
    };

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
