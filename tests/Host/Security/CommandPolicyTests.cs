using LiteVae.Actors.Security;
using LiteVae.Host.Security;
using LiteVae.Host.Tests.Support;

namespace LiteVae.Host.Tests.Security;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class CommandPolicyTests : IDisposable
{
    private readonly TempDir _tmp = new();
    private readonly string _run, _data, _outside;

    public CommandPolicyTests()
    {
        _run = Directory.CreateDirectory(_tmp.File("run")).FullName;
        _data = Directory.CreateDirectory(_tmp.File("data")).FullName;
        _outside = Directory.CreateDirectory(_tmp.File("secret")).FullName;
        Directory.CreateDirectory(Path.Combine(_run, "checkpoints", "step-00000010"));
        File.WriteAllText(Path.Combine(_outside, "id_rsa"), "key");
        File.WriteAllText(Path.Combine(_data, "eval-0000.tar"), "tar");
    }

    private PathPolicy Policy() => new(_run, [_data]);

    [Fact]
    public void Paths_inside_the_run_directory_or_a_data_root_resolve_to_real_paths()
    {
        var p = Policy();
        Assert.Equal(Path.Combine(p.RunDir, "checkpoints", "step-00000010"), p.Resolve("checkpoints/step-00000010", "checkpoint"));
        Assert.Equal(Path.Combine(p.RunDir, "checkpoints", "step-00000010"), p.Resolve(Path.Combine(_run, "checkpoints/./step-00000010"), "checkpoint"));
        Assert.EndsWith("data/eval-0000.tar", p.Resolve(Path.Combine(_data, "eval-0000.tar"), "data"));
        // A link inside a root to somewhere else inside a root is fine (checkpoints/last → step-N).
        File.CreateSymbolicLink(Path.Combine(_run, "checkpoints", "last"), "step-00000010");
        Assert.Equal(Path.Combine(p.RunDir, "checkpoints", "step-00000010"), p.Resolve("checkpoints/last", "checkpoint"));
        // Not existing yet is fine (an output), as long as it is inside.
        Assert.Equal(Path.Combine(p.RunDir, "eval", "new.json"), p.Resolve("eval/new.json", "report"));
    }

    [Theory]
    [InlineData("../secret/id_rsa")]
    [InlineData("checkpoints/../../secret/id_rsa")]
    [InlineData("checkpoints/..")]
    [InlineData("..\\secret")]
    public void Dot_dot_segments_are_refused(string path)
    {
        var e = Assert.Throws<PathRefusedException>(() => Policy().Resolve(path, "checkpoint"));
        Assert.Contains("checkpoint: ", e.Message);
        Assert.Contains("'..'", e.Message);
    }

    [Fact]
    public void Absolute_paths_elsewhere_are_refused_naming_the_allowed_roots()
    {
        var e = Assert.Throws<PathRefusedException>(() => Policy().Resolve(Path.Combine(_outside, "id_rsa"), "checkpoint"));
        Assert.Contains("outside the run directory", e.Message);
        Assert.Contains(Policy().RunDir, e.Message);
        Assert.Throws<PathRefusedException>(() => Policy().Resolve("/etc/passwd", "data"));
        // A sibling whose name starts like the root is not inside it.
        Directory.CreateDirectory(_run + "-evil");
        Assert.Throws<PathRefusedException>(() => Policy().Resolve(_run + "-evil", "data"));
    }

    [Fact]
    public void Symbolic_links_that_leave_the_roots_are_refused()
    {
        File.CreateSymbolicLink(Path.Combine(_run, "checkpoints", "escape"), _outside);
        File.CreateSymbolicLink(Path.Combine(_data, "shard.tar"), Path.Combine(_outside, "id_rsa"));
        File.CreateSymbolicLink(Path.Combine(_run, "dangling"), Path.Combine(_outside, "not-yet"));
        var p = Policy();
        Assert.Contains("symbolic link", Assert.Throws<PathRefusedException>(() => p.Resolve("checkpoints/escape/id_rsa", "checkpoint")).Message);
        Assert.Contains("symbolic link", Assert.Throws<PathRefusedException>(() => p.Resolve(Path.Combine(_data, "shard.tar"), "data")).Message);
        Assert.Contains("dangling", Assert.Throws<PathRefusedException>(() => p.Resolve("dangling", "data")).Message);
    }

    [Fact]
    public void Oversized_empty_and_control_character_paths_are_refused()
    {
        var p = Policy();
        Assert.Contains("longer than the limit", Assert.Throws<PathRefusedException>(() => p.Resolve(new string('a', 5000), "data")).Message);
        Assert.Throws<PathRefusedException>(() => p.Resolve("", "data"));
        Assert.Throws<PathRefusedException>(() => p.Resolve("checkpoints/\0x", "data"));
    }

    [Fact]
    public void Shard_specs_in_commands_are_checked_path_by_path()
    {
        var p = Policy();
        File.WriteAllText(Path.Combine(_data, "eval-0001.tar"), "tar");
        p.CheckShardSpec(Path.Combine(_data, "eval-{0000..0001}.tar"), "data");
        p.CheckShardSpec(_data, "data");
        File.CreateSymbolicLink(Path.Combine(_data, "eval-0002.tar"), Path.Combine(_outside, "id_rsa"));
        Assert.Contains("symbolic link", Assert.Throws<PathRefusedException>(() => p.CheckShardSpec(Path.Combine(_data, "eval-{0000..0002}.tar"), "data")).Message);
        Assert.Contains("URLs", Assert.Throws<PathRefusedException>(() => p.CheckShardSpec("http://169.254.169.254/latest/eval-{0..3}.tar", "data")).Message);
        Assert.Contains("at most", Assert.Throws<PathRefusedException>(() => p.CheckShardSpec(Path.Combine(_data, "e-{0..999999999}.tar"), "data")).Message);
        Assert.Throws<PathRefusedException>(() => p.CheckShardSpec("/etc/{1..2}", "data"));
    }

    [Fact]
    public void Run_token_is_owner_only_stable_and_checked_in_constant_time()
    {
        string token = RunToken.Ensure(_run);
        Assert.Equal(token, RunToken.Ensure(_run));
        Assert.Equal(token, RunToken.Read(_run));
        Assert.True(token.Length >= 43);
        Assert.Equal(PrivateFile.OwnerOnly, File.GetUnixFileMode(RunToken.PathIn(_run)));
        Assert.NotEqual(token, RunToken.Ensure(Directory.CreateDirectory(_tmp.File("run2")).FullName));

        var auth = CommandAuthorizer.WithToken(token);
        Assert.Equal(CommandAuthorizer.Verdict.Allowed, auth.Check(token));
        Assert.Equal(CommandAuthorizer.Verdict.Refused, auth.Check(null));
        Assert.Equal(CommandAuthorizer.Verdict.Refused, auth.Check(token[..^1] + (token[^1] == 'A' ? 'B' : 'A')));
        Assert.Equal(CommandAuthorizer.Verdict.Refused, auth.Check(new string('x', 10_000)));
        Assert.Equal(CommandAuthorizer.Verdict.Allowed, CommandAuthorizer.TransportAuthenticated().Check(null));
        Assert.Equal(CommandAuthorizer.Verdict.AskCoordinatorNode, CommandAuthorizer.WithoutToken().Check(token));
        Assert.False(auth.AcceptsUnsigned);
        Assert.False(CommandAuthorizer.WithoutToken().AcceptsUnsigned);
        Assert.True(CommandAuthorizer.TransportAuthenticated().AcceptsUnsigned);

        File.SetUnixFileMode(RunToken.PathIn(_run), PrivateFile.PublicRead);
        Assert.Contains("chmod 600", Assert.Throws<UnauthorizedAccessException>(() => RunToken.Read(_run)).Message);
    }

    public void Dispose() => _tmp.Dispose();
}
