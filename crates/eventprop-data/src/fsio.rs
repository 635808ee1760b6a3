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
        if pid.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p != own) {
            let _ = std::fs::remove_file(e.path());
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
        for n in [
            ".checkpoint.safetensors.tmp.1",
            ".plot.tmp.2.png",
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
