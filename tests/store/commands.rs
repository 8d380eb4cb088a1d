//! The command log: recording, idempotency claims, withdrawal, the status
//! moves that guard every effect, and the re-publisher's index.

use std::time::Duration;

use eventsys_messages::{CommandError, CommandId, CommandResult, CommandStatus, Reason, Timestamp};
use eventsys_store::{
    Begun, CommandRecord, Completion, Finished, IdempotencyClaim, Recorded, Store, StoreError,
};

use crate::{command_at, contract};

contract!(
    a_recorded_command_reads_back_as_accepted,
    a_command_id_is_recorded_once,
    an_idempotency_key_names_one_command,
    a_claimed_key_is_found_by_a_read_that_writes_nothing,
    an_expired_claim_is_free_again,
    withdrawing_takes_back_an_accepted_command_and_its_claim,
    withdrawing_a_missing_command_says_nothing_is_left,
    a_started_command_cannot_be_withdrawn,
    processing_begins_once,
    a_delivery_not_as_recorded_changes_nothing,
    a_command_finishes_once,
    stale_commands_are_the_accepted_ones_oldest_first,
    a_reopened_command_is_stale_only_after_its_reopening,
    only_failed_commands_reopen,
    nothing_within_its_retention_is_forgotten,
    the_store_answers_pings,
);

/// The embedded store forgets by itself; DynamoDB's TTL is the server's.
mod embedded_retention {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finished_commands_and_claims_are_forgotten_after_their_retention() {
        super::forgotten_after_retention(&*crate::embedded().await.store).await;
    }
}

fn claim(key: &str, fingerprint: &str) -> IdempotencyClaim {
    IdempotencyClaim {
        key_hash: format!("{key}-{}", eventsys_tests::unique()),
        fingerprint: fingerprint.into(),
        expires_at: Timestamp::now() + Duration::from_secs(3600),
    }
}

/// Begins `record` as a delivery of it exactly as recorded would.
async fn begin(store: &dyn Store, record: &CommandRecord) -> Begun {
    store
        .begin_processing(
            record.command_id,
            record.message.as_bytes(),
            Timestamp::now(),
        )
        .await
        .unwrap()
}

fn failed(id: CommandId) -> Completion {
    Completion::failed(id, CommandError::new(Reason::GaveUp, "test"))
}

async fn a_recorded_command_reads_back_as_accepted(store: &dyn Store) {
    let record = command_at("ann", Timestamp::now());
    assert_eq!(
        store.record_command(&record, None).await.unwrap(),
        Recorded::New
    );
    assert_eq!(
        store.command(record.command_id).await.unwrap(),
        Some(record)
    );
    assert_eq!(store.command(CommandId::generate()).await.unwrap(), None);
}

async fn a_command_id_is_recorded_once(store: &dyn Store) {
    let record = command_at("ann", Timestamp::now());
    store.record_command(&record, None).await.unwrap();
    let mut other = command_at("ann", Timestamp::now());
    other.command_id = record.command_id;
    assert!(matches!(
        store.record_command(&other, None).await,
        Err(StoreError::Rejected { .. })
    ));
    assert_eq!(
        store.command(record.command_id).await.unwrap(),
        Some(record)
    );
}

async fn an_idempotency_key_names_one_command(store: &dyn Store) {
    let claim = claim("k", "request-1");
    let first = command_at("ann", Timestamp::now());
    assert_eq!(
        store.record_command(&first, Some(&claim)).await.unwrap(),
        Recorded::New
    );
    let again = command_at("ann", Timestamp::now());
    assert_eq!(
        store.record_command(&again, Some(&claim)).await.unwrap(),
        Recorded::Existing {
            record: Box::new(first.clone()),
            same_request: true
        }
    );
    let reused = IdempotencyClaim {
        fingerprint: "request-2".into(),
        ..claim.clone()
    };
    assert_eq!(
        store.record_command(&again, Some(&reused)).await.unwrap(),
        Recorded::Existing {
            record: Box::new(first),
            same_request: false
        }
    );
    assert_eq!(store.command(again.command_id).await.unwrap(), None);
}

async fn a_claimed_key_is_found_by_a_read_that_writes_nothing(store: &dyn Store) {
    let key = claim("k", "request-1");
    assert_eq!(store.find_claim(&key).await.unwrap(), None);
    let first = command_at("ann", Timestamp::now());
    store.record_command(&first, Some(&key)).await.unwrap();
    assert_eq!(
        store.find_claim(&key).await.unwrap(),
        Some(Recorded::Existing {
            record: Box::new(first.clone()),
            same_request: true
        })
    );
    let reused = IdempotencyClaim {
        fingerprint: "request-2".into(),
        ..key.clone()
    };
    assert_eq!(
        store.find_claim(&reused).await.unwrap(),
        Some(Recorded::Existing {
            record: Box::new(first),
            same_request: false
        })
    );
    // Past its window the key names nothing, and the next request takes it.
    let expired = IdempotencyClaim {
        expires_at: Timestamp::now() - Duration::from_secs(1),
        ..claim("old", "request-1")
    };
    store
        .record_command(&command_at("ann", Timestamp::now()), Some(&expired))
        .await
        .unwrap();
    assert_eq!(store.find_claim(&expired).await.unwrap(), None);
}

async fn an_expired_claim_is_free_again(store: &dyn Store) {
    let expired = IdempotencyClaim {
        expires_at: Timestamp::now() - Duration::from_secs(1),
        ..claim("k", "request-1")
    };
    store
        .record_command(&command_at("ann", Timestamp::now()), Some(&expired))
        .await
        .unwrap();
    let fresh = IdempotencyClaim {
        expires_at: Timestamp::now() + Duration::from_secs(60),
        ..expired
    };
    let next = command_at("ann", Timestamp::now());
    assert_eq!(
        store.record_command(&next, Some(&fresh)).await.unwrap(),
        Recorded::New
    );
}

async fn withdrawing_takes_back_an_accepted_command_and_its_claim(store: &dyn Store) {
    let claim = claim("k", "request-1");
    let record = command_at("ann", Timestamp::now());
    store.record_command(&record, Some(&claim)).await.unwrap();
    assert!(
        store
            .withdraw_command(record.command_id, Some(&claim))
            .await
            .unwrap()
    );
    assert_eq!(store.command(record.command_id).await.unwrap(), None);
    let stale = store
        .stale_commands(Timestamp::now() + Duration::from_secs(1), 100)
        .await
        .unwrap();
    assert!(stale.iter().all(|r| r.command_id != record.command_id));
    let retry = command_at("ann", Timestamp::now());
    assert_eq!(
        store.record_command(&retry, Some(&claim)).await.unwrap(),
        Recorded::New,
        "the claim goes with the command"
    );
}

/// A retried withdrawal may find its own first try done: nothing of the
/// command is left, which is what the caller needs to know.
async fn withdrawing_a_missing_command_says_nothing_is_left(store: &dyn Store) {
    assert!(
        store
            .withdraw_command(CommandId::generate(), None)
            .await
            .unwrap()
    );
}

async fn a_started_command_cannot_be_withdrawn(store: &dyn Store) {
    let record = command_at("ann", Timestamp::now());
    store.record_command(&record, None).await.unwrap();
    begin(store, &record).await;
    assert!(
        !store
            .withdraw_command(record.command_id, None)
            .await
            .unwrap()
    );
    let kept = store.command(record.command_id).await.unwrap().unwrap();
    assert_eq!(kept.status, CommandStatus::Processing);
}

async fn processing_begins_once(store: &dyn Store) {
    let never = command_at("ann", Timestamp::now());
    assert_eq!(begin(store, &never).await, Begun::NotRecorded);
    let record = command_at("ann", Timestamp::now());
    store.record_command(&record, None).await.unwrap();
    let at = Timestamp::now();
    let Begun::Recorded {
        record: first,
        started: true,
    } = store
        .begin_processing(record.command_id, record.message.as_bytes(), at)
        .await
        .unwrap()
    else {
        panic!("the first delivery starts the command");
    };
    assert_eq!(
        (first.status, first.updated_at),
        (CommandStatus::Processing, at)
    );
    assert_eq!(
        begin(store, &record).await,
        Begun::Recorded {
            record: first,
            started: false
        }
    );
    store
        .finish_command(&failed(record.command_id))
        .await
        .unwrap();
    let Begun::Recorded {
        record: ended,
        started: false,
    } = begin(store, &record).await
    else {
        panic!("a finished command is found, not started");
    };
    assert_eq!(ended.status, CommandStatus::Failed);
}

/// A delivery that names a recorded command but is not it, byte for byte,
/// changes nothing: the command stays `accepted` for its real message.
async fn a_delivery_not_as_recorded_changes_nothing(store: &dyn Store) {
    let record = command_at("ann", Timestamp::now());
    store.record_command(&record, None).await.unwrap();
    for forged in [
        format!("{} ", record.message).into_bytes(),
        vec![0xff, 0xfe],
    ] {
        assert_eq!(
            store
                .begin_processing(record.command_id, &forged, Timestamp::now())
                .await
                .unwrap(),
            Begun::NotAsRecorded
        );
    }
    assert_eq!(
        store.command(record.command_id).await.unwrap(),
        Some(record)
    );
}

async fn a_command_finishes_once(store: &dyn Store) {
    let record = command_at("ann", Timestamp::now());
    store.record_command(&record, None).await.unwrap();
    let done = Completion::rejected(
        record.command_id,
        CommandError::new(Reason::SoldOut, "none left"),
    );
    assert_eq!(store.finish_command(&done).await.unwrap(), Finished::Now);
    let other = Completion::succeeded(record.command_id, CommandResult::default());
    assert_eq!(
        store.finish_command(&other).await.unwrap(),
        Finished::Already
    );
    let ended = store.command(record.command_id).await.unwrap().unwrap();
    assert_eq!(
        (ended.status, ended.error, ended.result),
        (CommandStatus::Rejected, done.error, None)
    );
    assert_eq!(ended.updated_at, done.at);
}

async fn stale_commands_are_the_accepted_ones_oldest_first(store: &dyn Store) {
    let hour_ago = Timestamp::now() - Duration::from_secs(3600);
    let records: Vec<_> = (0..4)
        .map(|i| command_at("ann", hour_ago + Duration::from_secs(i)))
        .collect();
    for record in records.iter().rev() {
        store.record_command(record, None).await.unwrap();
    }
    // One starts, one finishes: neither is stale any more.
    begin(store, &records[1]).await;
    store
        .finish_command(&failed(records[2].command_id))
        .await
        .unwrap();
    let recent = command_at("ann", Timestamp::now());
    store.record_command(&recent, None).await.unwrap();

    let before = hour_ago + Duration::from_secs(60);
    let stale: Vec<CommandId> = store
        .stale_commands(before, 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.command_id)
        .collect();
    assert_eq!(stale, [records[0].command_id, records[3].command_id]);
    let first: Vec<CommandId> = store
        .stale_commands(before, 1)
        .await
        .unwrap()
        .iter()
        .map(|r| r.command_id)
        .collect();
    assert_eq!(first, [records[0].command_id]);
}

/// A replayed command is published at once by whoever reopens it; the
/// re-publisher must not send it again before it had time to be taken.
async fn a_reopened_command_is_stale_only_after_its_reopening(store: &dyn Store) {
    let hour_ago = Timestamp::now() - Duration::from_secs(3600);
    let record = command_at("ann", hour_ago);
    store.record_command(&record, None).await.unwrap();
    store
        .finish_command(&failed(record.command_id))
        .await
        .unwrap();
    assert!(store.reopen_command(record.command_id).await.unwrap());
    let in_between = store
        .stale_commands(Timestamp::now() - Duration::from_secs(60), 100)
        .await
        .unwrap();
    assert!(
        in_between.iter().all(|r| r.command_id != record.command_id),
        "a command reopened now is not stale as of a minute ago"
    );
    let later = store
        .stale_commands(Timestamp::now() + Duration::from_secs(1), 100)
        .await
        .unwrap();
    assert!(later.iter().any(|r| r.command_id == record.command_id));
    // Starting it takes it out of the index again, wherever it was keyed.
    begin(store, &record).await;
    let after = store
        .stale_commands(Timestamp::now() + Duration::from_secs(1), 100)
        .await
        .unwrap();
    assert!(after.iter().all(|r| r.command_id != record.command_id));
}

async fn only_failed_commands_reopen(store: &dyn Store) {
    assert!(!store.reopen_command(CommandId::generate()).await.unwrap());
    let record = command_at("ann", Timestamp::now());
    store.record_command(&record, None).await.unwrap();
    assert!(!store.reopen_command(record.command_id).await.unwrap());
    store
        .finish_command(&failed(record.command_id))
        .await
        .unwrap();
    assert!(store.reopen_command(record.command_id).await.unwrap());
    let reopened = store.command(record.command_id).await.unwrap().unwrap();
    assert_eq!(
        (reopened.status, reopened.error),
        (CommandStatus::Accepted, None)
    );
    assert!(!store.reopen_command(record.command_id).await.unwrap());
    let done = Completion::succeeded(record.command_id, CommandResult::default());
    assert_eq!(store.finish_command(&done).await.unwrap(), Finished::Now);
}

async fn the_store_answers_pings(store: &dyn Store) {
    store.ping().await.unwrap();
}

async fn nothing_within_its_retention_is_forgotten(store: &dyn Store) {
    let waiting = command_at("ann", Timestamp::now());
    store.record_command(&waiting, None).await.unwrap();
    let claim = claim("k", "request-1");
    let finished = command_at("ann", Timestamp::now());
    store.record_command(&finished, Some(&claim)).await.unwrap();
    let done = Completion::succeeded(finished.command_id, CommandResult::default());
    store.finish_command(&done).await.unwrap();
    let tomorrow = Timestamp::now() + Duration::from_secs(86_400);
    store.forget_expired(tomorrow, 100).await.unwrap();
    assert!(store.command(waiting.command_id).await.unwrap().is_some());
    assert!(store.command(finished.command_id).await.unwrap().is_some());
    // A command a month old but not finished stays too.
    let month = eventsys_store::records::COMMAND_RETENTION + Duration::from_secs(86_400);
    store
        .forget_expired(Timestamp::now() + month, 100)
        .await
        .unwrap();
    assert!(store.command(waiting.command_id).await.unwrap().is_some());
}

async fn forgotten_after_retention(store: &dyn Store) {
    let claim = claim("k", "request-1");
    let finished = command_at("ann", Timestamp::now());
    store.record_command(&finished, Some(&claim)).await.unwrap();
    let done = Completion::succeeded(finished.command_id, CommandResult::default());
    store.finish_command(&done).await.unwrap();
    let month = eventsys_store::records::COMMAND_RETENTION + Duration::from_secs(60);
    assert_eq!(
        store
            .forget_expired(Timestamp::now() + month, 100)
            .await
            .unwrap(),
        2,
        "the command and its claim"
    );
    assert_eq!(store.command(finished.command_id).await.unwrap(), None);
    assert_eq!(
        store
            .forget_expired(Timestamp::now() + month, 100)
            .await
            .unwrap(),
        0
    );
    // The key is free for a new request.
    let fresh = IdempotencyClaim {
        expires_at: Timestamp::now() + month + Duration::from_secs(3600),
        fingerprint: "request-2".into(),
        ..claim
    };
    let next = command_at("ann", Timestamp::now());
    assert_eq!(
        store.record_command(&next, Some(&fresh)).await.unwrap(),
        Recorded::New
    );
}
