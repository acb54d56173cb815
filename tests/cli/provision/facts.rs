//! Issue 13 (Azure facts audit): behaviour that needs the provisioning script. The
//! library's own changes (route-all table, resolver selection, hints) are unit tests in
//! src. Runs scripts/provision.sh in dry-run mode only: no Azure, no network (a tripwire
//! `az` and `curl` come first on PATH and must never be called).

use super::{Sandbox, text};

impl Sandbox {
    /// A dry run of provision.sh with `env`; it must call no tool.
    fn dry_run_checked(&self, env: &std::path::Path) -> std::process::Output {
        let out = self.provision(env, &["--dry-run"]);
        self.assert_no_tool_called();
        out
    }
}

/// docs/azure-facts.md P8: /27 is Microsoft's recommendation for one Flex Consumption app;
/// smaller subnets reduce outbound capacity but are not forbidden.
#[test]
fn flex_on_a_28_warns_with_the_reason_and_plans() {
    let sb = Sandbox::new();
    let env = sb.env_file(
        "facts.env",
        &["PLAN_KIND=flex", "INTEGRATION_SUBNET_PREFIX=10.60.1.0/28"],
    );
    let out = sb.dry_run_checked(&env);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: INTEGRATION_SUBNET_PREFIX /28")
            && stderr.contains("/27 Microsoft recommends")
            && stderr.contains("27 shared gateways")
            && stderr.contains("reduces outbound network capacity"),
        "{stderr}"
    );
    assert!(!stderr.contains("needs at least a /27"), "{stderr}");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("az network vnet subnet create") && stdout.contains("10.60.1.0/28"),
        "the subnet is still planned:\n{stdout}"
    );
}

#[test]
fn flex_on_a_27_does_not_warn_and_a_30_is_refused() {
    let sb = Sandbox::new();
    let env = sb.env_file(
        "facts.env",
        &["PLAN_KIND=flex", "INTEGRATION_SUBNET_PREFIX=10.60.1.0/27"],
    );
    let out = sb.dry_run_checked(&env);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("warning: INTEGRATION_SUBNET_PREFIX"),
        "{stderr}"
    );
    let env = sb.env_file(
        "facts.env",
        &["PLAN_KIND=flex", "INTEGRATION_SUBNET_PREFIX=10.60.1.0/30"],
    );
    let out = sb.dry_run_checked(&env);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the smallest Azure subnet is a /29"),
        "{stderr}"
    );
}
