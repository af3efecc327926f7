using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Membrane.Api;
using Membrane.Linux.Namespaces;

namespace Membrane.Testing;

/// <summary>
/// A node under test: its own network namespace (never the machine's root namespace, see
/// KERNEL-NOTES: DANGER), a real <c>bin/membrane agent</c> process inside it with its own
/// state dir, socket and bpffs pin root, and pods made by executing the real
/// <c>bin/membrane-cni</c> with the CNI environment. Dispose removes pods, agent, pins,
/// namespaces and files, also after a failed test.
/// </summary>
public sealed class TestNode : IDisposable
{
    private readonly List<TestPod> _pods = [];
    private Process? _agent;
    private readonly StringBuilder _agentLog = new();

    public string Name { get; }
    private readonly IReadOnlyList<string> _agentArgs;
    public NetNsFixture Node { get; }
    public string StateDir { get; }
    public string SocketPath { get; }
    public string BpfRoot { get; }
    public string PodCidr4 { get; }
    public string? PodCidr6 { get; }
    public string CniConfDir { get; }
    public MembraneClient Client { get; }

    /// <summary>The built CLI and plugin (make build puts them in bin/).</summary>
    public static string MembraneBinary => Path.Combine(Tools.RepoRoot, "bin", "membrane");
    public static string CniBinary => Path.Combine(Tools.RepoRoot, "bin", "membrane-cni");

    /// <summary>Skips (fails under CI) unless root and the built binaries are there.</summary>
    public static void RequirePrerequisites()
    {
        Requires.Root();
        Requires.That(File.Exists(MembraneBinary) && File.Exists(CniBinary), $"needs {MembraneBinary} and {CniBinary} (run make build)");
        Requires.Tool("ip");
        Requires.Tool("nsenter");
    }

    public TestNode(string podCidr4 = "198.18.0.0/24", string? podCidr6 = "fd00:198:18::/64", bool start = true, IReadOnlyList<string>? agentArgs = null)
    {
        _agentArgs = agentArgs ?? [];
        Node = new NetNsFixture("node");
        Name = Node.Name;
        PodCidr4 = podCidr4;
        PodCidr6 = podCidr6;
        StateDir = Path.Combine(Path.GetTempPath(), Name);
        Directory.CreateDirectory(StateDir);
        SocketPath = Path.Combine(StateDir, "membrane.sock");
        // A pin root of the test's own (the agent adds /<node-name>), removed whole on dispose.
        BpfRoot = $"/sys/fs/bpf/{Name}";
        CniConfDir = Path.Combine(StateDir, "net.d");
        Client = new MembraneClient(SocketPath, TimeSpan.FromSeconds(30));
        if (start)
        {
            StartAgent();
        }
    }

    /// <summary>What the agent wrote to stderr so far (for failure messages).</summary>
    public string AgentLog
    {
        get
        {
            lock (_agentLog)
            {
                return _agentLog.ToString();
            }
        }
    }

    /// <summary>The agent's pid, or null when it is not running.</summary>
    public int? AgentPid => _agent is { HasExited: false } p ? p.Id : null;

    /// <summary>Starts the agent inside the node namespace and waits until its API answers.</summary>
    public void StartAgent()
    {
        var cidrs = PodCidr6 is null ? PodCidr4 : $"{PodCidr4},{PodCidr6}";
        // nsenter switches only the network namespace. `ip netns exec` would also give the agent
        // a private mount namespace with a fresh /sys, hiding /sys/fs/bpf: its pins would die
        // with it and a restarted agent could not adopt them.
        var psi = new ProcessStartInfo("nsenter")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { $"--net=/run/netns/{Name}", MembraneBinary, "agent", "--state-dir", StateDir, "--socket", SocketPath,
                     "--pod-cidr", cidrs, "--node-name", Name, "--bpf-root", BpfRoot }.Concat(_agentArgs))
        {
            psi.ArgumentList.Add(a);
        }
        var agent = Process.Start(psi) ?? throw new InvalidOperationException("failed to start the agent");
        agent.ErrorDataReceived += (_, e) => Append(e.Data);
        agent.OutputDataReceived += (_, e) => Append(e.Data);
        agent.BeginErrorReadLine();
        agent.BeginOutputReadLine();
        _agent = agent;
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (agent.HasExited)
            {
                throw new InvalidOperationException($"the agent exited with code {agent.ExitCode} at start:\n{AgentLog}");
            }
            try
            {
                Client.StatusAsync().GetAwaiter().GetResult();
                return;
            }
            catch (AgentUnreachableException) when (deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                Thread.Sleep(50);
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_agentLog)
        {
            _agentLog.AppendLine(line);
        }
    }

    /// <summary>Stops the agent: SIGTERM (graceful) or SIGKILL (a crash), and waits for it.</summary>
    public void StopAgent(bool kill = false)
    {
        if (_agent is not { } agent)
        {
            return;
        }
        if (!agent.HasExited)
        {
            if (kill)
            {
                agent.Kill();
            }
            else
            {
                // nsenter execs the agent in its own process image, so the pid is the agent's.
                Tools.Run("kill", ["-TERM", agent.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            }
            if (!agent.WaitForExit(TimeSpan.FromSeconds(20)))
            {
                agent.Kill();
                agent.WaitForExit();
            }
        }
        agent.Dispose();
        _agent = null;
    }

    /// <summary>The network config the pods get (CNI spec 1.1.0).</summary>
    public string NetworkConfig(string version = "1.1.0", int mtu = 1500) =>
        $$"""{"cniVersion":"{{version}}","name":"membrane-test","type":"membrane","socket":"{{SocketPath}}","mtu":{{mtu}}}""";

    /// <summary>Runs bin/membrane-cni once; returns exit code, stdout, stderr.</summary>
    public (int ExitCode, string Stdout, string Stderr) Cni(string command, string config, string? containerId = null,
        string? netns = null, string ifName = "eth0", string? args = null)
    {
        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_PATH"] = Path.GetDirectoryName(CniBinary)!,
        };
        if (containerId is not null) env["CNI_CONTAINERID"] = containerId;
        if (netns is not null) env["CNI_NETNS"] = netns;
        if (ifName.Length > 0) env["CNI_IFNAME"] = ifName;
        if (args is not null) env["CNI_ARGS"] = args;
        return Tools.Run(CniBinary, [], stdin: config, env: env, timeout: TimeSpan.FromSeconds(60));
    }

    /// <summary>Creates a pod: a namespace, then CNI ADD with labels. Throws with the plugin's error when ADD fails.</summary>
    public TestPod AddPod(string name, params (string Key, string Value)[] labels)
    {
        var ns = new NetNsFixture("pod");
        var pod = new TestPod(this, name, ns, "c" + ns.Name);
        var labelJson = string.Join(",", labels.Select(l => $$"""{"key":"{{l.Key}}","value":"{{l.Value}}"}"""));
        var config = NetworkConfig()[..^1] + ",\"args\":{\"cni\":{\"labels\":[" + labelJson + "]}}}";
        var (code, stdout, stderr) = Cni("ADD", config, pod.ContainerId, pod.NetNsPath, args: $"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={name}");
        if (code != 0)
        {
            ns.Dispose();
            throw new InvalidOperationException($"CNI ADD for pod {name} failed ({code}): {stdout}{stderr}\nagent log:\n{AgentLog}");
        }
        pod.Result = JsonDocument.Parse(stdout).RootElement.Clone();
        lock (_pods)
        {
            _pods.Add(pod);
        }
        return pod;
    }

    /// <summary>CNI DEL for a pod (its namespace stays until the pod is disposed).</summary>
    public (int ExitCode, string Stdout, string Stderr) DeletePod(TestPod pod) =>
        Cni("DEL", NetworkConfig(), pod.ContainerId, pod.NetNsPath);

    public void Dispose()
    {
        List<TestPod> pods;
        lock (_pods)
        {
            pods = [.. _pods];
        }
        foreach (var pod in pods)
        {
            if (AgentPid is not null)
            {
                DeletePod(pod);
            }
            pod.Namespace.Dispose();
        }
        StopAgent();
        Client.Dispose();
        Node.Dispose();
        if (Directory.Exists(BpfRoot))
        {
            Directory.Delete(BpfRoot, recursive: true); // unlinking pins (links too) detaches and frees them
        }
        if (Directory.Exists(StateDir))
        {
            Directory.Delete(StateDir, recursive: true);
        }
    }
}

/// <summary>A pod of a <see cref="TestNode"/>: a namespace wired by the CNI plugin.</summary>
public sealed class TestPod(TestNode node, string name, NetNsFixture ns, string containerId)
{
    public TestNode Node { get; } = node;
    public string Name { get; } = name;
    public NetNsFixture Namespace { get; } = ns;
    public string ContainerId { get; } = containerId;
    public string NetNsPath => $"/run/netns/{Namespace.Name}";

    /// <summary>The CNI ADD result.</summary>
    public JsonElement Result { get; internal set; }

    /// <summary>The pod's addresses from the ADD result, without prefix length.</summary>
    public IReadOnlyList<string> Addresses =>
        [.. Result.GetProperty("ips").EnumerateArray().Select(ip => ip.GetProperty("address").GetString()!.Split('/')[0])];

    public string Ipv4 => Addresses.First(a => !a.Contains(':', StringComparison.Ordinal));
    public string Ipv6 => Addresses.First(a => a.Contains(':', StringComparison.Ordinal));

    /// <summary>Runs a command inside the pod's namespace (ip netns exec): ping, etc.</summary>
    public (int ExitCode, string Stdout, string Stderr) Exec(params string[] command) =>
        Tools.Run("ip", ["netns", "exec", Namespace.Name, .. command], timeout: TimeSpan.FromSeconds(60));
}
