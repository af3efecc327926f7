// The agent and these tests are Linux-only (unix sockets with file modes, flock).
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
