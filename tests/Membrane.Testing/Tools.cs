using System.Diagnostics;

namespace Membrane.Testing;

/// <summary>Finds and runs external programs (tshark, clang, scapy's python, our own binaries).</summary>
public static class Tools
{
    /// <summary>The repository root: the folder that holds Membrane.slnx.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>Debian's python3, the one that can import scapy (pyenv's cannot).</summary>
    public const string DebianPython = "/usr/bin/python3";

    /// <summary>The absolute path of <paramref name="name"/>, or null when it is not installed.</summary>
    public static string? Find(string name)
    {
        if (Path.IsPathRooted(name))
        {
            return File.Exists(name) ? name : null;
        }
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
        foreach (var dir in dirs)
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>Runs a program to completion and returns its exit code, stdout and stderr.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(string file, IEnumerable<string> args,
        string? stdin = null, TimeSpan? timeout = null, IDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        if (env is not null)
        {
            foreach (var (k, v) in env)
            {
                psi.Environment[k] = v;
            }
        }
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"failed to start {file}");
        var stdoutTask = p.StandardOutput.ReadToEndAsync();
        var stderrTask = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        if (!p.WaitForExit(timeout ?? TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in time");
        }
        return (p.ExitCode, stdoutTask.Result, stderrTask.Result);
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Membrane.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("failed to find the repository root (Membrane.slnx) above " + AppContext.BaseDirectory);
    }
}
