using System.CommandLine;
using Membrane.Cli;

// Each command group lives in its own file and adds itself here.
var root = new RootCommand("Membrane: an eBPF-native container network plugin (CNI) for Linux")
{
    PcapCommands.Create(),
    SeedCommands.Create(),
    CaptureCommand.Create(),
    DoctorCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
