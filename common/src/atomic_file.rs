//! Replacing a small file so that a crash leaves either the old content or
//! the new, never a mix: write a temporary file, sync it, rename it over
//! the old one, sync the directory.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Atomically and durably replaces `path` with `bytes`. On failure (a
/// full disk) the old file stays as it was and no temporary file is left.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_mode(path, bytes, 0o666)
}

/// As [`write`], readable and writable by the owner only (a file holding
/// secrets).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_mode(path, bytes, 0o600)
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
    if let Err(err) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err);
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The JSON value saved at `path`, or `None` when nothing was saved; bad
/// JSON is an `InvalidData` error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Atomically and durably replaces `path` with `value` as (pretty) JSON.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write(
        path,
        &serde_json::to_vec_pretty(value).map_err(io::Error::other)?,
    )
}

/// As [`write_json`], readable and writable by the owner only.
pub fn write_json_private<T: serde::Serialize>(path: &Path, value: &T) -> io::Result<()> {
    write_private(
        path,
        &serde_json::to_vec_pretty(value).map_err(io::Error::other)?,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topics.json");
        super::write(&path, b"one").unwrap();
        super::write(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_private_file_is_the_owner_s_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        super::write_json_private(&path, &1u32).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn json_round_trips_and_nothing_saved_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.json");
        assert_eq!(super::read_json::<Vec<u32>>(&path).unwrap(), None);
        super::write_json(&path, &vec![1u32, 2]).unwrap();
        assert_eq!(
            super::read_json::<Vec<u32>>(&path).unwrap(),
            Some(vec![1, 2])
        );
        std::fs::write(&path, "garbage").unwrap();
        let err = super::read_json::<Vec<u32>>(&path).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
}
