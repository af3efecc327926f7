using System.CommandLine;

namespace Membrane.Cli;

internal static class PcapCommands
{
    public static Command Create() => new("pcap", "Offline capture-file tools: decode and stats");
}
