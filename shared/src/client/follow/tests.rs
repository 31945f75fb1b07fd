use super::*;

fn unreachable() -> ClientError {
    ClientError::Unreachable {
        url: "http://127.0.0.1:1/mcp".into(),
        detail: "connection refused".into(),
    }
}

fn page(next: u64) -> Page {
    Page {
        events: Vec::new(),
        next_cursor: Some(next.to_string()),
        has_more: false,
    }
}

/// One step whose round answers `outcome`; what the round was asked.
async fn step(
    follow: &mut Follow,
    outcome: Result<Answer<Page>, ClientError>,
) -> (Result<Step, ClientError>, Option<(Option<u64>, u64)>) {
    let mut asked = None;
    let step = follow
        .step(async |params: &GetParams, _timeout| {
            asked = Some((params.cursor, params.wait_seconds));
            outcome
        })
        .await;
    (step, asked)
}

#[test]
fn backoff_doubles_to_its_cap() {
    let b = Backoff::FOLLOW;
    assert_eq!(b.delay(0), Duration::ZERO);
    assert_eq!(b.delay(1), Duration::from_secs(1));
    assert_eq!(b.delay(2), Duration::from_secs(2));
    assert_eq!(b.delay(4), Duration::from_secs(8));
    assert_eq!(b.delay(5), Duration::from_secs(10));
    assert_eq!(b.delay(u32::MAX), Duration::from_secs(10));
}

#[test]
fn rounds_wait_whole_seconds_within_both_caps() {
    assert_eq!(round_seconds(Duration::from_millis(1), 30), 1);
    assert_eq!(round_seconds(Duration::from_secs(5), 30), 5);
    assert_eq!(round_seconds(Duration::from_millis(5001), 30), 6);
    assert_eq!(round_seconds(Duration::from_secs(500), 30), 30);
    assert_eq!(round_seconds(Duration::from_secs(500), 600), 60);
    assert_eq!(round_seconds(Duration::ZERO, 30), 0);
}

#[test]
fn positions_read_as_the_hub_reads_them() {
    let mut query = GetParams::default();
    Position::After(7).apply(&mut query);
    assert_eq!(query.cursor, Some(7));
    let mut query = GetParams::default();
    Position::Resume.apply(&mut query);
    assert!(query.resume);
    assert_eq!(Position::After(7).cursor(), Some(7));
    assert_eq!(Position::Resume.cursor(), None);
}

#[tokio::test(start_paused = true)]
async fn a_lost_hub_is_retried_with_backoff_from_the_same_cursor() {
    let start = Instant::now();
    let mut follow = Follow::new(GetParams::default(), Position::After(5))
        .answered()
        .rounds_of(30);
    let mut retries = Vec::new();
    for _ in 0..3 {
        let (outcome, asked) = step(&mut follow, Err(unreachable())).await;
        let Ok(Step::Lost { first, .. }) = outcome else {
            panic!("a hub that went away is retried: {outcome:?}");
        };
        retries.push((first, start.elapsed(), asked));
    }
    assert_eq!(
        retries,
        [
            (true, Duration::ZERO, Some((Some(5), 30))),
            (false, Duration::from_secs(1), Some((Some(5), 30))),
            (false, Duration::from_secs(3), Some((Some(5), 30))),
        ],
        "said once, backing off 1 s then 2 s, always from cursor 5"
    );
    let (outcome, asked) = step(&mut follow, Ok(Ok(page(9)))).await;
    assert!(
        matches!(
            outcome,
            Ok(Step::Page {
                recovered: true,
                ..
            })
        ),
        "{outcome:?}"
    );
    assert_eq!(asked, Some((Some(5), 30)));
    assert_eq!(start.elapsed(), Duration::from_secs(7), "after 4 s more");
    assert_eq!(follow.cursor(), Some(9), "the page moved the cursor");

    let (outcome, asked) = step(&mut follow, Ok(Ok(page(9)))).await;
    assert!(
        matches!(
            outcome,
            Ok(Step::Page {
                recovered: false,
                ..
            })
        ),
        "{outcome:?}"
    );
    assert_eq!(asked, Some((Some(9), 30)), "no backoff once it answered");
    assert_eq!(start.elapsed(), Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_deadline_bounds_rounds_and_retries() {
    let start = Instant::now();
    let mut follow = Follow::new(GetParams::default(), Position::Unset).answered();
    follow.set_deadline(Some(start + Duration::from_secs(3)));
    let (outcome, asked) = step(&mut follow, Err(unreachable())).await;
    assert!(matches!(outcome, Ok(Step::Lost { first: true, .. })));
    assert_eq!(asked, Some((None, 3)), "a round waits what is left");
    let (outcome, asked) = step(&mut follow, Err(unreachable())).await;
    assert!(matches!(outcome, Ok(Step::Lost { first: false, .. })));
    assert_eq!(asked, Some((None, 2)));
    let (outcome, asked) = step(&mut follow, Err(unreachable())).await;
    assert!(matches!(outcome, Ok(Step::Expired)), "{outcome:?}");
    assert_eq!(asked, None, "no round past the deadline");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(3),
        "the backoff stops at the deadline"
    );
    assert!(follow.expired());
}

#[tokio::test(start_paused = true)]
async fn failures_not_retried_are_the_callers() {
    let mut follow = Follow::new(GetParams::default(), Position::Unset);
    let (outcome, _) = step(&mut follow, Err(unreachable())).await;
    assert!(
        matches!(outcome, Err(ClientError::Unreachable { .. })),
        "a hub down from the start is reported: {outcome:?}"
    );
    let mut follow = follow.answered();
    let (outcome, _) = step(&mut follow, Err(ClientError::Tool("bad".into()))).await;
    assert!(matches!(outcome, Err(ClientError::Tool(_))), "{outcome:?}");
    let refused = Refusal::SessionNotFound {
        session_id: "s".into(),
    };
    let (outcome, _) = step(&mut follow, Ok(Err(refused.clone()))).await;
    assert!(matches!(outcome, Ok(Step::Refused(r)) if r == refused));
}
