using BenchmarkDotNet.Running;
using Membrane.Benchmarks;

// `datapath` runs the kernel benchmarks (root); anything else goes to BenchmarkDotNet.
if (args is ["datapath", ..])
{
    return DatapathBenchmarks.Run(args[1..]);
}
BenchmarkSwitcher.FromAssembly(typeof(PacketBenchmarks).Assembly).Run(args);
return 0;
