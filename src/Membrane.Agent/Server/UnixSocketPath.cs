using System.Net.Sockets;

namespace Membrane.Agent.Server;

/// <summary>Preparing and securing the API socket's path.</summary>
internal static class UnixSocketPath
{
    /// <summary>
    /// Makes <paramref name="path"/> free to bind: creates its folder, and removes a socket file
    /// left by an agent that died — but only when nothing accepts connections on it (another
    /// agent is running) and only when it is a socket (never someone's file).
    /// </summary>
    /// <exception cref="AgentException">Another agent listens there, or a non-socket file is in the way.</exception>
    public static void Prepare(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("failed to start the agent: it runs on Linux only");
        }
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null && !Directory.Exists(dir))
        {
            // 0755: the socket's own mode guards access; the folder only has to be reachable.
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }
        if (!File.Exists(path))
        {
            return;
        }
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new AgentException(Api.ErrorCodes.IoFailure, $"failed to listen on {path}: another process (an agent?) accepts connections there");
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                // Nobody listens: a stale socket, or a file that is not a socket (connect(2)
                // answers ECONNREFUSED for both). Told apart below.
            }
        }
        try
        {
            // open(2) on a socket file fails with ENXIO; on a regular file it succeeds.
            File.OpenHandle(path, FileMode.Open, FileAccess.Read).Dispose();
            throw new AgentException(Api.ErrorCodes.IoFailure, $"failed to listen on {path}: a file that is not a socket is in the way");
        }
        catch (IOException)
        {
            File.Delete(path);
        }
    }
}
