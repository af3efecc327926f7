using System.Globalization;
using Membrane.Testing;

namespace Membrane.Node.Tests;

/// <summary>
/// A private podman 4.3 (Debian) for one test, run inside a <see cref="TestNode"/>'s namespace
/// with the Membrane CNI plugin as its only network. Nothing of the machine's podman setup is
/// used: <c>CONTAINERS_CONF</c> and <c>CONTAINERS_STORAGE_CONF</c> point at files in a temp dir
/// that also holds the plugin dir, the network config dir, vfs storage and a busybox-static
/// rootfs (KERNEL-NOTES: "Reference CNI plugins and a real runtime" has why each setting is
/// there). Dispose removes the containers, resets the storage, ends any conmon still running
/// for this dir and deletes the dir, also after a failed test.
/// </summary>
internal sealed class PodmanHost : IDisposable
{
    private readonly TestNode _node;
    private readonly Dictionary<string, string> _env;
    private readonly List<string> _containers = [];
    private bool _disposed;

    /// <summary>Debian's busybox-static: one static binary, so the rootfs needs no libraries.</summary>
    public const string Busybox = "/bin/busybox";

    public PodmanHost(TestNode node)
    {
        _node = node;
        Dir = Path.Combine(Path.GetTempPath(), RunPrefix.Next("podm"));
        NetworkName = Path.GetFileName(Dir);
        try
        {
            var pluginDir = Path.Combine(Dir, "cni");
            var configDir = Path.Combine(Dir, "net.d");
            Directory.CreateDirectory(pluginDir);
            Directory.CreateDirectory(configDir);
            // podman (libcni) looks the plugin up by the config's "type": a file named membrane.
            File.CreateSymbolicLink(Path.Combine(pluginDir, "membrane"), TestNode.CniBinary);
            File.WriteAllText(Path.Combine(configDir, NetworkName + ".conflist"),
                $$"""{"cniVersion":"1.0.0","name":"{{NetworkName}}","plugins":[{"type":"membrane","socket":"{{node.SocketPath}}","mtu":1500}]}""");
            WriteRootfs();
            var containersConf = Path.Combine(Dir, "containers.conf");
            File.WriteAllText(containersConf, $"""
                [containers]
                # root here lacks CAP_SYS_RESOURCE: podman's defaults (1048576) cannot be set.
                default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

                [network]
                network_backend = "cni"
                cni_plugin_dirs = ["{pluginDir}"]
                network_config_dir = "{configDir}"
                default_network = "{NetworkName}"

                [engine]
                cgroup_manager = "cgroupfs"
                events_logger = "file"
                events_logfile_path = "{Path.Combine(Dir, "events.log")}"
                # crun 1.8 fails on this host's hybrid cgroups; runc works.
                runtime = "runc"
                tmp_dir = "{Path.Combine(Dir, "tmp")}"
                volume_path = "{Path.Combine(Dir, "volumes")}"
                """);
            var storageConf = Path.Combine(Dir, "storage.conf");
            File.WriteAllText(storageConf, $"""
                [storage]
                driver = "vfs"
                graphroot = "{Path.Combine(Dir, "graph")}"
                runroot = "{Path.Combine(Dir, "run")}"
                """);
            _env = new Dictionary<string, string>
            {
                ["CONTAINERS_CONF"] = containersConf,
                ["CONTAINERS_STORAGE_CONF"] = storageConf,
            };
        }
        catch
        {
            if (Directory.Exists(Dir))
            {
                Directory.Delete(Dir, recursive: true);
            }
            throw;
        }
    }

    /// <summary>The temp dir that holds everything of this podman.</summary>
    public string Dir { get; }

    /// <summary>The Membrane network's name (the conflist's "name").</summary>
    public string NetworkName { get; }

    /// <summary>The rootfs folder the containers run from.</summary>
    public string Rootfs => Path.Combine(Dir, "rootfs");

    /// <summary>Runs podman inside the node's namespace with this host's private config.</summary>
    public (int ExitCode, string Stdout, string Stderr) Podman(params string[] args) =>
        Tools.Run("nsenter", [$"--net=/run/netns/{_node.Name}", "podman", .. args], env: _env, timeout: TimeSpan.FromSeconds(60));

    /// <summary>Starts <c>busybox sleep 300</c> detached on the Membrane network; returns the container id.</summary>
    public string RunSleeper(string name)
    {
        lock (_containers)
        {
            _containers.Add(name);
        }
        // --rootfs makes the first positional argument a rootfs folder instead of an image.
        var (code, stdout, stderr) = Podman("run", "-d", "--name", name, "--network", NetworkName, "--rootfs", Rootfs, "/bin/busybox", "sleep", "300");
        if (code != 0)
        {
            throw new InvalidOperationException($"failed to run container {name}: podman exited {code}: {stderr}{stdout}\nagent log:\n{_node.AgentLog}");
        }
        return stdout.Trim();
    }

    /// <summary>Removes containers at once (no stop timeout); returns podman's result.</summary>
    public (int ExitCode, string Stdout, string Stderr) Remove(params string[] names) =>
        Podman(["rm", "-f", "-t", "0", .. names]);

    /// <summary>Pids of processes whose command line names this host's dir (conmon, the container's sleep).</summary>
    public IReadOnlyList<int> Processes()
    {
        var pids = new List<int>();
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(proc), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(proc, "cmdline"));
                if (cmdline.Contains(Dir, StringComparison.Ordinal))
                {
                    pids.Add(pid);
                }
            }
            catch (IOException)
            {
                // The process ended while we looked.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return pids;
    }

    /// <summary>A folder podman can run busybox from: the binary, its applet links and the mount points runc expects.</summary>
    private void WriteRootfs()
    {
        foreach (var dir in new[] { "bin", "etc", "proc", "sys", "dev", "tmp", "run", "var" })
        {
            Directory.CreateDirectory(Path.Combine(Rootfs, dir));
        }
        File.Copy(Busybox, Path.Combine(Rootfs, "bin", "busybox"));
        foreach (var applet in new[] { "sh", "sleep", "ping", "ip", "ifconfig", "cat" })
        {
            File.CreateSymbolicLink(Path.Combine(Rootfs, "bin", applet), "busybox");
        }
        File.WriteAllText(Path.Combine(Rootfs, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\n");
        File.WriteAllText(Path.Combine(Rootfs, "etc", "group"), "root:x:0:\n");
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        string[] names;
        lock (_containers)
        {
            names = [.. _containers];
        }
        // While the agent runs, podman's rm calls CNI DEL and the endpoints go with the containers.
        if (names.Length > 0)
        {
            Remove(names);
        }
        // vfs storage is plain folders, but reset also drops podman's database and locks.
        Podman("system", "reset", "-f");
        // conmon exits when its container does; anything of ours still alive is ended by pid.
        foreach (var pid in Processes())
        {
            try
            {
                using var p = System.Diagnostics.Process.GetProcessById(pid);
                p.Kill();
                p.WaitForExit(TimeSpan.FromSeconds(5));
            }
            catch (ArgumentException)
            {
                // Already gone.
            }
            catch (InvalidOperationException)
            {
            }
        }
        foreach (var mount in File.ReadAllLines("/proc/self/mounts").Select(l => l.Split(' ')[1]).Where(m => m.StartsWith(Dir, StringComparison.Ordinal)).Reverse())
        {
            Tools.Run("umount", ["-l", mount]);
        }
        if (Directory.Exists(Dir))
        {
            Directory.Delete(Dir, recursive: true);
        }
    }
}
