using System.CommandLine;

namespace Membrane.Cli;

internal static class CaptureCommand
{
    public static Command Create() => new("capture", "Capture packets on an interface inside a network namespace");
}
