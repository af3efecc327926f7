namespace Membrane.Capture.Tests;

public class SmokeTests
{
    [Fact]
    public void RepoRootIsFound() => Assert.True(File.Exists(Path.Combine(Membrane.Testing.Tools.RepoRoot, "Membrane.slnx")));
}
