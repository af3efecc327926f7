using System.CommandLine;

namespace Membrane.Cli;

internal static class SeedCommands
{
    public static Command Create() => new("seed", "The seed frame: build, parse and checksum");
}
