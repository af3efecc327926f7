using System.CommandLine;
using Membrane.Cli;
using Membrane.Cli.Client;

// Each command group lives in its own file and adds itself here.
var root = new RootCommand("Membrane: an eBPF-native container network plugin (CNI) for Linux")
{
    PcapCommands.Create(),
    SeedCommands.Create(),
    CaptureCommand.Create(),
    DoctorCommand.Create(),
    AgentCommand.Create(),
};
root.Options.Add(ClientCommand.Socket);
foreach (var command in AgentClientCommands.Create())
{
    root.Subcommands.Add(command);
}
return await root.Parse(args).InvokeAsync();
