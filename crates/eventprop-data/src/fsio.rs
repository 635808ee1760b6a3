//! Atomic file writes: write a temporary file in the same directory, then rename.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically: a reader sees either the old file or the complete new
/// one, never a partial write (temporary file in the same directory, `fsync`, `rename`).
///
/// # Errors
/// [`Error::Io`] naming `path` when the directory is not writable.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], streaming the content through `write` (for files too large to
/// build in memory first). On error the temporary file is removed and `path` is untouched.
///
/// # Errors
/// [`Error::Io`] naming `path` for any error of `write` or of the file system.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::format(path, "not a file name"))?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        write(&mut w)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Removes the temporary files that a killed writer of this crate left in `dir`
/// (`.NAME.tmp.PID` from [`write_atomic_with`], `.plot.tmp.PID.png` from the plot) whose
/// process is not this one. Best effort: errors are ignored.
pub fn clean_stale_temps(dir: &Path) {
    let own = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = if let Some(rest) = name.strip_prefix(".plot.tmp.") {
            rest.strip_suffix(".png")
        } else if name.starts_with('.') {
            name.rsplit_once(".tmp.").map(|(_, pid)| pid)
        } else {
            None
        };
        let dead = pid.is_some_and(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && p != own
                && p.parse().is_ok_and(|p: u32| !process_alive(p))
        });
        if dead {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A fingerprint of the file at `path`: its size and a 64-bit hash of its content
/// (`"<bytes> B, h64 <16 hex digits>"`; the hash mixes each 8-byte little-endian word in
/// turn, then the length). Equal files give equal fingerprints; a changed byte, a
/// truncation or an extension changes it (up to hash collisions, 2^-64 for a random
/// change). Streams the file (1 MiB at a time).
///
/// # Errors
/// [`Error::Io`] naming `path`.
pub fn fingerprint(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut h, mut len, mut fill) = (0xcbf2_9ce4_8422_2325u64, 0u64, 0usize);
    let mix = |h: u64, w: u64| {
        let x = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
        x ^ (x >> 29)
    };
    loop {
        let n = f.read(&mut buf[fill..]).map_err(|e| Error::io(path, e))?;
        len += n as u64;
        fill += n;
        let whole = fill / 8 * 8;
        if n == 0 || fill == buf.len() {
            for w in buf[..whole].chunks_exact(8) {
                h = mix(h, u64::from_le_bytes(w.try_into().expect("8 bytes")));
            }
            buf.copy_within(whole..fill, 0);
            fill -= whole;
        }
        if n == 0 {
            break;
        }
    }
    let mut tail = [0u8; 8];
    tail[..fill].copy_from_slice(&buf[..fill]);
    h = mix(mix(h, u64::from_le_bytes(tail)), len);
    Ok(format!("{len} B, h64 {h:016x}"))
}

/// Whether process `pid` is alive (Linux: `/proc/PID` exists; elsewhere every process
/// counts as alive, so nothing of another process is ever taken over).
pub fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// The lock file of a run folder ([`DirLock`]).
pub const LOCK_FILE: &str = ".eventprop.lock";

/// A run folder's lock: the file [`LOCK_FILE`] holding the writer's process id, created
/// atomically (written aside, then hard-linked into place, which fails if it exists) and
/// removed when the lock is dropped. A lock of a process that is no longer alive is stale
/// and replaced; a lock of this process is shared (the outer holder removes it).
#[derive(Debug)]
pub struct DirLock {
    path: std::path::PathBuf,
    owned: bool,
}

impl DirLock {
    /// Locks `dir` (which must exist) for this process.
    ///
    /// # Errors
    /// [`Error::Format`] naming `dir` when a live process holds it (its id and the lock
    /// file in the message); [`Error::Io`] when the lock cannot be written.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let own = std::process::id();
        for _ in 0..8 {
            let tmp = dir.join(format!("{LOCK_FILE}.new.{own}"));
            std::fs::write(&tmp, format!("{own}\n")).map_err(|e| Error::io(&path, e))?;
            let linked = std::fs::hard_link(&tmp, &path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => return Ok(Self { path, owned: true }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(_) => {
                    // no hard links on this file system: exclusive creation, then the id
                    match std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                    {
                        Ok(mut f) => {
                            f.write_all(format!("{own}\n").as_bytes())
                                .map_err(|e| Error::io(&path, e))?;
                            return Ok(Self { path, owned: true });
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(Error::io(&path, e)),
                    }
                }
            }
            let holder = std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok());
            match holder {
                Some(pid) if pid == own => return Ok(Self { path, owned: false }),
                Some(pid) if process_alive(pid) => {
                    return Err(Error::format(
                        dir,
                        format!(
                            "the run folder is in use by process {pid} (lock file {LOCK_FILE}); wait for it to end or use another folder (remove the lock file only if that process is not writing this run)"
                        ),
                    ))
                }
                Some(_) => {
                    // stale: moved aside under this process's name (so that two starts
                    // never both remove it), then removed
                    let aside = dir.join(format!("{LOCK_FILE}.stale.{own}"));
                    if std::fs::rename(&path, &aside).is_ok() {
                        let _ = std::fs::remove_file(&aside);
                    }
                }
                None => {
                    // being written by a start that has not put its id there yet, or
                    // vanished: look again shortly
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
        Err(Error::format(
            dir,
            format!("cannot take the run folder's lock ({LOCK_FILE}): it holds no process id; remove it if no run is writing there"),
        ))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temporaries_of_other_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // process ids above Linux's largest pid_max (2^22): never alive
        for n in [
            ".checkpoint.safetensors.tmp.4194305",
            ".plot.tmp.4194306.png",
            "keep.txt",
            ".x.tmp.abc",
        ] {
            std::fs::write(d.join(n), b"x").unwrap();
        }
        let own = format!(".metrics.json.tmp.{}", std::process::id());
        std::fs::write(d.join(&own), b"x").unwrap();
        clean_stale_temps(d);
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut want = vec![".x.tmp.abc".to_string(), own, "keep.txt".to_string()];
        want.sort();
        assert_eq!(left, want);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_run_folder_lock_is_exclusive_shared_within_a_process_and_stale_when_dead() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let lock_file = d.join(LOCK_FILE);
        {
            let lock = DirLock::acquire(d).unwrap();
            assert_eq!(
                std::fs::read_to_string(&lock_file).unwrap(),
                format!("{}\n", std::process::id())
            );
            // the same process again: shared, and not removed by the inner holder
            drop(DirLock::acquire(d).unwrap());
            assert!(lock_file.exists());
            drop(lock);
        }
        assert!(!lock_file.exists(), "released on drop");
        // held by a live process: refused, naming it; its temporaries are kept
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(&lock_file, format!("{}\n", child.id())).unwrap();
        let tmp = d.join(format!(".metrics.json.tmp.{}", child.id()));
        std::fs::write(&tmp, b"x").unwrap();
        clean_stale_temps(d);
        assert!(tmp.exists(), "a live writer's temporary is kept");
        let e = DirLock::acquire(d).unwrap_err().to_string();
        assert!(
            e.contains(&format!("in use by process {}", child.id())) && e.contains(LOCK_FILE),
            "{e}"
        );
        // the process ends: the lock is stale and replaced, the temporary removed
        child.kill().unwrap();
        child.wait().unwrap();
        clean_stale_temps(d);
        assert!(!tmp.exists());
        let lock = DirLock::acquire(d).unwrap();
        assert_eq!(
            std::fs::read_to_string(&lock_file).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(lock);
        let left: Vec<_> = std::fs::read_dir(d).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn fingerprints_follow_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        let data: Vec<u8> = (0..3_000_001u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let a = fingerprint(&p).unwrap();
        assert!(a.starts_with("3000001 B, h64 "), "{a}");
        assert_eq!(fingerprint(&p).unwrap(), a);
        let mut changed = data.clone();
        changed[2_500_000] ^= 1;
        std::fs::write(&p, &changed).unwrap();
        assert_ne!(fingerprint(&p).unwrap(), a);
        std::fs::write(&p, &data[..3_000_000]).unwrap();
        assert_ne!(fingerprint(&p).unwrap(), a);
        let mut padded = data[..3_000_000].to_vec();
        padded.push(0);
        std::fs::write(&p, &padded).unwrap();
        let b = fingerprint(&p).unwrap();
        assert_ne!(b, a);
        assert!(b.starts_with("3000001 B"), "{b}");
    }

    #[test]
    fn replaces_content_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // Only the target remains: the temporary file was renamed away.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn missing_directory_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/dir/a.txt");
        let err = write_atomic(&p, b"x").unwrap_err();
        assert!(err.to_string().contains("a.txt"), "{err}");
    }
}
