using LiteVae.Host.Config;
using LiteVae.Host.Security;

namespace LiteVae.Host.Tests.Security;

public sealed class BindPolicyTests
{
    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.3.2.1")]
    [InlineData("::1")]
    [InlineData("[::1]")]
    [InlineData("localhost")]
    public void Loopback_is_allowed_without_TLS(string host) => BindPolicy.Check(host, tls: false, insecure: false, "n.conf");

    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("")]
    [InlineData("10.1.2.3")]
    [InlineData("::")]
    [InlineData("no-such-host.invalid")]
    public void Anything_else_needs_TLS_or_an_explicit_insecure(string host)
    {
        var e = Assert.Throws<ConfigException>(() => BindPolicy.Check(host, tls: false, insecure: false, "n.conf"));
        Assert.Contains("n.conf", e.Message);
        Assert.Contains("--insecure", e.Message);
        BindPolicy.Check(host, tls: true, insecure: false, "n.conf");
        BindPolicy.Check(host, tls: false, insecure: true, "n.conf");
    }
}
