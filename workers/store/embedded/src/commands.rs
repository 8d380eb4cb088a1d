//! The command log in the embedded store.

use async_trait::async_trait;
use eventsys_messages::{CommandId, CommandStatus, Timestamp};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use crate::{
    CLAIMS, CLAIMS_EXPIRING, COMMANDS, EmbeddedStore, FORGETTING, PENDING, get, open, open_read,
    page, put, unavailable,
};
use eventsys_store::{
    StoreError,
    ports::{Begun, CommandLog, Finished, Recorded},
    records::{CommandRecord, Completion, IdempotencyClaim, Page},
    sortable,
};

/// An `accepted` command's `updated_at` is when it became `accepted`: its
/// submission, or its reopening.
fn pending_key(record: &CommandRecord) -> String {
    format!("{}#{}", sortable(record.updated_at), record.command_id)
}

/// What `claim`'s key names within its window, from either kind of
/// transaction: the write that would claim it, or a read that only looks.
fn claimed(
    claims: &impl ReadableTable<&'static str, &'static [u8]>,
    commands: &impl ReadableTable<&'static str, &'static [u8]>,
    claim: &IdempotencyClaim,
) -> Result<Option<Recorded>, StoreError> {
    let Some(existing) =
        get::<StoredClaim>(claims, &claim.key_hash)?.filter(|c| c.expires_at > Timestamp::now())
    else {
        return Ok(None);
    };
    let earlier =
        get::<CommandRecord>(commands, &existing.command_id.to_string())?.ok_or_else(|| {
            StoreError::corrupt(format!("claim without command {}", existing.command_id))
        })?;
    Ok(Some(Recorded::Existing {
        record: Box::new(earlier),
        same_request: existing.fingerprint == claim.fingerprint,
    }))
}

/// Takes a command out of the pending index (it is no longer `accepted`).
fn unpend(txn: &redb::WriteTransaction, record: &CommandRecord) -> Result<(), StoreError> {
    open(txn, PENDING)?
        .remove(pending_key(record).as_str())
        .map_err(unavailable)?;
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct StoredClaim {
    command_id: CommandId,
    fingerprint: String,
    expires_at: Timestamp,
}

/// Ends `done`'s command inside `txn` if it is unfinished; the caller's
/// effect must be written only when this says `Now`.
pub(super) fn finish(
    txn: &redb::WriteTransaction,
    done: &Completion,
) -> Result<Finished, StoreError> {
    let mut commands = open(txn, COMMANDS)?;
    let key = done.command_id.to_string();
    match get::<CommandRecord>(&commands, &key)? {
        Some(mut record) if record.is_unfinished() => {
            unpend(txn, &record)?;
            record.complete(done);
            put(&mut commands, &key, &record)?;
            let forget = format!("{}#{key}", sortable(done.forget_at()));
            put(&mut open(txn, FORGETTING)?, &forget, &done.command_id)?;
            Ok(Finished::Now)
        }
        _ => Ok(Finished::Already),
    }
}

/// Whether `done`'s command may still take effect, without changing it.
pub(super) fn unfinished(
    txn: &redb::WriteTransaction,
    done: &Completion,
) -> Result<bool, StoreError> {
    let commands = open(txn, COMMANDS)?;
    Ok(
        get::<CommandRecord>(&commands, &done.command_id.to_string())?
            .is_some_and(|r| r.is_unfinished()),
    )
}

/// Removes from `data` what `index` lists as due before `end` (at most
/// `limit`) and `expired` confirms; returns how many went. An index entry
/// is only a hint (a command reopened, a key claimed again since), so it
/// goes either way.
fn sweep<K, T>(
    txn: &redb::WriteTransaction,
    (index, data): (crate::Def, crate::Def),
    (end, limit): (&str, u32),
    expired: impl Fn(&T) -> bool,
) -> Result<u32, StoreError>
where
    K: serde::de::DeserializeOwned + ToString,
    T: serde::de::DeserializeOwned,
{
    let mut index = open(txn, index)?;
    let mut data = open(txn, data)?;
    let due = page::<K>(&index, ("", end), None, limit, false)?;
    let mut gone = 0;
    for (entry, key) in due.items {
        let key = key.to_string();
        if get::<T>(&data, &key)?.as_ref().is_some_and(&expired) {
            data.remove(key.as_str()).map_err(unavailable)?;
            gone += 1;
        }
        index.remove(entry.as_str()).map_err(unavailable)?;
    }
    Ok(gone)
}

#[async_trait]
impl CommandLog for EmbeddedStore {
    async fn record_command(
        &self,
        record: &CommandRecord,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<Recorded, StoreError> {
        let (record, claim) = (record.clone(), claim.cloned());
        self.write(move |txn| {
            let mut commands = open(txn, COMMANDS)?;
            if let Some(claim) = &claim {
                let mut claims = open(txn, CLAIMS)?;
                if let Some(existing) = claimed(&claims, &commands, claim)? {
                    return Ok(existing);
                }
                let stored = StoredClaim {
                    command_id: record.command_id,
                    fingerprint: claim.fingerprint.clone(),
                    expires_at: claim.expires_at,
                };
                put(&mut claims, &claim.key_hash, &stored)?;
                let expiring = format!("{}#{}", sortable(claim.expires_at), claim.key_hash);
                put(&mut open(txn, CLAIMS_EXPIRING)?, &expiring, &claim.key_hash)?;
            }
            let key = record.command_id.to_string();
            if get::<CommandRecord>(&commands, &key)?.is_some() {
                return Err(StoreError::rejected("command id already recorded"));
            }
            put(&mut commands, &key, &record)?;
            put(
                &mut open(txn, PENDING)?,
                &pending_key(&record),
                &record.command_id,
            )?;
            Ok(Recorded::New)
        })
        .await
    }

    async fn withdraw_command(
        &self,
        id: CommandId,
        claim: Option<&IdempotencyClaim>,
    ) -> Result<bool, StoreError> {
        let claim = claim.cloned();
        self.write(move |txn| {
            let mut commands = open(txn, COMMANDS)?;
            let key = id.to_string();
            let record = match get::<CommandRecord>(&commands, &key)? {
                Some(record) if record.status == CommandStatus::Accepted => record,
                Some(_) => return Ok(false),
                None => return Ok(true),
            };
            unpend(txn, &record)?;
            commands.remove(key.as_str()).map_err(unavailable)?;
            if let Some(claim) = &claim {
                let mut claims = open(txn, CLAIMS)?;
                if get::<StoredClaim>(&claims, &claim.key_hash)?.is_some_and(|c| c.command_id == id)
                {
                    claims
                        .remove(claim.key_hash.as_str())
                        .map_err(unavailable)?;
                }
            }
            Ok(true)
        })
        .await
    }

    async fn find_claim(&self, claim: &IdempotencyClaim) -> Result<Option<Recorded>, StoreError> {
        let claim = claim.clone();
        self.read(move |txn| claimed(&open_read(txn, CLAIMS)?, &open_read(txn, COMMANDS)?, &claim))
            .await
    }

    async fn command(&self, id: CommandId) -> Result<Option<CommandRecord>, StoreError> {
        self.read(move |txn| get(&open_read(txn, COMMANDS)?, &id.to_string()))
            .await
    }

    async fn begin_processing(
        &self,
        id: CommandId,
        message: &[u8],
        at: Timestamp,
    ) -> Result<Begun, StoreError> {
        let message = message.to_vec();
        // Losing this in a crash is harmless: the command is simply still `accepted`.
        self.write_lazily(move |txn| {
            let mut commands = open(txn, COMMANDS)?;
            let key = id.to_string();
            let Some(mut record) = get::<CommandRecord>(&commands, &key)? else {
                return Ok(Begun::NotRecorded);
            };
            if !record.is_recorded_as(&message) {
                return Ok(Begun::NotAsRecorded);
            }
            let started = record.status == CommandStatus::Accepted;
            if started {
                unpend(txn, &record)?;
                record.status = CommandStatus::Processing;
                record.updated_at = at;
                put(&mut commands, &key, &record)?;
            }
            Ok(Begun::Recorded {
                record: Box::new(record),
                started,
            })
        })
        .await
    }

    async fn stale_commands(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<CommandRecord>, StoreError> {
        self.read(move |txn| {
            let end = sortable(before);
            let Page { items, .. } =
                page::<CommandId>(&open_read(txn, PENDING)?, ("", &end), None, limit, false)?;
            let commands = open_read(txn, COMMANDS)?;
            let mut stale = Vec::with_capacity(items.len());
            for (_, id) in items {
                stale.extend(get::<CommandRecord>(&commands, &id.to_string())?);
            }
            Ok(stale)
        })
        .await
    }

    async fn reopen_command(&self, id: CommandId) -> Result<bool, StoreError> {
        self.write(move |txn| {
            let mut commands = open(txn, COMMANDS)?;
            let key = id.to_string();
            let Some(mut record) = get::<CommandRecord>(&commands, &key)?
                .filter(|r| r.status == CommandStatus::Failed)
            else {
                return Ok(false);
            };
            record.status = CommandStatus::Accepted;
            record.error = None;
            record.updated_at = Timestamp::now();
            put(&mut commands, &key, &record)?;
            put(&mut open(txn, PENDING)?, &pending_key(&record), &id)?;
            Ok(true)
        })
        .await
    }

    async fn finish_command(&self, done: &Completion) -> Result<Finished, StoreError> {
        let done = done.clone();
        self.write(move |txn| finish(txn, &done)).await
    }

    async fn forget_expired(&self, now: Timestamp, limit: u32) -> Result<u32, StoreError> {
        self.write(move |txn| {
            let end = sortable(now);
            let commands = sweep::<CommandId, CommandRecord>(
                txn,
                (FORGETTING, COMMANDS),
                (&end, limit),
                |r| r.status.is_terminal() && Completion::from(r).forget_at() <= now,
            )?;
            let claims =
                sweep::<String, StoredClaim>(txn, (CLAIMS_EXPIRING, CLAIMS), (&end, limit), |c| {
                    c.expires_at <= now
                })?;
            Ok(commands + claims)
        })
        .await
    }
}
