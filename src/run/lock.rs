//! One writer per run folder: an advisory lock file (`metalearn.lock`) created with the folder
//! and held for the whole life of every command that writes one (`train`, `mtl`, `transfer`,
//! `search`).
//!
//! The lock is an exclusive `flock`-style advisory lock ([`fs2::FileExt`]) on the file, which
//! also holds the holder's process id. A second writer cannot take it and gets
//! [`RunLockError::Busy`], naming the folder and the holder's pid. The operating system
//! releases the lock when its holder dies, however it dies (`kill -9` included), so a lock
//! file that can be locked is never in use: if it still names a pid, its holder stopped
//! without releasing it (a crash or a kill) and the lock is taken over with a note on stderr.
//! A holder that finishes (or fails) cleanly empties the file before releasing it.
//!
//! The file is never deleted: deleting it while another process waits on it would let two
//! processes lock two different files of the same name.

use fs2::FileExt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The name of the lock file inside a run folder.
pub const LOCK_FILE: &str = "metalearn.lock";

/// Why a run folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum RunLockError {
    /// Another live process holds the lock.
    #[error(
        "run folder {} is in use by another metalearn process (pid {pid}, lock file {}); \
         wait for it to finish, stop it, or choose another output folder",
        dir.display(),
        lock.display()
    )]
    Busy {
        /// The run folder.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The holder's pid as written in the lock file (`unknown` if not written yet).
        pid: String,
    },
    /// The folder or the lock file cannot be created, read or written.
    #[error("run folder {}: cannot {action}: {source}", dir.display())]
    Io {
        /// The run folder.
        dir: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A held lock on a run folder; released (and its file emptied) when dropped.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    dir: PathBuf,
    stale: Option<String>,
}

impl RunLock {
    /// Creates `dir` (and its parents) if needed and locks it for this process: errors with
    /// [`RunLockError::Busy`] when another process holds it; takes over a stale lock (a
    /// holder that died) with a note on stderr.
    pub fn acquire(dir: &Path) -> Result<RunLock, RunLockError> {
        let io = |action: &'static str| {
            let dir = dir.to_path_buf();
            move |source| RunLockError::Io {
                dir,
                action,
                source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io("create the folder"))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open its lock file"))?;
        if let Err(e) = FileExt::try_lock_exclusive(&file) {
            if e.kind() != std::io::ErrorKind::WouldBlock
                && e.raw_os_error() != fs2::lock_contended_error().raw_os_error()
            {
                return Err(io("lock its lock file")(e));
            }
            let pid = read_pid(&mut file).unwrap_or_default();
            return Err(RunLockError::Busy {
                dir: dir.to_path_buf(),
                lock: path,
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid
                },
            });
        }
        let previous = read_pid(&mut file).map_err(io("read its lock file"))?;
        let stale = (!previous.is_empty()).then_some(previous);
        if let Some(p) = &stale {
            eprintln!(
                "note: run folder {}: taking over the lock of process {p}, which stopped without \
                 releasing it (killed or crashed); its files are kept",
                dir.display()
            );
        }
        write_pid(&mut file, &std::process::id().to_string()).map_err(io("write its lock file"))?;
        Ok(RunLock {
            file,
            dir: dir.to_path_buf(),
            stale,
        })
    }

    /// The locked folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pid of the dead holder whose stale lock was taken over, if any.
    pub fn took_over(&self) -> Option<&str> {
        self.stale.as_deref()
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Emptied while still locked: a clean release leaves no pid behind.
        let _ = self.file.set_len(0);
        let _ = FileExt::unlock(&self.file);
    }
}

fn read_pid(file: &mut File) -> std::io::Result<String> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.take(64).read_to_string(&mut s)?;
    Ok(s.trim().to_string())
}

fn write_pid(file: &mut File, pid: &str) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(format!("{pid}\n").as_bytes())?;
    file.sync_data()
}
