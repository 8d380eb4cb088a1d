//! Group commit for a redb database: writes that arrive while a commit is
//! on its way to disk wait for the next one and share it, so that a burst of
//! N writers costs one fsync, not N.
//!
//! One thread per database runs the write transactions. It takes every
//! write waiting (up to [`MAX_BATCH`]), runs them one after another in one
//! transaction, commits once (durably if any of them asked to be), and only
//! then answers each writer: nobody hears of a write before it is on disk.
//! Each write sees what the ones before it in the batch wrote, so a batch is
//! as serializable as one transaction per write.
//!
//! A write that fails may have written half of what it meant to, and redb
//! takes no savepoint once a table is open; so a batch in which any write
//! fails is thrown away whole and its writes run again, each in its own
//! transaction. That is why a write is a `Fn`: it may run twice, and only
//! the run that commits counts.

use std::{
    fmt,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, mpsc},
    thread::{self, JoinHandle},
};

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::oneshot;

/// The most writes one transaction carries.
pub const MAX_BATCH: usize = 512;

/// Why a write did not reach the disk: the commit failed, or the committer
/// is gone.
#[derive(Clone, Debug)]
pub struct Failure {
    what: &'static str,
    source: Option<Arc<redb::Error>>,
}

impl Failure {
    fn new(what: &'static str) -> Self {
        Self { what, source: None }
    }

    fn because(what: &'static str, err: impl Into<redb::Error>) -> Self {
        Self {
            what,
            source: Some(Arc::new(err.into())),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Runs writes to one database, grouped into shared transactions. Cloning
/// shares the committer; the last clone to go stops its thread and waits
/// for it, so the database can be opened again at once.
#[derive(Clone)]
pub struct Committer {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has answered the
        // writes it holds.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Committer {
    /// Starts the committer thread of `db`.
    pub fn start(db: Arc<Database>, name: &str) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        let thread = thread::Builder::new()
            .name(format!("{name}-commit"))
            .spawn(move || commit_until_closed(&db, &queue))?;
        Ok(Self {
            inner: Arc::new(Inner {
                jobs: Some(jobs),
                thread: Some(thread),
            }),
        })
    }

    /// Runs `work` in a durable transaction and answers, once it is on
    /// disk, what `work` returned; or why it was not committed.
    pub async fn write<T, E, F>(&self, work: F) -> Result<Result<T, E>, Failure>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.submit(true, work).await
    }

    /// Like [`Self::write`], for writes whose loss in a crash is harmless:
    /// alone, they are committed without waiting for the disk.
    pub async fn write_lazily<T, E, F>(&self, work: F) -> Result<Result<T, E>, Failure>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        self.submit(false, work).await
    }

    async fn submit<T, E, F>(&self, durable: bool, work: F) -> Result<Result<T, E>, Failure>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Write {
            work,
            durable,
            outcome: None,
            reply,
        });
        let gone = || Failure::new("the store's committer has stopped");
        let Some(jobs) = &self.inner.jobs else {
            return Err(gone());
        };
        jobs.send(job).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// A write as the committer thread sees it, whatever it returns.
trait Job: Send {
    /// Runs the write in `txn`, keeping its outcome; `false` if it failed.
    fn run(&mut self, txn: &WriteTransaction) -> bool;

    fn durable(&self) -> bool;

    /// Tells the writer its outcome, or why it was not committed.
    fn answer(self: Box<Self>, committed: Result<(), Failure>);
}

struct Write<T, E, F> {
    work: F,
    durable: bool,
    /// What `work` returned, or that it panicked.
    outcome: Option<Result<Result<T, E>, Failure>>,
    reply: oneshot::Sender<Result<Result<T, E>, Failure>>,
}

impl<T, E, F> Job for Write<T, E, F>
where
    T: Send,
    E: Send,
    F: Fn(&WriteTransaction) -> Result<T, E> + Send,
{
    fn run(&mut self, txn: &WriteTransaction) -> bool {
        // A write that panics fails alone instead of taking the thread,
        // and with it every later write, down.
        let outcome = catch_unwind(AssertUnwindSafe(|| (self.work)(txn)))
            .map_err(|_| Failure::new("a write to the store panicked"));
        let ok = matches!(outcome, Ok(Ok(_)));
        self.outcome = Some(outcome);
        ok
    }

    fn durable(&self) -> bool {
        self.durable
    }

    fn answer(self: Box<Self>, committed: Result<(), Failure>) {
        let answer = match (self.outcome, committed) {
            // A write that failed (or panicked) says so, whatever else happened.
            (Some(Ok(Err(refused))), _) => Ok(Err(refused)),
            (Some(Err(panicked)), _) => Err(panicked),
            (Some(Ok(Ok(value))), Ok(())) => Ok(Ok(value)),
            (_, Err(failure)) => Err(failure),
            (None, Ok(())) => Err(Failure::new("a write was never run")),
        };
        // The writer may have stopped waiting; the write stands regardless.
        let _ = self.reply.send(answer);
    }
}

fn commit_until_closed(db: &Database, queue: &mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(db, batch);
    }
}

fn commit_batch(db: &Database, mut batch: Vec<Box<dyn Job>>) {
    match run_together(db, &mut batch) {
        Ok(true) => batch.into_iter().for_each(|job| job.answer(Ok(()))),
        // One of them failed: find out which, each on its own.
        Ok(false) if batch.len() > 1 => {
            for job in batch {
                let mut alone = vec![job];
                let committed = run_together(db, &mut alone).map(|_| ());
                alone
                    .into_iter()
                    .for_each(|job| job.answer(committed.clone()));
            }
        }
        // A lone write that failed carries its own error.
        Ok(false) => batch.into_iter().for_each(|job| job.answer(Ok(()))),
        Err(failure) => batch
            .into_iter()
            .for_each(|job| job.answer(Err(failure.clone()))),
    }
}

/// Runs `batch` in one transaction and commits it if every write
/// succeeded; `Ok(false)` if one failed and nothing was committed.
fn run_together(db: &Database, batch: &mut [Box<dyn Job>]) -> Result<bool, Failure> {
    let mut txn = db
        .begin_write()
        .map_err(|e| Failure::because("the store could not begin a write", e))?;
    let durability = if batch.iter().any(|job| job.durable()) {
        Durability::Immediate
    } else {
        Durability::None
    };
    txn.set_durability(durability)
        .map_err(|e| Failure::because("the store could not set durability", e))?;
    for job in batch.iter_mut() {
        if !job.run(&txn) {
            txn.abort()
                .map_err(|e| Failure::because("the store could not abort a write", e))?;
            return Ok(false);
        }
    }
    txn.commit()
        .map_err(|e| Failure::because("the store could not commit", e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};

    use super::*;

    const COUNTS: TableDefinition<'static, &str, u64> = TableDefinition::new("counts");

    #[derive(Debug)]
    enum Error {
        Refused,
        Failed,
    }

    /// A write's outcome with the committer's failure folded in.
    fn flat<T>(outcome: Result<Result<T, Error>, Failure>) -> Result<T, Error> {
        outcome.unwrap_or(Err(Error::Failed))
    }

    fn database(name: &str) -> (Arc<Database>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "eventsys-group-commit-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let db = Database::create(dir.join("db.redb")).expect("database");
        (Arc::new(db), dir)
    }

    /// Adds one to `key`, or refuses (after writing) when `refuse` is set.
    fn bump(
        key: &'static str,
        refuse: bool,
    ) -> impl Fn(&WriteTransaction) -> Result<u64, Error> + Send + 'static {
        move |txn| {
            let mut table = txn.open_table(COUNTS).map_err(|_| Error::Failed)?;
            let now = table
                .get(key)
                .map_err(|_| Error::Failed)?
                .map_or(0, |v| v.value())
                + 1;
            table.insert(key, now).map_err(|_| Error::Failed)?;
            if refuse { Err(Error::Refused) } else { Ok(now) }
        }
    }

    fn count(db: &Database, key: &str) -> u64 {
        let txn = db.begin_read().expect("read");
        match txn.open_table(COUNTS) {
            Ok(table) => table.get(key).expect("get").map_or(0, |v| v.value()),
            Err(_) => 0,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_each_count_once_and_see_each_other() {
        let (db, dir) = database("concurrent");
        let committer = Committer::start(db.clone(), "test").expect("committer");
        let writes = (0..400).map(|i| {
            let committer = committer.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    flat(committer.write(bump("n", false)).await)
                } else {
                    flat(committer.write_lazily(bump("n", false)).await)
                }
            })
        });
        let mut seen: Vec<u64> = Vec::new();
        for write in writes {
            seen.push(write.await.expect("task").expect("write"));
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (1..=400).collect::<Vec<_>>(),
            "each write saw the one before"
        );
        assert_eq!(count(&db, "n"), 400);
        drop(committer);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_write_leaves_nothing_and_spares_its_batch() {
        let (db, dir) = database("failed");
        let committer = Committer::start(db.clone(), "test").expect("committer");
        let writes = (0..200).map(|i| {
            let committer = committer.clone();
            tokio::spawn(async move { flat(committer.write(bump("n", i % 10 == 0)).await) })
        });
        let (mut ok, mut refused) = (0, 0);
        for write in writes {
            match write.await.expect("task") {
                Ok(_) => ok += 1,
                Err(Error::Refused) => refused += 1,
                Err(Error::Failed) => panic!("a write failed for another's sake"),
            }
        }
        assert_eq!((ok, refused), (180, 20));
        assert_eq!(count(&db, "n"), 180, "a refused write's half left nothing");
        drop(committer);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_panicking_write_fails_alone() {
        let (db, dir) = database("panic");
        let committer = Committer::start(db.clone(), "test").expect("committer");
        let panicked = committer
            .write(|_txn: &WriteTransaction| -> Result<(), Error> { panic!("boom") })
            .await;
        assert!(matches!(flat(panicked), Err(Error::Failed)));
        assert_eq!(flat(committer.write(bump("n", false)).await).ok(), Some(1));
        drop(committer);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn the_database_opens_again_once_the_committer_is_gone() {
        let (db, dir) = database("reopen");
        let committer = Committer::start(db.clone(), "test").expect("committer");
        assert_eq!(flat(committer.write(bump("n", false)).await).ok(), Some(1));
        drop((db, committer));
        let again = Database::create(dir.join("db.redb")).expect("opens again");
        assert_eq!(count(&again, "n"), 1);
        drop(again);
        let _ = std::fs::remove_dir_all(dir);
    }
}
