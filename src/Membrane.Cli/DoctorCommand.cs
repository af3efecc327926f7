using System.CommandLine;

namespace Membrane.Cli;

internal static class DoctorCommand
{
    public static Command Create() => new("doctor", "Check that this machine has what the agent needs");
}
