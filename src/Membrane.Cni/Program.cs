using Membrane.Cni;

// The CNI execution protocol: parameters in the environment, configuration on stdin,
// the result or error object on stdout, logs on stderr (SPEC.md "Overview").
using var stdin = Console.OpenStandardInput();
using var stdout = Console.OpenStandardOutput();
return await CniPlugin.RunAsync(Environment.GetEnvironmentVariable, stdin, stdout, Console.Error);
