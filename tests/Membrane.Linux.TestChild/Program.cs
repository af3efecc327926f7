using Membrane.Linux.Bpf;
using Membrane.Linux.Namespaces;
using Membrane.Linux.Netlink;

// Usage: attach-tcx-pin <netns> <interface> <object.o> <program> <ingress|egress> <pin-dir>
// Loads the object, attaches the program to the interface's tcx hook inside the named
// namespace, pins the link as <pin-dir>/link and every map of the object as
// <pin-dir>/<map>, prints "link <id> program <id>" and exits without detaching anything.
if (args is not ["attach-tcx-pin", var netns, var ifName, var objectPath, var programName, var directionText, var pinDir])
{
    Console.Error.WriteLine("usage: attach-tcx-pin <netns> <interface> <object.o> <program> <ingress|egress> <pin-dir>");
    return 2;
}

try
{
    var direction = directionText == "egress" ? TcDirection.Egress : TcDirection.Ingress;
    using var obj = BpfObject.Load(objectPath);
    using var program = obj.FindProgram(programName);
    using var ns = NetNs.Open(netns);
    // Resolve the ifindex and attach on one thread inside the namespace (KERNEL-NOTES: DANGER).
    var (linkId, programId) = ns.Run(() =>
    {
        using var rtnl = Rtnetlink.Open();
        var ifindex = rtnl.GetLink(ifName).Index;
        using var link = BpfLink.AttachTcx(program, ifindex, direction);
        link.Pin(Path.Combine(pinDir, "link"));
        return (link.Id, link.ProgramId);
    });
    foreach (var mapName in new[] { "verdict", "metrics", "events" })
    {
        using var map = obj.FindMap(mapName);
        map.Pin(Path.Combine(pinDir, mapName));
    }
    Console.WriteLine($"link {linkId} program {programId}");
    return 0;
}
catch (Exception e)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}
