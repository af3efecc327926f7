using System.Globalization;
using System.Runtime.ExceptionServices;
using Membrane.Linux.Interop;

namespace Membrane.Linux.Namespaces;

/// <summary>
/// An open network namespace (a descriptor of /run/netns/NAME, /proc/PID/ns/net, ...).
/// <para>
/// setns(2) moves one OS thread, not a process, so code that must run inside the namespace
/// runs through <see cref="Run{T}(Func{T})"/>: on a new dedicated thread that enters the
/// namespace, runs the code and ends; never on a pool thread, which would carry the
/// namespace into unrelated work. Sockets (netlink, UDP, packet) created inside keep their
/// namespace for life and may be used from any thread afterwards. Code passed to Run must
/// not start threads or tasks: new threads inherit the creating thread's namespace.
/// </para>
/// </summary>
public sealed partial class NetNs : IDisposable
{
    /// <summary>Where named namespaces are bind-mounted, as iproute2 does (NETNS_RUN_DIR).</summary>
    public const string RunDirectory = "/run/netns";

    private static readonly Lock s_createLock = new();

    private NetNs(SafeFileDescriptor handle, string path, string? name)
    {
        Handle = handle;
        Path = path;
        Name = name;
        Inode = ReadInode(handle, path);
    }

    /// <summary>The namespace's name under <see cref="RunDirectory"/>, or null when opened by pid or path.</summary>
    public string? Name { get; }

    /// <summary>The path it was opened from.</summary>
    public string Path { get; }

    /// <summary>The namespace's inode number: equal inodes mean the same namespace.</summary>
    public ulong Inode { get; }

    /// <summary>The open descriptor (for IFLA_NET_NS_FD and setns).</summary>
    public SafeFileDescriptor Handle { get; }

    /// <summary>
    /// Creates a named network namespace exactly as <c>ip netns add NAME</c> does
    /// (iproute2 ip/ipnetns.c netns_add): /run/netns made a shared mount point, an empty
    /// file /run/netns/NAME, a fresh namespace made by unshare(CLONE_NEWNET) on a dedicated
    /// thread and bind-mounted onto that file. Returns the namespace, open.
    /// </summary>
    public static NetNs Create(string name)
    {
        ValidateName(name);
        var path = PathOf(name);
        var operation = $"create network namespace {name}";
        lock (s_createLock)
        {
            PrepareRunDirectory(operation);
            var fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC, 0);
            if (fd < 0)
            {
                throw new NamespaceException(operation, Libc.LastErrno);
            }
            // Only the file is needed (the mount point); its descriptor closes at once.
            new SafeFileDescriptor(fd).Dispose();
        }
        try
        {
            RunOnNewThread($"netns-add {name}", () =>
            {
                // The dedicated thread leaves for a brand-new namespace and ends afterwards.
                if (Libc.Unshare(Libc.CLONE_NEWNET) != 0)
                {
                    throw new NamespaceException(operation, Libc.LastErrno);
                }
                if (Libc.Mount("/proc/thread-self/ns/net", path, "none", Libc.MS_BIND, 0) != 0)
                {
                    throw new NamespaceException(operation, Libc.LastErrno);
                }
                return 0;
            });
            return Open(name);
        }
        catch
        {
            RemoveMount(path, ignoreMissing: true);
            throw;
        }
    }

    /// <summary>
    /// Deletes a named network namespace as <c>ip netns del NAME</c> does: a lazy unmount
    /// (MNT_DETACH) and unlink. The namespace itself lives on while anything (a process, an
    /// open descriptor, a socket) still holds it.
    /// </summary>
    public static void Delete(string name)
    {
        ValidateName(name);
        RemoveMount(PathOf(name), ignoreMissing: false);
    }

    /// <summary>True when /run/netns/NAME exists.</summary>
    public static bool Exists(string name)
    {
        ValidateName(name);
        return File.Exists(PathOf(name));
    }

    /// <summary>The names under /run/netns (what <c>ip netns list</c> shows).</summary>
    public static IReadOnlyList<string> List() =>
        Directory.Exists(RunDirectory)
            ? Directory.GetFiles(RunDirectory).Select(p => System.IO.Path.GetFileName(p)).Order(StringComparer.Ordinal).ToArray()
            : [];

    /// <summary>Opens the named namespace /run/netns/NAME.</summary>
    public static NetNs Open(string name)
    {
        ValidateName(name);
        return OpenCore(PathOf(name), name);
    }

    /// <summary>Opens a namespace by path (a bind mount or /proc/PID/ns/net).</summary>
    public static NetNs OpenPath(string path) => OpenCore(path, null);

    /// <summary>Opens the network namespace of process <paramref name="pid"/>.</summary>
    public static NetNs OpenPid(int pid) => OpenCore($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/ns/net", null);

    /// <summary>Opens the calling thread's own network namespace.</summary>
    public static NetNs OpenCurrent() => OpenCore("/proc/thread-self/ns/net", null);

    /// <summary>The inode of the calling thread's network namespace.</summary>
    public static unsafe ulong CurrentInode()
    {
        const string path = "/proc/thread-self/ns/net";
        var stat = stackalloc byte[Libc.StatBufferSize];
        if (Libc.Stat(path, stat) != 0)
        {
            throw new NamespaceException($"read namespace inode of {path}", Libc.LastErrno);
        }
        return *(ulong*)(stat + Libc.StatInoOffset);
    }

    /// <summary>Runs <paramref name="func"/> inside this namespace on a new dedicated thread and returns its result or rethrows its exception.</summary>
    public T Run<T>(Func<T> func)
    {
        ArgumentNullException.ThrowIfNull(func);
        return RunOnNewThread(ThreadName, () => InsideThenBack(func));
    }

    /// <summary>Runs <paramref name="action"/> inside this namespace on a new dedicated thread; rethrows its exception.</summary>
    public void Run(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        Run(() =>
        {
            action();
            return true;
        });
    }

    /// <summary>
    /// Like <see cref="Run{T}(Func{T})"/> without blocking the caller: the task completes when
    /// the dedicated thread has finished. Continuations never run on that thread.
    /// </summary>
    public Task<T> RunAsync<T>(Func<T> func)
    {
        ArgumentNullException.ThrowIfNull(func);
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                var result = InsideThenBack(func);
                tcs.SetResult(result);
            }
            catch (Exception e)
            {
                tcs.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = ThreadName,
        };
        thread.Start();
        return tcs.Task;
    }

    /// <summary>Like <see cref="Run(Action)"/> without blocking the caller.</summary>
    public Task RunAsync(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        return RunAsync(() =>
        {
            action();
            return true;
        });
    }

    /// <inheritdoc/>
    public void Dispose() => Handle.Dispose();

    /// <inheritdoc/>
    public override string ToString() => Name ?? Path;

    private string ThreadName => $"netns {Name ?? Path}";

    /// <summary>
    /// Runs <paramref name="func"/> inside this namespace on the calling (dedicated) thread, then
    /// moves the thread back to the namespace it came from before anyone hears of the result.
    /// Back matters: a thread inherits the namespace of the thread that starts it, and the
    /// runtime starts thread-pool workers from whichever thread queues work (completing a task
    /// with asynchronous continuations does). A pool worker born here would run unrelated code
    /// in this namespace. (Work that <paramref name="func"/> itself queues can still do that:
    /// keep asynchronous work out of it.)
    /// </summary>
    private T InsideThenBack<T>(Func<T> func)
    {
        using var home = OpenCurrent();
        Enter();
        try
        {
            return func();
        }
        finally
        {
            home.Enter();
        }
    }

    /// <summary>Moves the calling (dedicated) thread into this namespace.</summary>
    private void Enter()
    {
        if (Libc.SetNs(Handle, Libc.CLONE_NEWNET) != 0)
        {
            throw new NamespaceException($"enter network namespace {this}", Libc.LastErrno);
        }
    }

    private static T RunOnNewThread<T>(string name, Func<T> func)
    {
        T result = default!;
        ExceptionDispatchInfo? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = func();
            }
            catch (Exception e)
            {
                error = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = name,
        };
        thread.Start();
        thread.Join();
        error?.Throw();
        return result;
    }

    private static NetNs OpenCore(string path, string? name)
    {
        var fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new NamespaceException($"open network namespace {name ?? path}", Libc.LastErrno);
        }
        var handle = new SafeFileDescriptor(fd);
        try
        {
            return new NetNs(handle, path, name);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// mkdir /run/netns and make it a shared mount point so that namespace mounts propagate
    /// between mount namespaces; if it is not a mount point yet (EINVAL), bind-mount it onto
    /// itself first. Same loop as iproute2's netns_add.
    /// </summary>
    private static void PrepareRunDirectory(string operation)
    {
        Directory.CreateDirectory(RunDirectory);
        var madeMount = false;
        while (Libc.Mount("", RunDirectory, "none", Libc.MS_SHARED | Libc.MS_REC, 0) != 0)
        {
            var errno = Libc.LastErrno;
            if (errno != Errno.EINVAL || madeMount)
            {
                throw new NamespaceException($"{operation} (make {RunDirectory} a shared mount)", errno);
            }
            if (Libc.Mount(RunDirectory, RunDirectory, "none", Libc.MS_BIND | Libc.MS_REC, 0) != 0)
            {
                throw new NamespaceException($"{operation} (bind-mount {RunDirectory})", Libc.LastErrno);
            }
            madeMount = true;
        }
    }

    private static void RemoveMount(string path, bool ignoreMissing)
    {
        var name = System.IO.Path.GetFileName(path);
        // EINVAL: not a mount point (the bind mount never happened); the file still goes.
        if (Libc.Umount2(path, Libc.MNT_DETACH) != 0)
        {
            var errno = Libc.LastErrno;
            if (errno == Errno.ENOENT)
            {
                if (ignoreMissing)
                {
                    return;
                }
                throw new NamespaceException($"delete network namespace {name}", errno);
            }
            if (errno != Errno.EINVAL)
            {
                throw new NamespaceException($"delete network namespace {name} (unmount)", errno);
            }
        }
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new NamespaceException($"delete network namespace {name} (unlink)", Errno.EIO, e);
        }
    }

    private static string PathOf(string name) => System.IO.Path.Combine(RunDirectory, name);

    private static void ValidateName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        // iproute2 rejects the same: a name is one path component (NAME_MAX 255).
        if (name.Contains('/') || name is "." or ".." || name.Length > 255 || name.Contains('\0'))
        {
            throw new ArgumentException($"invalid network namespace name '{name}'", nameof(name));
        }
    }

    /// <summary>
    /// Checks that <paramref name="handle"/> is a network namespace (NS_GET_NSTYPE, Linux 4.11)
    /// and returns its inode (fstat st_ino): the identity `ip netns identify` compares.
    /// </summary>
    private static unsafe ulong ReadInode(SafeFileDescriptor handle, string path)
    {
        var type = Libc.Ioctl(handle, Libc.NS_GET_NSTYPE, 0);
        if (type != Libc.CLONE_NEWNET)
        {
            throw new NamespaceException($"open network namespace {path} (not a network namespace)", type < 0 ? Libc.LastErrno : Errno.EINVAL);
        }
        var stat = stackalloc byte[Libc.StatBufferSize];
        if (Libc.FStat(handle, stat) != 0)
        {
            throw new NamespaceException($"read namespace inode of {path}", Libc.LastErrno);
        }
        return *(ulong*)(stat + Libc.StatInoOffset);
    }
}
