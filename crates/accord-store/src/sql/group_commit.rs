//! Group commit for the two writes of every token request that redeems a code: the code's
//! single-use marker (`used_once`) and the new refresh token.
//!
//! Why: on SQLite each autocommit statement takes the WAL write lock, writes the pages it
//! touched and releases the lock, and is handed to a connection's worker thread and back. Under
//! load those fixed costs were most of a sign-in's time outside signing (per flow: 19 `pwrite`,
//! 14 `fcntl`, 25 `futex` calls; docs/benchmarks.md). One writer task takes every write queued
//! while the previous batch ran and writes each kind as one multi-row statement, so the lock,
//! the pages and the hand-off are paid once a batch.
//!
//! What does not change: a caller's answer comes after its row is committed (durability as
//! before); concurrent markers with one key still let exactly one caller win; a batch that
//! fails is retried row by row (unless the database is away), so one bad row fails only its own
//! caller. With no concurrency every batch holds one write and runs the same single-row
//! statement as before. Batches form by themselves (no timer): whatever arrived during the last
//! flush is the next batch.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Weak;

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::codec::{micros, Cols};
use super::consent_workflow::marker_insert_returning_sql;
use super::protocol_state::{bind_token, token_upsert_sql, TOKEN_COLUMNS};
use super::{db_err, Inner, SqlStore};
use crate::{RefreshTokenRecord, StoreError, StoreResult};

/// At most this many writes of one kind go into one statement (11 parameters a refresh token:
/// far below SQLite's and PostgreSQL's limits on bound parameters).
const MAX_BATCH: usize = 64;

/// A write waiting for the next batch.
pub(super) enum Write {
    /// A single-use marker: the answer is whether this caller's insert won.
    Once { key_hash: String, expires_at: OffsetDateTime },
    /// A live refresh token (revoked ones need their family's row: written on their own).
    Token(Box<RefreshTokenRecord>),
}

pub(super) struct Pending {
    write: Write,
    reply: oneshot::Sender<StoreResult<bool>>,
}

pub(super) type Queue = mpsc::UnboundedSender<Pending>;

/// The queue's sending half (kept by the store) and its writer, to be started with [`run`] once
/// the store exists.
pub(super) fn queue() -> (Queue, mpsc::UnboundedReceiver<Pending>) {
    mpsc::unbounded_channel()
}

/// The writer: runs until the store is dropped (its queue's sender goes with it).
pub(super) async fn run(store: Weak<Inner>, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let Some(inner) = store.upgrade() else { return };
        inner.grouped_writes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        inner.write_batches.fetch_add(1, Ordering::Relaxed);
        SqlStore { inner }.flush(std::mem::take(&mut batch)).await;
    }
}

impl SqlStore {
    /// Queues `write` for the writer and waits for its batch's commit. `None` when the writer is
    /// gone (its runtime shut down): the caller then writes on its own.
    pub(super) async fn group_commit(&self, write: Write) -> Option<StoreResult<bool>> {
        let (reply, answer) = oneshot::channel();
        self.inner.writes.send(Pending { write, reply }).ok()?;
        let answer = answer.await.ok()?;
        // The request caused one statement, shared with others: counted as one for it (the
        // store's total counts the statements actually run).
        self.count_for_request();
        Some(answer)
    }

    async fn flush(&self, batch: Vec<Pending>) {
        let mut markers = Vec::new();
        let mut tokens = Vec::new();
        for Pending { write, reply } in batch {
            match write {
                Write::Once { key_hash, expires_at } => markers.push((key_hash, expires_at, reply)),
                Write::Token(token) => tokens.push((token, reply)),
            }
        }
        if !markers.is_empty() {
            self.flush_markers(markers).await;
        }
        if !tokens.is_empty() {
            self.flush_tokens(tokens).await;
        }
    }

    /// One `INSERT … ON CONFLICT DO NOTHING RETURNING key_hash` for the batch's distinct keys: a
    /// key's first caller in the batch wins if its row went in; a repeat of a key in the same
    /// batch loses, as it would have right after the first.
    async fn flush_markers(&self, markers: Vec<(String, OffsetDateTime, oneshot::Sender<StoreResult<bool>>)>) {
        let mut first = HashSet::new();
        let rows: Vec<(&str, OffsetDateTime)> =
            markers.iter().filter(|(key, ..)| first.insert(key.as_str())).map(|(k, at, _)| (k.as_str(), *at)).collect();
        let inserted = match rows.as_slice() {
            [(key, at)] => {
                self.insert_once_now(key, *at).await.map(|won| won.then(|| key.to_string()).into_iter().collect())
            }
            _ => self.insert_markers(&rows).await,
        };
        let inserted: HashSet<String> = match inserted {
            Ok(keys) => keys.into_iter().collect(),
            Err(e) if rows.len() > 1 && one_row_may_be_at_fault(&e) => return self.markers_one_by_one(markers).await,
            Err(e) => {
                for (.., reply) in markers {
                    let _ = reply.send(Err(e.clone()));
                }
                return;
            }
        };
        let mut answered = HashSet::new();
        for (key, _, reply) in markers {
            let won = inserted.contains(&key) && answered.insert(key);
            let _ = reply.send(Ok(won));
        }
    }

    /// The keys of the rows that went in.
    async fn insert_markers(&self, rows: &[(&str, OffsetDateTime)]) -> StoreResult<Vec<String>> {
        let sql = marker_insert_returning_sql(rows.len());
        let mut q = sqlx::query(&sql).persistent(false);
        for (key, at) in rows {
            q = q.bind(*key).bind(micros(*at));
        }
        let rows = self.fetch_all(self.pool(), q).await.map_err(db_err)?;
        rows.iter().map(|r| Cols(r).text("key_hash")).collect()
    }

    async fn markers_one_by_one(&self, markers: Vec<(String, OffsetDateTime, oneshot::Sender<StoreResult<bool>>)>) {
        for (key, at, reply) in markers {
            let _ = reply.send(self.insert_once_now(&key, at).await);
        }
    }

    /// One upsert for the batch's distinct tokens; a token written twice in one batch keeps its
    /// last version, as two writes one after the other would.
    async fn flush_tokens(&self, tokens: Vec<(Box<RefreshTokenRecord>, oneshot::Sender<StoreResult<bool>>)>) {
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, (t, _)) in tokens.iter().enumerate() {
            last.insert(t.token_hash.as_str(), i);
        }
        let mut distinct: Vec<usize> = last.into_values().collect();
        distinct.sort_unstable();
        let rows: Vec<&RefreshTokenRecord> = distinct.iter().map(|&i| &*tokens[i].0).collect();
        let written = match rows.as_slice() {
            [one] => self.upsert_live_token_now(one).await,
            _ => self.upsert_tokens(&rows).await,
        };
        if rows.len() > 1 && written.as_ref().is_err_and(one_row_may_be_at_fault) {
            for (t, reply) in tokens {
                let _ = reply.send(self.upsert_live_token_now(&t).await.map(|()| true));
            }
            return;
        }
        for (_, reply) in tokens {
            let _ = reply.send(written.clone().map(|()| true));
        }
    }
}

impl SqlStore {
    async fn upsert_tokens(&self, rows: &[&RefreshTokenRecord]) -> StoreResult<()> {
        let sql = token_upsert_sql(rows.len());
        let mut q = sqlx::query(&sql).persistent(false);
        for t in rows {
            q = bind_token(q, t, t.family_id);
        }
        self.execute(self.pool(), q).await.map_err(db_err)?;
        Ok(())
    }
}

/// Whether a failed batch is worth retrying row by row: not when the database is away (each
/// row would wait out the connection timeout in turn), only when a row's values may be what
/// it refused.
fn one_row_may_be_at_fault(e: &StoreError) -> bool {
    !matches!(e, StoreError::Unavailable(_))
}

/// `($1, $2), ($3, $4), …` for `rows` rows of `columns` parameters.
pub(super) fn placeholders(rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * columns + c + 1).to_string());
        }
        out.push(')');
    }
    out
}

const _: () = assert!(MAX_BATCH * TOKEN_COLUMNS < 32_766);

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_number_every_parameter_once_in_order() {
        assert_eq!(placeholders(1, 2), "($1, $2)");
        assert_eq!(placeholders(3, 2), "($1, $2), ($3, $4), ($5, $6)");
        assert_eq!(placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }
}
