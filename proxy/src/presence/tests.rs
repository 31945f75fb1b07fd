use serde_json::json;
use shared::ToolOutput;
use shared::mcp::{tool_error, tool_result};
use shared::tools::sessions::RegisterSession;

use super::*;

fn presence(lease_seconds: u64) -> Presence {
    let hub = Arc::new(HubClient::new("http://127.0.0.1:1", None).unwrap());
    let config = Config {
        url: "http://127.0.0.1:1".into(),
        token: None,
        name: Some("t".into()),
        client_id: Some("c".into()),
        lease_seconds,
        push_channels: Vec::new(),
        wake: crate::wake::WakeConfig {
            paths: Vec::new(),
            state_dir: None,
        },
    };
    let (pusher, _) = Pusher::new(hub.clone());
    Presence::new(hub, config, 1, pusher)
}

#[test]
fn what_is_due_in_each_phase() {
    let p = presence(3);
    // A client that never settles in never registers.
    assert_eq!(p.phase(), Phase::Idle);
    assert_eq!(p.due(), Due::After(IDLE));
    p.want();
    assert_eq!(p.phase(), Phase::Wanted);
    assert_eq!(p.due(), Due::Now, "registration is due at once");
    p.set_phase(Phase::Registered("s".into()));
    let Due::After(wait) = p.due() else {
        panic!("nothing is due right after registering");
    };
    assert!(
        wait <= Duration::from_secs(1),
        "renewal within a third of the lease"
    );
    p.set_phase(Phase::Released("s".into()));
    assert_eq!(
        p.due(),
        Due::After(IDLE),
        "no renewal after the agent unregistered"
    );
    p.want();
    assert_eq!(
        p.phase(),
        Phase::Released("s".into()),
        "want() does not undo a release"
    );
    p.set_phase(Phase::Closed);
    assert_eq!(p.due(), Due::Closing);
}

#[tokio::test]
async fn nothing_registers_once_closed() {
    let p = presence(60);
    p.close().await;
    assert_eq!(p.phase(), Phase::Closed);
    p.want();
    assert_eq!(p.phase(), Phase::Closed);
    assert_eq!(p.session_id().await, None);
}

#[test]
fn registration_retries_grow_to_a_cap() {
    assert_eq!(RETRY.delay(1), Duration::from_millis(500));
    assert_eq!(RETRY.delay(2), Duration::from_secs(1));
    assert_eq!(RETRY.delay(30), Duration::from_secs(5));
}

#[test]
fn reads_register_replies() {
    let reply = json!({
        "session_id": "s1", "display_id": "s1", "name": "t", "machine": "m",
        "cwd": "/", "repo": "", "active_sessions": 1, "cursor": "7",
        "resumed": false, "tip": "7",
    });
    let ok = ToolOutput {
        result: tool_result(&reply, false),
    };
    assert_eq!(
        registered(ok.answer::<RegisterSession>())
            .unwrap()
            .session_id,
        "s1"
    );
    let refused = ToolOutput {
        result: tool_error("name is required"),
    };
    assert!(matches!(
        registered(refused.answer::<RegisterSession>()),
        Err(RegisterError::Refused(e)) if e == "name is required"
    ));
    let domain = ToolOutput {
        result: tool_result(&json!({"error": "x"}), false),
    };
    assert!(
        matches!(registered(domain.answer::<RegisterSession>()), Err(RegisterError::Refused(e)) if e == "x")
    );
    let shapeless = ToolOutput {
        result: tool_result(&json!({}), false),
    };
    assert!(matches!(
        registered(shapeless.answer::<RegisterSession>()),
        Err(RegisterError::Hub(_))
    ));
}
