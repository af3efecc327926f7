using System.Text.Json;
using static Membrane.Cni.Tests.CniHarness;

namespace Membrane.Cni.Tests;

public sealed class CniPluginTests : IDisposable
{
    private const string AddAnswer = """
        {"endpointId":7,"hostInterface":"mbr1a2b3c","hostMac":"02:00:00:00:00:01","podMac":"02:00:00:00:00:02","mtu":1450,
         "ips":[{"address":"198.18.0.5/24","gateway":"198.18.0.1"},{"address":"fd00:198:18::5/64","gateway":"fd00:198:18::1"}],
         "routes":[{"dst":"0.0.0.0/0","gw":"198.18.0.1"},{"dst":"::/0","gw":"fd00:198:18::1"}]}
        """;

    private readonly RecordingAgent _agent = new();

    public void Dispose() => _agent.Dispose();

    public static TheoryData<string> AllVersions => new(CniVersion.Supported);

    [Theory]
    [MemberData(nameof(AllVersions))]
    public void AddAnswersInTheConfigsVersion(string version)
    {
        _agent.Answers["/v1/cni/add"] = (200, AddAnswer);
        var (code, result, raw) = Run(Env("ADD", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;FOO=bar"),
            Conf(version, _agent.SocketPath, ""","mtu":1450,"args":{"cni":{"labels":[{"key":"app","value":"web"}]}}"""));
        Assert.True(code == 0, raw);
        Assert.Equal(version, result.GetProperty("cniVersion").GetString());
        var interfaces = result.GetProperty("interfaces").EnumerateArray().ToList();
        Assert.Equal(["mbr1a2b3c", "eth0"], interfaces.Select(i => i.GetProperty("name").GetString()));
        Assert.Equal("/run/netns/pod1", interfaces[1].GetProperty("sandbox").GetString());
        Assert.Equal(version == "1.1.0", interfaces[1].TryGetProperty("mtu", out _));
        var ips = result.GetProperty("ips").EnumerateArray().ToList();
        Assert.Equal(["198.18.0.5/24", "fd00:198:18::5/64"], ips.Select(i => i.GetProperty("address").GetString()));
        Assert.All(ips, ip => Assert.Equal(1, ip.GetProperty("interface").GetInt32()));
        // Before 1.0.0 each IP names its family (spec 0.3/0.4); from 1.0.0 on the field is gone.
        if (CniVersion.IpsCarryVersion(version))
        {
            Assert.Equal(["4", "6"], ips.Select(i => i.GetProperty("version").GetString()));
        }
        else
        {
            Assert.All(ips, ip => Assert.False(ip.TryGetProperty("version", out _)));
        }
        Assert.Equal(2, result.GetProperty("routes").GetArrayLength());

        var (method, path, body) = Assert.Single(_agent.Requests);
        Assert.Equal(("POST", "/v1/cni/add"), (method, path));
        using var sent = JsonDocument.Parse(body);
        Assert.Equal("c0ffee", sent.RootElement.GetProperty("containerId").GetString());
        Assert.Equal("shop", sent.RootElement.GetProperty("podNamespace").GetString());
        Assert.Equal("web-0", sent.RootElement.GetProperty("podName").GetString());
        Assert.Equal(1450, sent.RootElement.GetProperty("mtu").GetInt32());
        Assert.Equal("web", sent.RootElement.GetProperty("labels")[0].GetProperty("value").GetString());
    }

    [Fact]
    public void AddPassesPrevResultThroughWhenChained()
    {
        _agent.Answers["/v1/cni/add"] = (200, AddAnswer);
        const string prev = """
            ,"prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"lo","sandbox":"/run/netns/pod1"}],
             "ips":[{"address":"127.0.0.1/8","interface":0}],"routes":[{"dst":"10.0.0.0/8"}],"dns":{"nameservers":["198.18.0.53"]}}
            """;
        var (code, result, raw) = Run(Env("ADD"), Conf("1.0.0", _agent.SocketPath, prev));
        Assert.True(code == 0, raw);
        Assert.Equal(["lo", "mbr1a2b3c", "eth0"], result.GetProperty("interfaces").EnumerateArray().Select(i => i.GetProperty("name").GetString()));
        var ips = result.GetProperty("ips").EnumerateArray().ToList();
        Assert.Equal("127.0.0.1/8", ips[0].GetProperty("address").GetString());
        Assert.Equal(0, ips[0].GetProperty("interface").GetInt32());
        Assert.Equal(2, ips[1].GetProperty("interface").GetInt32()); // our pod interface is now third
        Assert.Equal("10.0.0.0/8", result.GetProperty("routes")[0].GetProperty("dst").GetString());
        Assert.Equal("198.18.0.53", result.GetProperty("dns").GetProperty("nameservers")[0].GetString());
    }

    [Theory]
    [InlineData("1.0.0")]
    [InlineData("")]
    [InlineData("nonsense")]
    public void VersionListsEverySupportedVersion(string asked)
    {
        var (code, result, _) = Run(new() { ["CNI_COMMAND"] = "VERSION" }, asked.Length == 0 ? "" : $$"""{"cniVersion":"{{asked}}"}""");
        Assert.Equal(0, code);
        Assert.Equal(asked == "1.0.0" ? "1.0.0" : "1.1.0", result.GetProperty("cniVersion").GetString());
        Assert.Equal(CniVersion.Supported, result.GetProperty("supportedVersions").EnumerateArray().Select(v => v.GetString()));
        Assert.Empty(_agent.Requests);
    }

    [Fact]
    public void DelSendsTheAttachmentAndTolleratesAMissingNetns()
    {
        _agent.Answers["/v1/cni/del"] = (200, "{}");
        var env = Env("DEL");
        env.Remove("CNI_NETNS");
        var (code, _, raw) = Run(env, Conf("1.1.0", _agent.SocketPath));
        Assert.True(code == 0, raw);
        Assert.Equal("", raw);
        var (_, path, body) = Assert.Single(_agent.Requests);
        Assert.Equal("/v1/cni/del", path);
        Assert.Contains("\"ifName\":\"eth0\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public void PodmanStyleNamesAreAcceptedAndDelIgnoresCniArgs()
    {
        _agent.Answers["/v1/cni/add"] = (200, AddAnswer);
        _agent.Answers["/v1/cni/del"] = (200, "{}");
        var (code, _, raw) = Run(Env("ADD", args: "IgnoreUnknown=1;K8S_POD_NAME=hungry_Turing"), Conf("1.0.0", _agent.SocketPath));
        Assert.True(code == 0, raw);
        Assert.Contains("\"podName\":\"hungry_Turing\"", _agent.Requests[0].Body, StringComparison.Ordinal);
        // Whatever CNI_ARGS holds, DEL cleans up.
        Assert.Equal(0, Run(Env("DEL", args: "junk-without-equals"), Conf("1.0.0", _agent.SocketPath)).ExitCode);
    }

    [Fact]
    public void GcSendsTheValidAttachments()
    {
        _agent.Answers["/v1/cni/gc"] = (200, """{"released":[{"containerID":"old","ifname":"eth0"}]}""");
        var env = new Dictionary<string, string> { ["CNI_COMMAND"] = "GC", ["CNI_PATH"] = "/usr/lib/cni" };
        var (code, _, raw) = Run(env, Conf("1.1.0", _agent.SocketPath,
            ""","cni.dev/valid-attachments":[{"containerID":"a1","ifname":"eth0"},{"containerID":"b2","ifname":"net1"}]"""));
        Assert.True(code == 0, raw);
        var (_, path, body) = Assert.Single(_agent.Requests);
        Assert.Equal("/v1/cni/gc", path);
        using var sent = JsonDocument.Parse(body);
        Assert.Equal(["a1", "b2"], sent.RootElement.GetProperty("validAttachments").EnumerateArray().Select(a => a.GetProperty("containerID").GetString()));
    }

    [Fact]
    public void StatusIsZeroWhenTheAgentAnswersAnd50WhenItIsGone()
    {
        _agent.Answers["/v1/status"] = (200, """{"nodeName":"n","version":"v"}""");
        var env = new Dictionary<string, string> { ["CNI_COMMAND"] = "STATUS", ["CNI_PATH"] = "/usr/lib/cni" };
        Assert.Equal(0, Run(env, Conf("1.1.0", _agent.SocketPath)).ExitCode);

        var (code, result, _) = Run(env, Conf("1.1.0", "/nonexistent/membrane.sock"));
        Assert.Equal(1, code);
        Assert.Equal(50, result.GetProperty("code").GetInt32());
    }

    [Fact]
    public void AnUnreachableAgentAsksTheRuntimeToRetry()
    {
        var (code, result, _) = Run(Env("ADD"), Conf("1.1.0", "/nonexistent/membrane.sock"));
        Assert.Equal(1, code);
        Assert.Equal(11, result.GetProperty("code").GetInt32());
        Assert.Contains("does not exist", result.GetProperty("details").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void AgentErrorsPassThroughWithTheirCode()
    {
        _agent.Answers["/v1/cni/add"] = (409, """{"code":100,"msg":"failed to allocate an IPv4 address from 198.18.0.0/30: the range is exhausted"}""");
        var (code, result, _) = Run(Env("ADD"), Conf("0.4.0", _agent.SocketPath));
        Assert.Equal(1, code);
        Assert.Equal("0.4.0", result.GetProperty("cniVersion").GetString());
        Assert.Equal(100, result.GetProperty("code").GetInt32());
        Assert.Contains("exhausted", result.GetProperty("msg").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public void CheckComparesPrevResultWithTheEndpoint()
    {
        _agent.Answers["/v1/cni/check"] = (200, "{}");
        _agent.Answers["/v1/endpoints"] = (200, """[{"id":7,"containerId":"c0ffee","ifName":"eth0","ipv4":"198.18.0.5","state":"ready"}]""");
        static string Prev(string address) =>
            $$""","prevResult":{"interfaces":[{"name":"mbr1"},{"name":"eth0","sandbox":"/run/netns/pod1"}],"ips":[{"address":"{{address}}","interface":1}]}""";

        Assert.Equal(0, Run(Env("CHECK"), Conf("1.0.0", _agent.SocketPath, Prev("198.18.0.5/24"))).ExitCode);

        var (code, result, _) = Run(Env("CHECK"), Conf("1.0.0", _agent.SocketPath, Prev("198.18.0.9/24")));
        Assert.Equal(1, code);
        Assert.Contains("198.18.0.5", result.GetProperty("msg").GetString(), StringComparison.Ordinal);
    }

    public static TheoryData<string, Dictionary<string, string>, string, int> BadCalls()
    {
        const string sock = "/nonexistent/membrane.sock";
        var ok = Conf("1.1.0", sock);
        Dictionary<string, string> Without(string name)
        {
            var e = Env("ADD");
            e.Remove(name);
            return e;
        }
        return new()
        {
            { "no command", new() { ["CNI_PATH"] = "/x" }, ok, 4 },
            { "unknown command", Env("FROB"), ok, 4 },
            { "no container id", Without("CNI_CONTAINERID"), ok, 4 },
            { "no netns on ADD", Without("CNI_NETNS"), ok, 4 },
            { "no ifname", Without("CNI_IFNAME"), ok, 4 },
            { "no CNI_PATH", Without("CNI_PATH"), ok, 4 },
            { "bad container id", Env("ADD", containerId: "-x/y"), ok, 4 },
            { "ifname too long", Env("ADD", ifName: "abcdefghijklmnop"), ok, 4 },
            { "ifname with slash", Env("ADD", ifName: "eth/0"), ok, 4 },
            { "unknown CNI_ARGS key", Env("ADD", args: "FOO=bar"), ok, 4 },
            { "CNI_ARGS without '='", Env("ADD", args: "IgnoreUnknown=1;junk"), ok, 4 },
            { "bad pod name", Env("ADD", args: "K8S_POD_NAME=web/0"), ok, 4 },
            { "not JSON", Env("ADD"), "{not json", 6 },
            { "JSON array", Env("ADD"), "[1]", 6 },
            { "unsupported version", Env("ADD"), Conf("2.0.0", sock), 1 },
            { "CHECK before 0.4.0", Env("CHECK"), Conf("0.3.1", sock), 1 },
            { "GC before 1.1.0", new() { ["CNI_COMMAND"] = "GC", ["CNI_PATH"] = "/x" }, Conf("1.0.0", sock), 1 },
            { "no name", Env("ADD"), """{"cniVersion":"1.1.0","type":"membrane"}""", 7 },
            { "bad name", Env("ADD"), """{"cniVersion":"1.1.0","name":"-bad","type":"membrane"}""", 7 },
            { "name not a string", Env("ADD"), """{"cniVersion":"1.1.0","name":5,"type":"membrane"}""", 7 },
            { "mtu too small", Env("ADD"), Conf("1.1.0", sock, ""","mtu":20"""), 7 },
            { "mtu not a number", Env("ADD"), Conf("1.1.0", sock, ""","mtu":"1500" """), 7 },
            { "relative socket", Env("ADD"), Conf("1.1.0", "run/m.sock"), 7 },
            { "labels not a list", Env("ADD"), Conf("1.1.0", sock, ""","args":{"cni":{"labels":{"app":"web"}}}"""), 7 },
            { "label key invalid", Env("ADD"), Conf("1.1.0", sock, ""","args":{"cni":{"labels":[{"key":"-app","value":"web"}]}}"""), 7 },
            { "label value invalid", Env("ADD"), Conf("1.1.0", sock, ""","args":{"cni":{"labels":[{"key":"app","value":"a b"}]}}"""), 7 },
            { "label twice", Env("ADD"), Conf("1.1.0", sock, ""","args":{"cni":{"labels":[{"key":"a","value":"1"},{"key":"a","value":"2"}]}}"""), 7 },
            { "ipam given", Env("ADD"), Conf("1.1.0", sock, ""","ipam":{"type":"host-local"}"""), 2 },
            { "CHECK without prevResult", Env("CHECK"), Conf("1.1.0", sock), 7 },
            { "GC attachments not a list", new() { ["CNI_COMMAND"] = "GC", ["CNI_PATH"] = "/x" }, Conf("1.1.0", sock, ""","cni.dev/valid-attachments":{}"""), 7 },
        };
    }

    [Theory]
    [MemberData(nameof(BadCalls))]
    public void BadInputGetsItsSpecCodeAndNeverReachesTheAgent(string what, Dictionary<string, string> env, string conf, int expectedCode)
    {
        // The recording agent would record any request; the bad call's own socket names a missing file.
        var (code, result, raw) = Run(env, conf.Replace("/nonexistent/membrane.sock", _agent.SocketPath, StringComparison.Ordinal));
        Assert.True(code == 1, $"{what}: {raw}");
        Assert.True(expectedCode == result.GetProperty("code").GetInt32(), $"{what}: {raw}");
        Assert.False(string.IsNullOrWhiteSpace(result.GetProperty("msg").GetString()));
        Assert.Empty(_agent.Requests);
    }
}
