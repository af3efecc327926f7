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
