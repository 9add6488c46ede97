//! Names that survive a power cut. A file or directory created (or
//! removed, or renamed) exists after a power loss only once the directory
//! holding its name was synced: syncing the file itself makes its bytes
//! durable, not its name. Every file the store creates goes through here
//! (segments, ConsumeQueue and index files, the abort marker), and so does
//! every directory it creates, up to the store's own.

use std::fs::File;
use std::io;
use std::path::Path;

/// Syncs directory `dir`: the names in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Syncs the directory holding `path`.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => sync_dir(Path::new(".")),
    }
}

/// `create_dir_all`, syncing the parent of every directory it creates.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => sync_parent(dir),
        // Made by someone else meanwhile: theirs to sync.
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(err) => Err(err),
    }
}

/// Creates (or truncates) `path` and makes its name durable.
pub fn create_file(path: &Path) -> io::Result<File> {
    let file = File::create(path)?;
    sync_parent(path)?;
    Ok(file)
}

/// Removes `path` and makes the removal durable.
pub fn remove_file(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path)?;
    sync_parent(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_directories_are_created_once() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a").join("b").join("c");
        create_dir_all(&dir).unwrap();
        create_dir_all(&dir).unwrap();
        assert!(dir.is_dir());
        let file = dir.join("f");
        create_file(&file).unwrap();
        remove_file(&file).unwrap();
        assert!(!file.exists());
    }
}
