using System.Text.Json;
using Akka.Actor;
using Akka.DependencyInjection;
using Akka.Http.Dsl;
using Akka.Management.Dsl;
using Ceen;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Route = System.ValueTuple<string, Akka.Http.Dsl.HttpModuleBase>;

namespace LiteVae.Host.Node.Management;

/// <summary>
/// <c>GET /health/alive</c> and <c>GET /health/ready</c> on the Akka.Management HTTP endpoint: the node's
/// Akka.Hosting health checks with that tag (<see cref="NodeHealth"/>), 200 when all are healthy, else 503, with
/// every check's status and reason as JSON. Akka.Management for .NET has no health routes of its own and the
/// node has no ASP.NET Core, so this provider runs the host's <see cref="HealthCheckService"/> itself.
/// Loaded by Akka.Management from <c>akka.management.http.routes</c> (NodeManagement), which passes the system.
/// </summary>
public sealed class HealthRoutes(ExtendedActorSystem system) : IManagementRouteProvider
{
    public const string AlivePath = "/health/alive", ReadyPath = "/health/ready";

    public Route[] Routes(ManagementRouteProviderSettings settings) =>
    [
        (AlivePath, new Check(system, NodeHealth.LivenessTag)),
        (ReadyPath, new Check(system, NodeHealth.ReadinessTag)),
    ];

    private sealed class Check(ActorSystem system, string tag) : HttpModuleBase
    {
        public override async Task<bool> HandleAsync(IAkkaHttpContext context)
        {
            if (!string.Equals(context.HttpContext.Request.Method, "GET", StringComparison.OrdinalIgnoreCase)) return false;
            var health = DependencyResolver.For(system).Resolver.GetService<HealthCheckService>()
                         ?? throw new InvalidOperationException("no HealthCheckService: NodeManagement registers it with AddHealthChecks");
            var report = await health.CheckHealthAsync(r => r.Tags.Contains(tag));
            context.HttpContext.Response.StatusCode = report.Status == HealthStatus.Healthy ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable;
            await context.HttpContext.Response.WriteAllJsonAsync(JsonSerializer.Serialize(new
            {
                status = report.Status.ToString(),
                checks = report.Entries.Select(e => new { name = e.Key, status = e.Value.Status.ToString(), description = e.Value.Description ?? e.Value.Exception?.Message }),
            }));
            return true;
        }
    }
}
