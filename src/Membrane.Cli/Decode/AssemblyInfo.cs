using System.Runtime.CompilerServices;

// The decoder is internal to the CLI; its tests (the tshark oracle among them) drive it in-process.
[assembly: InternalsVisibleTo("Membrane.Cli.Tests")]
