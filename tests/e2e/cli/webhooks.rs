//! The `webhook` commands: the original's text, and the secret never shown.

use support::{Cli, ClosedPort, Hub};

use super::{assert_fails, assert_ok};

#[test]
fn webhook_commands_print_the_original_text() {
    let hub = Hub::start();
    // The global --url (before `webhook`) is the hub; `register --url` is the target.
    let closed = ClosedPort::new();
    let cli = Cli::at(&closed.url()).with_credential(&hub);
    let hub_url = hub.url.clone();
    let run = |args: &[&str]| {
        let mut all = vec!["--url", hub_url.as_str(), "webhook"];
        all.extend_from_slice(args);
        cli.run(&all)
    };
    assert_eq!(run(&["list"]).stdout, "No webhooks registered\n");

    let target = "http://127.0.0.1:9/hook";
    let out = run(&[
        "register",
        "--url",
        target,
        "--channel",
        "session:",
        "--event-types",
        "a, b",
        "--secret",
        "s3cret",
    ]);
    assert_ok(&out);
    let reply = out.json();
    let id = reply["webhook_id"].as_u64().unwrap();
    assert_eq!(reply["url"], target);
    assert_eq!(out.stderr, format!("\nWebhook registered: #{id}\n"));
    assert!(!out.stdout.contains("s3cret"), "the secret is never shown");

    let created = reply["created_at"].as_str().unwrap();
    let block = |mark: &str| {
        format!(
            "  [{mark}] #{id} 🔐\n      URL: {target}\n      Channel: session:\n      Events: a, b\n      Created: {created}\n\n"
        )
    };
    assert_eq!(
        run(&["list"]).stdout,
        format!("Webhooks (1):\n\n{}", block("✓"))
    );

    assert_eq!(
        run(&["disable", &id.to_string()]).stdout,
        format!("Webhook #{id} disabled\n")
    );
    assert_eq!(run(&["list"]).stdout, "No webhooks registered\n");
    assert_eq!(
        run(&["list", "--all"]).stdout,
        format!("Webhooks (1):\n\n{}", block("✗"))
    );
    assert_eq!(
        run(&["enable", &id.to_string()]).stdout,
        format!("Webhook #{id} enabled\n")
    );
    assert_eq!(
        run(&["unregister", &id.to_string()]).stdout,
        format!("Webhook #{id} removed\n")
    );

    for verb in ["unregister", "enable", "disable"] {
        let out = run(&[verb, &id.to_string()]);
        assert_fails(&out);
        assert_eq!(out.stderr, "Failed: Webhook not found\n", "{verb}");
    }
}
