using System.Security.Cryptography;
using System.Text;

namespace LiteVae.Host.Security;

/// <summary>
/// The secret that authorizes CLI commands to a cluster running without TLS (on loopback): 256 random
/// bits, created with the run directory as <c>run-token</c> (mode 0600), so only the user who owns the
/// run can read it, and the CLI picks it up from <c>--run-dir</c> or takes it from <c>--token</c>.
/// </summary>
public static class RunToken
{
    public const string FileName = "run-token";

    public static string PathIn(string runDir) => Path.Combine(runDir, FileName);

    /// <summary>The run's token, created on first use.</summary>
    public static string Ensure(string runDir)
    {
        string path = PathIn(runDir);
        if (File.Exists(path)) return Read(runDir);
        string token = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        PrivateFile.WriteSecret(path, Encoding.ASCII.GetBytes(token + "\n"));
        return token;
    }

    /// <summary>Reads the token (refusing a token file other users can read).</summary>
    public static string Read(string runDir)
    {
        string path = PathIn(runDir);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: no run token here; is {runDir} the run directory of the running cluster? " +
                                            "(the coordinator node creates it; or pass --token)", path);
        string token = Encoding.ASCII.GetString(PrivateFile.ReadSecret(path, "run token")).Trim();
        if (token.Length < 32)
            throw new InvalidDataException($"{path}: not a LiteVae run token (too short).");
        return token;
    }
}
